//! The media ledger (台帐): every medium by its ledger number, with its whole
//! history — registration, signed certificates, countersignatures, approvals,
//! disposal decisions, physical destruction.
//!
//! History is an append-only chain of entries, each hashed with the one before
//! and signed by the station that wrote it ([`chain`]). A ledger is first
//! configured with the allowed signers of its stations (`ledger init`); every
//! write is signed by a listed station key, every import checks certificates
//! against that list, and `verify` checks every entry, certificate and
//! countersignature again. The rules of the users' regulations hold here too: a
//! classified medium is never reused or released, and its classification only
//! ever rises, to the highest any of its certificates records.
//!
//! The rules live here; the rows live in a [`store::Store`]: SQLite (a path,
//! one file per station) or PostgreSQL (a URL, one server for the
//! organisation), chosen by [`Location`].

pub mod chain;
mod location;
mod postgres;
mod sqlite;
pub mod store;

pub use location::Location;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::cert::files::{Bundle, CounterParts, Part, Trust};
use crate::cert::files::{Role, Statement};
use crate::cert::records::{self, Classification, Destination, RecordsError};
use crate::cert::sign::{AllowedSigners, GoodSignature, NAMESPACE, SigningKey};
use crate::cert::{CertError, Certificate};
use chain::Head;
use store::{CertificateRow, CountersignatureRow, EntryRow, Store, Tx};

#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("ledger {location}: {why}")]
    Open { location: String, why: String },
    #[error("ledger {0}")]
    BadLocation(String),
    #[error(
        "there is no ledger at {0}; start one with `certwipe ledger init --allowed-signers FILE --sign-key KEY` (or give --ledger)"
    )]
    Missing(String),
    #[error("ledger: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("ledger: the database server: {0}")]
    Server(#[from] ::postgres::Error),
    #[error(
        "ledger {0} has no allowed signers yet, so nothing written to it could be verified: run `certwipe ledger init --allowed-signers FILE --sign-key KEY` first"
    )]
    NotConfigured(String),
    #[error(
        "the signing key {fingerprint} may not write to this ledger: {why}; add it to the ledger's allowed signers (ledger init)"
    )]
    KeyNotAllowed { fingerprint: String, why: String },
    #[error("the ledger files signed certificates only: give --cert-dir and --sign-key too (not --unsigned)")]
    NeedsSignedCertificates,
    #[error("the ledger's allowed signers cannot change: {0}")]
    Reconfigure(String),
    #[error("ledger number {0:?} is already registered; ledger numbers are unique")]
    Duplicate(String),
    #[error("no medium with ledger number {0:?}; register it first (certwipe ledger register)")]
    UnknownNumber(String),
    #[error("certificate {path}: {why}")]
    Certificate { path: String, why: String },
    #[error("certificate {0} is already in the ledger; a certificate is imported once")]
    AlreadyImported(String),
    #[error(
        "medium {number} is {level} ({chinese}): classified media are never reused or released — destruction is required (or the manufacturer, for supervised repair)"
    )]
    ReuseForbidden { number: String, level: &'static str, chinese: &'static str },
    #[error("medium {number} is {level}: its classification can never be lowered (to {to})")]
    Downgrade { number: String, level: &'static str, to: &'static str },
    #[error("medium {0} was already destroyed")]
    AlreadyDestroyed(String),
    #[error(
        "the ledger's record of medium {number} does not verify ({why}); nothing was written — run `certwipe ledger verify`"
    )]
    Tampered { number: String, why: String },
    #[error("the kept head {path}: {why}")]
    Head { path: String, why: String },
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Sign(#[from] CertError),
}

impl crate::exit::ExitStatus for LedgerError {
    /// Refusals write nothing (each change is one transaction); a database that
    /// fails is not the operator's usage error.
    fn exit_status(&self) -> u8 {
        match self {
            LedgerError::Database(_)
            | LedgerError::Server(_)
            | LedgerError::Certificate { .. }
            | LedgerError::Tampered { .. } => crate::exit::FAILED,
            _ => crate::exit::USAGE,
        }
    }
}

