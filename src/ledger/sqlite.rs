//! The embedded backend: one SQLite file per station. Writers take SQLite's
//! write lock at the start of each transaction (`BEGIN IMMEDIATE`), so a second
//! process waits instead of forking the chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::store::{
    CERTIFICATE_COLUMNS, COUNTERSIGNATURE_COLUMNS, CertificateRow, CountersignatureRow, ENTRY_COLUMNS,
    EntryRow, MEDIUM_COLUMNS, Store, Tx, stored_classification,
};
use super::{Access, LedgerError, Medium};
use crate::cert::records::Classification;

/// Schema versions, applied in order on first use and recorded in
/// `schema_migrations`. Version 1 is the first release's schema; version 2 adds
/// signed entries (entries no longer reference `media`, because entries about the
/// ledger itself belong to no medium), the configuration and countersignatures.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS media (
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
    ),
    (
        2,
        "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE entries_v2 (
             seq INTEGER PRIMARY KEY,
             number TEXT NOT NULL,
             kind TEXT NOT NULL,
             at TEXT NOT NULL,
             data TEXT NOT NULL,
             prev_hash TEXT NOT NULL,
             hash TEXT NOT NULL,
             signature TEXT);
         INSERT INTO entries_v2 SELECT seq, number, kind, at, data, prev_hash, hash, NULL FROM entries;
         DROP TABLE entries;
         ALTER TABLE entries_v2 RENAME TO entries;
         CREATE INDEX entries_number ON entries(number);
         CREATE TABLE countersignatures (
             id INTEGER PRIMARY KEY,
             certificate_id TEXT NOT NULL REFERENCES certificates(certificate_id),
             role TEXT NOT NULL,
             statement BLOB NOT NULL,
             statement_signature TEXT NOT NULL,
             certificate_signature TEXT NOT NULL);",
    ),
];

pub struct SqliteStore {
    db: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the ledger file: creating it only for [`Access::Create`],
    /// migrating it unless [`Access::Read`] (then it must be current).
    pub fn open(path: &Path, access: Access) -> Result<SqliteStore, LedgerError> {
        let fail = |why: String| LedgerError::Open { location: path.display().to_string(), why };
        if access != Access::Create && std::fs::symlink_metadata(path).is_err() {
            return Err(LedgerError::Missing(path.display().to_string()));
        }
        if access == Access::Read {
            return Self::open_read_only(path).map_err(|e| fail(e.to_string()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        // Never follow a link planted where the ledger should be.
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        if access == Access::Create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut db = Connection::open_with_flags(path, flags).map_err(|e| fail(e.to_string()))?;
        // Several certwipe processes may write at once: wait for the other's transaction.
        db.busy_timeout(Duration::from_secs(30)).map_err(|e| fail(e.to_string()))?;
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| fail(e.to_string()))?;
        migrate(&mut db).map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore { db, path: canonical(path) })
    }

    fn open_read_only(path: &Path) -> Result<SqliteStore, String> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let db = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
        db.busy_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
        let version: i64 = db
            .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
            .map_err(|e| format!("not a certwipe ledger ({e})"))?;
        let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if version != latest {
            return Err(format!(
                "its schema is version {version}, this certwipe needs {latest}; open it once to write"
            ));
        }
        Ok(SqliteStore { db, path: canonical(path) })
    }
}

fn migrate(db: &mut Connection) -> rusqlite::Result<()> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);")?;
    let mut current: i64 =
        tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let legacy: bool = tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'", [], |_| Ok(true))
        .optional()?
        .is_some();
    if current == 0 && legacy {
        // A ledger made before migrations were recorded has the version 1 schema.
        tx.execute("INSERT INTO schema_migrations VALUES (1, ?1)", [crate::report::now()])?;
        current = 1;
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_migrations VALUES (?1, ?2)", params![version, crate::report::now()])?;
    }
    tx.commit()
}

impl Store for SqliteStore {
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut wrapped = SqliteTx { tx };
        work(&mut wrapped)?;
        wrapped.tx.commit()?;
        Ok(())
    }

    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let mut wrapped = SqliteTx { tx };
        work(&mut wrapped)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

struct SqliteTx<'a> {
    tx: rusqlite::Transaction<'a>,
}

fn row_to_medium(row: &rusqlite::Row<'_>) -> rusqlite::Result<Medium> {
    let classification: String = row.get(2)?;
    Ok(Medium {
        number: row.get(0)?,
        media_type: row.get(1)?,
        classification: stored_classification(&classification),
        holder: row.get(3)?,
        serial: row.get(4)?,
        notes: row.get(5)?,
    })
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        seq: row.get(0)?,
        number: row.get(1)?,
        kind: row.get(2)?,
        at: row.get(3)?,
        data: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
        signature: row.get(7)?,
    })
}

