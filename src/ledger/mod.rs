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
mod heads;
mod history;
pub mod import;
mod location;
mod postgres;
mod rules;
mod sqlite;
pub mod store;
mod trust;
mod verify;

pub use location::Location;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::cert::CertError;
use crate::cert::files::{Bundle, Role};
use crate::cert::records::{self, Classification, Destination, Records, RecordsError};
use crate::cert::sign::{AllowedSigners, Duty, SigningKey};
use chain::Head;
use history::History;
use store::{EntryRow, Store, Tx};

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
        "the signing key {fingerprint} may not write to this ledger ({whose}): {why}; list it with namespaces=\"certwipe-ledger\" in the allowed signers, and record that list with `ledger init`"
    )]
    KeyNotAllowed { fingerprint: String, whose: String, why: String },
    #[error(
        "writing to the ledger needs its allowed signers from a file you control: give --allowed-signers FILE (or allowed_signers in the station profile); the database's own copy is never trusted on its own"
    )]
    NoTrustRoot,
    #[error(
        "{} media are registered with serial {serial} ({}): a record matched by that serial could land on either, so it is refused; give the ledger number",
        numbers.len(),
        numbers.join(", ")
    )]
    AmbiguousSerial { serial: String, numbers: Vec<String> },
    #[error(
        "serial {serial} is already registered for a {media_type}, as medium {number}; serials are unique per media type"
    )]
    DuplicateSerial { serial: String, media_type: String, number: String },
    #[error("{0}")]
    Refused(String),
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
        "another certificate with id {id} is already filed under {number} (its bytes differ); certificate ids are unique"
    )]
    IdTaken { id: String, number: String },
    #[error("medium {0} was already destroyed; nothing more is recorded about it")]
    AlreadyDestroyed(String),
    #[error(
        "medium {0} has no approval on record by anyone but the key recording its destruction: scrapping needs an approver's approval first (an approver's countersignature, or `certwipe ledger approve {0} --role approver --name NAME` recorded with another key, e.g. the records office's)"
    )]
    NotApproved(String),
    #[error(
        "the ledger's {what} does not verify ({why}); nothing was written — run `certwipe ledger verify`"
    )]
    Tampered { what: String, why: String },
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

crate::named! {
    /// How a medium was physically destroyed.
    pub enum DestructionMethod: "destruction method" {
        /// 消磁
        Degauss = "degauss",
        /// 粉碎
        Shred = "shred",
        Disintegrate = "disintegrate",
        Incinerate = "incinerate",
        Melt = "melt",
    }
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
    /// Whether they were checked against a list from outside the database.
    pub signers_checked: bool,
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
        let bytes =
            crate::input::read_regular(path, crate::input::DOCUMENT).map_err(|e| fail(e.to_string()))?;
        let head: Head = crate::cert::canonical::parse(&bytes).map_err(|e| fail(e.to_string()))?;
        if head.format != chain::HEAD_FORMAT {
            return Err(fail(format!(
                "unknown format {:?}; this certwipe reads {}",
                head.format,
                chain::HEAD_FORMAT
            )));
        }
        if head.seq < 1 {
            return Err(fail(format!("it names entry {}, and entries count from 1", head.seq)));
        }
        let sig_path = crate::cert::files::signature_path(path);
        let signature = crate::input::read_text(&sig_path, crate::input::SIGNATURE)
            .map_err(|e| fail(format!("its signature {}: {e}", sig_path.display())))?;
        Ok(KeptHead { path: path.to_path_buf(), head, signature })
    }
}

pub struct Ledger {
    store: Box<dyn Store + Send>,
    /// The allowed signers from outside the database (the trust root).
    anchor: Option<AllowedSigners>,
    /// Where this station notes the newest entry it wrote to each ledger.
    remembered: Option<heads::Remembered>,
}

/// Configuration keys.
const LEDGER_ID: &str = "ledger_id";
const ALLOWED_SIGNERS: &str = "allowed_signers";

