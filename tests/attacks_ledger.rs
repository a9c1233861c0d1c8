//! Attacks on the ledger and its records that got through in the third trial
//! (issue 15), each performed for real against a real SQLite ledger (and, in
//! tests/postgres.rs, PostgreSQL) and asserted refused with the rule it
//! breaks. `docs/threat-model.md` lists them.

mod common;

use std::path::Path;

use common::*;

/// A wiped image's certificate, signed by `key` (not the office's).
fn certificate_signed_by(office: &Office, key: &Path, name: &str, records: &[&str]) -> std::path::PathBuf {
    let image = office.dir.path().join(format!("{name}.img"));
    make_file(&image, 1 << 20);
    let certs = office.dir.path().join("certs");
    let args = ["wipe", "--yes", "--cert-dir", certs.to_str().unwrap(), "--sign-key", key.to_str().unwrap()];
    let out = certwipe(&[&args[..], records, &[image.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    certificate_of(&certs, name)
}

/// A key of the attacker's own, listed in an allowed-signers line of his own.
fn attacker(office: &Office) -> (std::path::PathBuf, String) {
    let (key, line) = key_for(office.dir.path(), "attacker", "station-9", &["station"]);
    (key, String::from_utf8(line).unwrap())
}

#[test]
fn a_key_planted_in_the_database_is_never_trusted() {
    let office = Office::new();
    office.ok(&["register", "MJ-1", "--type", "hdd", "--classification", "secret"]);
    let kept = office.dir.path().join("head.json");
    office.ok(&["head", "-o", kept.to_str().unwrap()]);
    let (key, line) = attacker(&office);
    // No key of the organisation's, only write access to the database: the
    // attacker adds his key to the configuration table.
    let sql = format!("UPDATE config SET value = value || '{line}' WHERE key = 'allowed_signers';");
    let planted = office.tampered_copy("planted.sqlite", &sql);
    let ledger = planted.to_str().unwrap();
    // His certificate is not filed: the list that counts is the office's file.
    let cert =
        certificate_signed_by(&office, &key, "his", &["--asset", "MJ-1", "--classification", "secret"]);
    let out = ledger_at(ledger, &office.key, &office.allowed, &["import", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not listed in the allowed-signers file"), "{}", stderr(&out));
    // He cannot write with his key, even naming his own list as the trust root...
    let his_list = office.dir.path().join("his_allowed");
    std::fs::write(&his_list, format!("{}{line}", std::fs::read_to_string(&office.allowed).unwrap()))
        .unwrap();
    let out = ledger_at(ledger, &key, &his_list, &["approve", "MJ-1", "--role", "approver", "--name", "X"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the list the ledger's configuration records"), "{}", stderr(&out));
    // ...nor record his list as the ledger's: a change needs a key the list before allowed.
    let out = ledger_at(ledger, &key, &his_list, &["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the list the ledger recorded before"), "{}", stderr(&out));
    // And verify, with the office's list, shows the planted key, head or not.
    for extra in [&[][..], &["--head", kept.to_str().unwrap()][..]] {
        let (code, said) = verify_ledger(ledger, &office.allowed, extra);
        assert_eq!(code, 1, "{said}");
        assert!(said.contains("differ from its last configure entry"), "{said}");
    }
    // Without an outside list, verify cannot vouch for anyone.
    let out = certwipe(&["ledger", "verify", "--ledger", &office.ledger]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("signers NOT checked"));
}

#[test]
fn a_retired_key_cannot_sign_by_dating_its_signature_back() {
    let office = Office::new();
    office.ok(&["register", "MJ-2", "--type", "hdd", "--classification", "secret"]);
    // A witness's key retired in 2020, countersigning now, dated 2019.
    let (retired, line) = key_for(office.dir.path(), "retired", "old.witness", &["witness"]);
    let line =
        String::from_utf8(line).unwrap().replace("namespaces=", "valid-before=\"20200101Z\",namespaces=");
    allow(&office.allowed, line.as_bytes());
    let cert = office.certificate("back", &["--asset", "MJ-2", "--classification", "secret"], false);
    let dated = Forgery {
        signed_at: Some("2019-06-01T00:00:00.000Z".into()),
        ..Forgery::new("witness", "Old Witness")
    };
    forge_countersignature(&cert, &retired, &dated, 1);
    let (code, said) = verify_cert(&cert, &office.allowed);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("before the certificate was issued"), "{said}");
    remove_countersignature(&cert, "witness", 1);
    // Dated now, it is simply expired.
    forge_countersignature(&cert, &retired, &Forgery::new("witness", "Old Witness"), 1);
    assert!(verify_cert(&cert, &office.allowed).1.contains("expired"));
    remove_countersignature(&cert, "witness", 1);

    // A station's key retired in 2020 backdates a certificate's issue (and
    // every time in it) to 2019: a loose certificate is judged at the time it
    // claims, and says so; the ledger judges it when it files it, and refuses.
    let (old_station, line) = key_for(office.dir.path(), "old_station", "station-0", &["station"]);
    let line =
        String::from_utf8(line).unwrap().replace("namespaces=", "valid-before=\"20200101Z\",namespaces=");
    allow(&office.allowed, line.as_bytes());
    let station =
        Station { dir: tempfile::tempdir().unwrap(), key: old_station, allowed: office.allowed.clone() };
    let backdated = office.certificate("old", &["--asset", "MJ-2", "--classification", "secret"], false);
    rewrite(&station, &backdated, |v| {
        v["issued_at"] = "2019-06-01T10:00:00.000Z".into();
        v["sanitization"]["started_at"] = "2019-06-01T09:00:00.000Z".into();
        v["sanitization"]["finished_at"] = "2019-06-01T09:30:00.000Z".into();
    });
    let (code, said) = verify_cert(&backdated, &office.allowed);
    assert!(said.contains("judged at the issue time the certificate claims"), "{code}: {said}");
    let out =
        ledger_at(&office.ledger, &office.key, &office.allowed, &["import", backdated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

/// `cert verify CERT --allowed-signers ALLOWED`: exit status and everything said.
fn verify_cert(cert: &Path, allowed: &Path) -> (i32, String) {
    let out =
        certwipe(&["cert", "verify", cert.to_str().unwrap(), "--allowed-signers", allowed.to_str().unwrap()]);
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out))
}

#[test]
fn one_id_is_one_certificate_and_one_person_signs_it_once_across_imports() {
    let office = Office::new();
    office.ok(&["register", "MJ-3", "--type", "hdd", "--classification", "secret"]);
    let records = ["--asset", "MJ-3", "--classification", "secret", "--destination", "destruction"];
    let first = office.certificate("first", &records, false);
    let (approver, line) = key_for(office.dir.path(), "approver", "chen.jie", &["approver", "witness"]);
    allow(&office.allowed, &line);
    let out = countersign(&first, &approver, "approver", "Chen Jie", &office.allowed, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    office.ok(&["import", first.to_str().unwrap()]);
    // A second certificate given the first one's id, with a countersignature of its own.
    let second = office.certificate("second", &records, false);
    let id: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let station = Station {
        dir: tempfile::tempdir().unwrap(),
        key: office.key.clone(),
        allowed: office.allowed.clone(),
    };
    rewrite(&station, &second, |v| v["certificate_id"] = id["certificate_id"].clone());
    let out = countersign(&second, &office.validator, "validator", "Wang Fang", &office.allowed, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    office.refused(&["import", second.to_str().unwrap()], "another certificate with id");
    // The approver comes back as witness of the certificate filed: judged with
    // what was filed, refused.
    forge_countersignature(&first, &approver, &Forgery::new("witness", "Chen Jie"), 1);
    office.refused(&["import", first.to_str().unwrap()], "already signed this certificate as approver");
    let verified = office.ok(&["verify"]);
    assert!(verified.contains("1 countersignatures") && verified.contains("intact"), "{verified}");
}

#[test]
fn a_statement_that_hides_text_or_names_another_key_is_refused() {
    let office = Office::new();
    office.ok(&["register", "MJ-4", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate("hidden", &["--asset", "MJ-4", "--classification", "secret"], false);
    for (name, said) in [
        ("Wang Fang\u{1b}[2J\r\nResult: ERASED", "control character U+001B"),
        ("Wang\u{200b} Fang", "control character U+200B"),
        ("=HYPERLINK(\"http://x\")\n", "control character U+000A"),
    ] {
        forge_countersignature(&cert, &office.validator, &Forgery::new("validator", name), 1);
        let (code, output) = verify_cert(&cert, &office.allowed);
        assert_eq!(code, 1, "{output}");
        assert!(output.contains(said), "{output}");
        assert!(!output.contains('\u{1b}'), "raw escape reached the terminal");
        office.refused(&["import", cert.to_str().unwrap()], said);
        remove_countersignature(&cert, "validator", 1);
    }
    let other =
        Forgery { names_key: Some(fingerprint(&office.key)), ..Forgery::new("validator", "Wang Fang") };
    forge_countersignature(&cert, &office.validator, &other, 1);
    let (code, output) = verify_cert(&cert, &office.allowed);
    assert_eq!(code, 1);
    assert!(output.contains("the statement names key"), "{output}");
    office.refused(&["import", cert.to_str().unwrap()], "the statement names key");
    remove_countersignature(&cert, "validator", 1);
    // A countersignature cut short after two of its three files counts for nothing.
    office.countersign(&cert);
    let stem = format!("{}.validator-1", cert.display());
    std::fs::copy(format!("{stem}.sig"), format!("{}.witness-1.sig", cert.display())).unwrap();
    std::fs::copy(format!("{stem}.statement.sig"), format!("{}.witness-1.statement.sig", cert.display()))
        .unwrap();
    assert_eq!(verify_cert(&cert, &office.allowed).0, 0, "orphan signature files change nothing");
    office.ok(&["import", cert.to_str().unwrap()]);
    let csv = office.ok(&["export", "--csv"]);
    assert!(!csv.contains('\u{1b}') && csv.contains("validator Wang Fang"), "{csv}");
}

#[test]
fn a_decoy_with_another_mediums_serial_receives_nothing() {
    let office = Office::new();
    office.ok(&["register", "MJ-5", "--type", "image", "--classification", "secret", "--serial", "S-5"]);
    office.refused(
        &["register", "DECOY", "--type", "image", "--classification", "unclassified", "--serial", "S-5"],
        "serials are unique per media type",
    );
    // Planted behind the ledger's back, the decoy is reported and matches nothing.
    let sql = "INSERT INTO media VALUES ('DECOY', 'image', 'unclassified', NULL, 'S-5', NULL);";
    let planted = office.tampered_copy("decoy.sqlite", sql);
    let (code, said) = verify_ledger(planted.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1);
    assert!(said.contains("DECOY") && said.contains("media table"), "{said}");
    // Another type may share a serial; a certificate matched by it is then refused.
    office.ok(&["register", "MJ-6", "--type", "usb", "--classification", "secret", "--serial", "S-5"]);
    let station = Station {
        dir: tempfile::tempdir().unwrap(),
        key: office.key.clone(),
        allowed: office.allowed.clone(),
    };
    let cert = office.certificate("serial", &[], false);
    rewrite(&station, &cert, |v| {
        v["medium"]["serial"] = "S-5".into();
        v["records"]["asset_number"] = serde_json::Value::Null;
        v["records"]["classification_before"] = "secret".into();
        v["records"]["classification_after"] = "secret".into();
    });
    office.refused(&["import", cert.to_str().unwrap()], "2 media are registered with serial S-5");
}

#[test]
fn nothing_more_happens_to_a_destroyed_medium_and_destruction_follows_the_rules() {
    let office = Office::new();
    office.ok(&["register", "MJ-7", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate("seven", &["--asset", "MJ-7", "--classification", "secret"], false);
    let destroy = |date: &str, destroyer: &str, witness: &str| {
        let args = ["destroy", "MJ-7", "--method", "shred", "--date", date, "--place", "Room 5"];
        office.ledger(&[&args[..], &["--destroyer", destroyer, "--witness", witness]].concat())
    };
    let (code, _, err) = destroy("2026-11-30", "Li Wei", "Zhang San");
    assert_eq!(code, 2, "destroyed without an approval: {err}");
    assert!(err.contains("no approval on record"), "{err}");
    // Nobody approves his own scrapping: an approval recorded with the key
    // that records the destruction does not count.
    office.ok(&["approve", "MJ-7", "--role", "approver", "--name", "Chen Jie"]);
    let (code, _, err) = destroy("2026-11-30", "Li Wei", "Zhang San");
    assert_eq!(code, 2, "the station approved its own destruction: {err}");
    assert!(err.contains("no approval on record by anyone but the key recording"), "{err}");
    office.ok_as_clerk(&["approve", "MJ-7", "--role", "approver", "--name", "Chen Jie"]);
    for (date, destroyer, witness, said) in [
        ("2099-13-45", "Li Wei", "Zhang San", "is not a date"),
        ("2099-12-31", "Li Wei", "Zhang San", "lies in the future"),
        ("2026-11-30", "Li Wei", "li  wei", "must be someone else"),
        ("2026-11-30", "Li Wei", "Li Wei\u{2800}", "control character U+2800"),
    ] {
        let (code, _, err) = destroy(date, destroyer, witness);
        assert_eq!(code, 2, "{date} {destroyer}/{witness}: {err}");
        assert!(err.contains(said), "{err}");
    }
    let (code, _, err) = destroy("2026-11-30", "Li Wei", "Zhang San");
    assert_eq!(code, 0, "{err}");
    office.refused(&["dispose", "MJ-7", "--destination", "manufacturer"], "already destroyed");
    office.refused(&["import", cert.to_str().unwrap()], "already destroyed");
    office.refused(&["dispose", "MJ-7", "--destination", "external-reuse"], "already destroyed");
    assert!(office.ok(&["verify"]).contains("intact"));
}

#[test]
fn kept_heads_must_name_a_real_entry_in_the_known_format() {
    let office = Office::new();
    office.ok(&["register", "MJ-8", "--type", "hdd", "--classification", "secret"]);
    let kept = office.dir.path().join("head.json");
    office.ok(&["head", "-o", kept.to_str().unwrap()]);
    let station = Station {
        dir: tempfile::tempdir().unwrap(),
        key: office.key.clone(),
        allowed: office.allowed.clone(),
    };
    let sign = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut head: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        change(&mut head);
        let forged = office.dir.path().join("forged-head.json");
        std::fs::write(&forged, certwipe::cert::canonical::to_bytes(&head)).unwrap();
        let _ = std::fs::remove_file(certwipe::cert::files::signature_path(&forged));
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "certwipe-ledger", "-f"])
            .arg(&station.key)
            .arg(&forged)
            .status()
            .unwrap();
        assert!(status.success());
        verify_ledger(&office.ledger, &office.allowed, &["--head", forged.to_str().unwrap()])
    };
    let (code, said) = sign(&|h| h["seq"] = 0.into());
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("entries count from 1"), "{said}");
    let (code, said) = sign(&|h| h["format"] = "certwipe.ledger-head/v9".into());
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("unknown format"), "{said}");
}

#[test]
fn the_records_offices_typos_are_refused_and_passwords_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/l.sqlite");
    let out = certwipe(&["--ledger", missing.to_str().unwrap(), "ledger", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ledger init"), "{}", stderr(&out));
    assert!(!dir.path().join("no").exists(), "a read created directories");
    let out = certwipe(&["ledger", "list", "--ledger", "postgress://station:s3cret@db/ledger"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown scheme"), "{}", stderr(&out));
    assert!(!Path::new("postgress:").exists());
    for url in [
        "postgres://station:s3cret@127.0.0.1:9/ledger",
        "postgres://station@127.0.0.1:9/ledger?password=s3cret",
        "postgresql://127.0.0.1:9/ledger?sslmode=disable&PASSWORD=s3cret",
    ] {
        let out = certwipe(&["ledger", "list", "--ledger", url]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    }
}

/// Issue 15: any key allowed to countersign could sign a certificate as the
/// station and write ledger entries such as `destroy`; and nothing may be
/// dated in the future.
#[test]
fn a_countersigners_key_is_neither_a_station_nor_a_writer_and_nothing_is_dated_ahead() {
    let office = Office::new();
    office.ok(&["register", "MJ-9", "--type", "hdd", "--classification", "secret"]);
    office.ok_as_clerk(&["approve", "MJ-9", "--role", "approver", "--name", "Chen Jie"]);
    let destroy = [
        "destroy",
        "MJ-9",
        "--method",
        "shred",
        "--date",
        "2026-11-30",
        "--place",
        "Room 5",
        "--destroyer",
        "Li Wei",
        "--witness",
        "Zhang San",
    ];
    let out = ledger_at(&office.ledger, &office.validator, &office.allowed, &destroy);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not permitted for use in signature namespace \"certwipe-ledger\""),
        "{}",
        stderr(&out)
    );
    let cert = certificate_signed_by(&office, &office.validator, "as-station", &["--asset", "MJ-9"]);
    let (code, said) = verify_cert(&cert, &office.allowed);
    assert_eq!(code, 1);
    assert!(said.contains("not permitted for use in signature namespace \"certwipe\""), "{said}");
    // Dated a year ahead.
    let cert = office.certificate("ahead", &["--asset", "MJ-9", "--classification", "secret"], false);
    let station = Station {
        dir: tempfile::tempdir().unwrap(),
        key: office.key.clone(),
        allowed: office.allowed.clone(),
    };
    rewrite(&station, &cert, |v| v["issued_at"] = "2099-01-01T00:00:00.000Z".into());
    let (code, said) = verify_cert(&cert, &office.allowed);
    assert_eq!(code, 1);
    assert!(said.contains("lies in the future"), "{said}");
    let ahead = office.certificate("ahead2", &["--asset", "MJ-9", "--classification", "secret"], false);
    let future = Forgery {
        signed_at: Some("2099-01-01T00:00:00.000Z".into()),
        ..Forgery::new("validator", "Wang Fang")
    };
    forge_countersignature(&ahead, &office.validator, &future, 1);
    assert!(verify_cert(&ahead, &office.allowed).1.contains("which lies in the future"));
}

/// The trial after issue 15: with write access to the database and no key,
/// entries were deleted or a junk entry added, and the station then signed
/// new entries on top (a secret medium released for reuse).
#[test]
fn a_station_never_builds_on_a_history_cut_or_padded_by_hand() {
    let office = Office::new();
    office.ok(&["register", "MJ-2", "--type", "hdd", "--classification", "unclassified", "--serial", "S2"]);
    let cert = office.certificate(
        "raised",
        &["--asset", "MJ-2", "--classification", "secret", "--destination", "destruction"],
        false,
    );
    office.ok(&["import", cert.to_str().unwrap()]);
    let release = |ledger: &Path| {
        ledger_at(
            ledger.to_str().unwrap(),
            &office.key,
            &office.allowed,
            &["dispose", "MJ-2", "--destination", "external-reuse"],
        )
    };
    let last = "(SELECT max(seq) FROM entries)";
    let reset = "UPDATE media SET classification = 'unclassified' WHERE number = 'MJ-2';";
    // The reclassification removed (the newest entry), the row set back.
    let cut = office.tampered_copy("cut.sqlite", &format!("DELETE FROM entries WHERE seq = {last}; {reset}"));
    let out = release(&cut);
    assert_ne!(out.status.code(), Some(0), "released: {}", stderr(&out));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    // An unsigned entry appended: nothing is chained onto it.
    let junk = format!(
        "INSERT INTO entries VALUES ({last} + 1, 'MJ-2', 'approval', '2026-12-01T00:00:00.000Z', '{{}}', 'bogus', 'bogus', NULL);"
    );
    let padded = office.tampered_copy("padded.sqlite", &junk);
    let out = ledger_at(
        padded.to_str().unwrap(),
        &office.key,
        &office.allowed,
        &["register", "MJ-20", "--type", "hdd", "--classification", "secret"],
    );
    assert_ne!(out.status.code(), Some(0), "built on junk: {}", stderr(&out));
    assert!(stderr(&out).contains("chain does not verify"), "{}", stderr(&out));
    // An entry in the middle removed, others after it.
    office.ok(&["register", "OTHER-1", "--type", "hdd", "--classification", "secret"]);
    let reclassify = "(SELECT seq FROM entries WHERE kind = 'reclassify')";
    let gap =
        office.tampered_copy("gap.sqlite", &format!("DELETE FROM entries WHERE seq = {reclassify}; {reset}"));
    let out = release(&gap);
    assert_ne!(out.status.code(), Some(0), "released across a gap: {}", stderr(&out));
    // Everything since the certificate cut off, in place: the chain left is
    // whole, but this station wrote entries the ledger no longer holds.
    let cert_entry = "(SELECT seq FROM entries WHERE kind = 'certificate')";
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute_batch(&format!(
        "DELETE FROM entries WHERE seq >= {cert_entry}; DELETE FROM certificates; DELETE FROM media WHERE number = 'OTHER-1'; {reset}"
    ))
    .unwrap();
    drop(db);
    let out = release(Path::new(&office.ledger));
    assert_ne!(out.status.code(), Some(0), "released after a cut: {}", stderr(&out));
    assert!(stderr(&out).contains("newer entries were cut off"), "{}", stderr(&out));
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1);
    assert!(said.contains("which this station wrote"), "{said}");
}

/// The trial after issue 15: the holder of a station key appended a second
/// registration of a top-secret medium, as unclassified.
#[test]
fn a_second_registration_never_lowers_a_medium() {
    let office = Office::new();
    office.ok(&["register", "MJ-7", "--type", "hdd", "--classification", "top-secret", "--serial", "S7"]);
    let data = r#"{"number":"MJ-7","media_type":"hdd","classification":"unclassified","holder":null,"serial":"S7","notes":null}"#;
    append_signed_entry(Path::new(&office.ledger), &office.key, "MJ-7", "register", data);
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute("UPDATE media SET classification = 'unclassified' WHERE number = 'MJ-7'", []).unwrap();
    drop(db);
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("registers the medium a second time"), "{said}");
    office.refused(
        &["dispose", "MJ-7", "--destination", "external-reuse"],
        "registers the medium a second time",
    );
    let (_, _, err) = office.ledger(&["list"]);
    assert!(err.contains("NOT") || err.contains("not what the ledger's signed history records"), "{err}");
}

/// The trial after issue 15: rows edited by hand were listed and exported as
/// if recorded, and the CSV printed their control characters raw.
#[test]
fn rows_edited_by_hand_are_never_listed_as_recorded() {
    let office = Office::new();
    office.ok(&["register", "MJ-8", "--type", "hdd", "--classification", "secret", "--holder", "Dept 3"]);
    let edited = office.tampered_copy(
        "edited.sqlite",
        "UPDATE media SET classification = 'unclassified', holder = 'Dept' || char(27) || '[2J' || char(13) WHERE number = 'MJ-8';",
    );
    let ledger = edited.to_str().unwrap();
    let out = certwipe(&["ledger", "list", "--ledger", ledger]);
    assert_eq!(out.status.code(), Some(0));
    let (said, warned) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(said.contains("NOT AS RECORDED") && warned.contains("medium MJ-8"), "{said}{warned}");
    let out = certwipe(&["ledger", "export", "--csv", "--ledger", ledger]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(!csv.contains('\u{1b}') && !csv.contains("[2J\r"), "{csv}");
    assert!(csv.contains("NOT as recorded"), "{csv}");
    let out = certwipe(&["ledger", "show", "MJ-8", "--ledger", ledger]);
    assert!(stderr(&out).contains("not what the ledger's signed history records"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    // A command whose reader goes away ends quietly, never with a panic.
    let mut child = certwipe_command()
        .args(["ledger", "show", "MJ-8", "--ledger", &office.ledger])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // Invisible characters of every kind are refused at input.
    for holder in ["Li\u{1bca1} Wei", "Li\u{13430}Wei", "Li\u{2800}Wei", "Li\u{2003}Wei"] {
        let (code, _, err) = office.ledger(&[
            "register",
            "H-1",
            "--type",
            "hdd",
            "--classification",
            "secret",
            "--holder",
            holder,
        ]);
        assert_eq!(code, 2, "{holder:?}: {err}");
    }
}

/// The trial after issue 15: a certificate signed with a key retired since,
/// dated back to when it was valid, verified without a word of warning.
#[test]
fn a_retired_keys_loose_certificate_is_flagged_and_never_filed() {
    let office = Office::new();
    office.ok(&["register", "MJ-10", "--type", "hdd", "--classification", "secret"]);
    let (old, line) = key_for(office.dir.path(), "old", "station-0", &["station"]);
    let line =
        String::from_utf8(line).unwrap().replace("namespaces=", "valid-before=\"20260601Z\",namespaces=");
    allow(&office.allowed, line.as_bytes());
    let station = Station { dir: tempfile::tempdir().unwrap(), key: old, allowed: office.allowed.clone() };
    let cert = office.certificate("retired", &["--asset", "MJ-10", "--classification", "secret"], false);
    rewrite(&station, &cert, |v| {
        v["issued_at"] = "2026-05-20T10:00:00.000Z".into();
        v["sanitization"]["started_at"] = "2026-05-20T09:00:00.000Z".into();
        v["sanitization"]["finished_at"] = "2026-05-20T09:30:00.000Z".into();
    });
    let (_, said) = verify_cert(&cert, &office.allowed);
    assert!(said.contains("WARNING: the station key") && said.contains("no longer valid now"), "{said}");
    office.refused(&["import", cert.to_str().unwrap()], "expired");
    // The paper says what the screen says.
    if pdf_tools_present() {
        let pdf = office.dir.path().join("retired.pdf");
        let allowed = office.allowed.to_str().unwrap();
        let (cert, out_pdf) = (cert.to_str().unwrap(), pdf.to_str().unwrap());
        let out = certwipe(&["cert", "pdf", cert, "-o", out_pdf, "--allowed-signers", allowed]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = pdf_text(&pdf, &[]).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("no longer valid now"), "{text}");
    }
}

/// The second trial: with write access to the database and no key, a
/// medium's certificate and reclassification were removed from the middle of
/// the chain (not next to its other entries), its row set back, and another
/// station then released it; lists showed it as recorded.
#[test]
fn a_hole_anywhere_in_the_chain_stops_every_write_and_every_list() {
    let office = Office::new();
    for number in ["D-1", "D-2"] {
        office.ok(&["register", number, "--type", "hdd", "--classification", "unclassified"]);
    }
    let cert = office.certificate("d1", &["--asset", "D-1", "--classification", "secret"], false);
    office.ok(&["import", cert.to_str().unwrap()]);
    office.ok(&["register", "D-3", "--type", "hdd", "--classification", "unclassified"]);
    let holes = office.tampered_copy(
        "holes.sqlite",
        "PRAGMA foreign_keys=OFF; DELETE FROM entries WHERE number = 'D-1' AND kind IN ('certificate', 'reclassify'); \
         DELETE FROM certificates WHERE number = 'D-1'; UPDATE media SET classification = 'unclassified' WHERE number = 'D-1';",
    );
    let ledger = holes.to_str().unwrap();
    let out = ledger_at(
        ledger,
        &office.key,
        &office.allowed,
        &["dispose", "D-1", "--destination", "external-reuse"],
    );
    assert_ne!(out.status.code(), Some(0), "released: {}", stderr(&out));
    assert!(stderr(&out).contains("chain does not verify"), "{}", stderr(&out));
    let out = certwipe(&["ledger", "list", "--ledger", ledger]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("NOT AS RECORDED") && stderr(&out).contains("chain is broken"), "{listed}");
    let out = certwipe(&["ledger", "export", "--csv", "--ledger", ledger]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(!csv.contains("as its signed history records"), "{csv}");
    // Entries moved to another number instead: their hashes break.
    let moved = office.tampered_copy(
        "moved.sqlite",
        "UPDATE entries SET number = 'U-1-hidden' WHERE number = 'D-1' AND kind IN ('certificate', 'reclassify'); \
         UPDATE media SET classification = 'unclassified' WHERE number = 'D-1';",
    );
    let out = ledger_at(
        moved.to_str().unwrap(),
        &office.key,
        &office.allowed,
        &["dispose", "D-1", "--destination", "external-reuse"],
    );
    assert_ne!(out.status.code(), Some(0), "released: {}", stderr(&out));
}

/// The second trial: a station operator signed entries by hand with his own
/// key — a disposal of a secret medium to external reuse, an approver's
/// countersignature of no certificate, a certificate entry with no
/// certificate behind it — and `verify` called the ledger intact.
#[test]
fn entries_signed_by_hand_are_held_to_the_rules_certwipe_writes_by() {
    let office = Office::new();
    let ledger = Path::new(&office.ledger);
    for number in ["S-1", "S-2", "S-3"] {
        office.ok(&["register", number, "--type", "hdd", "--classification", "secret"]);
    }
    append_signed_entry(
        ledger,
        &office.key,
        "S-1",
        "disposal",
        r#"{"destination":"external-reuse","note":null}"#,
    );
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("may not go to external-reuse"), "{said}");
    let (_, listed, _) = office.ledger(&["list"]);
    assert!(listed.contains("NOT AS RECORDED"), "{listed}");
    // Nothing more is built on it.
    office.refused(&["approve", "S-1", "--role", "witness", "--name", "Zhang San"], "does not verify");
    assert_eq!(verify_ledger(&office.ledger, &office.allowed, &[]).0, 1);
}

#[test]
fn an_approval_counts_only_from_an_approver_or_the_records_office() {
    let office = Office::new();
    let ledger = Path::new(&office.ledger);
    let destroy = ["destroy", "S-2", "--method", "shred", "--date", "2026-12-01", "--place", "Room 5"];
    let destroy = [&destroy[..], &["--destroyer", "Li Wei", "--witness", "Zhang San"]].concat();
    office.ok(&["register", "S-2", "--type", "hdd", "--classification", "secret"]);
    // An approver's countersignature of no filed certificate, signed by hand.
    let fake = r#"{"certificate_id":"00000000-0000-0000-0000-000000000000","role":"approver","name":"Chen Jie","statement_sha256":null}"#;
    let forged = office.tampered_copy("forged.sqlite", "SELECT 1;");
    append_signed_entry(&forged, &office.key, "S-2", "countersignature", fake);
    let out = ledger_at(forged.to_str().unwrap(), &office.key, &office.allowed, &destroy);
    assert_ne!(out.status.code(), Some(0), "destroyed on a forged approval: {}", stderr(&out));
    let (code, said) = verify_ledger(forged.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("a countersignature of no certificate filed under the medium"), "{said}");
    // Another station's key recording an approver's approval does not count.
    let (other, line) = key_for(office.dir.path(), "station2", "station-2", &["station"]);
    allow(&office.allowed, &line);
    office.ok_as_clerk(&["init", "--allowed-signers", office.allowed.to_str().unwrap()]);
    let out = ledger_at(
        &office.ledger,
        &other,
        &office.allowed,
        &["approve", "S-2", "--role", "approver", "--name", "Chen Jie"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, _, err) = office.ledger(&destroy);
    assert_eq!(code, 2, "a station approved another station's scrapping: {err}");
    assert!(err.contains("no approval on record"), "{err}");
    // The records office's does; and the witness must be someone else, by sight.
    office.ok_as_clerk(&["approve", "S-2", "--role", "approver", "--name", "Chen Jie"]);
    let look_alike = [&destroy[..destroy.len() - 1], &["Li W\u{0435}i"]].concat();
    let (code, _, err) = office.ledger(&look_alike);
    assert_eq!(code, 2, "a look-alike name witnessed: {err}");
    assert!(err.contains("must be someone else"), "{err}");
    office.ok(&destroy);
    // A certificate entry with no certificate behind it.
    office.ok(&["register", "S-3", "--type", "hdd", "--classification", "secret"]);
    let claim =
        r#"{"model":"Samsung 870","status":"erased","category":"purge","method":"nvme-crypto-erase"}"#;
    append_signed_entry(ledger, &office.key, "S-3", "certificate", claim);
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("it names no filed certificate"), "{said}");
}

/// The second trial: a certificate's ledger entry edited to claim more than
/// the certificate (a purge), re-signed by hand as a second entry.
#[test]
fn a_certificate_entry_says_what_its_certificate_says() {
    let office = Office::new();
    office.ok(&["register", "C-1", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate("c1", &["--asset", "C-1", "--classification", "secret"], false);
    office.ok(&["import", cert.to_str().unwrap()]);
    let (_, exported, _) = office.ledger(&["export", "--json"]);
    assert!(exported.contains("\"verify_mode\": \"last\""), "{exported}");
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    let data: String =
        db.query_row("SELECT data FROM entries WHERE kind = 'certificate'", [], |r| r.get(0)).unwrap();
    drop(db);
    let claim = data.replace("\"category\":\"clear\"", "\"category\":\"purge\"");
    assert_ne!(claim, data);
    append_signed_entry(Path::new(&office.ledger), &office.key, "C-1", "certificate", &claim);
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("more than one certificate entry"), "{said}");
}

/// The second trial: a key retired (valid-before) appended an entry dated
/// inside its validity after the last entry; the next writer would have
/// sealed it. Its retirement must be recorded first.
#[test]
fn a_retired_keys_backdated_entry_is_not_built_upon() {
    let office = Office::new();
    office.ok(&["register", "R-1", "--type", "hdd", "--classification", "secret"]);
    let written = std::time::SystemTime::now();
    let stamp = |t: std::time::SystemTime| {
        humantime::format_rfc3339_seconds(t).to_string().replace(['-', ':', 'T'], "")
    };
    let valid_before = written + std::time::Duration::from_secs(2);
    let (retired, line) = key_for(office.dir.path(), "retired", "station-9", &["station"]);
    let line = String::from_utf8(line)
        .unwrap()
        .replace("namespaces=", &format!("valid-before=\"{}\",namespaces=", stamp(valid_before)));
    allow(&office.allowed, line.as_bytes());
    // valid-before counts whole seconds, inclusive: wait until the next one is over.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let at = humantime::format_rfc3339_millis(written + std::time::Duration::from_secs(1)).to_string();
    let data = r#"{"role":"approver","name":"Chen Jie","title":null,"note":null}"#;
    append_signed_entry_at(Path::new(&office.ledger), &retired, "R-1", "approval", data, &at);
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("record the key's retirement first"), "{said}");
    office.refused(
        &["register", "R-2", "--type", "hdd", "--classification", "secret"],
        "record the key's retirement first",
    );
    // Recorded by the records office, the ledger goes on.
    office.ok_as_clerk(&["init", "--allowed-signers", office.allowed.to_str().unwrap()]);
    office.ok(&["register", "R-2", "--type", "hdd", "--classification", "secret"]);
}

/// The second trial: `wipe --ledger` noted its newest entry in the state
/// directory it was given, while `ledger` commands looked elsewhere; and a
/// ledger named `./l.sqlite` was another ledger to the note than its full path.
#[test]
fn every_command_keeps_one_note_of_the_newest_entry_whatever_the_path() {
    let office = Office::new();
    office.ok(&["register", "W-1", "--type", "hdd", "--classification", "secret"]);
    office.certificate("noted", &["--asset", "W-1", "--classification", "secret"], true);
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute_batch(
        "DELETE FROM entries WHERE kind IN ('certificate', 'reclassify', 'countersignature'); DELETE FROM countersignatures; DELETE FROM certificates;",
    )
    .unwrap();
    drop(db);
    let (code, said) = verify_ledger(&office.ledger, &office.allowed, &[]);
    assert_eq!(code, 1, "the cut went unseen by `ledger verify`: {said}");
    assert!(said.contains("which this station wrote"), "{said}");
    let name = Path::new(&office.ledger).file_name().unwrap().to_str().unwrap().to_string();
    let (key, allowed) = (office.key.to_str().unwrap(), office.allowed.to_str().unwrap());
    let out = certwipe_command()
        .current_dir(Path::new(&office.ledger).parent().unwrap())
        .args(["ledger", "--ledger", &format!("./{name}"), "--sign-key", key, "--allowed-signers", allowed])
        .args(["register", "W-2", "--type", "hdd", "--classification", "secret"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "built on a cut ledger by another name: {}", stderr(&out));
    assert!(stderr(&out).contains("newer entries were cut off"), "{}", stderr(&out));
}
