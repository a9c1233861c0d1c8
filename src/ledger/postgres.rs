//! The organisation's backend: one PostgreSQL database for every station and
//! the records office. The same tables as the SQLite ledger, the same
//! versioned migrations (recorded in `schema_migrations`), and the same rule
//! for writers: each change is one transaction that first takes a
//! transaction-level advisory lock, so stations writing at once queue, and the
//! hash chain never forks. Readers take a repeatable-read snapshot and need
//! only SELECT rights.

use postgres::{Client, IsolationLevel, NoTls, Row, Transaction};

use super::store::{
    CERTIFICATE_COLUMNS, COUNTERSIGNATURE_COLUMNS, CertificateRow, CountersignatureRow, ENTRY_COLUMNS,
    EntryRow, MEDIUM_COLUMNS, Store, Tx, stored_classification,
};
use super::{Access, LedgerError, Medium};
use crate::cert::records::Classification;

/// The advisory lock every writer holds: "certwipe" in ASCII.
const WRITE_LOCK: i64 = 0x6365_7274_7769_7065;

/// The schema, version by version, as in the SQLite ledger (whose version 1 is
/// the first release's; version 2 adds signed entries, the configuration and
/// countersignatures).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE media (
             number TEXT PRIMARY KEY,
             media_type TEXT NOT NULL,
             classification TEXT NOT NULL,
             holder TEXT, serial TEXT, notes TEXT);
         CREATE TABLE entries (
             seq BIGINT PRIMARY KEY,
             number TEXT NOT NULL REFERENCES media(number),
             kind TEXT NOT NULL,
             at TEXT NOT NULL,
             data TEXT NOT NULL,
             prev_hash TEXT NOT NULL,
             hash TEXT NOT NULL);
         CREATE TABLE certificates (
             certificate_id TEXT PRIMARY KEY,
             number TEXT NOT NULL REFERENCES media(number),
             sha256 TEXT NOT NULL,
             json BYTEA NOT NULL,
             signature TEXT NOT NULL);",
    ),
    (
        2,
        "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         ALTER TABLE entries DROP CONSTRAINT entries_number_fkey;
         ALTER TABLE entries ADD COLUMN signature TEXT;
         CREATE INDEX entries_number ON entries(number);
         CREATE INDEX media_serial ON media(serial);
         CREATE TABLE countersignatures (
             id BIGSERIAL PRIMARY KEY,
             certificate_id TEXT NOT NULL REFERENCES certificates(certificate_id),
             role TEXT NOT NULL,
             statement BYTEA NOT NULL,
             statement_signature TEXT NOT NULL,
             certificate_signature TEXT NOT NULL);",
    ),
];

pub struct PostgresStore {
    client: Client,
    shown: String,
}

impl PostgresStore {
    /// Connects; creates the tables only for [`Access::Create`], and brings
    /// the schema up to date unless [`Access::Read`].
    pub fn open(url: &str, shown: String, access: Access) -> Result<PostgresStore, LedgerError> {
        let fail = |why: String| LedgerError::Open { location: shown.clone(), why };
        let mut client = Client::connect(url, NoTls).map_err(|e| fail(describe(&e)))?;
        let existing = current_version(&mut client).map_err(|e| fail(describe(&e)))?;
        if existing == 0 && access != Access::Create {
            return Err(LedgerError::Missing(shown));
        }
        let version = if access == Access::Read { Ok(existing) } else { migrate(&mut client) };
        let version = version.map_err(|e| fail(describe(&e)))?;
        let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if version != latest {
            return Err(fail(format!(
                "its schema is version {version}, this certwipe needs {latest}; open it once with a station's (writing) role to migrate it"
            )));
        }
        Ok(PostgresStore { client, shown })
    }
}

/// The error with its cause: the server's message, or why it could not be reached.
fn describe(error: &postgres::Error) -> String {
    match (error.as_db_error(), std::error::Error::source(error)) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(cause)) => format!("{error}: {cause}"),
        (None, None) => error.to_string(),
    }
}

fn current_version(client: &mut Client) -> Result<i64, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.get(0);
    if !exists {
        return Ok(0);
    }
    client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).map(|r| r.get(0))
}

fn migrate(client: &mut Client) -> Result<i64, postgres::Error> {
    let mut tx = client.transaction()?;
    // Two stations opening a new ledger at once must not both create it.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let current: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO schema_migrations VALUES ($1, $2)", &[version, &crate::report::now()])?;
    }
    tx.commit()?;
    Ok(MIGRATIONS.last().map_or(current, |(v, _)| (*v).max(current)))
}

impl Store for PostgresStore {
    fn write(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.client.transaction()?;
        // Held until commit or rollback: writers from every station queue here.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        let mut wrapped = PostgresTx { tx };
        work(&mut wrapped)?;
        wrapped.tx.commit()?;
        Ok(())
    }

    fn read(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let mut wrapped = PostgresTx { tx };
        work(&mut wrapped)
    }

    fn location(&self) -> String {
        self.shown.clone()
    }
}

