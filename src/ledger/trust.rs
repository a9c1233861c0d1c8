//! Whose signatures the ledger accepts. The trust root is outside the
//! database: the allowed-signers file the operator controls (`--allowed-signers`
//! or the profile's `allowed_signers`). The database keeps the list it was
//! configured with, in signed `configure` entries, as a record: the first is
//! signed by a key its own list allows, and every change by a key the list
//! before it allows, so the record cannot be changed without a key. The copy
//! in the `config` table is never trusted: someone who can write the database
//! but holds no key could put any key there.

use std::time::SystemTime;

use serde_json::Value;

use super::LedgerError;
use super::chain;
use super::store::{EntryRow, Tx};
use crate::cert::sign::{self, AllowedSigners, Duty, GoodSignature, SignatureError, Signers, SigningKey};

/// The configuration the signed `configure` entries record.
pub(super) struct Configured {
    pub ledger_id: String,
    /// The allowed signers of the newest `configure` entry.
    pub list: AllowedSigners,
}

/// The ledger's configuration as its `configure` entries record it, each
/// checked: hash, signature, and a signer the previous list (for the first,
/// its own) allows. `None` for a ledger never configured.
pub(super) fn configured(tx: &mut dyn Tx) -> Result<Option<Configured>, LedgerError> {
    let mut current: Option<Configured> = None;
    for entry in tx.entries(Some(""))?.iter().filter(|e| e.kind == "configure") {
        let data: Value = serde_json::from_str(&entry.data).unwrap_or(Value::Null);
        let (Some(ledger_id), Some(text)) = (data["ledger_id"].as_str(), data["allowed_signers"].as_str())
        else {
            return Err(tampered(entry, "its content is unreadable"));
        };
        if current.as_ref().is_some_and(|c| c.ledger_id != ledger_id) {
            return Err(tampered(entry, "it names another ledger"));
        }
        let list = AllowedSigners::parse(text.as_bytes());
        if let Some(why) = succession_problem(entry, ledger_id, current.as_ref().map_or(&list, |c| &c.list)) {
            return Err(tampered(entry, &why));
        }
        current = Some(Configured { ledger_id: ledger_id.to_string(), list });
    }
    Ok(current)
}

fn tampered(entry: &EntryRow, why: &str) -> LedgerError {
    LedgerError::Tampered {
        what: "own configuration".into(),
        why: format!("configure entry {}: {why}", entry.seq),
    }
}

/// Why a `configure` entry does not hold: its hash, or its signature by a key
/// that `previous` (the list it replaces; its own list for the first) allows
/// to write the ledger. A list recorded before duties had namespaces of their
/// own allowed writers in `certwipe`; an entry signed in that namespace is
/// judged by the rule of its time.
pub(super) fn succession_problem(
    entry: &EntryRow,
    ledger_id: &str,
    previous: &AllowedSigners,
) -> Option<String> {
    if !chain::hash_matches(entry) {
        return Some("its hash does not match its content".into());
    }
    let at = entry_time(entry);
    match entry_signature(entry, ledger_id, Some(previous), at) {
        None => Some("it is not signed".into()),
        Some(Ok(_)) => None,
        Some(Err(_)) if legacy_writer(entry, ledger_id, previous, at) => None,
        Some(Err(why)) => Some(format!("not signed by a key the list before it allows: {why}")),
    }
}

/// Whether `entry` was signed by a writer of a list recorded before duties
/// had namespaces of their own (none of its lines names `certwipe-ledger`):
/// such a list allowed writers in `certwipe`. That covers the entries of a
/// ledger made then, and the one entry that moves it to a list with duties.
fn legacy_writer(entry: &EntryRow, ledger_id: &str, list: &AllowedSigners, at: SystemTime) -> bool {
    let Some(Ok(good)) = entry_signature(entry, ledger_id, None, at) else { return false };
    let key = ssh_key::PublicKey::from_openssh(&good.public_key);
    predates_duties(list) && key.is_ok_and(|key| list.authorize(&key, None, sign::NAMESPACE, at).is_ok())
}

