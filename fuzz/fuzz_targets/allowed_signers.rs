#![no_main]
//! The allowed-signers parser and matcher never panic (nor stall) on any file.

use std::time::SystemTime;

use certwipe::cert::sign::AllowedSigners;
use libfuzzer_sys::fuzz_target;
use ssh_key::PublicKey;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIjEWXqW+ZICm0NFRGf57dlAflULAiamEZ0e9WW5BL0T";

fuzz_target!(|bytes: &[u8]| {
    let allowed = AllowedSigners::parse(bytes);
    let _ = allowed.problems();
    let key = PublicKey::from_openssh(KEY).expect("a valid key");
    for principal in [None, Some("station-1"), Some("")] {
        let _ = allowed.authorize(&key, principal, "certwipe", SystemTime::now());
    }
});
