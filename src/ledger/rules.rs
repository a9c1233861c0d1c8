//! The ledger's rules, apart from its storage: which medium a record is about,
//! what may be written about a medium in the state its history leaves it in,
//! and what a destruction record must hold. The no-downgrade and no-release
//! rules themselves are the judge's ([`crate::cert::judge::level_problems`]),
//! so a certificate is held to the same ones whether it is being filed or a
//! wipe that will be filed is about to start.

use std::time::SystemTime;

use super::store::Tx;
use super::{Destruction, LedgerError, Medium};
use crate::cert::judge::{self, Registered};
use crate::cert::records::{Classification, Records};

/// The medium a record is about: by its ledger number, else by its serial.
/// A serial that two media share names neither: matching by it is refused
/// rather than guessed (a decoy registered with another medium's serial must
/// not receive that medium's certificates).
pub(super) fn find_medium(
    tx: &mut dyn Tx,
    asset: Option<&str>,
    serial: Option<&str>,
) -> Result<Option<Medium>, LedgerError> {
    if let Some(asset) = asset
        && let Some(medium) = tx.medium(asset)?
    {
        return Ok(Some(medium));
    }
    let Some(serial) = serial else { return Ok(None) };
    let mut found = tx.media_by_serial(serial)?;
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(LedgerError::AmbiguousSerial {
            serial: serial.to_string(),
            numbers: found.into_iter().map(|m| m.number).collect(),
        }),
    }
}

/// A serial is registered once per media type.
pub(super) fn check_serial_unique(tx: &mut dyn Tx, medium: &Medium) -> Result<(), LedgerError> {
    let Some(serial) = &medium.serial else { return Ok(()) };
    match tx.media_by_serial(serial)?.into_iter().find(|m| m.media_type == medium.media_type) {
        Some(other) => Err(LedgerError::DuplicateSerial {
            serial: serial.clone(),
            media_type: medium.media_type.clone(),
            number: other.number,
        }),
        None => Ok(()),
    }
}

/// The medium as the judge sees it when something is filed under it.
pub(super) fn registered(medium: &Medium) -> Registered {
    Registered {
        number: medium.number.clone(),
        classification: medium.classification,
        serial: medium.serial.clone(),
    }
}

/// What a wipe about to be filed under `medium` must satisfy, checked before
/// its first byte: the same filing rules the judge applies to its
/// certificate. A level the records leave open is the ledger's.
pub(super) fn admit(medium: &Medium, records: &mut Records, serial: Option<&str>) -> Result<(), LedgerError> {
    if records.classification_before.is_none() {
        records.classification_before = Some(medium.classification);
        if records.classification_after.is_none() {
            records.classification_after = Some(medium.classification);
        }
    }
    let problems = judge::filing_problems(&registered(medium), records, serial);
    if problems.is_empty() { Ok(()) } else { Err(LedgerError::Refused(problems.join("; "))) }
}

/// The medium's level after a certificate recording `records`: the highest of
/// the ledger's and the certificate's (the judge has refused a lower one).
pub(super) fn raised_level(medium: &Medium, records: &Records) -> Classification {
    records
        .classification_before
        .max(records.classification_after)
        .unwrap_or(medium.classification)
        .max(medium.classification)
}

/// A destruction record's date: a real one, not in the future. (Who may
/// destroy, and that the witness is someone else, are the history's rules.)
pub(super) fn check_destruction(record: &Destruction, now: SystemTime) -> Result<(), LedgerError> {
    let refused = |why: String| Err(LedgerError::Refused(why));
    let midnight = format!("{}T00:00:00Z", record.date);
    let valid_form =
        record.date.len() == 10 && record.date.as_bytes()[4] == b'-' && record.date.as_bytes()[7] == b'-';
    let Some(day) = humantime::parse_rfc3339(&midnight).ok().filter(|_| valid_form) else {
        return refused(format!("--date {:?} is not a date (YYYY-MM-DD)", record.date));
    };
    if day > now + judge::CLOCK_TOLERANCE {
        return refused(format!(
            "--date {} lies in the future; record a destruction once it has happened",
            record.date
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DestructionMethod;

    fn destruction(date: &str, destroyer: &str, witness: &str) -> Destruction {
        Destruction {
            method: DestructionMethod::Shred,
            date: date.into(),
            place: "Room 5".into(),
            destroyer: destroyer.into(),
            witness: witness.into(),
            note: None,
        }
    }

    #[test]
    fn a_destruction_needs_a_real_past_date() {
        let now = humantime::parse_rfc3339("2026-12-03T12:00:00Z").unwrap();
        assert!(check_destruction(&destruction("2026-11-30", "Li Wei", "Zhang San"), now).is_ok());
        for bad in ["2099-13-45", "2026-02-30x", "30/11/2026", "2026-11-3", "", "2027-01-01"] {
            assert!(check_destruction(&destruction(bad, "Li Wei", "Zhang San"), now).is_err(), "{bad}");
        }
    }
}
