//! The seam between the ledger's rules and the database that keeps them. Every
//! backend (embedded SQLite, a PostgreSQL server) stores the same rows and runs
//! each change as one transaction that holds the ledger's write lock, so that
//! concurrent stations queue instead of forking the hash chain.

use super::{LedgerError, Medium};
use crate::cert::records::Classification;

/// Each table's columns, in the order both backends read them into rows.
pub(super) const MEDIUM_COLUMNS: &str = "number, media_type, classification, holder, serial, notes";
pub(super) const ENTRY_COLUMNS: &str = "seq, number, kind, at, data, prev_hash, hash, signature";
pub(super) const CERTIFICATE_COLUMNS: &str = "certificate_id, number, sha256, json, signature";
pub(super) const COUNTERSIGNATURE_COLUMNS: &str =
    "certificate_id, role, statement, statement_signature, certificate_signature";

/// A stored classification; an unreadable level is treated as the highest, never
/// as a lower one.
pub(super) fn stored_classification(text: &str) -> Classification {
    text.parse().unwrap_or(Classification::TopSecret)
}

/// One history entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRow {
    pub seq: i64,
    /// The medium's ledger number; empty for entries about the ledger itself.
    pub number: String,
    pub kind: String,
    pub at: String,
    /// Compact JSON.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
    /// The writing station's SSHSIG over the entry; `None` for entries written
    /// before entries were signed (schema version 1).
    pub signature: Option<String>,
}

/// A certificate as imported: its exact bytes and station signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    pub certificate_id: String,
    pub number: String,
    pub sha256: String,
    pub json: Vec<u8>,
    pub signature: String,
}

/// A countersignature as imported: the statement and both signatures, so that
/// `verify` checks them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountersignatureRow {
    pub certificate_id: String,
    pub role: String,
    pub statement: Vec<u8>,
    pub statement_signature: String,
    pub certificate_signature: String,
}

/// What one transaction can read and write.
pub trait Tx {
    fn config(&mut self, key: &str) -> Result<Option<String>, LedgerError>;
    fn set_config(&mut self, key: &str, value: &str) -> Result<(), LedgerError>;
    fn medium(&mut self, number: &str) -> Result<Option<Medium>, LedgerError>;
    /// Every medium registered with `serial`, by ledger number.
    fn media_by_serial(&mut self, serial: &str) -> Result<Vec<Medium>, LedgerError>;
    fn media(&mut self) -> Result<Vec<Medium>, LedgerError>;
    fn insert_medium(&mut self, medium: &Medium) -> Result<(), LedgerError>;
    fn set_classification(&mut self, number: &str, level: Classification) -> Result<(), LedgerError>;
    /// Sequence number and hash of the newest entry.
    fn last_entry(&mut self) -> Result<Option<(i64, String)>, LedgerError>;
    fn insert_entry(&mut self, entry: &EntryRow) -> Result<(), LedgerError>;
    /// The entry with sequence number `seq`, if there is one.
    fn entry_at(&mut self, seq: i64) -> Result<Option<EntryRow>, LedgerError>;
    /// Every entry (of one medium, if given), oldest first.
    fn entries(&mut self, number: Option<&str>) -> Result<Vec<EntryRow>, LedgerError>;
    fn certificate(&mut self, id: &str) -> Result<Option<CertificateRow>, LedgerError>;
    fn certificates(&mut self) -> Result<Vec<CertificateRow>, LedgerError>;
    fn insert_certificate(&mut self, row: &CertificateRow) -> Result<(), LedgerError>;
    /// Countersignatures (of one certificate, if given), in the order imported.
    fn countersignatures(
        &mut self,
        certificate_id: Option<&str>,
    ) -> Result<Vec<CountersignatureRow>, LedgerError>;
    fn insert_countersignature(&mut self, row: &CountersignatureRow) -> Result<(), LedgerError>;
}

/// A database holding a ledger.
pub trait Store {
    /// Runs `work` in one transaction holding the ledger's write lock, committing
    /// when it returns `Ok` and rolling back otherwise. A backend may run `work`
    /// again after a conflict it could not prevent, so `work` must only write its
    /// results when it succeeds.
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
    /// Runs `work` on one consistent snapshot, changing nothing.
    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
    /// Where the ledger lives, for messages (a path, or a URL without password).
    fn location(&self) -> String;
}
