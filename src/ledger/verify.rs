//! `ledger verify`: everything the ledger holds, checked again from its entries.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

use super::chain::{self, GENESIS};
use super::store::{CountersignatureRow, EntryRow, Tx};
use super::{ALLOWED_SIGNERS, KeptHead, LEDGER_ID, LedgerError, Medium, Verification, bundle_of};
use crate::cert::files::Trust;
use crate::cert::records::Classification;
use crate::cert::sign::{self, AllowedSigners, Signers};

pub(super) fn run(
    tx: &mut dyn Tx,
    anchor: Option<&AllowedSigners>,
    kept: Option<&KeptHead>,
) -> Result<Verification, LedgerError> {
    let mut problems = Vec::new();
    let entries = tx.entries(None)?;
    let ledger_id = tx.config(LEDGER_ID)?.unwrap_or_default();
    let own_list = tx.config(ALLOWED_SIGNERS)?;
    let own = own_list.as_ref().map(|text| AllowedSigners::parse(text.as_bytes()));
    let (allowed, against) = match (anchor, &own) {
        (Some(anchor), _) => (Some(anchor), "the allowed signers given (kept outside the ledger)".to_string()),
        (None, Some(own)) => (
            Some(own),
            "the ledger's own allowed signers: a rewrite of the whole ledger with another key list is caught only by --allowed-signers or --head".to_string(),
        ),
        (None, None) => (None, "nobody: the ledger has no allowed signers (ledger init)".to_string()),
    };
    if allowed.is_none() && !entries.is_empty() {
        problems.push("the ledger has no allowed signers, so no entry's signer can be checked".to_string());
    }
    let replay = check_chain(&entries, &ledger_id, allowed, &mut problems);
    if own_list != replay.allowed_signers {
        problems.push("the ledger's allowed signers differ from its last configure entry: the configuration was altered".into());
    }
    if tx.config(LEDGER_ID)?.as_deref() != replay.ledger_id.as_deref() {
        problems
            .push("the ledger's id differs from its configure entries: the configuration was altered".into());
    }
    check_media(tx, &replay, &mut problems)?;
    let (certificates, countersignatures) = check_certificates(tx, &replay, allowed, &mut problems)?;
    let head = entries.last().map_or(GENESIS.to_string(), |e| e.hash.clone());
    if let Some(kept) = kept {
        check_head(kept, &entries, &ledger_id, allowed, &mut problems);
    }
    Ok(Verification {
        entries: entries.len(),
        certificates,
        countersignatures,
        head,
        signers_checked_against: against,
        problems,
    })
}

/// What the entries say the ledger should hold.
#[derive(Default)]
struct Replay {
    ledger_id: Option<String>,
    allowed_signers: Option<String>,
    media: BTreeMap<String, Medium>,
    /// Certificate id → (medium, SHA-256).
    certificates: BTreeMap<String, (String, String)>,
    /// Certificate id → countersignatures recorded.
    countersignatures: BTreeMap<String, usize>,
}

fn check_chain(
    entries: &[EntryRow],
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
    problems: &mut Vec<String>,
) -> Replay {
    let mut replay = Replay::default();
    let mut previous = GENESIS.to_string();
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
        if !chain::hash_matches(e) {
            problems.push(format!(
                "entry {seq} ({} of {}) was altered: its hash does not match its content",
                e.kind, e.number
            ));
        }
        problems.extend(signature_problem(e, ledger_id, allowed));
        previous = e.hash.clone();
        apply(&mut replay, e, problems);
    }
    replay
}

/// Why an entry's signature does not hold, if it does not.
pub(super) fn signature_problem(
    e: &EntryRow,
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
) -> Option<String> {
    let Some(checked) = entry_signature(e, ledger_id, allowed) else {
        return Some(format!(
            "entry {} is not signed (written before entries were signed, or stripped)",
            e.seq
        ));
    };
    checked.err().map(|why| {
        format!("entry {} ({} of {}): its signature does not verify: {why}", e.seq, e.kind, e.number)
    })
}

/// An entry's signature, checked against `allowed` as of the entry's time
/// (only for intactness without `allowed`); `None` when it is unsigned.
pub(super) fn entry_signature(
    e: &EntryRow,
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
) -> Option<Result<sign::GoodSignature, sign::SignatureError>> {
    let signature = e.signature.as_ref()?;
    let at = humantime::parse_rfc3339(&e.at).unwrap_or(SystemTime::UNIX_EPOCH);
    let signers = allowed.map(|allowed| Signers { allowed, at, principal: None });
    let message = chain::entry_message(ledger_id, e.seq, &e.prev_hash, &e.hash);
    Some(sign::verify(&message, signature, signers))
}

