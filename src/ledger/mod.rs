//! The media ledger (台帐): every medium by its ledger number, with its whole
//! history — registration, signed certificates, approvals and countersignatures,
//! disposal decisions, physical destruction. An embedded SQLite database.
//!
//! History is an append-only list of entries, each hashed together with the hash
//! of the one before (a hash chain), so an entry that is altered, removed or
//! moved is found by `verify`. The chain's head hash, which `verify` prints, goes
//! on the paper register: that also catches the newest entries being cut off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::cert::Certificate;
use crate::cert::files::{self, Role};
use crate::cert::records::{Classification, Destination};
use crate::cert::sign::AllowedSigners;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("ledger {path}: {why}")]
    Open { path: String, why: String },
    #[error("ledger: {0}")]
    Database(#[from] rusqlite::Error),
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

/// One entry of a medium's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub number: String,
    pub kind: String,
    pub at: String,
    pub data: Value,
    pub hash: String,
}

pub struct Ledger {
    db: Connection,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: usize,
    pub certificates: usize,
    pub head: String,
    pub problems: Vec<String>,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let fail = |why: String| LedgerError::Open { path: path.display().to_string(), why };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let db = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        // Two certwipe processes may write at once: wait for the other's transaction.
        db.busy_timeout(Duration::from_secs(30))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS media (
                 number TEXT PRIMARY KEY,
                 media_type TEXT NOT NULL,
                 classification TEXT NOT NULL,
                 holder TEXT, serial TEXT, notes TEXT);
             CREATE TABLE IF NOT EXISTS entries (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 number TEXT NOT NULL REFERENCES media(number),
                 kind TEXT NOT NULL,
                 at TEXT NOT NULL,
                 data TEXT NOT NULL,
                 prev_hash TEXT NOT NULL,
                 hash TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS certificates (
                 certificate_id TEXT PRIMARY KEY,
                 number TEXT NOT NULL REFERENCES media(number),
                 sha256 TEXT NOT NULL,
                 json BLOB NOT NULL,
                 signature TEXT NOT NULL);",
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(Ledger { db })
    }

