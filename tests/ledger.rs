//! The media ledger: a medium's whole life, the no-downgrade rule, tampering, and
//! concurrent writers.

mod common;

use std::path::PathBuf;

use common::*;

#[test]
fn the_whole_life_of_a_classified_medium() {
    whole_life(&Office::new());
}

#[test]
fn classified_media_are_never_given_a_reuse_destination() {
    let office = Office::new();
    office.ok(&["register", "USB-7", "--type", "usb-flash", "--classification", "internal"]);
    for destination in ["internal-reuse", "external-reuse", "recycling"] {
        office.refused(&["dispose", "USB-7", "--destination", destination], "destruction is required");
    }
    office.ok(&["dispose", "USB-7", "--destination", "destruction"]);
    // A certificate that (wrongly) calls the medium unclassified and releases it.
    let cert = office.certificate(
        "usb7",
        &["--asset", "USB-7", "--classification", "unclassified", "--destination", "external-reuse"],
        false,
    );
    office.refused(&["import", cert.to_str().unwrap()], "can never be lowered");
    // One that records no level and releases the medium: the ledger's level rules.
    let cert = office.certificate("usb7b", &["--asset", "USB-7", "--destination", "external-reuse"], false);
    office.refused(&["import", cert.to_str().unwrap()], "destruction is required");
    office.ok(&["register", "PUBLIC-1", "--type", "hdd", "--classification", "非密"]);
    office.ok(&["dispose", "PUBLIC-1", "--destination", "external-reuse"]);
}

fn tampered(office: &Office, sql: &str) -> String {
    let _ = std::fs::remove_file(office.dir.path().join("tampered.sqlite"));
    let copy = office.tampered_copy("tampered.sqlite", sql);
    let (code, said) = verify_ledger(copy.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1, "{sql}: tampering went unnoticed");
    said
}

#[test]
fn tampering_with_the_database_file_is_detected() {
    let office = Office::new();
    tampering_fixture(&office);
    // Checkpoint the WAL into the main file so a plain copy holds everything.
    rusqlite::Connection::open(&office.ledger)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    assert!(office.ok(&["verify"]).contains("intact"));

    let out = tampered(
        &office,
        "UPDATE entries SET data = replace(data, 'Zhang San', 'Somebody Else') WHERE kind = 'approval';",
    );
    assert!(out.contains("was altered"), "{out}");
    let out = tampered(&office, "DELETE FROM entries WHERE seq = 2;");
    assert!(out.contains("removed"), "{out}");
    let out = tampered(
        &office,
        "UPDATE entries SET seq = 100 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 100;",
    );
    assert!(out.contains("chain is broken"), "{out}");
    let out = tampered(&office, "UPDATE media SET classification = 'unclassified' WHERE number = 'A-3';");
    assert!(out.contains("media table was altered"), "{out}");
    let out = tampered(&office, "UPDATE certificates SET json = replace(json, 'erased', 'ERASED');");
    assert!(out.contains("stored bytes changed"), "{out}");
    let out = tampered(&office, "DELETE FROM certificates;");
    assert!(out.contains("missing from the certificate store"), "{out}");
    let out = tampered(&office, "UPDATE certificates SET number = 'A-2';");
    assert!(out.contains("stored under another medium"), "{out}");
    let out = tampered(&office, "PRAGMA foreign_keys = OFF; DELETE FROM media WHERE number = 'A-3';");
    assert!(out.contains("missing from the media table"), "{out}");
}

#[test]
fn concurrent_imports_from_two_processes_lose_nothing() {
    let office = Office::new();
    let mut certs = Vec::new();
    for i in 0..8 {
        let number = format!("C-{i}");
        office.ok(&["register", &number, "--type", "hdd", "--classification", "unclassified"]);
        certs.push(office.certificate(&format!("c{i}"), &["--asset", &number], false));
    }
    let (even, odd): (Vec<_>, Vec<_>) = certs.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    let even: Vec<PathBuf> = even.into_iter().map(|(_, p)| p).collect();
    let odd: Vec<PathBuf> = odd.into_iter().map(|(_, p)| p).collect();
    let (a, b) = (office.spawn_import(&even), office.spawn_import(&odd));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let verified = office.ok(&["verify"]);
    assert!(verified.contains("17 entries, 8 certificates") && verified.contains("intact"), "{verified}");
}