/// How a medium was physically destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DestructionMethod {
    /// 消磁
    Degauss,
    /// 粉碎
    Shred,
    Disintegrate,
    Incinerate,
    Melt,
}

/// A medium as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Medium {
    pub number: String,
    pub media_type: String,
    pub classification: Classification,
    pub holder: Option<String>,
    pub serial: Option<String>,
    pub notes: Option<String>,
}

impl Medium {
    /// Refuses control characters and over-long values, as for every record.
    pub fn check(&self) -> Result<(), RecordsError> {
        records::check_text("ledger number", &self.number, records::MAX_NUMBER_CHARS)?;
        records::check_text("media type", &self.media_type, records::MAX_NAME_CHARS)?;
        records::check_optional("holder", self.holder.as_deref(), records::MAX_NAME_CHARS)?;
        records::check_optional("serial", self.serial.as_deref(), records::MAX_NUMBER_CHARS)?;
        records::check_optional("notes", self.notes.as_deref(), records::MAX_NOTES_CHARS)
    }
}

/// One entry of a medium's history, as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub number: String,
    pub kind: String,
    pub at: String,
    pub data: Value,
    pub hash: String,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Entry {
        let data = serde_json::from_str(&row.data).unwrap_or(Value::String(row.data));
        Entry { seq: row.seq, number: row.number, kind: row.kind, at: row.at, data, hash: row.hash }
    }
}

/// What an import did.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    pub number: String,
    /// Countersignatures recorded by this import.
    pub countersignatures: usize,
    /// The classification the medium was raised to, if the certificate recorded a
    /// higher one than the ledger held.
    pub raised_to: Option<Classification>,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: usize,
    pub certificates: usize,
    pub countersignatures: usize,
    pub head: String,
    /// Whose list the signers were checked against.
    pub signers_checked_against: String,
    pub problems: Vec<String>,
}

/// A head kept outside the ledger, with its signature.
pub struct KeptHead {
    pub path: PathBuf,
    pub head: Head,
    pub signature: String,
}

impl KeptHead {
    /// Reads `FILE` and `FILE.sig` as `ledger head -o FILE` wrote them.
    pub fn load(path: &Path) -> Result<KeptHead, LedgerError> {
        let fail = |why: String| LedgerError::Head { path: path.display().to_string(), why };
        let bytes = crate::input::read_regular(path, crate::input::DOCUMENT).map_err(|e| fail(e.to_string()))?;
        let head: Head = crate::cert::canonical::parse(&bytes).map_err(|e| fail(e.to_string()))?;
        let sig_path = crate::cert::files::signature_path(path);
        let signature = crate::input::read_text(&sig_path, crate::input::SIGNATURE)
            .map_err(|e| fail(format!("its signature {}: {e}", sig_path.display())))?;
        Ok(KeptHead { path: path.to_path_buf(), head, signature })
    }
}

pub struct Ledger {
    store: Box<dyn Store + Send>,
}

/// Configuration keys.
const LEDGER_ID: &str = "ledger_id";
const ALLOWED_SIGNERS: &str = "allowed_signers";

/// `ledger.sqlite` in the state directory (`/var/lib/certwipe` for root).
pub fn default_path() -> PathBuf {
    crate::engine::checkpoint::default_state_dir().join("ledger.sqlite")
}

/// How a ledger is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Create it if there is none (`ledger init` only), and bring its schema
    /// up to date.
    Create,
    /// An existing ledger, to write: its schema is brought up to date. A
    /// missing one is an error naming `ledger init`, never created.
    Write,
    /// An existing ledger, only to read: nothing is created or migrated, so a
    /// read-only database role (or file) suffices.
    Read,
}

