#![no_main]
//! `--passes` parsing: never panics; whatever parses round-trips through its display form.

use certwipe::method::{Plan, parse_passes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(passes) = parse_passes(text) {
        let shown: Vec<String> = passes.iter().map(ToString::to_string).collect();
        assert_eq!(parse_passes(&shown.join(",")).as_ref(), Ok(&passes));
        let _ = Plan::custom(passes, 3);
    }
});