#[test]
fn bad_ledger_input_is_refused_clearly() {
    let office = Office::new();
    office.ok(&["register", "N-1", "--type", "hdd", "--classification", "secret"]);
    office.refused(&["register", "N-1", "--type", "ssd", "--classification", "secret"], "already registered");
    office.refused(
        &["register", "N-2", "--type", "ssd", "--classification", "cosmic"],
        "unknown classification",
    );
    office.refused(
        &["approve", "N-9", "--role", "approver", "--name", "X"],
        "no medium with ledger number \"N-9\"",
    );
    office.refused(&["show", "N-9"], "register it first");
    let cert = office.certificate(
        "n1",
        &["--asset", "N-1", "--classification", "secret", "--destination", "destruction"],
        false,
    );
    // A certificate whose signature fails is not imported.
    let text = std::fs::read_to_string(&cert).unwrap();
    std::fs::write(&cert, text.replace("\"hdd\"", "\"ssd\"").replace("erased", "erased ")).unwrap();
    office.refused(&["import", cert.to_str().unwrap()], "does not verify");
    std::fs::write(&cert, text).unwrap();
    office.ok(&["import", cert.to_str().unwrap()]);
    office.refused(&["import", cert.to_str().unwrap()], "imported once");
    let unknown = office.certificate("orphan", &["--asset", "NOT-REGISTERED"], false);
    office.refused(&["import", unknown.to_str().unwrap()], "register the medium first");
    let out = certwipe(&["ledger", "list", "--ledger", "/proc/no/such/ledger.sqlite"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no ledger at /proc/no/such/ledger.sqlite"), "{}", stderr(&out));
}

/// A ledger written before duties had namespaces of their own: every entry
/// signed in `certwipe`, and a recorded list whose lines name only
/// `certwipe`. It verifies against the organisation's list with duties,
/// refuses new writes until `ledger init` records that list, and `ledger init`
/// (by a key the old list allowed) moves it over once.
#[test]
fn a_ledger_from_before_duties_moves_to_the_new_list_once() {
    let office = Office::new();
    office.ok(&["register", "OLD-1", "--type", "hdd", "--classification", "secret"]);
    let old_list = std::fs::read_to_string(&office.allowed)
        .unwrap()
        .replace("namespaces=\"certwipe,certwipe-ledger\"", "namespaces=\"certwipe\"")
        .replace("namespaces=\"certwipe-validator\"", "namespaces=\"certwipe\"")
        .replace("namespaces=\"certwipe-ledger\"", "namespaces=\"certwipe\"");
    let copy = office.tampered_copy("old.sqlite", "SELECT 1;");
    {
        let db = rusqlite::Connection::open(&copy).unwrap();
        let rows: Vec<(i64, String, String, String, String)> = db
            .prepare("SELECT seq, number, kind, at, data FROM entries ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let ledger_id: String =
            db.query_row("SELECT value FROM config WHERE key = 'ledger_id'", [], |r| r.get(0)).unwrap();
        let mut prev = certwipe::ledger::chain::GENESIS.to_string();
        for (seq, number, kind, at, data) in rows {
            let data = if kind == "configure" {
                let mut value: serde_json::Value = serde_json::from_str(&data).unwrap();
                value["allowed_signers"] = old_list.clone().into();
                value.to_string()
            } else {
                data
            };
            let hash = certwipe::ledger::chain::entry_hash(&prev, seq, &number, &kind, &at, &data);
            let message = certwipe::ledger::chain::entry_message(&ledger_id, seq, &prev, &hash);
            let signed = std::process::Command::new("ssh-keygen")
                .args(["-q", "-Y", "sign", "-n", "certwipe", "-f"])
                .arg(&office.key)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut signed.stdin.as_ref().unwrap(), &message).unwrap();
            let signature = String::from_utf8(signed.wait_with_output().unwrap().stdout).unwrap();
            db.execute(
                "UPDATE entries SET data = ?1, prev_hash = ?2, hash = ?3, signature = ?4 WHERE seq = ?5",
                rusqlite::params![data, prev, hash, signature, seq],
            )
            .unwrap();
            prev = hash;
        }
        db.execute("UPDATE config SET value = ?1 WHERE key = 'allowed_signers'", [&old_list]).unwrap();
    }
    let old = copy.to_str().unwrap();
    // Against the organisation's list with duties, the old entries verify.
    let (code, said) = verify_ledger(old, &office.allowed, &[]);
    assert_eq!(code, 0, "{said}");
    // Against the old list, nobody may write entries any more.
    let old_allowed = office.dir.path().join("old_allowed");
    std::fs::write(&old_allowed, &old_list).unwrap();
    assert_eq!(verify_ledger(old, &old_allowed, &[]).0, 1);
    // Writing needs the new list recorded first; recording it is allowed once.
    let register = ["register", "OLD-2", "--type", "hdd", "--classification", "secret"];
    let out = ledger_at(old, &office.key, &office.allowed, &register);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("record that list with `ledger init`"), "{}", stderr(&out));
    let out = ledger_at(old, &office.key, &office.allowed, &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ledger_at(old, &office.key, &office.allowed, &register);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, said) = verify_ledger(old, &office.allowed, &[]);
    assert_eq!(code, 0, "{said}");
    // The validator's key, a writer by the old list's rule, cannot move a new one.
    let out = ledger_at(old, &office.validator, &office.allowed, &["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