impl Ledger {
    /// Opens an existing ledger to write to it (see [`Access`]).
    pub fn open(location: &Location) -> Result<Ledger, LedgerError> {
        Self::open_as(location, Access::Write)
    }

    /// Opens an existing ledger only to read it (see [`Access::Read`]).
    pub fn open_read_only(location: &Location) -> Result<Ledger, LedgerError> {
        Self::open_as(location, Access::Read)
    }

    pub fn open_as(location: &Location, access: Access) -> Result<Ledger, LedgerError> {
        let store: Box<dyn Store + Send> = match location {
            Location::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path, access)?),
            Location::Postgres(url) => Box::new(postgres::PostgresStore::open(url, location.shown(), access)?),
        };
        Ok(Ledger { store })
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Sets (or changes) the allowed signers of the ledger's stations. The first
    /// configuration names the ledger; a change must be signed by a key the
    /// current list allows, and must keep every key that signed entries so far.
    pub fn configure(&mut self, allowed_signers: &[u8], key: &SigningKey) -> Result<String, LedgerError> {
        let text = String::from_utf8(allowed_signers.to_vec())
            .map_err(|_| LedgerError::Reconfigure("the allowed signers file is not UTF-8 text".into()))?;
        let new_list = AllowedSigners::parse(text.as_bytes());
        authorize(&new_list, key)?;
        let mut ledger_id = String::new();
        self.store.write(&mut |tx| {
            let id = match tx.config(LEDGER_ID)? {
                Some(id) => {
                    let current =
                        AllowedSigners::parse(tx.config(ALLOWED_SIGNERS)?.unwrap_or_default().as_bytes());
                    authorize(&current, key)?;
                    check_still_signed(tx, &id, &new_list)?;
                    id
                }
                None => uuid::Uuid::new_v4().to_string(),
            };
            tx.set_config(LEDGER_ID, &id)?;
            tx.set_config(ALLOWED_SIGNERS, &text)?;
            let data = json!({"ledger_id": id, "allowed_signers": text});
            append(tx, &id, key, "", "configure", &data)?;
            ledger_id = id;
            Ok(())
        })?;
        Ok(ledger_id)
    }

    /// The allowed signers the ledger was configured with, if any.
    pub fn allowed_signers(&mut self) -> Result<Option<AllowedSigners>, LedgerError> {
        let mut text = None;
        self.store.read(&mut |tx| {
            text = tx.config(ALLOWED_SIGNERS)?;
            Ok(())
        })?;
        Ok(text.map(|t| AllowedSigners::parse(t.as_bytes())))
    }

    /// Runs `work` as one signed write: the ledger must be configured and `key`
    /// one of its allowed signers.
    fn write<T>(
        &mut self,
        key: &SigningKey,
        mut work: impl FnMut(&mut dyn Tx, &Writer<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let location = self.store.location();
        let mut out = None;
        self.store.write(&mut |tx| {
            let (id, allowed) = match (tx.config(LEDGER_ID)?, tx.config(ALLOWED_SIGNERS)?) {
                (Some(id), Some(allowed)) => (id, AllowedSigners::parse(allowed.as_bytes())),
                _ => return Err(LedgerError::NotConfigured(location.clone())),
            };
            authorize(&allowed, key)?;
            out = Some(work(tx, &Writer { ledger_id: &id, key, allowed: &allowed })?);
            Ok(())
        })?;
        Ok(out.expect("a committed write produced its result"))
    }

    /// Checks, before any work, that `key` could write here.
    pub fn check_writer(&mut self, key: &SigningKey) -> Result<(), LedgerError> {
        let location = self.store.location();
        let allowed = self.allowed_signers()?.ok_or(LedgerError::NotConfigured(location))?;
        authorize(&allowed, key)
    }

    pub fn register(&mut self, medium: &Medium, key: &SigningKey) -> Result<(), LedgerError> {
        medium.check()?;
        self.write(key, |tx, writer| {
            if tx.medium(&medium.number)?.is_some() {
                return Err(LedgerError::Duplicate(medium.number.clone()));
            }
            tx.insert_medium(medium)?;
            writer.append(tx, &medium.number, "register", &serde_json::to_value(medium).expect("serializes"))
        })
    }

    pub fn medium(&mut self, number: &str) -> Result<Medium, LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            found = tx.medium(number)?;
            Ok(())
        })?;
        found.ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))
    }

    pub fn media(&mut self) -> Result<Vec<Medium>, LedgerError> {
        let mut media = Vec::new();
        self.store.read(&mut |tx| {
            media = tx.media()?;
            Ok(())
        })?;
        Ok(media)
    }

    /// The medium a certificate is for, by its asset number, else its serial.
    pub fn find_medium(
        &mut self,
        asset: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Option<Medium>, LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            found = find_medium(tx, asset, serial)?;
            Ok(())
        })?;
        Ok(found)
    }

    /// Imports a certificate (with its countersignatures) after verifying it
    /// against the ledger's allowed signers, filed under its medium (asset number,
    /// else serial). Importing it again records only countersignatures added since.
    pub fn import(
        &mut self,
        bundle: &Bundle,
        label: &str,
        key: &SigningKey,
    ) -> Result<Imported, LedgerError> {
        let bad = |why: String| LedgerError::Certificate { path: label.to_string(), why };
        self.write(key, |tx, writer| {
            let checked = bundle.check(Some(Trust { allowed: writer.allowed, station: None }));
            if !checked.is_valid() {
                return Err(bad(format!("does not verify: {}", checked.reasons().join("; "))));
            }
            let cert = checked.certificate.as_ref().expect("a valid check parsed the certificate");
            let found = find_medium(tx, cert.records.asset_number.as_deref(), cert.medium.serial.as_deref())?;
            let Some(medium) = found.map(|m| writer.trusted(tx, &m.number)).transpose()?.flatten() else {
                return Err(bad(format!(
                    "no ledger entry matches its asset number ({}) or serial ({}); register the medium first",
                    cert.records.asset_number.as_deref().unwrap_or("none"),
                    cert.medium.serial.as_deref().unwrap_or("none")
                )));
            };
            let number = medium.number.clone();
            let countersigned = checked.signatures.iter().filter(|s| s.statement.is_some());
            let new_counters: Vec<Counter<'_>> = countersigned
                .zip(&bundle.countersignatures)
                .filter_map(|(check, parts)| Some((parts, check.statement.as_ref()?, check.result.as_ref().ok()?)))
                .collect();
            if tx.certificate(&cert.certificate_id)?.is_some() {
                let known = tx.countersignatures(Some(&cert.certificate_id))?;
                let fresh: Vec<_> = new_counters
                    .into_iter()
                    .filter(|(parts, ..)| !known.iter().any(|k| Some(&k.statement) == parts.statement.bytes.as_ref()))
                    .collect();
                if fresh.is_empty() {
                    return Err(LedgerError::AlreadyImported(cert.certificate_id.clone()));
                }
                let count = fresh.len();
                record_countersignatures(tx, writer, &number, &cert.certificate_id, &fresh)?;
                return Ok(Imported { number, countersignatures: count, raised_to: None });
            }
            if let (Some(registered), Some(certified)) = (&medium.serial, &cert.medium.serial)
                && registered != certified
            {
                return Err(bad(format!(
                    "medium {number} is registered with serial {registered}, but the certificate is for serial {certified}; check the asset number"
                )));
            }
            let level = raised_level(&medium, cert)?;
            check_rules(&medium, cert.records.destination, Some(level))?;
            let station = checked.station().expect("a valid certificate has a station signature");
            tx.insert_certificate(&CertificateRow {
                certificate_id: cert.certificate_id.clone(),
                number: number.clone(),
                sha256: checked.sha256.clone(),
                json: bundle.certificate.clone(),
                signature: bundle.signature.bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            })?;
            let mut summary = certificate_summary(cert, &checked.sha256);
            summary["signer"] = signer_value(station);
            writer.append(tx, &number, "certificate", &summary)?;
            let raised_to = (level > medium.classification).then_some(level);
            if let Some(to) = raised_to {
                tx.set_classification(&number, to)?;
                let data = json!({"from": medium.classification, "to": to, "certificate_id": cert.certificate_id});
                writer.append(tx, &number, "reclassify", &data)?;
            }
            let count = new_counters.len();
            record_countersignatures(tx, writer, &number, &cert.certificate_id, &new_counters)?;
            Ok(Imported { number, countersignatures: count, raised_to })
        })
    }

    /// Records an approval (审批), a witness or a validation made on paper or in person.
    pub fn approve(
        &mut self,
        number: &str,
        role: Role,
        name: &str,
        title: Option<&str>,
        note: Option<&str>,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        records::check_text("name", name, records::MAX_NAME_CHARS)?;
        records::check_optional("title", title, records::MAX_NAME_CHARS)?;
        records::check_optional("note", note, records::MAX_NOTES_CHARS)?;
        let data = json!({"role": role, "name": name, "title": title, "note": note});
        self.append_checked(number, "approval", data, key, |_, _| Ok(()))
    }

    /// Decides where the medium goes; classified media can only be destroyed or repaired.
    pub fn dispose(
        &mut self,
        number: &str,
        destination: Destination,
        note: Option<&str>,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        records::check_optional("note", note, records::MAX_NOTES_CHARS)?;
        let data = json!({"destination": destination, "note": note});
        self.append_checked(number, "disposal", data, key, |_, medium| {
            check_rules(medium, Some(destination), None)
        })
    }

    /// Records physical destruction (消磁, 粉碎, ...), with destroyer and witness (监销).
    pub fn destroy(
        &mut self,
        number: &str,
        record: &Destruction,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        record.check()?;
        let data = serde_json::to_value(record).expect("serializes");
        self.append_checked(number, "destruction", data, key, |tx, medium| {
            if tx.entries(Some(&medium.number))?.iter().any(|e| e.kind == "destruction") {
                return Err(LedgerError::AlreadyDestroyed(medium.number.clone()));
            }
            Ok(())
        })
    }

    fn append_checked(
        &mut self,
        number: &str,
        kind: &str,
        data: Value,
        key: &SigningKey,
        rule: impl Fn(&mut dyn Tx, &Medium) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write(key, |tx, writer| {
            let medium =
                writer.trusted(tx, number)?.ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))?;
            rule(tx, &medium)?;
            writer.append(tx, number, kind, &data)
        })
    }

    /// A medium and its whole history, from one consistent read.
    pub fn history(&mut self, number: &str) -> Result<(Medium, Vec<Entry>), LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            found = match tx.medium(number)? {
                Some(medium) => Some((medium, tx.entries(Some(number))?)),
                None => None,
            };
            Ok(())
        })?;
        let (medium, entries) = found.ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))?;
        Ok((medium, entries.into_iter().map(Entry::from).collect()))
    }

    /// A certificate as filed, with its countersignatures, ready to be checked.
    pub fn bundle(&mut self, certificate_id: &str) -> Result<Option<Bundle>, LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            if let Some(row) = tx.certificate(certificate_id)? {
                found = Some(bundle_of(&row, &tx.countersignatures(Some(certificate_id))?));
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// The newest entry, signed by `key`, to be kept outside the ledger.
    pub fn head(&mut self, key: &SigningKey) -> Result<(Vec<u8>, String), LedgerError> {
        let mut head = None;
        self.store
            .read(&mut |tx| {
                let id = tx.config(LEDGER_ID)?.ok_or_else(|| LedgerError::NotConfigured(String::new()))?;
                let (seq, hash) = tx.last_entry()?.unwrap_or((0, chain::GENESIS.to_string()));
                head = Some(Head {
                    format: chain::HEAD_FORMAT.into(),
                    ledger_id: id,
                    seq,
                    hash,
                    at: crate::engine::report::now(),
                });
                Ok(())
            })
            .map_err(|e| match e {
                LedgerError::NotConfigured(_) => LedgerError::NotConfigured(self.store.location()),
                other => other,
            })?;
        let bytes = crate::cert::canonical::to_bytes(&head.expect("read sets the head"));
        let signature = key.sign(&bytes)?;
        Ok((bytes, signature))
    }

    /// The rows a disposal form needs: one per medium, with its latest certificate,
    /// approvals, disposal and destruction.
    pub fn export_rows(&mut self) -> Result<Vec<Value>, LedgerError> {
        let mut rows = Vec::new();
        self.store.read(&mut |tx| {
            // Every entry in one query, not one query per medium.
            let mut histories: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
            for entry in tx.entries(None)? {
                histories.entry(entry.number.clone()).or_default().push(Entry::from(entry));
            }
            rows = tx
                .media()?
                .iter()
                .map(|medium| export_row(medium, histories.get(&medium.number).map_or(&[], Vec::as_slice)))
                .collect();
            Ok(())
        })?;
        Ok(rows)
    }

    /// Re-checks everything: the chain (order, hashes, every entry's signature),
    /// the media and configuration against their entries, every certificate and
    /// countersignature, the classifications, and, when given, a kept head.
    /// Signers are checked against `anchor` when given (an allowed-signers file
    /// kept outside the ledger), else against the ledger's own list.
    pub fn verify(
        &mut self,
        anchor: Option<&AllowedSigners>,
        kept: Option<&KeptHead>,
    ) -> Result<Verification, LedgerError> {
        let mut out = None;
        self.store.read(&mut |tx| {
            out = Some(verify::run(tx, anchor, kept)?);
            Ok(())
        })?;
        Ok(out.expect("read sets the verification"))
    }
}

