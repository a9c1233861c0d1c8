#![no_main]
//! Signature checking never panics and never accepts garbage: an armored input
//! that is not a real signature over these bytes is rejected.

use certwipe::cert::sign::verify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (armored, message) = input;
    assert!(verify(message, armored, None).is_err());
});