struct PostgresTx<'a> {
    tx: Transaction<'a>,
}

fn medium(row: &Row) -> Medium {
    let classification: String = row.get(2);
    Medium {
        number: row.get(0),
        media_type: row.get(1),
        classification: stored_classification(&classification),
        holder: row.get(3),
        serial: row.get(4),
        notes: row.get(5),
    }
}

fn entry(row: &Row) -> EntryRow {
    EntryRow {
        seq: row.get(0),
        number: row.get(1),
        kind: row.get(2),
        at: row.get(3),
        data: row.get(4),
        prev_hash: row.get(5),
        hash: row.get(6),
        signature: row.get(7),
    }
}

fn certificate(row: &Row) -> CertificateRow {
    CertificateRow {
        certificate_id: row.get(0),
        number: row.get(1),
        sha256: row.get(2),
        json: row.get(3),
        signature: row.get(4),
    }
}

impl Tx for PostgresTx<'_> {
    fn config(&mut self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.tx.query_opt("SELECT value FROM config WHERE key = $1", &[&key])?.map(|r| r.get(0)))
    }

    fn set_config(&mut self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.tx.execute(
            "INSERT INTO config (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn medium(&mut self, number: &str) -> Result<Option<Medium>, LedgerError> {
        let sql = format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE number = $1");
        Ok(self.tx.query_opt(&sql, &[&number])?.as_ref().map(medium))
    }

    fn media_by_serial(&mut self, serial: &str) -> Result<Vec<Medium>, LedgerError> {
        let sql = format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE serial = $1 ORDER BY number");
        Ok(self.tx.query(&sql, &[&serial])?.iter().map(medium).collect())
    }

    fn media(&mut self) -> Result<Vec<Medium>, LedgerError> {
        let sql = format!("SELECT {MEDIUM_COLUMNS} FROM media ORDER BY number");
        Ok(self.tx.query(&sql, &[])?.iter().map(medium).collect())
    }

    fn insert_medium(&mut self, m: &Medium) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO media ({MEDIUM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[&m.number, &m.media_type, &m.classification.english(), &m.holder, &m.serial, &m.notes],
        )?;
        Ok(())
    }

    fn set_classification(&mut self, number: &str, level: Classification) -> Result<(), LedgerError> {
        self.tx.execute(
            "UPDATE media SET classification = $2 WHERE number = $1",
            &[&number, &level.english()],
        )?;
        Ok(())
    }

    fn last_entry(&mut self) -> Result<Option<(i64, String)>, LedgerError> {
        let row = self.tx.query_opt("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", &[])?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    fn insert_entry(&mut self, e: &EntryRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[&e.seq, &e.number, &e.kind, &e.at, &e.data, &e.prev_hash, &e.hash, &e.signature],
        )?;
        Ok(())
    }

    fn entry_at(&mut self, seq: i64) -> Result<Option<EntryRow>, LedgerError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE seq = $1");
        Ok(self.tx.query_opt(&sql, &[&seq])?.as_ref().map(entry))
    }

    fn entries(&mut self, number: Option<&str>) -> Result<Vec<EntryRow>, LedgerError> {
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE $1::text IS NULL OR number = $1 ORDER BY seq");
        Ok(self.tx.query(&sql, &[&number])?.iter().map(entry).collect())
    }

    fn certificate(&mut self, id: &str) -> Result<Option<CertificateRow>, LedgerError> {
        let sql = format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE certificate_id = $1");
        Ok(self.tx.query_opt(&sql, &[&id])?.as_ref().map(certificate))
    }

    fn certificates(&mut self) -> Result<Vec<CertificateRow>, LedgerError> {
        let sql = format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates ORDER BY certificate_id");
        Ok(self.tx.query(&sql, &[])?.iter().map(certificate).collect())
    }

    fn insert_certificate(&mut self, c: &CertificateRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!("INSERT INTO certificates ({CERTIFICATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&c.certificate_id, &c.number, &c.sha256, &c.json, &c.signature],
        )?;
        Ok(())
    }

    fn countersignatures(
        &mut self,
        certificate_id: Option<&str>,
    ) -> Result<Vec<CountersignatureRow>, LedgerError> {
        let rows = self.tx.query(
            &format!(
                "SELECT {COUNTERSIGNATURE_COLUMNS} FROM countersignatures \
                 WHERE $1::text IS NULL OR certificate_id = $1 ORDER BY id"
            ),
            &[&certificate_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| CountersignatureRow {
                certificate_id: r.get(0),
                role: r.get(1),
                statement: r.get(2),
                statement_signature: r.get(3),
                certificate_signature: r.get(4),
            })
            .collect())
    }

    fn insert_countersignature(&mut self, c: &CountersignatureRow) -> Result<(), LedgerError> {
        self.tx.execute(
            &format!(
                "INSERT INTO countersignatures ({COUNTERSIGNATURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            ),
            &[&c.certificate_id, &c.role, &c.statement, &c.statement_signature, &c.certificate_signature],
        )?;
        Ok(())
    }
}