/// Bytes whatever the column holds now: a tampered row may hold TEXT.
fn bytes(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(row.get_ref(index)?.as_bytes().map(<[u8]>::to_vec).unwrap_or_default())
}

fn row_to_certificate(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertificateRow> {
    Ok(CertificateRow {
        certificate_id: row.get(0)?,
        number: row.get(1)?,
        sha256: row.get(2)?,
        json: bytes(row, 3)?,
        signature: row.get(4)?,
    })
}

fn row_to_countersignature(row: &rusqlite::Row<'_>) -> rusqlite::Result<CountersignatureRow> {
    Ok(CountersignatureRow {
        certificate_id: row.get(0)?,
        role: row.get(1)?,
        statement: bytes(row, 2)?,
        statement_signature: row.get(3)?,
        certificate_signature: row.get(4)?,
    })
}

impl Tx for SqliteTx<'_> {
    fn config(&mut self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.tx.query_row("SELECT value FROM config WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn set_config(&mut self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.tx.execute(
            "INSERT INTO config (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn medium(&mut self, number: &str) -> Result<Option<Medium>, LedgerError> {
        let sql = format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE number = ?1");
        Ok(self.tx.query_row(&sql, [number], row_to_medium).optional()?)
    }

    fn media_by_serial(&mut self, serial: &str) -> Result<Vec<Medium>, LedgerError> {
        let mut query = self
            .tx
            .prepare(&format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE serial = ?1 ORDER BY number"))?;
        let media = query.query_map([serial], row_to_medium)?.collect::<Result<Vec<_>, _>>()?;
        Ok(media)
    }

    fn media(&mut self) -> Result<Vec<Medium>, LedgerError> {
        let mut query = self.tx.prepare(&format!("SELECT {MEDIUM_COLUMNS} FROM media ORDER BY number"))?;
        let media = query.query_map([], row_to_medium)?.collect::<Result<Vec<_>, _>>()?;
        Ok(media)
    }

    fn insert_medium(&mut self, m: &Medium) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO media ({MEDIUM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![m.number, m.media_type, m.classification.english(), m.holder, m.serial, m.notes],
        )?;
        Ok(())
    }

    fn set_classification(&mut self, number: &str, level: Classification) -> Result<(), LedgerError> {
        self.tx
            .execute("UPDATE media SET classification = ?2 WHERE number = ?1", [number, level.english()])?;
        Ok(())
    }

    fn last_entry(&mut self) -> Result<Option<(i64, String)>, LedgerError> {
        Ok(self
            .tx
            .query_row("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    fn insert_entry(&mut self, e: &EntryRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO entries ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![e.seq, e.number, e.kind, e.at, e.data, e.prev_hash, e.hash, e.signature],
        )?;
        Ok(())
    }

    fn entry_at(&mut self, seq: i64) -> Result<Option<EntryRow>, LedgerError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE seq = ?1");
        Ok(self.tx.query_row(&sql, [seq], row_to_entry).optional()?)
    }

    fn entries(&mut self, number: Option<&str>) -> Result<Vec<EntryRow>, LedgerError> {
        let mut query = self.tx.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE ?1 IS NULL OR number = ?1 ORDER BY seq"
        ))?;
        let entries = query.query_map([number], row_to_entry)?.collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }

    fn certificate(&mut self, id: &str) -> Result<Option<CertificateRow>, LedgerError> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE certificate_id = ?1"),
                [id],
                row_to_certificate,
            )
            .optional()?)
    }

    fn certificates(&mut self) -> Result<Vec<CertificateRow>, LedgerError> {
        let mut query = self
            .tx
            .prepare(&format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates ORDER BY certificate_id"))?;
        let rows = query.query_map([], row_to_certificate)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn insert_certificate(&mut self, c: &CertificateRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO certificates ({CERTIFICATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![c.certificate_id, c.number, c.sha256, c.json, c.signature],
        )?;
        Ok(())
    }

    fn countersignatures(
        &mut self,
        certificate_id: Option<&str>,
    ) -> Result<Vec<CountersignatureRow>, LedgerError> {
        let mut query = self.tx.prepare(&format!(
            "SELECT {COUNTERSIGNATURE_COLUMNS} FROM countersignatures \
             WHERE ?1 IS NULL OR certificate_id = ?1 ORDER BY id"
        ))?;
        let rows =
            query.query_map([certificate_id], row_to_countersignature)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn insert_countersignature(&mut self, c: &CountersignatureRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!(
                "INSERT INTO countersignatures ({COUNTERSIGNATURE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            params![c.certificate_id, c.role, c.statement, c.statement_signature, c.certificate_signature],
        )?;
        Ok(())
    }
}

/// The ledger's file by its one name, so that `./l.sqlite` and its absolute
/// path are one ledger to a station's notes and messages.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
