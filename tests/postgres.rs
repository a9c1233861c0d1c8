//! The ledger on a real PostgreSQL server the test starts itself: a medium's
//! whole life, eight stations importing at once, tampering, and a server that
//! goes away in the middle of an import.

mod common;

use std::path::PathBuf;

use common::postgres::{READ_ONLY_ROLE, Server};
use common::*;

#[test]
fn a_mediums_whole_life_on_postgresql() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("life")));
    whole_life(&office);
    // The schema was migrated once and recorded, as in a SQLite ledger.
    let mut client = ::postgres::Client::connect(&office.ledger, ::postgres::NoTls).unwrap();
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2]);
}

/// Certificates of `count` registered media, not yet in the ledger.
fn certificates(office: &Office, prefix: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let number = format!("{prefix}-{i}");
            office.ok(&["register", &number, "--type", "hdd", "--classification", "unclassified"]);
            office.certificate(&format!("{prefix}{i}"), &["--asset", &number], false)
        })
        .collect()
}

#[test]
fn eight_stations_importing_at_once_lose_no_entry_and_keep_one_chain() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("busy")));
    let certs = certificates(&office, "S", 24);
    // Eight processes, three certificates each, all at once.
    let children: Vec<_> = certs.chunks(3).map(|batch| office.spawn_import(batch)).collect();
    assert_eq!(children.len(), 8);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // init + 24 registrations + 24 certificates, in one unbroken chain.
    let verified = office.ok(&["verify"]);
    assert!(verified.contains("49 entries, 24 certificates") && verified.contains("intact"), "{verified}");
    let mut client = ::postgres::Client::connect(&office.ledger, ::postgres::NoTls).unwrap();
    let seqs: Vec<i64> =
        client.query("SELECT seq FROM entries ORDER BY seq", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(seqs, (1..=49).collect::<Vec<i64>>(), "no gap, no duplicate");
}

/// A copy of the ledger database with `sql` applied, verified: its output.
fn tampered(server: &Server, allowed: &std::path::Path, sql: &str) -> String {
    // One statement each: a database is not made inside a transaction block.
    server.sql("postgres", "DROP DATABASE IF EXISTS tampered");
    server.sql("postgres", "CREATE DATABASE tampered TEMPLATE tampering");
    server.sql("tampered", sql);
    let (code, said) = verify_ledger(&server.url("certwipe", "tampered"), allowed, &[]);
    assert_eq!(code, 1, "{sql}: tampering went unnoticed");
    said
}

#[test]
fn tampering_with_the_database_is_detected_on_postgresql_too() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("tampering")));
    tampering_fixture(&office);
    assert!(office.ok(&["verify"]).contains("intact"));

    let cases = [
        (
            "UPDATE entries SET data = replace(data, 'Zhang San', 'Somebody Else') WHERE kind = 'approval'",
            "was altered",
        ),
        ("DELETE FROM entries WHERE seq = 2", "removed"),
        (
            "UPDATE entries SET seq = 100 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 100",
            "chain is broken",
        ),
        ("UPDATE media SET classification = 'unclassified' WHERE number = 'A-3'", "media table was altered"),
        (
            "UPDATE certificates SET json = convert_to(replace(convert_from(json, 'UTF8'), 'erased', 'ERASED'), 'UTF8')",
            "stored bytes changed",
        ),
        ("DELETE FROM certificates", "missing from the certificate store"),
        ("UPDATE certificates SET number = 'A-2'", "stored under another medium"),
        (
            "SET session_replication_role = replica; DELETE FROM media WHERE number = 'A-3'",
            "missing from the media table",
        ),
    ];
    for (sql, expected) in cases {
        let out = tampered(&server, &office.allowed, sql);
        assert!(out.contains(expected), "{sql}: {out}");
    }
}