mod verify;

/// A physical destruction, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destruction {
    pub method: DestructionMethod,
    pub date: String,
    pub place: String,
    pub destroyer: String,
    pub witness: String,
    pub note: Option<String>,
}

impl Destruction {
    fn check(&self) -> Result<(), RecordsError> {
        records::check_text("date", &self.date, records::MAX_NUMBER_CHARS)?;
        records::check_text("place", &self.place, records::MAX_NAME_CHARS)?;
        records::check_text("destroyer", &self.destroyer, records::MAX_NAME_CHARS)?;
        records::check_text("witness", &self.witness, records::MAX_NAME_CHARS)?;
        records::check_optional("note", self.note.as_deref(), records::MAX_NOTES_CHARS)
    }
}

/// What a signed write needs: the ledger it signs for and the station's key.
struct Writer<'a> {
    ledger_id: &'a str,
    key: &'a SigningKey,
    allowed: &'a AllowedSigners,
}

impl Writer<'_> {
    fn append(&self, tx: &mut dyn Tx, number: &str, kind: &str, data: &Value) -> Result<(), LedgerError> {
        append(tx, self.ledger_id, self.key, number, kind, data)
    }

    /// The medium as its signed history records it. Nothing is written about a
    /// medium whose row differs from its history or whose history entries fail
    /// their hash or signature: a rewritten ledger is not built upon.
    fn trusted(&self, tx: &mut dyn Tx, number: &str) -> Result<Option<Medium>, LedgerError> {
        let Some(row) = tx.medium(number)? else { return Ok(None) };
        let tampered = |why: String| LedgerError::Tampered { number: number.to_string(), why };
        let mut replayed = None;
        for e in tx.entries(Some(number))? {
            if !chain::hash_matches(&e) {
                return Err(tampered(format!("entry {} was altered", e.seq)));
            }
            if let Some(why) = verify::signature_problem(&e, self.ledger_id, Some(self.allowed)) {
                return Err(tampered(why));
            }
            verify::apply_to_medium(&mut replayed, &e).map_err(tampered)?;
        }
        if replayed.as_ref() != Some(&row) {
            return Err(tampered("its record differs from its signed registration".into()));
        }
        Ok(Some(row))
    }
}

