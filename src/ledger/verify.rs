//! `ledger verify`: everything the ledger holds, checked again from its entries.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

use super::chain::{self, GENESIS};
use super::history::History;
use super::import::{bundle_of, judge_filed, row_problems};
use super::store::{CountersignatureRow, EntryRow, Tx};
use super::{ALLOWED_SIGNERS, KeptHead, LEDGER_ID, LedgerError, Medium, Verification, trust};
use crate::cert::judge::{CLOCK_TOLERANCE, Verdict};
use crate::cert::sign::{self, AllowedSigners, Duty, Signers};

pub(super) fn run(
    tx: &mut dyn Tx,
    anchor: Option<&AllowedSigners>,
    kept: Option<&KeptHead>,
) -> Result<Verification, LedgerError> {
    let mut problems = Vec::new();
    let entries = chain::with_times(tx.entries(None)?);
    let ledger_id = first_ledger_id(&entries).or(tx.config(LEDGER_ID)?).unwrap_or_default();
    let against = match anchor {
        Some(_) => "the allowed signers given (kept outside the ledger)".to_string(),
        None => "nobody: signatures were checked for integrity only; give --allowed-signers FILE (or allowed_signers in the station profile) to check who signed".to_string(),
    };
    let replay = check_chain(&entries, &ledger_id, anchor, &mut problems);
    if let (Some(anchor), Some((newest, _))) = (anchor, entries.last()) {
        problems.extend(trust::retired_newest(newest, &ledger_id, anchor));
    }
    if tx.config(ALLOWED_SIGNERS)? != replay.allowed_signers {
        problems.push("the ledger's allowed signers differ from its last configure entry: the configuration was altered".into());
    }
    if tx.config(LEDGER_ID)?.as_deref() != replay.ledger_id.as_deref() {
        problems
            .push("the ledger's id differs from its configure entries: the configuration was altered".into());
    }
    check_media(tx, &replay, &mut problems)?;
    let (certificates, countersignatures) = check_certificates(tx, &replay, anchor, &mut problems)?;
    let head = entries.last().map_or(GENESIS.to_string(), |(e, _)| e.hash.clone());
    if let Some(kept) = kept {
        check_head(kept, &entries, &ledger_id, anchor, &mut problems);
    }
    Ok(Verification {
        entries: entries.len(),
        certificates,
        countersignatures,
        head,
        signers_checked_against: against,
        signers_checked: anchor.is_some(),
        problems,
    })
}

/// The ledger's id as its first `configure` entry names it (the `config`
/// table's copy is checked against it, never trusted for it).
fn first_ledger_id(entries: &[(EntryRow, SystemTime)]) -> Option<String> {
    entries.iter().find(|(e, _)| e.kind == "configure").and_then(|(e, _)| {
        let data: Value = serde_json::from_str(&e.data).ok()?;
        data["ledger_id"].as_str().map(str::to_string)
    })
}

/// What the entries say the ledger should hold.
struct Replay<'a> {
    ledger_id: Option<String>,
    allowed_signers: Option<String>,
    /// Each medium's history, replayed under the ledger's rules.
    histories: BTreeMap<String, History<'a>>,
    /// Certificate id → (medium, SHA-256).
    certificates: BTreeMap<String, (String, String)>,
}

impl Replay<'_> {
    /// The medium numbered `number` as its history records it.
    fn medium(&self, number: &str) -> Option<&Medium> {
        self.histories.get(number).and_then(|h| h.medium.as_ref())
    }

    fn media(&self) -> impl Iterator<Item = &Medium> {
        self.histories.values().filter_map(|h| h.medium.as_ref())
    }
}

fn check_chain<'a>(
    entries: &[(EntryRow, SystemTime)],
    ledger_id: &'a str,
    anchor: Option<&'a AllowedSigners>,
    problems: &mut Vec<String>,
) -> Replay<'a> {
    let mut replay = Replay {
        ledger_id: None,
        allowed_signers: None,
        histories: BTreeMap::new(),
        certificates: BTreeMap::new(),
    };
    let mut latest = SystemTime::UNIX_EPOCH;
    let now = SystemTime::now();
    let rows: Vec<EntryRow> = entries.iter().map(|(e, _)| e.clone()).collect();
    problems.extend(chain::breaks(&rows));
    for (e, at) in entries {
        let seq = e.seq;
        let own = chain::entry_time(e);
        if own > now + CLOCK_TOLERANCE {
            problems.push(format!("entry {seq} is dated {}, in the future", e.at));
        }
        if own + CLOCK_TOLERANCE < latest {
            problems.push(format!(
                "entry {seq} is dated {}, before an earlier entry: entries are appended in time order, so it was backdated",
                e.at
            ));
        }
        latest = latest.max(own);
        problems.extend(trust::signature_problem(e, ledger_id, anchor, *at));
        if e.kind == "configure" {
            let previous_list =
                replay.allowed_signers.as_ref().map(|text| AllowedSigners::parse(text.as_bytes()));
            let own_list = configure_list(e);
            let list = previous_list.as_ref().or(own_list.as_ref());
            match list.and_then(|list| trust::succession_problem(e, ledger_id, list)) {
                Some(why) => problems.push(format!("configure entry {seq}: {why}")),
                None if list.is_none() => {
                    problems.push(format!("configure entry {seq}: its content is unreadable"))
                }
                None => {}
            }
        }
        apply(&mut replay, e, ledger_id, anchor, problems);
    }
    replay
}

