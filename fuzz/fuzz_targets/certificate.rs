#![no_main]
//! Certificate parsing and the consistency rules: never panic on any bytes, and a
//! parsed certificate serializes back to something that parses the same.

use certwipe::cert::{Certificate, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(cert) = Certificate::parse(bytes) {
        let _ = check::inconsistencies(&cert);
        let again = Certificate::parse(&cert.to_bytes()).expect("a certificate's own bytes parse");
        assert_eq!(again, cert);
    }
});