fn append(
    tx: &mut dyn Tx,
    ledger_id: &str,
    key: &SigningKey,
    number: &str,
    kind: &str,
    data: &Value,
) -> Result<(), LedgerError> {
    let entry = chain::next_entry(ledger_id, tx.last_entry()?, number, kind, data, key)?;
    tx.insert_entry(&entry)
}

/// Whether `key` is an allowed signer of the ledger now.
fn authorize(allowed: &AllowedSigners, key: &SigningKey) -> Result<(), LedgerError> {
    allowed
        .authorize(&key.public_key(), None, NAMESPACE, SystemTime::now())
        .map(drop)
        .map_err(|why| LedgerError::KeyNotAllowed { fingerprint: key.fingerprint(), why: why.to_string() })
}

/// A new allowed-signers list must still vouch for every entry signed so far.
fn check_still_signed(tx: &mut dyn Tx, ledger_id: &str, list: &AllowedSigners) -> Result<(), LedgerError> {
    for entry in tx.entries(None)? {
        if let Some(Err(why)) = verify::entry_signature(&entry, ledger_id, Some(list)) {
            return Err(LedgerError::Reconfigure(format!(
                "entry {} would no longer verify ({why}); keep its signer in the list (retire a key with valid-before=\"…\")",
                entry.seq
            )));
        }
    }
    Ok(())
}