    pub fn register(&mut self, medium: &Medium) -> Result<(), LedgerError> {
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM media WHERE number = ?1", [&medium.number], |_| Ok(true))
            .optional()?
            .is_some();
        if exists {
            return Err(LedgerError::Duplicate(medium.number.clone()));
        }
        tx.execute(
            "INSERT INTO media (number, media_type, classification, holder, serial, notes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                medium.number,
                medium.media_type,
                medium.classification.english(),
                medium.holder,
                medium.serial,
                medium.notes
            ],
        )?;
        append(&tx, &medium.number, "register", serde_json::to_value(medium).expect("serializes"))?;
        tx.commit()?;
        Ok(())
    }

    pub fn medium(&self, number: &str) -> Result<Medium, LedgerError> {
        self.db
            .query_row(
                "SELECT number, media_type, classification, holder, serial, notes FROM media WHERE number = ?1",
                [number],
                row_to_medium,
            )
            .optional()?
            .ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))
    }

    pub fn media(&self) -> Result<Vec<Medium>, LedgerError> {
        let mut statement = self.db.prepare(
            "SELECT number, media_type, classification, holder, serial, notes FROM media ORDER BY number",
        )?;
        let media = statement.query_map([], row_to_medium)?.collect::<Result<Vec<_>, _>>()?;
        Ok(media)
    }

    /// Imports a certificate after verifying it, linked to its medium by ledger
    /// number (the certificate's asset number) or else by serial, with the
    /// countersignatures beside it. Importing it again only records countersignatures
    /// added since. Returns the number.
    pub fn import(&mut self, path: &Path, allowed: Option<&AllowedSigners>) -> Result<String, LedgerError> {
        let shown = path.display().to_string();
        let bad = |why: String| LedgerError::Certificate { path: shown.clone(), why };
        let checked = files::check_files(path, allowed).map_err(|e| bad(e.to_string()))?;
        if !checked.is_valid() {
            let mut why = checked.problems.clone();
            why.extend(checked.signatures.iter().filter_map(|s| s.result.as_ref().err().cloned()));
            return Err(bad(format!("does not verify: {}", why.join("; "))));
        }
        let cert = checked.certificate.clone().expect("a valid check parsed the certificate");
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let signature =
            std::fs::read_to_string(files::signature_path(path)).map_err(|e| bad(e.to_string()))?;
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let number = find_medium(&tx, &cert).ok_or_else(|| {
            bad(format!(
                "no ledger entry matches its asset number ({}) or serial ({}); register the medium first",
                cert.records.asset_number.as_deref().unwrap_or("none"),
                cert.medium.serial.as_deref().unwrap_or("none")
            ))
        })?;
        let imported: bool = tx
            .query_row("SELECT 1 FROM certificates WHERE certificate_id = ?1", [&cert.certificate_id], |_| {
                Ok(true)
            })
            .optional()?
            .is_some();
        let statements: Vec<&files::Statement> =
            checked.signatures.iter().filter_map(|s| s.statement.as_ref()).collect();
        if imported {
            // Countersignatures made since the import are recorded; the certificate is not imported again.
            let recorded: Vec<String> = {
                let mut query =
                    tx.prepare("SELECT data FROM entries WHERE kind = 'countersignature' AND number = ?1")?;
                query.query_map([&number], |row| row.get(0))?.collect::<Result<_, _>>()?
            };
            let new: Vec<Value> = statements
                .iter()
                .map(|st| serde_json::to_value(st).expect("serializes"))
                .filter(|value| !recorded.contains(&value.to_string()))
                .collect();
            if new.is_empty() {
                return Err(LedgerError::AlreadyImported(cert.certificate_id));
            }
            for value in new {
                append(&tx, &number, "countersignature", value)?;
            }
            tx.commit()?;
            return Ok(number);
        }
        let medium = tx.query_row(
            "SELECT number, media_type, classification, holder, serial, notes FROM media WHERE number = ?1",
            [&number],
            row_to_medium,
        )?;
        if let (Some(registered), Some(certified)) = (&medium.serial, &cert.medium.serial)
            && registered != certified
        {
            return Err(bad(format!(
                "medium {number} is registered with serial {registered}, but the certificate is for serial {certified}; check the asset number"
            )));
        }
        check_rules(&medium, cert.records.destination, cert.records.classification_after)?;
        tx.execute(
            "INSERT INTO certificates (certificate_id, number, sha256, json, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![cert.certificate_id, number, checked.sha256, bytes, signature],
        )?;
        append(&tx, &number, "certificate", certificate_summary(&cert, &checked.sha256))?;
        for statement in statements {
            append(&tx, &number, "countersignature", serde_json::to_value(statement).expect("serializes"))?;
        }
        tx.commit()?;
        Ok(number)
    }

    /// Records an approval (审批), a witness or a validation made on paper or in person.
    pub fn approve(
        &mut self,
        number: &str,
        role: Role,
        name: &str,
        title: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.append_checked(
            number,
            "approval",
            json!({"role": role, "name": name, "title": title, "note": note}),
            |_| Ok(()),
        )
    }

    /// Decides where the medium goes; classified media can only be destroyed or repaired.
    pub fn dispose(
        &mut self,
        number: &str,
        destination: Destination,
        note: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.append_checked(number, "disposal", json!({"destination": destination, "note": note}), |medium| {
            check_rules(medium, Some(destination), None)
        })
    }

    /// Records physical destruction (消磁, 粉碎, ...), with destroyer and witness (监销).
    #[allow(clippy::too_many_arguments)]
    pub fn destroy(
        &mut self,
        number: &str,
        method: DestructionMethod,
        date: &str,
        place: &str,
        destroyer: &str,
        witness: &str,
        note: Option<&str>,
    ) -> Result<(), LedgerError> {
        let data = json!({"method": method, "date": date, "place": place, "destroyer": destroyer, "witness": witness, "note": note});
        let number_owned = number.to_string();
        let destroyed = self.history(number)?.iter().any(|e| e.kind == "destruction");
        if destroyed {
            return Err(LedgerError::AlreadyDestroyed(number_owned));
        }
        self.append_checked(number, "destruction", data, |_| Ok(()))
    }

    fn append_checked(
        &mut self,
        number: &str,
        kind: &str,
        data: Value,
        rule: impl FnOnce(&Medium) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let medium = tx
            .query_row(
                "SELECT number, media_type, classification, holder, serial, notes FROM media WHERE number = ?1",
                [number],
                row_to_medium,
            )
            .optional()?
            .ok_or_else(|| LedgerError::UnknownNumber(number.to_string()))?;
        rule(&medium)?;
        append(&tx, number, kind, data)?;
        tx.commit()?;
        Ok(())
    }

    pub fn history(&self, number: &str) -> Result<Vec<Entry>, LedgerError> {
        self.medium(number)?;
        self.entries(Some(number))
    }

    fn entries(&self, number: Option<&str>) -> Result<Vec<Entry>, LedgerError> {
        let mut statement =
            self.db.prepare("SELECT seq, number, kind, at, data, hash FROM entries WHERE ?1 IS NULL OR number = ?1 ORDER BY seq")?;
        let entries = statement
            .query_map([number], |row| {
                let data: String = row.get(4)?;
                Ok(Entry {
                    seq: row.get(0)?,
                    number: row.get(1)?,
                    kind: row.get(2)?,
                    at: row.get(3)?,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    hash: row.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }

    /// The rows a disposal form needs: one per medium, with its latest certificate,
    /// approvals, disposal and destruction.
    pub fn export_rows(&self) -> Result<Vec<Value>, LedgerError> {
        let mut rows = Vec::new();
        for medium in self.media()? {
            let history = self.entries(Some(&medium.number))?;
            let latest = |kind: &str| history.iter().rev().find(|e| e.kind == kind).map(|e| e.data.clone());
            let certificate = latest("certificate").unwrap_or(Value::Null);
            let destruction = latest("destruction").unwrap_or(Value::Null);
            let approvals: Vec<String> = history
                .iter()
                .filter(|e| e.kind == "approval" || e.kind == "countersignature")
                .map(|e| {
                    format!(
                        "{} {}",
                        e.data["role"].as_str().unwrap_or(""),
                        e.data["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            rows.push(json!({
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
            }));
        }
        Ok(rows)
    }

    /// Re-checks the hash chain, that no entry was removed or reordered, that the
    /// media table matches the registrations, and every stored certificate.
    pub fn verify(&self, allowed: Option<&AllowedSigners>) -> Result<Verification, LedgerError> {
        let mut problems = Vec::new();
        let mut statement = self
            .db
            .prepare("SELECT seq, number, kind, at, data, prev_hash, hash FROM entries ORDER BY seq")?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut previous = GENESIS.to_string();
        let mut registered = std::collections::BTreeMap::new();
        for (position, (seq, number, kind, at, data, prev_hash, hash)) in rows.iter().enumerate() {
            if *seq != position as i64 + 1 {
                problems.push(format!(
                    "entry {seq} is at position {}: an entry was removed or inserted",
                    position + 1
                ));
            }
            if *prev_hash != previous {
                problems.push(format!("entry {seq} does not follow the entry before it: the chain is broken (removed or reordered entries)"));
            }
            if *hash != entry_hash(prev_hash, *seq, number, kind, at, data) {
                problems.push(format!(
                    "entry {seq} ({kind} of {number}) was altered: its hash does not match its content"
                ));
            }
            if kind == "register" {
                registered.insert(number.clone(), data.clone());
            }
            previous = hash.clone();
        }
        let media = self.media()?;
        for medium in &media {
            let recorded =
                registered.get(&medium.number).and_then(|d| serde_json::from_str::<Medium>(d).ok());
            if recorded.as_ref() != Some(medium) {
                problems.push(format!(
                    "medium {} differs from its registration entry: the media table was altered",
                    medium.number
                ));
            }
        }
        for number in registered.keys().filter(|n| !media.iter().any(|m| &m.number == *n)) {
            problems.push(format!(
                "medium {number} is registered in the history but missing from the media table"
            ));
        }
        // Every certificate the history names is stored, under the same medium and bytes.
        let chained: std::collections::BTreeMap<String, (String, String)> = rows
            .iter()
            .filter(|row| row.2 == "certificate")
            .filter_map(|(_, number, _, _, data, _, _)| {
                let data: Value = serde_json::from_str(data).ok()?;
                let id = data["certificate_id"].as_str()?.to_string();
                Some((id, (number.clone(), data["sha256"].as_str()?.to_string())))
            })
            .collect();
        let mut statement = self.db.prepare("SELECT certificate_id, number, sha256 FROM certificates")?;
        let stored: std::collections::BTreeMap<String, (String, String)> = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, (row.get::<_, String>(1)?, row.get::<_, String>(2)?)))
            })?
            .collect::<Result<_, _>>()?;
        for (id, entry) in &chained {
            match stored.get(id) {
                None => problems.push(format!("certificate {id} is in the history but missing from the certificate store")),
                Some(row) if row != entry => problems.push(format!(
                    "certificate {id} is stored under another medium or with other bytes than its history entry says"
                )),
                Some(_) => {}
            }
        }
        for id in stored.keys().filter(|id| !chained.contains_key(*id)) {
            problems.push(format!("certificate {id} is stored but has no history entry"));
        }
        let mut certificates = 0;
        let mut statement =
            self.db.prepare("SELECT certificate_id, sha256, json, signature FROM certificates")?;
        let stored = statement
            .query_map([], |row| {
                // Read as bytes whatever the column holds now: a tampered row may be TEXT.
                let json = row.get_ref(2)?.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, json, row.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, sha256, bytes, signature) in stored {
            certificates += 1;
            if crate::stream::sha256_hex(&bytes) != sha256 {
                problems.push(format!("certificate {id}: its stored bytes changed"));
            }
            let issued_at = Certificate::parse(&bytes)
                .ok()
                .and_then(|c| humantime::parse_rfc3339(&c.issued_at).ok())
                .unwrap_or_else(std::time::SystemTime::now);
            let signers = allowed.map(|allowed| crate::cert::sign::Signers { allowed, at: issued_at });
            if let Err(why) = crate::cert::sign::verify(&bytes, &signature, signers) {
                problems.push(format!("certificate {id}: {why}"));
            }
            match Certificate::parse(&bytes) {
                Ok(cert) => problems.extend(
                    crate::cert::check::inconsistencies(&cert)
                        .into_iter()
                        .map(|p| format!("certificate {id}: {p}")),
                ),
                Err(error) => problems.push(format!("certificate {id}: {error}")),
            }
        }
        Ok(Verification { entries: rows.len(), certificates, head: previous, problems })
    }
}

/// `ledger.sqlite` in the state directory (`/var/lib/certwipe` for root).
pub fn default_path() -> PathBuf {
    crate::engine::checkpoint::default_state_dir().join("ledger.sqlite")
}

fn row_to_medium(row: &rusqlite::Row<'_>) -> rusqlite::Result<Medium> {
    let classification: String = row.get(2)?;
    Ok(Medium {
        number: row.get(0)?,
        media_type: row.get(1)?,
        classification: classification.parse().unwrap_or(Classification::TopSecret),
        holder: row.get(3)?,
        serial: row.get(4)?,
        notes: row.get(5)?,
    })
}

/// The no-downgrade rule, against the ledger's own classification of the medium.
fn check_rules(
    medium: &Medium,
    destination: Option<Destination>,
    after: Option<Classification>,
) -> Result<(), LedgerError> {
    let level = medium.classification;
    if let Some(destination) = destination
        && !destination.allowed_for(level)
    {
        return Err(LedgerError::ReuseForbidden {
            number: medium.number.clone(),
            level: level.english(),
            chinese: level.chinese(),
        });
    }
    if let Some(after) = after
        && after < level
    {
        return Err(LedgerError::Downgrade {
            number: medium.number.clone(),
            level: level.english(),
            to: after.english(),
        });
    }
    Ok(())
}

fn find_medium(tx: &rusqlite::Transaction<'_>, cert: &Certificate) -> Option<String> {
    let by = |column: &str, value: &Option<String>| -> Option<String> {
        let value = value.as_ref()?;
        tx.query_row(&format!("SELECT number FROM media WHERE {column} = ?1"), [value], |row| row.get(0)).ok()
    };
    by("number", &cert.records.asset_number).or_else(|| by("serial", &cert.medium.serial))
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
    })
}

/// Appends an entry, chained to the newest one. Runs inside an IMMEDIATE
/// transaction, so concurrent writers queue instead of forking the chain.
fn append(tx: &rusqlite::Transaction<'_>, number: &str, kind: &str, data: Value) -> Result<(), LedgerError> {
    let (last_seq, prev_hash): (i64, String) = tx
        .query_row("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let seq = last_seq + 1;
    let at = crate::engine::report::now();
    let data = data.to_string();
    let hash = entry_hash(&prev_hash, seq, number, kind, &at, &data);
    tx.execute(
        "INSERT INTO entries (seq, number, kind, at, data, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq, number, kind, at, data, prev_hash, hash],
    )?;
    Ok(())
}

/// SHA-256 over the previous hash and the entry's fields, each length-prefixed so
/// no two different entries hash the same.
fn entry_hash(prev_hash: &str, seq: i64, number: &str, kind: &str, at: &str, data: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for field in [prev_hash, &seq.to_string(), number, kind, at, data] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    crate::stream::hex_encode(&hasher.finalize())
}