/// `ledger.sqlite` in the state directory (`/var/lib/certwipe` for root).
pub fn default_path() -> PathBuf {
    crate::engine::checkpoint::default_state_dir().join("ledger.sqlite")
}

/// Where a station notes the newest entry it wrote to each ledger (see [`Ledger::remembering`]).
pub fn heads_file(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger-heads.json")
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
            Location::Postgres(url) => {
                Box::new(postgres::PostgresStore::open(url, location.shown(), access)?)
            }
        };
        Ok(Ledger { store, anchor: None, remembered: None })
    }

    /// The allowed signers every signature is checked against: the list the
    /// operator keeps outside the database. Without it the ledger can be read
    /// but not written, and `verify` says its signers were not checked.
    pub fn trusting(mut self, anchor: AllowedSigners) -> Ledger {
        self.anchor = Some(anchor);
        self
    }

    /// Notes in `file` (the station's state directory) the newest entry this
    /// station writes to each ledger, and before every write checks that the
    /// ledger still holds it: a ledger cut back to before it (which leaves a
    /// chain that is whole) is then caught, as by a kept head.
    pub fn remembering(mut self, file: PathBuf) -> Ledger {
        self.remembered = Some(heads::Remembered { file });
        self
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Sets (or changes) the allowed signers of the ledger's stations, from
    /// `allowed_signers`, which also becomes this ledger's trust root. The
    /// first configuration names the ledger; a change must be signed by a key
    /// the list recorded before allows, and must keep every key that signed
    /// entries so far.
    pub fn configure(&mut self, allowed_signers: &[u8], key: &SigningKey) -> Result<String, LedgerError> {
        let text = String::from_utf8(allowed_signers.to_vec())
            .map_err(|_| LedgerError::Reconfigure("the allowed signers file is not UTF-8 text".into()))?;
        let new_list = AllowedSigners::parse(text.as_bytes());
        trust::authorize(&new_list, key, "the allowed signers given")?;
        let mut ledger_id = String::new();
        self.store.write(&mut |tx| {
            let id = match trust::configured(tx)? {
                Some(current) => {
                    trust::authorize_change(&current.list, key)?;
                    trust::check_still_signed(tx, &current.ledger_id, &new_list)?;
                    current.ledger_id
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
        self.anchor = Some(new_list);
        Ok(ledger_id)
    }

    /// Runs `work` as one signed write: `key` must be allowed to write ledger
    /// entries by the trust root and by the list the ledger's signed
    /// configuration records.
    fn write<T>(
        &mut self,
        key: &SigningKey,
        mut work: impl FnMut(&mut dyn Tx, &Writer<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let location = self.store.location();
        let anchor = self.anchor.as_ref().ok_or(LedgerError::NoTrustRoot)?;
        trust::authorize(anchor, key, "the allowed signers given")?;
        let remembered = self.remembered.as_ref();
        let mut out = None;
        let mut newest = None;
        self.store.write(&mut |tx| {
            let configured =
                trust::configured(tx)?.ok_or_else(|| LedgerError::NotConfigured(location.clone()))?;
            trust::authorize(&configured.list, key, "the list the ledger's configuration records")?;
            let ledger_id = configured.ledger_id.as_str();
            check_chain(tx, ledger_id, anchor)?;
            let noted_as = format!("{location} {ledger_id}");
            if let Some(heads) = remembered {
                heads.check(tx, &noted_as)?;
            }
            out = Some(work(tx, &Writer { ledger_id, key, anchor })?);
            newest = tx.last_entry()?.map(|(seq, hash)| (noted_as, seq, hash));
            Ok(())
        })?;
        if let (Some(heads), Some((ledger_id, seq, hash))) = (remembered, newest) {
            // A station that cannot keep its note still wrote; the note only ever adds a check.
            let _ = heads.remember(&ledger_id, seq, &hash);
        }
        Ok(out.expect("a committed write produced its result"))
    }

    /// Checks, before any work, that `key` could write here.
    pub fn check_writer(&mut self, key: &SigningKey) -> Result<(), LedgerError> {
        self.write(key, |_, _| Ok(()))
    }

    pub fn register(&mut self, medium: &Medium, key: &SigningKey) -> Result<(), LedgerError> {
        medium.check()?;
        self.write(key, |tx, writer| {
            if tx.medium(&medium.number)?.is_some() {
                return Err(LedgerError::Duplicate(medium.number.clone()));
            }
            rules::check_serial_unique(tx, medium)?;
            tx.insert_medium(medium)?;
            writer.append(tx, &medium.number, "register", &serde_json::to_value(medium).expect("serializes"))
        })
    }

    pub fn media(&mut self) -> Result<Vec<Medium>, LedgerError> {
        let mut media = Vec::new();
        self.store.read(&mut |tx| {
            media = tx.media()?;
            Ok(())
        })?;
        Ok(media)
    }

    /// The medium a certificate is for, by its asset number, else its serial
    /// (refused when two media share it).
    pub fn find_medium(
        &mut self,
        asset: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Option<Medium>, LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            found = rules::find_medium(tx, asset, serial)?;
            Ok(())
        })?;
        Ok(found)
    }

    /// Checks, before a wipe that will be filed here writes anything, every
    /// rule filing its certificate will apply: the medium is registered (by
    /// `records`' ledger number, else `serial`), its history verifies, it is
    /// not destroyed, and the records keep its level and a destination it
    /// allows. A level the records leave open is filled in from the ledger.
    pub fn admit(
        &mut self,
        records: &mut Records,
        serial: Option<&str>,
    ) -> Result<Option<Medium>, LedgerError> {
        let anchor = self.anchor.as_ref().ok_or(LedgerError::NoTrustRoot)?;
        let mut found = None;
        let asset = records.asset_number.clone();
        self.store.read(&mut |tx| {
            let configured =
                trust::configured(tx)?.ok_or_else(|| LedgerError::NotConfigured(String::new()))?;
            let Some(medium) = rules::find_medium(tx, asset.as_deref(), serial)? else { return Ok(()) };
            check_chain(tx, &configured.ledger_id, anchor)?;
            let history = trusted(tx, &configured.ledger_id, anchor, &medium.number)?;
            if history.is_destroyed() {
                return Err(LedgerError::AlreadyDestroyed(medium.number));
            }
            found = Some(medium);
            Ok(())
        })?;
        if let Some(medium) = &found {
            rules::admit(medium, records, serial)?;
        }
        Ok(found)
    }

    /// Files a certificate (with its countersignatures) after the judge has
    /// found it valid against the trust root, as of now, for the medium it
    /// names (its ledger number, else its serial). Filing it again records
    /// only countersignatures added since, judged with those already filed.
    pub fn import(
        &mut self,
        bundle: &Bundle,
        label: &str,
        key: &SigningKey,
    ) -> Result<Imported, LedgerError> {
        self.write(key, |tx, writer| import::import(tx, writer, bundle, label))
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
        self.append_checked(number, "approval", data, key)
    }

    /// Decides where the medium goes; classified media can only be destroyed or
    /// repaired, and a destroyed medium goes nowhere.
    pub fn dispose(
        &mut self,
        number: &str,
        destination: Destination,
        note: Option<&str>,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        records::check_optional("note", note, records::MAX_NOTES_CHARS)?;
        let data = json!({"destination": destination, "note": note});
        self.append_checked(number, "disposal", data, key)
    }

    /// Records physical destruction (消磁, 粉碎, ...), with destroyer and witness
    /// (监销): once, after an approval, on a real past date, witnessed by someone else.
    pub fn destroy(
        &mut self,
        number: &str,
        record: &Destruction,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        record.check()?;
        rules::check_destruction(record, SystemTime::now())?;
        let data = serde_json::to_value(record).expect("serializes");
        self.append_checked(number, "destruction", data, key)
    }

    /// Appends an entry about a registered medium, if the ledger's rules
    /// ([`history::History::apply`]) allow it after the medium's history.
    fn append_checked(
        &mut self,
        number: &str,
        kind: &str,
        data: Value,
        key: &SigningKey,
    ) -> Result<(), LedgerError> {
        self.write(key, |tx, writer| {
            // Nothing is written about a medium whose row was edited.
            writer.trusted(tx, number)?;
            writer.append(tx, number, kind, &data)
        })
    }

    /// Every medium whose row is not what its history records (an entry's
    /// hash broken, or the row edited in the database), with why: the
    /// records office's lists and exports mark them rather than show them as
    /// recorded. Signatures are `verify`'s to check.
    pub fn unrecorded(&mut self) -> Result<BTreeMap<String, String>, LedgerError> {
        let mut found = BTreeMap::new();
        self.store.read(&mut |tx| {
            let entries = tx.entries(None)?;
            let broken = chain::breaks(&entries).into_iter().next();
            let mut histories: BTreeMap<String, Vec<EntryRow>> = BTreeMap::new();
            for entry in entries {
                histories.entry(entry.number.clone()).or_default().push(entry);
            }
            found = tx
                .media()?
                .into_iter()
                .filter_map(|m| {
                    let history = histories.get(&m.number).map_or(&[][..], Vec::as_slice);
                    let why = record_problem(&m, history, broken.as_deref())?;
                    Some((m.number, why))
                })
                .collect();
            Ok(())
        })?;
        Ok(found)
    }

    /// A medium and its whole history, from one consistent read, and why the
    /// medium's row is not what that history records, if it is not.
    pub fn history(&mut self, number: &str) -> Result<(Medium, Vec<Entry>, Option<String>), LedgerError> {
        let mut found = None;
        self.store.read(&mut |tx| {
            found = match tx.medium(number)? {
                Some(medium) => {
                    let broken = chain::breaks(&tx.entries(None)?).into_iter().next();
                    Some((medium, tx.entries(Some(number))?, broken))
                }
                None => None,
            };
            Ok(())
        })?;
        let (medium, entries, broken) =
            found.ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))?;
        let problem = record_problem(&medium, &entries, broken.as_deref());
        Ok((medium, entries.into_iter().map(Entry::from).collect(), problem))
    }

    /// A certificate as filed, with its countersignatures, the times the
    /// ledger recorded each, and what is wrong with its filing (rows the
    /// signed history does not record), ready to be judged.
    pub fn filed(&mut self, certificate_id: &str) -> Result<Option<import::Filed>, LedgerError> {
        let mut found = None;
        let anchor = self.anchor.as_ref();
        self.store.read(&mut |tx| {
            found = import::filed(tx, anchor, certificate_id)?;
            Ok(())
        })?;
        Ok(found)
    }

    /// The newest entry's position and hash: what a reader that keeps an
    /// earlier [`Ledger::verify`] asks to know whether the chain has grown.
    pub fn newest(&mut self) -> Result<Option<(i64, String)>, LedgerError> {
        let mut newest = None;
        self.store.read(&mut |tx| {
            newest = tx.last_entry()?;
            Ok(())
        })?;
        Ok(newest)
    }

    /// The newest entry, signed by `key` (duty `ledger`), to be kept outside the ledger.
    pub fn head(&mut self, key: &SigningKey) -> Result<(Vec<u8>, String), LedgerError> {
        let location = self.store.location();
        let mut head = None;
        self.store.read(&mut |tx| {
            let configured =
                trust::configured(tx)?.ok_or_else(|| LedgerError::NotConfigured(location.clone()))?;
            let (seq, hash) = tx.last_entry()?.unwrap_or((0, chain::GENESIS.to_string()));
            head = Some(Head {
                format: chain::HEAD_FORMAT.into(),
                ledger_id: configured.ledger_id,
                seq,
                hash,
                at: crate::report::now(),
            });
            Ok(())
        })?;
        let bytes = crate::cert::canonical::to_bytes(&head.expect("read sets the head"));
        let signature = key.sign(&bytes, Duty::Ledger)?;
        Ok((bytes, signature))
    }

    /// The rows a disposal form needs: one per medium, with its latest certificate,
    /// approvals, disposal and destruction.
    pub fn export_rows(&mut self) -> Result<Vec<Value>, LedgerError> {
        let mut rows = Vec::new();
        self.store.read(&mut |tx| {
            // Every entry in one query, not one query per medium.
            let entries = tx.entries(None)?;
            let broken = chain::breaks(&entries).into_iter().next();
            let mut histories: BTreeMap<String, Vec<EntryRow>> = BTreeMap::new();
            for entry in entries {
                histories.entry(entry.number.clone()).or_default().push(entry);
            }
            rows = tx
                .media()?
                .iter()
                .map(|medium| {
                    let history = histories.remove(&medium.number).unwrap_or_default();
                    let problem = record_problem(medium, &history, broken.as_deref());
                    let shown: Vec<Entry> = history.into_iter().map(Entry::from).collect();
                    let mut row = export_row(medium, &shown);
                    row["record"] = match problem {
                        None => "as its signed history records".into(),
                        Some(why) => format!("NOT as recorded ({why}): run ledger verify").into(),
                    };
                    row
                })
                .collect();
            Ok(())
        })?;
        Ok(rows)
    }

    /// Re-checks everything: the chain (order, times, hashes, every entry's
    /// signature), the signed configuration, the media against their entries,
    /// every certificate and countersignature (judged as of when the ledger
    /// recorded them), the classifications, and, when given, a kept head.
    /// Signers are checked against the trust root; without one, the result
    /// says they were not checked.
    pub fn verify(&mut self, kept: Option<&KeptHead>) -> Result<Verification, LedgerError> {
        let mut out = None;
        let anchor = self.anchor.as_ref();
        let remembered = self.remembered.as_ref();
        let location = self.store.location();
        self.store.read(&mut |tx| {
            let mut verification = verify::run(tx, anchor, kept)?;
            if let (Some(heads), Some(configured)) = (remembered, trust::configured(tx).ok().flatten()) {
                verification
                    .problems
                    .extend(heads.problem(tx, &format!("{location} {}", configured.ledger_id))?);
            }
            out = Some(verification);
            Ok(())
        })?;
        Ok(out.expect("read sets the verification"))
    }
}

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

/// What a signed write needs: the ledger it signs for, the station's key, and
/// the trust root its reads are checked against.
struct Writer<'a> {
    ledger_id: &'a str,
    key: &'a SigningKey,
    anchor: &'a AllowedSigners,
}