fn find_medium(
    tx: &mut dyn Tx,
    asset: Option<&str>,
    serial: Option<&str>,
) -> Result<Option<Medium>, LedgerError> {
    if let Some(asset) = asset
        && let Some(medium) = tx.medium(asset)?
    {
        return Ok(Some(medium));
    }
    match serial {
        Some(serial) => tx.medium_by_serial(serial),
        None => Ok(None),
    }
}

/// The medium's level after this certificate: the highest of the ledger's and
/// the certificate's. A certificate that records a lower level than the ledger
/// holds is refused: it would be a record of a downgrade.
fn raised_level(medium: &Medium, cert: &Certificate) -> Result<Classification, LedgerError> {
    let records = &cert.records;
    for level in [records.classification_before, records.classification_after].into_iter().flatten() {
        if level < medium.classification {
            return Err(LedgerError::Downgrade {
                number: medium.number.clone(),
                level: medium.classification.english(),
                to: level.english(),
            });
        }
    }
    Ok(records
        .classification_before
        .max(records.classification_after)
        .unwrap_or(medium.classification)
        .max(medium.classification))
}

/// The no-downgrade and no-release rules, against the medium's level.
fn check_rules(
    medium: &Medium,
    destination: Option<Destination>,
    level: Option<Classification>,
) -> Result<(), LedgerError> {
    let level = level.unwrap_or(medium.classification).max(medium.classification);
    if let Some(destination) = destination
        && !destination.allowed_for(level)
    {
        return Err(LedgerError::ReuseForbidden {
            number: medium.number.clone(),
            level: level.english(),
            chinese: level.chinese(),
        });
    }
    Ok(())
}