fn configure_list(e: &EntryRow) -> Option<AllowedSigners> {
    let data: Value = serde_json::from_str(&e.data).ok()?;
    data["allowed_signers"].as_str().map(|text| AllowedSigners::parse(text.as_bytes()))
}

/// Applies one entry to the replayed state.
fn apply<'a>(
    replay: &mut Replay<'a>,
    e: &EntryRow,
    ledger_id: &'a str,
    anchor: Option<&'a AllowedSigners>,
    problems: &mut Vec<String>,
) {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    match e.kind.as_str() {
        "configure" => {
            replay.ledger_id = data["ledger_id"].as_str().map(str::to_string);
            replay.allowed_signers = data["allowed_signers"].as_str().map(str::to_string);
        }
        kind if !e.number.is_empty() => {
            let history =
                replay.histories.entry(e.number.clone()).or_insert_with(|| History::new(ledger_id, anchor));
            if let Err(broken) = history.apply(e) {
                problems.push(broken.problem(e));
            }
            if kind == "certificate"
                && let (Some(id), Some(sha)) = (data["certificate_id"].as_str(), data["sha256"].as_str())
            {
                replay.certificates.insert(id.to_string(), (e.number.clone(), sha.to_string()));
            }
        }
        kind => {
            problems.push(format!("entry {}: {kind:?} is not a kind of entry about the ledger itself", e.seq))
        }
    }
}

fn check_media(tx: &mut dyn Tx, replay: &Replay, problems: &mut Vec<String>) -> Result<(), LedgerError> {
    let media = tx.media()?;
    for medium in &media {
        match replay.medium(&medium.number) {
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
    for number in replay.media().map(|m| &m.number).filter(|n| !media.iter().any(|m| &m.number == *n)) {
        problems
            .push(format!("medium {number} is registered in the history but missing from the media table"));
    }
    let mut by_serial: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for medium in replay.media() {
        if let Some(serial) = &medium.serial {
            by_serial.entry((serial, &medium.media_type)).or_default().push(&medium.number);
        }
    }
    for ((serial, kind), numbers) in by_serial.into_iter().filter(|(_, numbers)| numbers.len() > 1) {
        problems.push(format!(
            "serial {serial} is registered for several {kind} media ({}): certificates matched by it could land on a decoy",
            numbers.join(", ")
        ));
    }
    Ok(())
}

/// Every certificate the history names is stored, under the same medium and
/// bytes, is judged valid with its countersignatures as of when they were
/// filed, and records no level above the one its medium is held at. Returns
/// the numbers of certificates and countersignatures stored.
fn check_certificates(
    tx: &mut dyn Tx,
    replay: &Replay,
    anchor: Option<&AllowedSigners>,
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
    for id in counters_of.keys().filter(|id| !stored.iter().any(|row| &row.certificate_id == *id)) {
        problems.push(format!("countersignatures are stored for certificate {id}, which is not stored"));
    }
    let mut histories: BTreeMap<String, Vec<EntryRow>> = BTreeMap::new();
    for entry in tx.entries(None)? {
        histories.entry(entry.number.clone()).or_default().push(entry);
    }
    for row in &stored {
        let id = &row.certificate_id;
        let own = counters_of.remove(id).unwrap_or_default();
        let history = histories.get(&row.number).map_or(&[][..], Vec::as_slice);
        problems.extend(
            row_problems(row, &own, history).into_iter().map(|why| format!("certificate {id}: {why}")),
        );
        let judgement = judge_filed(&bundle_of(row, &own, history), anchor);
        if judgement.sha256 != row.sha256 {
            problems.push(format!("certificate {id}: its stored bytes changed"));
        }
        // Without a trust root every certificate is "signer not checked", which
        // the verification as a whole reports once.
        if judgement.verdict() == Verdict::Invalid {
            problems.extend(judgement.reasons().into_iter().map(|why| format!("certificate {id}: {why}")));
        }
        if let (Some(cert), Some(medium)) = (&judgement.certificate, replay.medium(&row.number)) {
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

/// The kept head must be signed by a key allowed to sign ledger heads, name
/// this ledger, and still be in the chain with the same hash.
fn check_head(
    kept: &KeptHead,
    entries: &[(EntryRow, SystemTime)],
    ledger_id: &str,
    anchor: Option<&AllowedSigners>,
    problems: &mut Vec<String>,
) {
    let shown = kept.path.display();
    let bytes = crate::cert::canonical::to_bytes(&kept.head);
    let at = humantime::parse_rfc3339(&kept.head.at).unwrap_or(SystemTime::UNIX_EPOCH);
    let signers = anchor.map(|allowed| Signers { allowed, at, principal: None });
    if let Err(why) = sign::verify(&bytes, &kept.signature, Duty::Ledger, signers) {
        problems.push(format!("the kept head {shown}: its signature does not verify: {why}"));
        return;
    }
    if kept.head.ledger_id != ledger_id {
        problems.push(format!("the kept head {shown} is of another ledger ({})", kept.head.ledger_id));
        return;
    }
    let seq = kept.head.seq;
    match usize::try_from(seq).ok().and_then(|n| n.checked_sub(1)).map(|i| entries.get(i)) {
        Some(Some((entry, _))) if entry.hash == kept.head.hash => {}
        Some(Some(_)) => problems.push(format!(
            "entry {seq} differs from the kept head {shown}: the ledger was rewritten since"
        )),
        _ => problems.push(format!(
            "the ledger ends at entry {}, but the kept head {shown} names entry {seq}: newer entries were cut off",
            entries.len()
        )),
    }
}
