#![no_main]
//! The allowed-signers parser never panics.

use certwipe::cert::sign::AllowedSigners;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = AllowedSigners::parse(text);
});