fn predates_duties(list: &AllowedSigners) -> bool {
    !list.mentions_namespace(Duty::Ledger.namespace())
}

use chain::entry_time;

/// An entry's signature (duty `ledger`), checked against `allowed` as of `at`
/// (only for intactness without `allowed`); `None` when it is unsigned.
pub(super) fn entry_signature(
    entry: &EntryRow,
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
    at: SystemTime,
) -> Option<Result<GoodSignature, SignatureError>> {
    let signature = entry.signature.as_ref()?;
    let signers = allowed.map(|allowed| Signers { allowed, at, principal: None });
    let message = chain::entry_message(ledger_id, entry.seq, &entry.prev_hash, &entry.hash);
    Some(sign::verify(&message, signature, Duty::Ledger, signers))
}

/// Why an entry's signature does not hold, if it does not.
pub(super) fn signature_problem(
    entry: &EntryRow,
    ledger_id: &str,
    allowed: Option<&AllowedSigners>,
    at: SystemTime,
) -> Option<String> {
    let Some(checked) = entry_signature(entry, ledger_id, allowed, at) else {
        return Some(format!(
            "entry {} is not signed (written before entries were signed, or stripped)",
            entry.seq
        ));
    };
    checked.err().map(|why| {
        format!(
            "entry {} ({} of {}): its signature does not verify: {why}",
            entry.seq, entry.kind, entry.number
        )
    })
}

/// Why nobody may build on `newest` (the newest entry of a ledger) now, if
/// its signer's key is no longer valid: nothing shows when such an entry was
/// written, since the key's holder chooses its time. The key's retirement is
/// recorded first, by a `configure` entry (`ledger init`) a valid key signs.
pub(super) fn retired_newest(newest: &EntryRow, ledger_id: &str, anchor: &AllowedSigners) -> Option<String> {
    if newest.kind == "configure" {
        return None;
    }
    let why = signature_problem(newest, ledger_id, Some(anchor), SystemTime::now())?;
    Some(format!(
        "{why}; its signer's key is no longer valid, so nothing shows when it was written: record the key's retirement first (`certwipe ledger init` with the organisation's allowed signers, signed by a valid key)"
    ))
}

/// Whether `key` may write ledger entries now, by `list` (`whose`: which list,
/// for the message).
pub(super) fn authorize(list: &AllowedSigners, key: &SigningKey, whose: &str) -> Result<(), LedgerError> {
    list.authorize(&key.public_key(), None, Duty::Ledger.namespace(), SystemTime::now()).map(drop).map_err(
        |why| LedgerError::KeyNotAllowed {
            fingerprint: key.fingerprint(),
            whose: whose.to_string(),
            why: why.to_string(),
        },
    )
}

/// Whether `key` may record a new list in place of `recorded`: a writer by
/// `recorded`, or, for a list recorded before duties had namespaces (none of
/// its lines names `certwipe-ledger`), a key it allows in `certwipe`: that is
/// how such a ledger moves to a list with duties, once.
pub(super) fn authorize_change(recorded: &AllowedSigners, key: &SigningKey) -> Result<(), LedgerError> {
    let legacy = || {
        predates_duties(recorded)
            && recorded.authorize(&key.public_key(), None, sign::NAMESPACE, SystemTime::now()).is_ok()
    };
    match authorize(recorded, key, "the list the ledger recorded before") {
        Err(_) if legacy() => Ok(()),
        other => other,
    }
}

/// A new allowed-signers list must still vouch for every entry signed so far.
pub(super) fn check_still_signed(
    tx: &mut dyn Tx,
    ledger_id: &str,
    list: &AllowedSigners,
) -> Result<(), LedgerError> {
    for (entry, at) in chain::with_times(tx.entries(None)?) {
        if let Some(Err(why)) = entry_signature(&entry, ledger_id, Some(list), at) {
            return Err(LedgerError::Reconfigure(format!(
                "entry {} would no longer verify ({why}); keep its signer in the list (retire a key with valid-before=\"…\")",
                entry.seq
            )));
        }
    }
    Ok(())
}
