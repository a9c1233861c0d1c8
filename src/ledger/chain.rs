//! The ledger's history as a signed hash chain. Each entry is hashed together
//! with the hash of the one before, so an entry altered, removed or moved breaks
//! the chain; and each entry is signed by the station that wrote it (SSHSIG over
//! the ledger's id, the entry's sequence number, the previous hash and its own
//! hash), so rebuilding the chain with recomputed hashes needs a station key the
//! allowed signers list. Cutting off the newest entries leaves a shorter chain
//! that is still whole: a signed head (`ledger head`), kept elsewhere, catches it.

use serde::{Deserialize, Serialize};

use super::store::EntryRow;
use std::time::SystemTime;

use crate::cert::sign::{Duty, SigningKey};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub const HEAD_FORMAT: &str = "certwipe.ledger-head/v1";

/// SHA-256 over the previous hash and the entry's fields, each length-prefixed so
/// no two different entries hash the same.
pub fn entry_hash(prev_hash: &str, seq: i64, number: &str, kind: &str, at: &str, data: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for field in [prev_hash, &seq.to_string(), number, kind, at, data] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether a stored entry's hash is the hash of its content.
pub fn hash_matches(e: &super::store::EntryRow) -> bool {
    e.hash == entry_hash(&e.prev_hash, e.seq, &e.number, &e.kind, &e.at, &e.data)
}

/// Where the chain of `entries` (the whole ledger, oldest first) is broken:
/// an entry not at its place in the sequence, not following the one before it,
/// or altered. Cheap (hashes only): signatures are the trust module's.
/// A chain without breaks whose newest entry is signed commits to every
/// entry before it, since each hash covers the one before.
pub fn breaks(entries: &[EntryRow]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut previous = GENESIS;
    for (position, e) in entries.iter().enumerate() {
        let seq = e.seq;
        if seq != position as i64 + 1 {
            problems.push(format!(
                "entry {seq} is at position {}: an entry was removed or inserted",
                position + 1
            ));
        }
        if e.prev_hash != previous {
            problems.push(format!(
                "entry {seq} does not follow the entry before it: the chain is broken (removed or reordered entries)"
            ));
        }
        if !hash_matches(e) {
            problems.push(format!(
                "entry {seq} ({} of {}) was altered: its hash does not match its content",
                e.kind, e.number
            ));
        }
        previous = &e.hash;
    }
    problems
}

/// The bytes a station signs for an entry: plain text, so that anyone can check
/// it with `ssh-keygen -Y verify`, and unlike any certificate (which is JSON).
pub fn entry_message(ledger_id: &str, seq: i64, prev_hash: &str, hash: &str) -> Vec<u8> {
    format!("certwipe.ledger-entry/v1\nledger {ledger_id}\nseq {seq}\nprev {prev_hash}\nhash {hash}\n")
        .into_bytes()
}

/// The time an entry says it was written.
pub fn entry_time(entry: &EntryRow) -> SystemTime {
    humantime::parse_rfc3339(&entry.at).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Each entry with the time it counts as written, at which its signer's key
/// must have been valid: its own time, or the latest time of the entries
/// before it when that is later. Entries are appended in order, so a writer
/// who dates an entry back (to before a key was retired) gains nothing.
pub fn with_times(entries: Vec<EntryRow>) -> Vec<(EntryRow, SystemTime)> {
    let mut latest = SystemTime::UNIX_EPOCH;
    entries
        .into_iter()
        .map(|entry| {
            latest = latest.max(entry_time(&entry));
            (entry, latest)
        })
        .collect()
}

/// Builds the next entry after `last` (or the first one) and signs it.
pub fn next_entry(
    ledger_id: &str,
    last: Option<(i64, String)>,
    number: &str,
    kind: &str,
    data: &serde_json::Value,
    key: &SigningKey,
) -> Result<EntryRow, crate::cert::CertError> {
    let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
    let seq = last_seq + 1;
    let at = crate::report::now();
    let data = data.to_string();
    let hash = entry_hash(&prev_hash, seq, number, kind, &at, &data);
    let signature = key.sign(&entry_message(ledger_id, seq, &prev_hash, &hash), Duty::Ledger)?;
    Ok(EntryRow {
        seq,
        number: number.to_string(),
        kind: kind.to_string(),
        at,
        data,
        prev_hash,
        hash,
        signature: Some(signature),
    })
}

/// The newest entry of a ledger, signed, to be kept somewhere the ledger's
/// database is not (printed, mailed, another server): `verify --head` compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    pub ledger_id: String,
    pub seq: i64,
    pub hash: String,
    pub at: String,
}