/// Applies a registration or reclassification to the medium it is about.
pub(super) fn apply_to_medium(medium: &mut Option<Medium>, e: &EntryRow) -> Result<(), String> {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    match e.kind.as_str() {
        "register" => {
            *medium = Some(
                serde_json::from_value(data)
                    .map_err(|_| format!("entry {}: an unreadable registration", e.seq))?,
            );
        }
        "reclassify" => {
            let to = data["to"].as_str().and_then(|t| t.parse::<Classification>().ok());
            match (medium.as_mut(), to) {
                (Some(medium), Some(to)) if to > medium.classification => medium.classification = to,
                _ => {
                    return Err(format!(
                        "entry {}: a reclassification that does not raise {}",
                        e.seq, e.number
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Applies one entry to the replayed state.
fn apply(replay: &mut Replay, e: &EntryRow, problems: &mut Vec<String>) {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    match e.kind.as_str() {
        "configure" => {
            replay.ledger_id = data["ledger_id"].as_str().map(str::to_string);
            replay.allowed_signers = data["allowed_signers"].as_str().map(str::to_string);
        }
        "register" | "reclassify" => {
            let mut medium = replay.media.remove(&e.number);
            if let Err(why) = apply_to_medium(&mut medium, e) {
                problems.push(why);
            }
            if let Some(medium) = medium {
                replay.media.insert(e.number.clone(), medium);
            }
        }
        "certificate" => {
            if let (Some(id), Some(sha)) = (data["certificate_id"].as_str(), data["sha256"].as_str()) {
                replay.certificates.insert(id.to_string(), (e.number.clone(), sha.to_string()));
            }
        }
        "countersignature" => {
            if let Some(id) = data["certificate_id"].as_str() {
                *replay.countersignatures.entry(id.to_string()).or_default() += 1;
            }
        }
        _ => {}
    }
}

fn check_media(tx: &mut dyn Tx, replay: &Replay, problems: &mut Vec<String>) -> Result<(), LedgerError> {
    let media = tx.media()?;
    for medium in &media {
        match replay.media.get(&medium.number) {
            Some(recorded) if recorded == medium => {}
            Some(recorded) if recorded.classification != medium.classification => problems.push(format!(
                "medium {} is held at {} but its entries say {}: the media table was altered",
                medium.number,
                medium.classification.english(),
                recorded.classification.english()
            )),
            _ => problems.push(format!(
                "medium {} differs from its registration entry: the media table was altered",
                medium.number
            )),
        }
    }
    for number in replay.media.keys().filter(|n| !media.iter().any(|m| &m.number == *n)) {
        problems
            .push(format!("medium {number} is registered in the history but missing from the media table"));
    }
    Ok(())
}

/// Every certificate the history names is stored, under the same medium and
/// bytes, verifies with its countersignatures, and records no level above the
/// one its medium is held at. Returns the numbers of certificates and
/// countersignatures stored.
fn check_certificates(
    tx: &mut dyn Tx,
    replay: &Replay,
    allowed: Option<&AllowedSigners>,
    problems: &mut Vec<String>,
) -> Result<(usize, usize), LedgerError> {
    let stored = tx.certificates()?;
    let counters = tx.countersignatures(None)?;
    for (id, entry) in &replay.certificates {
        match stored.iter().find(|row| &row.certificate_id == id) {
            None => problems.push(format!("certificate {id} is in the history but missing from the certificate store")),
            Some(row) if (&row.number, &row.sha256) != (&entry.0, &entry.1) => problems.push(format!(
                "certificate {id} is stored under another medium or with other bytes than its history entry says"
            )),
            Some(_) => {}
        }
    }
    let counted = counters.len();
    let mut counters_of: BTreeMap<String, Vec<CountersignatureRow>> = BTreeMap::new();
    for counter in counters {
        counters_of.entry(counter.certificate_id.clone()).or_default().push(counter);
    }
    for row in &stored {
        let id = &row.certificate_id;
        if !replay.certificates.contains_key(id) {
            problems.push(format!("certificate {id} is stored but has no history entry"));
        }
        let own = counters_of.remove(id).unwrap_or_default();
        let checked = bundle_of(row, &own).check(allowed.map(|allowed| Trust { allowed, station: None }));
        if checked.sha256 != row.sha256 {
            problems.push(format!("certificate {id}: its stored bytes changed"));
        }
        if own.len() != replay.countersignatures.get(id).copied().unwrap_or(0) {
            problems.push(format!(
                "certificate {id}: {} countersignatures stored, {} in the history",
                own.len(),
                replay.countersignatures.get(id).copied().unwrap_or(0)
            ));
        }
        problems.extend(checked.reasons().into_iter().map(|why| format!("certificate {id}: {why}")));
        if let (Some(cert), Some(medium)) = (&checked.certificate, replay.media.get(&row.number)) {
            let recorded = cert.records.classification_before.max(cert.records.classification_after);
            if recorded.is_some_and(|level| level > medium.classification) {
                problems.push(format!(
                    "medium {} is held at {}, below the level its certificate {id} records: it was never raised",
                    row.number,
                    medium.classification.english()
                ));
            }
        }
    }
    Ok((stored.len(), counted))
}

/// The kept head must be signed by an allowed signer, name this ledger, and
/// still be in the chain with the same hash.
fn check_head(
    kept: &KeptHead,
    entries: &[EntryRow],
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
    problems: &mut Vec<String>,
) {
    let shown = kept.path.display();
    let bytes = crate::cert::canonical::to_bytes(&kept.head);
    let at = humantime::parse_rfc3339(&kept.head.at).unwrap_or(SystemTime::UNIX_EPOCH);
    let signers = allowed.map(|allowed| Signers { allowed, at, principal: None });
    if let Err(why) = sign::verify(&bytes, &kept.signature, signers) {
        problems.push(format!("the kept head {shown}: its signature does not verify: {why}"));
        return;
    }
    if kept.head.ledger_id != ledger_id {
        problems.push(format!("the kept head {shown} is of another ledger ({})", kept.head.ledger_id));
        return;
    }
    let seq = kept.head.seq;
    match usize::try_from(seq).ok().and_then(|n| n.checked_sub(1)).map(|i| entries.get(i)) {
        _ if seq == 0 => {}
        Some(Some(entry)) if entry.hash == kept.head.hash => {}
        Some(Some(_)) => problems.push(format!(
            "entry {seq} differs from the kept head {shown}: the ledger was rewritten since"
        )),
        _ => problems.push(format!(
            "the ledger ends at entry {}, but the kept head {shown} names entry {seq}: newer entries were cut off",
            entries.len()
        )),
    }
}