#[test]
fn a_rewritten_or_cut_off_chain_is_caught_on_postgresql_too() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("signed")));
    office.ok(&["register", "MJ-2", "--type", "hdd", "--classification", "secret"]);
    office.ok(&["approve", "MJ-2", "--role", "witness", "--name", "Zhang San"]);
    let kept = office.dir.path().join("head.json");
    office.ok(&["head", "-o", kept.to_str().unwrap()]);
    let verify = |database: &str, extra: &[&str]| {
        verify_ledger(&server.url("certwipe", database), &office.allowed, extra)
    };

    // Downgrade the medium, fix the media table, recompute every hash: all
    // an attacker without a station key can do.
    server.sql("postgres", "CREATE DATABASE rewritten TEMPLATE signed");
    let mut db =
        ::postgres::Client::connect(&server.url("certwipe", "rewritten"), ::postgres::NoTls).unwrap();
    db.batch_execute("UPDATE media SET classification = 'unclassified'").unwrap();
    let mut prev = certwipe::ledger::chain::GENESIS.to_string();
    for row in db.query("SELECT seq, number, kind, at, data FROM entries ORDER BY seq", &[]).unwrap() {
        let (seq, number, kind, at): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let data = row.get::<_, String>(4).replace("\"secret\"", "\"unclassified\"");
        let hash = certwipe::ledger::chain::entry_hash(&prev, seq, &number, &kind, &at, &data);
        db.execute(
            "UPDATE entries SET data = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            &[&data, &prev, &hash, &seq],
        )
        .unwrap();
        prev = hash;
    }
    drop(db);
    let (code, said) = verify("rewritten", &[]);
    assert_eq!(code, 1, "a rewritten chain passed: {said}");
    assert!(said.contains("its signature does not verify"), "{said}");

    // The newest entry cut off: the chain that is left is whole, the kept head is not in it.
    server.sql("postgres", "CREATE DATABASE cut TEMPLATE signed");
    server.sql("cut", "DELETE FROM entries WHERE seq = (SELECT max(seq) FROM entries)");
    let head = ["--head", kept.to_str().unwrap()];
    assert_eq!(verify("signed", &head).0, 0);
    let (code, said) = verify("cut", &head);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("newer entries were cut off"), "{said}");
}

#[test]
fn a_server_that_goes_away_mid_import_loses_nothing() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("flaky")));
    let certs = certificates(&office, "F", 60);
    let mut client = ::postgres::Client::connect(&office.ledger, ::postgres::NoTls).unwrap();
    let child = office.spawn_import(&certs);
    // Once the import has filed its first certificate, hold the ledger's write lock
    // ("certwipe" in ASCII, as every writer takes it) so that it files no more,
    // however fast it runs, and stop the server.
    wait_until("the first certificate filed", || {
        client.query_one("SELECT count(*) FROM certificates", &[]).unwrap().get::<_, i64>(0) > 0
    });
    client.execute("SELECT pg_advisory_lock($1)", &[&i64::from_be_bytes(*b"certwipe")]).unwrap();
    server.stop_now();
    drop(client);
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a database failure after work was done is not exit 2: {said}");
    assert!(said.contains("database server"), "{said}");
    // Every signed certificate is still there to be filed later...
    assert!(certs.iter().all(|c| c.exists() && certwipe::cert::files::signature_path(c).exists()));
    server.restart();
    let (code, _, stderr) = office.ledger(&["verify"]);
    assert_eq!(code, 0, "{stderr}");
    let filed: i64 = ::postgres::Client::connect(&office.ledger, ::postgres::NoTls)
        .unwrap()
        .query_one("SELECT count(*) FROM certificates", &[])
        .unwrap()
        .get(0);
    assert!(filed > 0 && filed < 60, "the server went away mid-import ({filed} of 60 filed)");
    // ... and `ledger import` files the rest (the ones already in are refused as such).
    let (_, _, stderr) = office
        .ledger(&[&["import"][..], &certs.iter().map(|c| c.to_str().unwrap()).collect::<Vec<_>>()].concat());
    assert_eq!(stderr.matches("is already in the ledger").count() as i64, filed, "{stderr}");
    let verified = office.ok(&["verify"]);
    assert!(verified.contains("121 entries, 60 certificates") && verified.contains("intact"), "{verified}");
}