/// A verified countersignature: its files, its parsed statement, its signer.
type Counter<'a> = (&'a CounterParts, &'a Statement, &'a GoodSignature);

fn record_countersignatures(
    tx: &mut dyn Tx,
    writer: &Writer<'_>,
    number: &str,
    certificate_id: &str,
    counters: &[Counter<'_>],
) -> Result<(), LedgerError> {
    let text = |part: &Part| {
        part.bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    };
    for (parts, statement, good) in counters {
        tx.insert_countersignature(&CountersignatureRow {
            certificate_id: certificate_id.to_string(),
            role: parts.role.clone(),
            statement: parts.statement.bytes.clone().unwrap_or_default(),
            statement_signature: text(&parts.statement_signature),
            certificate_signature: text(&parts.certificate_signature),
        })?;
        let mut data = serde_json::to_value(statement).expect("serializes");
        data["signer"] = signer_value(good);
        writer.append(tx, number, "countersignature", &data)?;
    }
    Ok(())
}

fn signer_value(good: &GoodSignature) -> Value {
    json!({"principals": good.principals(), "fingerprint": good.fingerprint})
}

/// A filed certificate and its countersignatures, as a bundle to check.
fn bundle_of(row: &CertificateRow, counters: &[CountersignatureRow]) -> Bundle {
    let part = |label: String, text: &str| Part { label, bytes: Some(text.as_bytes().to_vec()) };
    let id = &row.certificate_id;
    Bundle {
        certificate: row.json.clone(),
        signature: part(format!("ledger: certificate {id}, station signature"), &row.signature),
        countersignatures: counters
            .iter()
            .enumerate()
            .map(|(n, c)| CounterParts {
                role: c.role.clone(),
                statement: Part {
                    label: format!("ledger: certificate {id}, {} statement {}", c.role, n + 1),
                    bytes: Some(c.statement.clone()),
                },
                statement_signature: part(
                    format!("ledger: certificate {id}, {} statement signature {}", c.role, n + 1),
                    &c.statement_signature,
                ),
                certificate_signature: part(
                    format!("ledger: certificate {id}, {} signature {}", c.role, n + 1),
                    &c.certificate_signature,
                ),
            })
            .collect(),
    }
}

fn certificate_summary(cert: &Certificate, sha256: &str) -> Value {
    let s = &cert.sanitization;
    json!({
        "certificate_id": cert.certificate_id,
        "sha256": sha256,
        "model": cert.medium.model,
        "serial": cert.medium.serial,
        "status": s.status,
        "category": s.category,
        "method": s.method.id,
        "finished_at": s.finished_at,
        "operator": cert.records.operator.name,
        "destination": cert.records.destination,
        "classification_before": cert.records.classification_before,
        "classification_after": cert.records.classification_after,
    })
}

fn export_row(medium: &Medium, history: &[Entry]) -> Value {
    let latest = |kind: &str| history.iter().rev().find(|e| e.kind == kind).map(|e| e.data.clone());
    let certificate = latest("certificate").unwrap_or(Value::Null);
    let destruction = latest("destruction").unwrap_or(Value::Null);
    let approvals: Vec<String> = history
        .iter()
        .filter(|e| e.kind == "approval" || e.kind == "countersignature")
        .map(|e| {
            format!("{} {}", e.data["role"].as_str().unwrap_or(""), e.data["name"].as_str().unwrap_or(""))
        })
        .collect();
    json!({
        "ledger_number": medium.number,
        "media_type": medium.media_type,
        "classification": medium.classification.english(),
        "classification_zh": medium.classification.chinese(),
        "holder": medium.holder,
        "serial": medium.serial,
        "model": certificate["model"],
        "certificate_id": certificate["certificate_id"],
        "sanitized_at": certificate["finished_at"],
        "status": certificate["status"],
        "category": certificate["category"],
        "method": certificate["method"],
        "operator": certificate["operator"],
        "destination": latest("disposal").map(|d| d["destination"].clone()).unwrap_or(certificate["destination"].clone()),
        "approvals": approvals.join("; "),
        "destroyed_on": destruction["date"],
        "destruction_method": destruction["method"],
        "destruction_place": destruction["place"],
        "destroyer": destruction["destroyer"],
        "witness": destruction["witness"],
    })
}