impl Writer<'_> {
    /// Signs and appends an entry. One about a medium is appended only if the
    /// ledger's rules allow it after the medium's history (checked as
    /// [`trusted`] checks it): the same rules `verify` applies to every entry.
    fn append(&self, tx: &mut dyn Tx, number: &str, kind: &str, data: &Value) -> Result<(), LedgerError> {
        let entry = chain::next_entry(self.ledger_id, tx.last_entry()?, number, kind, data, self.key)?;
        if !number.is_empty() {
            let mut history = replay(tx, self.ledger_id, self.anchor, number)?;
            history.apply(&entry).map_err(|broken| broken.refusal(number))?;
        }
        tx.insert_entry(&entry)
    }

    /// The medium as its signed history records it (see [`trusted`]).
    fn trusted(&self, tx: &mut dyn Tx, number: &str) -> Result<History<'_>, LedgerError> {
        trusted(tx, self.ledger_id, self.anchor, number)
    }
}

/// A medium's history replayed under the ledger's rules: every entry intact
/// and signed by the trust root, every rule kept, and every certificate filed
/// under it judged valid with its countersignatures as of when it was filed.
/// Entries signed by hand with a writer's key, or rows put into the database,
/// are not built upon.
fn replay<'a>(
    tx: &mut dyn Tx,
    ledger_id: &'a str,
    anchor: &'a AllowedSigners,
    number: &str,
) -> Result<History<'a>, LedgerError> {
    let tampered = |why: String| LedgerError::Tampered { what: format!("record of medium {number}"), why };
    let mut history = History::new(ledger_id, Some(anchor));
    for (e, at) in chain::with_times(tx.entries(Some(number))?) {
        if !chain::hash_matches(&e) {
            return Err(tampered(format!("entry {} was altered", e.seq)));
        }
        if let Some(why) = trust::signature_problem(&e, ledger_id, Some(anchor), at) {
            return Err(tampered(why));
        }
        history.apply(&e).map_err(|broken| tampered(broken.problem(&e)))?;
    }
    for id in history.certificates() {
        let filed = import::filed(tx, Some(anchor), id)?
            .ok_or_else(|| tampered(format!("its certificate {id} is in its history but not stored")))?;
        let judgement = filed.judge(Some(anchor));
        if !judgement.is_valid() {
            return Err(tampered(format!("its certificate {id}: {}", judgement.reasons().join("; "))));
        }
    }
    Ok(history)
}