#[test]
fn a_wipe_whose_ledger_server_went_away_keeps_its_certificate_for_later() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("station")));
    office.ok(&["register", "W-1", "--type", "hdd", "--classification", "secret"]);
    let image = office.dir.path().join("w1.img");
    make_file(&image, 256 << 20);
    let certs = office.dir.path().join("certs");
    let mut child = certwipe_command()
        .args(["wipe", "--yes", "--json", "--verify", "all", "--method", "dod-short", "--cert-dir"])
        .arg(&certs)
        .arg("--sign-key")
        .arg(&office.key)
        .args(["--asset", "W-1", "--classification", "secret", "--ledger", &office.ledger])
        .arg("--allowed-signers")
        .arg(&office.allowed)
        .arg(&image)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The ledger was reachable when the wipe was planned; it goes away while
    // the medium is being written.
    let mut events = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    assert!(events.any(|line| line.unwrap().contains("\"progress\"")), "no progress event");
    while_stopped(child.id(), || server.stop_now());
    let rest: Vec<serde_json::Value> = events.map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a failure after the wipe is not exit 2: {rest:#?}");
    let event = |kind: &str| rest.iter().find(|e| e["event"] == kind).unwrap_or_else(|| panic!("{rest:#?}"));
    assert_eq!(event("done")["status"], "erased");
    let records = event("records");
    assert_eq!(records["erased_and_recorded"], false, "{records}");
    assert!(records["problems"][0].as_str().unwrap().contains("NOT filed in the ledger"), "{records}");
    assert_eq!(records["ledger_number"], serde_json::Value::Null);
    // The signed certificate was kept, and files once the server is back.
    let cert = certificate_of(&certs, "w1");
    assert_eq!(records["certificate"], cert.to_str().unwrap());
    assert!(certwipe::cert::files::signature_path(&cert).exists());
    server.restart();
    office.ok(&["import", cert.to_str().unwrap()]);
    let history: serde_json::Value = serde_json::from_str(&office.ok(&["show", "W-1", "--json"])).unwrap();
    assert_eq!(history["history"].as_array().unwrap().len(), 2, "{history:#}");
    assert!(office.ok(&["verify"]).contains("intact"));
}

#[test]
fn the_records_office_reads_with_a_read_only_role() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("office")));
    whole_life(&office);
    // The page's role may read and nothing else (docs/ledger.md).
    server.sql("office", READ_ONLY_ROLE);
    let reader = server.url("records", "office");
    let page = common::page::Page::start(&reader, &office.allowed);
    let (status, body) = page.get("/m/MJ-2026-0042?lang=en");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Ledger intact") && body.contains("destruction"), "{body}");
    // The same role cannot write: the ledger refuses before writing anything.
    let out = ledger_at(
        &reader,
        &office.key,
        &office.allowed,
        &["register", "R-1", "--type", "hdd", "--classification", "secret"],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("permission denied"), "{}", stderr(&out));
}

/// Issue 15, on PostgreSQL: a key added straight into the database's
/// configuration table (no key of the organisation's needed) is never
/// trusted: not for a certificate, not to write, not to reconfigure.
#[test]
fn a_key_planted_in_the_database_is_never_trusted_on_postgresql_either() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("planted")));
    office.ok(&["register", "MJ-1", "--type", "hdd", "--classification", "secret"]);
    let (key, line) = key_for(office.dir.path(), "attacker", "station-9", &["station"]);
    let line = String::from_utf8(line).unwrap();
    server.sql(
        "planted",
        &format!("UPDATE config SET value = value || '{line}' WHERE key = 'allowed_signers'"),
    );
    let his_list = office.dir.path().join("his_allowed");
    std::fs::write(&his_list, format!("{}{line}", std::fs::read_to_string(&office.allowed).unwrap()))
        .unwrap();
    let image = office.dir.path().join("his.img");
    make_file(&image, 1 << 20);
    let certs = office.dir.path().join("certs");
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--asset",
        "MJ-1",
        "--classification",
        "secret",
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cert = certificate_of(&certs, "his");
    let out = ledger_at(&office.ledger, &office.key, &office.allowed, &["import", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not listed in the allowed-signers file"), "{}", stderr(&out));
    let out = ledger_at(&office.ledger, &key, &his_list, &["import", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("the list the ledger's configuration records"), "{}", stderr(&out));
    let out = ledger_at(&office.ledger, &key, &his_list, &["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the list the ledger recorded before"), "{}", stderr(&out));
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("differ from its last configure entry"), "{said}");
}