/// The medium as its signed history records it ([`replay`]), which its row
/// must equal: nothing is written about a medium edited in the database.
/// The chain as a whole is [`check_chain`]'s.
fn trusted<'a>(
    tx: &mut dyn Tx,
    ledger_id: &'a str,
    anchor: &'a AllowedSigners,
    number: &str,
) -> Result<History<'a>, LedgerError> {
    let row = tx.medium(number)?.ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))?;
    let history = replay(tx, ledger_id, anchor, number)?;
    if history.medium.as_ref() != Some(&row) {
        return Err(LedgerError::Tampered {
            what: format!("record of medium {number}"),
            why: "its record differs from its signed history".into(),
        });
    }
    Ok(history)
}

/// The whole chain, before anything is built on it or relied upon: every
/// entry in its place, following the one before, unaltered; and the newest
/// signed by a key the trust root allows, both when it was written and now.
/// Since each hash covers the one before, the newest entry's signature then
/// vouches for the whole history. A key retired since cannot have its
/// entries sealed by the next writer: its retirement is recorded first
/// (`ledger init` with the new list, signed by a valid key).
fn check_chain(tx: &mut dyn Tx, ledger_id: &str, anchor: &AllowedSigners) -> Result<(), LedgerError> {
    let entries = tx.entries(None)?;
    if let Some(why) = chain::breaks(&entries).into_iter().next() {
        return Err(LedgerError::Tampered { what: "chain".into(), why });
    }
    let Some((newest, at)) = chain::with_times(entries).pop() else { return Ok(()) };
    let tampered = |why: String| LedgerError::Tampered { what: "newest entry".into(), why };
    if let Some(why) = trust::signature_problem(&newest, ledger_id, Some(anchor), at) {
        return Err(tampered(why));
    }
    trust::retired_newest(&newest, ledger_id, anchor).map_or(Ok(()), |why| Err(tampered(why)))
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

/// Why `medium`'s row is not what `history` records, if it is not: the
/// chain broken anywhere (`broken`, from [`chain::breaks`]: nothing can be
/// taken as recorded then), an entry of its history altered or against the
/// rules, or the row edited.
fn record_problem(medium: &Medium, history: &[EntryRow], broken: Option<&str>) -> Option<String> {
    if let Some(why) = broken {
        return Some(format!("the ledger's chain is broken: {why}"));
    }
    let mut replayed = History::new("", None);
    for e in history {
        if !chain::hash_matches(e) {
            return Some(format!("entry {} was altered", e.seq));
        }
        if let Err(broken) = replayed.apply(e) {
            return Some(broken.problem(e));
        }
    }
    (replayed.medium.as_ref() != Some(medium))
        .then(|| "the row differs from what its history records".to_string())
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
        "verify_mode": certificate["verify_mode"],
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
