//! Attacks that once got past certwipe (issue 12), each performed for real and
//! asserted refused. `docs/bad-inputs.md` lists them with what certwipe says.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn signed_certificate(station: &Station, name: &str) -> std::path::PathBuf {
    let disk = station.dir.path().join(name);
    make_file(&disk, 1 << 20);
    station.wipe(&disk, &[])
}

#[test]
fn planted_links_for_temporary_names_never_redirect_a_write() {
    let station = Station::new();
    let cert = signed_certificate(&station, "links.img");
    let out = station.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = station.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // The old temporary names were `.<name>.tmp<pid>`: plant links for the next pids.
    let first = std::process::id();
    for pid in first..first + 3000 {
        for name in ["o.pdf", "r.json"] {
            std::os::unix::fs::symlink(&victim, out.join(format!(".{name}.tmp{pid}"))).unwrap();
        }
    }
    let disk = station.dir.path().join("disk.img");
    make_file(&disk, 1 << 20);
    let report = out.join("r.json");
    let wiped = certwipe(&["wipe", "--yes", "--report", report.to_str().unwrap(), disk.to_str().unwrap()]);
    assert_eq!(wiped.status.code(), Some(0), "{}", stderr(&wiped));
    if Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists() {
        let pdf = out.join("o.pdf");
        let printed = certwipe(&["cert", "pdf", cert.to_str().unwrap(), "-o", pdf.to_str().unwrap()]);
        assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "a planted link redirected a write");
    assert!(std::fs::read_to_string(&report).unwrap().contains("certwipe.report/v1"));
}

#[test]
fn a_certificate_with_two_readings_is_refused() {
    let station = Station::new();
    let cert = signed_certificate(&station, "twice.img");
    let text = std::fs::read_to_string(&cert).unwrap();
    assert!(text.contains("    \"status\": \"erased\",\n"));
    let attacks = [
        // Two "status" keys: a first-wins reader sees failed, serde the last.
        (
            "duplicate key",
            text.replace(
                "    \"status\": \"erased\",\n",
                "    \"status\": \"failed\",\n    \"status\": \"erased\",\n",
            ),
        ),
        // Two operators, deep inside the records.
        (
            "duplicate key",
            text.replace("\"name\": \"Li Wei\",", "\"name\": \"Chief\",\n      \"name\": \"Li Wei\","),
        ),
        ("canonical form", text.replace("\"status\": \"erased\"", "\"status\": \"\\u0065rased\"")),
        (
            "canonical form",
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap(),
        ),
        ("canonical form", text.replace("\n", "\r\n")),
    ];
    for (expected, forged) in attacks {
        assert_ne!(forged, text);
        std::fs::write(&cert, &forged).unwrap();
        station.resign(&cert);
        let (code, output) = station.verify(&cert);
        assert_eq!(code, 1, "a re-signed certificate with two readings was accepted: {output}");
        assert!(output.contains(expected), "expected {expected:?} in {output}");
        let shown = certwipe(&["cert", "show", cert.to_str().unwrap()]);
        assert_ne!(shown.status.code(), Some(0), "cert show displayed a certificate with two readings");
    }
}

/// `ssh-keygen -Y verify` at the certificate's own issue time, as certwipe checks it.
fn ssh_keygen_accepts(allowed: &Path, principal: &str, cert: &Path) -> bool {
    let text = std::fs::read_to_string(cert).unwrap();
    let issued: serde_json::Value = serde_json::from_str(&text).unwrap();
    let time = humantime::parse_rfc3339(issued["issued_at"].as_str().unwrap()).unwrap();
    let stamp = humantime::format_rfc3339_seconds(time).to_string().replace(['-', ':', 'T'], "");
    ssh_keygen_verifies_at(
        allowed,
        principal,
        &certwipe::cert::files::signature_path(cert),
        cert,
        Some(&stamp),
    )
}

#[test]
fn allowed_signers_lines_mean_to_certwipe_what_they_mean_to_ssh_keygen() {
    let station = Station::new();
    let cert = signed_certificate(&station, "signers.img");
    let public = std::fs::read_to_string(format!("{}.pub", station.key.display())).unwrap();
    let key = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let blob = key.split_whitespace().nth(1).unwrap().to_string();
    let other = station.dir.path().join("other");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status();
    assert!(made.unwrap().success());
    let other_public = std::fs::read_to_string(format!("{}.pub", other.display())).unwrap();
    let other_key = other_public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let lines = [
        "station-1 <KEY>",
        "station-1 namespaces=\"certwipe\" <KEY>",
        "station-1 NAMESPACES=\"certwipe\" <KEY>",
        "station-1 NAMESPACES=\"other\" <KEY>",
        "station-1 CERT-AUTHORITY <KEY>",
        "station-1 cert-authority <KEY>",
        "station-1 foo=\"bar\" <KEY>",
        "station-1 namespaces=\"certwipe\",namespaces=\"other\" <KEY>",
        "station-1,!station-1 <KEY>",
        "\"\" <KEY>",
        "* <KEY>",
        "station-? <KEY>",
        "station-1,station-2 <KEY>",
        "\"station-1,station-2\" <KEY>",
        "!other,station-1 <KEY>",
        "*,!station-1 <KEY>",
        "Station-1 <KEY>",
        "station-1 namespaces=\"cert*\" <KEY>",
        "station-1 namespaces=\"!certwipe,*\" <KEY>",
        "station-1 namespaces=\"\" <KEY>",
        "station-1 namespaces=certwipe <KEY>",
        "station-1 namespaces=\"git,certwipe\" <KEY>",
        "station-1 namespaces=\"git, certwipe\" <KEY>",
        "station-1 valid-after=\"20000101\" <KEY>",
        "station-1 valid-before=\"20000101\" <KEY>",
        "station-1 valid-after=\"29991231Z\" <KEY>",
        "station-1 valid-after=\"2000-01-01\" <KEY>",
        "station-1 valid-after=\"20300101\",valid-before=\"20200101\" <KEY>",
        "station-1 valid-after=\"20000101\",valid-before=\"29990101Z\" <KEY>",
        "station-1 namespaces=\"certwipe\",valid-before=\"20000101\" <KEY>",
        "station-1 <OTHER>",
        "station-1 ssh-rsa <BLOB>",
        "station-1 SSH-ED25519 <BLOB>",
        "station-1 <BLOB>",
        "  station-1\t<KEY> trailing comment",
        "station-1 namespaces=\"certwipe\", <KEY>",
        "station-1 ,namespaces=\"certwipe\" <KEY>",
        "station-1 cert-authorityX <KEY>",
        "# station-1 <KEY>",
        "station-1 foo=\"bar\" <KEY>\nstation-1 <KEY>",
        "station-1 valid-before=\"20000101\" <KEY>\nstation-1 <KEY>",
        "\"station-1 <KEY>",
        "station-1 <KEY>\r",
        "station-1",
        "* namespaces=\"certwipe\" <KEY>",
        "station-? namespaces=\"certwipe\" <KEY>",
        "\"station-1,station-2\" namespaces=\"certwipe\" <KEY>",
        "!other,station-1 namespaces=\"certwipe\" <KEY>",
        "  station-1\tnamespaces=\"certwipe\" <KEY> trailing comment",
        "station-1 namespaces=\"certwipe\",valid-after=\"20000101\" <KEY>",
        "station-1 namespaces=\"certwipe-ledger,certwipe\" <KEY>",
        "station-1 namespaces=\"certwipe-ledger\" <KEY>",
        "station-1 namespaces=\"certwipe-*\" <KEY>",
    ];
    let allowed = station.dir.path().join("allowed-variant");
    let mut accepted = 0;
    for line in lines {
        let text = line.replace("<KEY>", &key).replace("<OTHER>", &other_key).replace("<BLOB>", &blob) + "\n";
        std::fs::write(&allowed, &text).unwrap();
        let ours = certwipe(&[
            "cert",
            "verify",
            cert.to_str().unwrap(),
            "--allowed-signers",
            allowed.to_str().unwrap(),
            "--principal",
            "station-1",
        ]);
        let theirs = ssh_keygen_accepts(&allowed, "station-1", &cert);
        let ours = ours.status.code() == Some(0);
        // certwipe never accepts what ssh-keygen refuses; it refuses more in
        // one case only: a line without namespaces=, which OpenSSH reads as
        // any namespace, grants no certwipe duty.
        let names_namespaces = line.to_lowercase().contains("namespaces=");
        assert!(
            ours == theirs || (theirs && !ours && !names_namespaces),
            "{line:?}: certwipe ({ours}) and ssh-keygen ({theirs}) disagree"
        );
        accepted += usize::from(ours);
    }
    assert!(
        accepted >= 12 && accepted <= lines.len() - 20,
        "the table should hold both kinds ({accepted} accepted)"
    );
    // Without --principal, a line that grants no name grants nothing, and the name
    // shown is one ssh-keygen accepts.
    let cases = [
        ("station-1,!station-1 namespaces=\"certwipe\" <KEY>", None),
        ("\"\" namespaces=\"certwipe\" <KEY>", None),
        ("a,b,!c namespaces=\"certwipe\" <KEY>", Some("good signature by a, b")),
        ("a,b <KEY>", None),
    ];
    for (line, shown) in cases {
        std::fs::write(&allowed, line.replace("<KEY>", &key) + "\n").unwrap();
        let out = certwipe(&[
            "cert",
            "verify",
            cert.to_str().unwrap(),
            "--allowed-signers",
            allowed.to_str().unwrap(),
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code() == Some(0), shown.is_some(), "{line}: {said}");
        if let Some(shown) = shown {
            assert!(said.contains(shown), "{said}");
            assert!(ssh_keygen_accepts(&allowed, "a", &cert) && ssh_keygen_accepts(&allowed, "b", &cert));
        } else {
            assert!(!said.contains("good signature by"), "{said}");
        }
    }
}

#[test]
fn nobody_countersigns_twice_and_the_station_never_vouches_for_itself() {
    let station = Station::new();
    let cert = signed_certificate(&station, "duties.img");
    // The station's own key as witness and as approver: its line grants it no
    // such duty, whatever the signature's namespace (the role's, or the old
    // shared `certwipe`).
    for role in ["witness", "approver"] {
        let out = countersign(&cert, &station.key, role, "Station", &station.allowed, &[]);
        assert_eq!(out.status.code(), Some(2), "the station countersigned its own certificate");
        let refusal = format!("not permitted for use in signature namespace \"certwipe-{role}\"");
        assert!(stderr(&out).contains(&refusal), "{}", stderr(&out));
        for namespace in [None, Some("certwipe")] {
            forge_countersignature(
                &cert,
                &station.key,
                &Forgery { namespace, ..Forgery::new(role, "Station") },
                1,
            );
            let (code, output) = station.verify(&cert);
            assert_eq!(code, 1, "{output}");
            assert!(output.contains(&refusal), "{output}");
            remove_countersignature(&cert, role, 1);
        }
    }
    // Listed a second time, under another principal, with those duties: still
    // the station's key, which may sign a certificate once.
    let deputy =
        format!("deputy namespaces=\"certwipe-witness,certwipe-approver\" {}\n", public_of(&station.key));
    allow(&station.allowed, deputy.as_bytes());
    for role in ["witness", "approver"] {
        let out = countersign(&cert, &station.key, role, "Deputy", &station.allowed, &[]);
        assert_eq!(out.status.code(), Some(2), "the station countersigned its own certificate");
        assert!(stderr(&out).contains("already signed this certificate as station"), "{}", stderr(&out));
        forge_countersignature(&cert, &station.key, &Forgery::new(role, "Deputy"), 1);
        let (code, output) = station.verify(&cert);
        assert_eq!(code, 1, "{output}");
        assert!(output.contains("already signed this certificate as station"), "{output}");
        remove_countersignature(&cert, role, 1);
    }
    // Another key for the same principal as the station.
    let (twin, twin_line) = key_for(station.dir.path(), "twin", "station-1", &["witness"]);
    allow(&station.allowed, &twin_line);
    let out = countersign(&cert, &twin, "witness", "Twin", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("principal \"station-1\""), "{}", stderr(&out));
    forge_countersignature(&cert, &twin, &Forgery::new("witness", "Twin"), 1);
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 1);
    assert!(output.contains("separation of duties"), "{output}");
    remove_countersignature(&cert, "witness", 1);
    // A witness's key that is also listed as the station: every principal of
    // a key counts, not the first line's.
    let (double, double_line) = key_for(station.dir.path(), "double", "zhao.liu", &["witness"]);
    allow(&station.allowed, &double_line);
    allow(&station.allowed, format!("station-1 namespaces=\"certwipe\" {}\n", public_of(&double)).as_bytes());
    let out = countersign(&cert, &double, "witness", "Zhao Liu", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("principal \"station-1\""), "{}", stderr(&out));
    forge_countersignature(&cert, &double, &Forgery::new("witness", "Zhao Liu"), 1);
    assert!(station.verify(&cert).1.contains("separation of duties"));
    remove_countersignature(&cert, "witness", 1);
    // One person, two roles.
    let (witness, witness_line) =
        key_for(station.dir.path(), "witness", "zhang.san", &["witness", "approver"]);
    allow(&station.allowed, &witness_line);
    let out = countersign(&cert, &witness, "witness", "Zhang San", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(station.verify(&cert).0, 0);
    let out = countersign(&cert, &witness, "approver", "Zhang San", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already signed this certificate as witness"), "{}", stderr(&out));
    forge_countersignature(&cert, &witness, &Forgery::new("approver", "Zhang San"), 1);
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("approver: BAD signature") && output.contains("as witness"), "{output}");
    remove_countersignature(&cert, "approver", 1);
    // Keys are not people: a second key whose statement names the operator,
    // or the witness again, in other case, spacing or look-alike letters.
    let (other, other_line) = key_for(station.dir.path(), "other", "wang.wu", &["approver"]);
    allow(&station.allowed, &other_line);
    for (name, role) in [("L\u{0456}  WEI", "operator"), ("zhang san", "witness")] {
        let out = countersign(&cert, &other, "approver", name, &station.allowed, &[]);
        assert_eq!(out.status.code(), Some(2), "{name} countersigned as another person");
        assert!(
            stderr(&out).contains(&format!("already appears on this certificate as {role}")),
            "{}",
            stderr(&out)
        );
        forge_countersignature(&cert, &other, &Forgery::new("approver", name), 1);
        let (code, output) = station.verify(&cert);
        assert_eq!(code, 1, "{output}");
        assert!(output.contains("separation of duties"), "{output}");
        remove_countersignature(&cert, "approver", 1);
    }
    let out = countersign(&cert, &other, "approver", "Wang Wu", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_certificate_forged_with_any_key_is_never_reported_verified() {
    let station = Station::new();
    let cert = signed_certificate(&station, "forged.img");
    let forger = station.dir.path().join("forger");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&forger)
            .status()
            .unwrap()
            .success()
    );
    let text = std::fs::read_to_string(&cert).unwrap();
    std::fs::write(&cert, text.replace("\"Li Wei\"", "\"Forger\"")).unwrap();
    let forging =
        Station { dir: tempfile::tempdir().unwrap(), key: forger.clone(), allowed: station.allowed.clone() };
    forging.resign(&cert);
    // No allowed signers: intact, but not verified.
    let out = certwipe(&["cert", "verify", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("signature intact, signer not checked (key SHA256:"), "{said}");
    assert!(!said.contains(": valid"), "{said}");
    let out = certwipe(&["cert", "verify", "--json", cert.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["valid"].as_bool(), json["verdict"].as_str()),
        (Some(false), Some("signer-not-checked"))
    );
    // With them: refused.
    assert_eq!(station.verify(&cert).0, 1);
    // A ledger without allowed signers files nothing; one with them refuses the forgery.
    let ledger = station.dir.path().join("ledger.sqlite");
    let ledger_cmd =
        |args: &[&str]| ledger_at(ledger.to_str().unwrap(), &station.key, &station.allowed, args);
    let out = ledger_cmd(&["register", "LEDGER-0042", "--type", "hdd", "--classification", "confidential"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("there is no ledger at") && stderr(&out).contains("ledger init"),
        "{}",
        stderr(&out)
    );
    assert!(!ledger.exists(), "a command other than ledger init created a ledger");
    let out = ledger_cmd(&["import", cert.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("there is no ledger at"), "{}", stderr(&out));
    assert_eq!(ledger_cmd(&["init"]).status.code(), Some(0));
    assert_eq!(
        ledger_cmd(&["register", "LEDGER-0042", "--type", "hdd", "--classification", "confidential"])
            .status
            .code(),
        Some(0)
    );
    let out = ledger_cmd(&["import", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not listed in the allowed-signers file"), "{}", stderr(&out));
    // A forger's key cannot write to the ledger either.
    let out = ledger_at(
        ledger.to_str().unwrap(),
        &forger,
        &station.allowed,
        &["approve", "LEDGER-0042", "--role", "approver", "--name", "Forger"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("may not write to this ledger"), "{}", stderr(&out));
}

#[test]
fn a_medium_keeps_the_highest_level_any_certificate_records() {
    let office = Office::new();
    office.ok(&["register", "MJ-1", "--type", "hdd", "--classification", "secret"]);
    let records = ["--asset", "MJ-1", "--classification", "secret", "--destination", "destruction"];
    let higher =
        office.certificate("up", &[&records[..], &["--classification-after", "top-secret"]].concat(), false);
    let said = office.ok(&["import", higher.to_str().unwrap()]);
    assert!(said.contains("classification is now top-secret"), "{said}");
    let shown = office.ok(&["show", "MJ-1"]);
    assert!(shown.contains("top-secret (绝密)") && shown.contains("reclassify"), "{shown}");
    // A later certificate at the old level would downgrade it: refused.
    let lower = office.certificate("again", &records, false);
    office.refused(&["import", lower.to_str().unwrap()], "can never be lowered");
    assert!(office.ok(&["verify"]).contains("intact"));
    // Lowering it in the database behind the ledger's back is caught, and nothing
    // is written on top of it.
    let copy = office
        .tampered_copy("lowered.sqlite", "UPDATE media SET classification = 'secret' WHERE number = 'MJ-1';");
    let (code, said) = verify_ledger(copy.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1);
    assert!(said.contains("held at secret but its entries say top-secret"), "{said}");
    let out =
        ledger_at(copy.to_str().unwrap(), &office.key, &office.allowed, &["import", lower.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
}

#[test]
fn a_ledger_rewritten_without_a_station_key_is_caught_and_not_written_on() {
    let office = Office::new();
    office.ok(&["register", "MJ-2", "--type", "hdd", "--classification", "secret"]);
    office.ok(&["approve", "MJ-2", "--role", "witness", "--name", "Zhang San"]);
    // Downgrade the registration, fix the media table, recompute every hash.
    let copy = office.tampered_copy("rewritten.sqlite", "UPDATE media SET classification = 'unclassified';");
    {
        let db = rusqlite::Connection::open(&copy).unwrap();
        let rows: Vec<(i64, String, String, String, String)> = db
            .prepare("SELECT seq, number, kind, at, data FROM entries ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut prev = certwipe::ledger::chain::GENESIS.to_string();
        for (seq, number, kind, at, data) in rows {
            let data = data.replace("\"secret\"", "\"unclassified\"");
            let hash = certwipe::ledger::chain::entry_hash(&prev, seq, &number, &kind, &at, &data);
            db.execute(
                "UPDATE entries SET data = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
                rusqlite::params![data, prev, hash, seq],
            )
            .unwrap();
            prev = hash;
        }
    }
    let (code, said) = verify_ledger(copy.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1, "a rewritten chain passed: {said}");
    assert!(said.contains("its signature does not verify"), "{said}");
    let dispose = |path: &Path| {
        ledger_at(
            path.to_str().unwrap(),
            &office.key,
            &office.allowed,
            &["dispose", "MJ-2", "--destination", "recycling"],
        )
    };
    let out = dispose(&copy);
    assert_eq!(out.status.code(), Some(1), "a downgraded medium was released");
    // The newest entry is checked before anything is chained to it.
    assert!(stderr(&out).contains("newest entry does not verify"), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing was written"), "{}", stderr(&out));
    // Stripping the signatures instead.
    let stripped = office.tampered_copy("stripped.sqlite", "UPDATE entries SET signature = NULL;");
    let (code, said) = verify_ledger(stripped.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1);
    assert!(said.contains("is not signed"), "{said}");
    assert_ne!(dispose(&stripped).status.code(), Some(0));
}

#[test]
fn cutting_off_the_newest_entries_is_caught_by_a_kept_head() {
    let office = Office::new();
    office.ok(&["register", "MJ-3", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate(
        "cut",
        &["--asset", "MJ-3", "--classification", "secret", "--destination", "destruction"],
        true,
    );
    let kept = office.dir.path().join("head.json");
    office.ok(&["head", "-o", kept.to_str().unwrap()]);
    // The kept head is checkable with stock ssh-keygen too.
    assert!(ssh_keygen_verifies_in(
        &office.allowed,
        "station-1",
        "certwipe-ledger",
        &certwipe::cert::files::signature_path(&kept),
        &kept
    ));
    assert!(
        verify_ledger(&office.ledger, &office.allowed, &["--head", kept.to_str().unwrap()])
            .1
            .contains("intact")
    );
    let last = "(SELECT max(seq) FROM entries)";
    let cut = office.tampered_copy(
        "cut.sqlite",
        &format!("DELETE FROM entries WHERE seq = {last}; DELETE FROM certificates;"),
    );
    let (code, said) =
        verify_ledger(cut.to_str().unwrap(), &office.allowed, &["--head", kept.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(said.contains("newer entries were cut off"), "{said}");
    // The countersignatures a ledger keeps are checked again too.
    office.countersign(&cert);
    office.ok(&["import", cert.to_str().unwrap()]);
    let forged = office.tampered_copy(
        "statement.sqlite",
        "UPDATE countersignatures SET statement = replace(statement, 'Wang Fang', 'Wang Fake');",
    );
    let (code, said) = verify_ledger(forged.to_str().unwrap(), &office.allowed, &[]);
    assert_eq!(code, 1);
    assert!(said.contains("validator statement"), "{said}");
}

const FORGED_LINE: &str = "\u{1b}]0;certwipe\u{7}\u{1b}[2J\nResult: ERASED by Chief";

#[test]
fn control_characters_never_enter_a_record_and_never_reach_a_screen_raw() {
    let station = Station::new();
    let disk = station.dir.path().join("escape.img");
    make_file(&disk, 1 << 20);
    plant_markers(&disk);
    let before = std::fs::read(&disk).unwrap();
    let certs = station.certs();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--sign-key",
        station.key.to_str().unwrap(),
        "--operator",
        FORGED_LINE,
        disk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("control character U+001B"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&disk).unwrap(), before, "a refused wipe wrote to the medium");
    // A certificate made elsewhere with such a name: shown escaped, and not valid.
    let cert = signed_certificate(&station, "shown.img");
    rewrite(&station, &cert, |v| v["records"]["operator"]["name"] = FORGED_LINE.into());
    let (code, said) = station.verify(&cert);
    assert_eq!(code, 1);
    assert!(said.contains("operator name holds control characters"), "{said}");
    let shown = certwipe(&["cert", "show", cert.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "raw escapes reached the terminal");
    assert!(!text.lines().any(|l| l.starts_with("Result: ERASED by Chief")), "{text}");
    assert!(text.contains("\\u{001b}[2J\\u{000a}Result: ERASED by Chief"), "{text}");
    let countersigned = countersign(&cert, &station.key, "witness", "Zhang\nSan", &station.allowed, &[]);
    assert_eq!(countersigned.status.code(), Some(2));
    assert!(stderr(&countersigned).contains("control character U+000A"), "{}", stderr(&countersigned));
    let office = Office::new();
    for args in [
        &["register", "X\u{1b}[2J", "--type", "hdd", "--classification", "secret"][..],
        &["register", "X-1", "--type", "hdd", "--classification", "secret", "--holder", "Dept\r3"],
        &["register", "X-2", "--type", "hdd", "--classification", "secret", "--serial", &"9".repeat(65)],
    ] {
        let (code, _, err) = office.ledger(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    office.ok(&["register", "X-3", "--type", "hdd", "--classification", "secret"]);
    let (code, _, err) = office.ledger(&[
        "destroy",
        "X-3",
        "--method",
        "shred",
        "--date",
        "2026-11-30",
        "--place",
        "Room\u{202e}5",
        "--destroyer",
        "a",
        "--witness",
        "b",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn absurd_sizes_are_refused_before_they_cost_time_or_memory() {
    let station = Station::new();
    let disk = station.dir.path().join("limits.img");
    make_file(&disk, 1 << 20);
    let many = vec!["0x00"; 10_000].join(",");
    let started = std::time::Instant::now();
    let out = certwipe(&["wipe", "--yes", "--passes", &many, disk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("10000 passes in all is more than the 256"), "{}", stderr(&out));
    let out = certwipe(&["wipe", "--yes", "--method", "gutmann", "--rounds", "8", disk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // A 200 MB certificate (sparse) is refused unread.
    let cert = signed_certificate(&station, "huge.img");
    std::fs::OpenOptions::new().write(true).open(&cert).unwrap().set_len(200 << 20).unwrap();
    let (code, said) = station.verify(&cert);
    assert_eq!(code, 1);
    assert!(said.contains("refused unread"), "{said}");
    let out = certwipe(&["cert", "pdf", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "refusing took {:?}", started.elapsed());
}

#[test]
fn the_pdf_keeps_long_values_on_the_page_and_shows_missing_glyphs_as_code_points() {
    if !pdf_tools_present() {
        return;
    }
    let station = Station::new();
    let cert = signed_certificate(&station, "pdf.img");
    let long = "L".repeat(10_000);
    rewrite(&station, &cert, |v| {
        v["records"]["asset_number"] = long.clone().into();
        v["records"]["notes"] = "مرحبا 😀 ok".into();
    });
    let pdf = station.dir.path().join("long.pdf");
    let out = certwipe(&["cert", "pdf", cert.to_str().unwrap(), "-o", pdf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("U+0645") && stderr(&out).contains("U+1F600"), "{}", stderr(&out));
    let text = pdf_text(&pdf, &[]);
    assert!(text.contains("<U+1F600>") && text.contains("<U+0645>"), "{text}");
    let bbox = pdf_text(&pdf, &["-bbox"]);
    let mut words = 0;
    for line in bbox.lines().filter(|l| l.trim_start().starts_with("<word")) {
        let x_max: f32 = line.split("xMax=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(x_max <= 595.0, "text runs off the page: {line}");
        words += 1;
    }
    assert!(words > 100, "{bbox}");
}

#[test]
fn a_certificate_that_cannot_be_filed_is_refused_before_the_wipe_whatever_the_reason() {
    let office = Office::new();
    let disk = office.dir.path().join("unfiled.img");
    make_file(&disk, 1 << 20);
    plant_markers(&disk);
    let before = std::fs::read(&disk).unwrap();
    let certs = office.dir.path().join("certs");
    let ledger = office.ledger.as_str();
    office.ok(&["register", "TS-1", "--type", "hdd", "--classification", "top-secret"]);
    office.ok(&["register", "D-1", "--type", "hdd", "--classification", "secret"]);
    office.ok_as_clerk(&["approve", "D-1", "--role", "approver", "--name", "Chen Jie"]);
    let destroy = ["destroy", "D-1", "--method", "shred", "--date", "2026-11-30", "--place", "Room 5"];
    office.ok(&[&destroy[..], &["--destroyer", "Li Wei", "--witness", "Zhang San"]].concat());
    let (key, allowed) = (office.key.to_str().unwrap(), office.allowed.to_str().unwrap());
    let signed = ["--sign-key", key, "--allowed-signers", allowed];
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--unsigned", "--asset", "NOPE"], "files signed certificates"),
        (vec!["--sign-key", key, "--asset", "NOPE"], "give --allowed-signers"),
        ([&signed[..], &["--asset", "NOPE"]].concat(), "register it first"),
        // Every rule the ledger will apply, before the first byte (issue 15):
        // a top-secret medium declared unclassified and sent to reuse...
        (
            [
                &signed[..],
                &["--asset", "TS-1", "--classification", "unclassified", "--destination", "internal-reuse"],
            ]
            .concat(),
            "can never be lowered",
        ),
        // ...or with no level given (the ledger's is its level)...
        (
            [&signed[..], &["--asset", "TS-1", "--destination", "internal-reuse"]].concat(),
            "may not go to internal-reuse",
        ),
        // ...and a medium already destroyed.
        ([&signed[..], &["--asset", "D-1", "--destination", "destruction"]].concat(), "already destroyed"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["wipe", "--yes", "--cert-dir", certs.to_str().unwrap(), "--ledger", ledger];
        args.extend_from_slice(&extra);
        args.push(disk.to_str().unwrap());
        let out = certwipe(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert_eq!(std::fs::read(&disk).unwrap(), before);
    }
}

/// Issue 15: what a device reports reaches the certificate escaped, a path
/// with hidden characters is refused, and a certificate whose medium text
/// holds them raw (re-signed) does not verify.
#[test]
fn a_hostile_device_string_never_reaches_a_record_or_a_screen_raw() {
    let station = Station::new();
    let hostile = station.dir.path().join("evil\u{1b}[2J\nResult ERASED.img");
    make_file(&hostile, 1 << 20);
    let out = certwipe(&["wipe", "--yes", hostile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("control or invisible characters") && !stderr(&out).contains('\u{1b}'));
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--operator",
        "Li\u{200b} Wei",
        "--cert-dir",
        station.certs().to_str().unwrap(),
        "--unsigned",
        hostile.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let cert = signed_certificate(&station, "serial.img");
    rewrite(&station, &cert, |v| v["medium"]["serial"] = "S1\u{1b}]0;x\u{7}".into());
    let (code, said) = station.verify(&cert);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("the medium's serial holds control or invisible characters"), "{said}");
    assert!(!said.contains('\u{1b}'));
    if !have_root() {
        return;
    }
    // A loop device over a file whose name is an escape sequence: the name
    // reaches the certificate escaped, and the certificate verifies.
    let dir = scratch_dir(Backing::Disk);
    let file = dir.path().join("stick\u{1b}[2J.img");
    make_file(&file, 4 << 20);
    let device = LoopDevice::attach(dir, file, 512, &[]);
    let cert = station.wipe(&device.path, &[]);
    let (code, said) = station.verify(&cert);
    assert_eq!(code, 0, "{said}");
    let text = std::fs::read_to_string(&cert).unwrap();
    assert!(text.contains("stick\\\\u{001b}[2J.img") && !text.contains("\\u001b"), "{text}");
    let shown = certwipe(&["cert", "show", cert.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&shown.stdout).contains('\u{1b}'));
}

/// Issue 15: a drive's own erase (NVMe Format, purge) recorded on an image
/// file and re-signed.
#[test]
fn a_drive_erase_claimed_on_an_image_file_does_not_verify() {
    let station = Station::new();
    let cert = signed_certificate(&station, "purge.img");
    rewrite(&station, &cert, |v| {
        let s = &mut v["sanitization"];
        s["category"] = "purge".into();
        s["technique"] = "format-user-data-erase".into();
        s["method"]["id"] = "format-user-data-erase".into();
        s["verify_mode"] = "sample".into();
        s["passes"] = serde_json::json!([]);
        s["final_content_digest"] = serde_json::Value::Null;
        s["firmware"] = serde_json::json!({
            "technique": "format-user-data-erase",
            "protocol": "nvme",
            "command": "Format NVM (SES=1)",
            "command_bytes": "80 00000001 00000000 00000000 00000000 00000000 00000200",
            "chosen_because": "the strongest offered",
            "drive_reported_success": true,
            "drive_status": "success",
            "started_at": s["started_at"],
            "finished_at": s["finished_at"],
            "seconds": 1.0,
            "drive_estimate_seconds": null,
            "notes": [],
            "verification": {
                "sample": null,
                "bytes": 1048576,
                "coverage": 1.0,
                "before_sha256": "00",
                "marker": {"generator": "chacha8", "seed": "0".repeat(64)},
                "expected": "indeterminate",
                "marker_remaining": [],
                "unexpected": [],
                "unreadable": [],
                "result": "passed"
            }
        });
    });
    let (code, said) = station.verify(&cert);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("which has no drive firmware"), "{said}");
    assert!(said.contains("the drive never answered"), "{said}");
    assert!(said.contains("a nvme command cannot reach a drive over transport file"), "{said}");
}

/// Issue 15: `cert pdf` of a certificate the judge rejects printed "ERASED"
/// and "digital signature valid".
#[test]
fn a_rejected_certificate_is_never_printed_as_valid() {
    if !pdf_tools_present() {
        return;
    }
    let station = Station::new();
    let cert = signed_certificate(&station, "reject.img");
    // Consistent and re-signed, but by a key nobody allows.
    let (stranger, _) = station_key(station.dir.path(), "stranger", "station-1");
    let forger =
        Station { dir: tempfile::tempdir().unwrap(), key: stranger, allowed: station.allowed.clone() };
    forger.resign(&cert);
    let pdf = station.dir.path().join("reject.pdf");
    let out = certwipe(&[
        "cert",
        "pdf",
        cert.to_str().unwrap(),
        "-o",
        pdf.to_str().unwrap(),
        "--allowed-signers",
        station.allowed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("NOT VALID"), "{}", stderr(&out));
    let text = pdf_text(&pdf, &[]);
    assert!(text.contains("NOT VALID") && text.contains("not listed in the allowed-signers file"), "{text}");
    assert!(!text.contains("ERASED") && !text.contains("digital signature valid"), "{text}");
}

/// Issue 15: `identify --from /dev/zero` and `--allowed-signers /dev/zero` read
/// until memory ran out, and a FIFO beside a certificate hung `cert verify`
/// and `ledger import`.
#[test]
fn devices_and_fifos_are_never_read_as_files() {
    let office = Office::new();
    let started = std::time::Instant::now();
    let out = certwipe(&["identify", "--from", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a character device"), "{}", stderr(&out));
    office.ok(&["register", "F-1", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate("fifo", &["--asset", "F-1", "--classification", "secret"], false);
    let out = certwipe(&["cert", "verify", cert.to_str().unwrap(), "--allowed-signers", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    let fifo = format!("{}.witness-1.json", cert.display());
    nix::unistd::mkfifo(Path::new(&fifo), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = certwipe(&[
        "cert",
        "verify",
        cert.to_str().unwrap(),
        "--allowed-signers",
        office.allowed.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("missing or unreadable"), "{said}");
    office.refused(&["import", cert.to_str().unwrap()], "missing or unreadable");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// Issue 15: `--asset-template '{seq:0100000}'` panicked; `--report` naming the
/// target replaced the wiped image with the report; an audit of another file
/// of the same size and content passed.
#[test]
fn a_template_a_report_path_and_an_audit_cannot_be_turned_against_the_record() {
    let out = certwipe(&["station", "--yes", "--asset-template", "{seq:0100000}"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unknown field"), "{}", stderr(&out));
    let station = Station::new();
    let disk = station.dir.path().join("self.img");
    make_file(&disk, 1 << 20);
    plant_markers(&disk);
    let before = std::fs::read(&disk).unwrap();
    let link = station.dir.path().join("link.json");
    std::os::unix::fs::symlink(&disk, &link).unwrap();
    for report in [disk.to_str().unwrap(), link.to_str().unwrap()] {
        let out = certwipe(&["wipe", "--yes", "--report", report, disk.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("is the target"), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read(&disk).unwrap(), before);
    let cert = station.wipe(&disk, &[]);
    let copy = station.dir.path().join("copy.img");
    std::fs::copy(&disk, &copy).unwrap();
    let audit = |target: &Path| {
        certwipe(&[
            "audit",
            target.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--allowed-signers",
            station.allowed.to_str().unwrap(),
        ])
    };
    assert_eq!(audit(&disk).status.code(), Some(0), "{}", stderr(&audit(&disk)));
    let out = audit(&copy);
    assert_eq!(out.status.code(), Some(1), "another file passed the audit");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("it is the file") && said.contains("audit FAILED"), "{said}");
}

/// Issue 15: `wipe /dev/loopN FILE` where FILE backs the loop device wiped one
/// medium twice, as two.
#[test]
fn a_loop_device_and_the_file_behind_it_are_one_medium() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Disk, 1 << 20, 512);
    plant_markers(&device.backing);
    let before = std::fs::read(&device.backing).unwrap();
    let out = certwipe(&["wipe", "--yes", device.path.to_str().unwrap(), device.backing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("it is the file behind {}", device.path.display())),
        "{}",
        stderr(&out)
    );
    let out = certwipe(&["wipe", "--yes", device.backing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read(&device.backing).unwrap(), before, "refused: nothing written");
}

/// The trial after issue 15: `cert pdf -o` over the certificate, its signature
/// or the wiped image, `--report` over a certificate, `ledger head -o` over
/// any file: each replaced a record. Only a file of the same kind certwipe
/// wrote is ever written over.
#[test]
fn outputs_never_write_over_a_record_or_a_medium() {
    let office = Office::new();
    let cert = office.certificate("outputs", &[], false);
    let image = office.dir.path().join("outputs.img");
    let signature = certwipe::cert::files::signature_path(&cert);
    let records: Vec<(std::path::PathBuf, Vec<u8>)> = [cert.clone(), signature.clone(), image.clone()]
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    for target in [&cert, &signature, &image] {
        let out = certwipe(&["cert", "pdf", cert.to_str().unwrap(), "-o", target.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("is not a PDF certwipe wrote"), "{}", stderr(&out));
    }
    let other = office.dir.path().join("other.img");
    make_file(&other, 1 << 20);
    let out = certwipe(&["wipe", "--yes", "--report", cert.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a wipe report certwipe wrote"), "{}", stderr(&out));
    let (code, _, err) = office.ledger(&["head", "-o", cert.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a ledger head certwipe wrote"), "{err}");
    for (path, bytes) in records {
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} was written over", path.display());
    }
    // A PDF of its own, a report, a head are written over as asked.
    let pdf = office.dir.path().join("again.pdf");
    for _ in 0..2 {
        let out = certwipe(&["cert", "pdf", cert.to_str().unwrap(), "-o", pdf.to_str().unwrap()]);
        assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    }
    let head = office.dir.path().join("head.json");
    office.ok(&["head", "-o", head.to_str().unwrap()]);
    office.ok(&["head", "-o", head.to_str().unwrap()]);
    // The second trial: `head -o CERT.json.validator-1` replaced the
    // validator's signature over the certificate with the head's.
    office.countersign(&cert);
    let stem = format!("{}.validator-1", cert.display());
    let countersignature = std::fs::read(format!("{stem}.sig")).unwrap();
    let (code, _, err) = office.ledger(&["head", "-o", &stem]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a signature of this kind certwipe wrote"), "{err}");
    assert_eq!(std::fs::read(format!("{stem}.sig")).unwrap(), countersignature);
}

#[test]
fn a_medium_with_the_longest_name_a_file_may_have_still_gets_its_records() {
    let station = Station::new();
    let name = format!("{}.img", "长".repeat(83)); // 253 bytes: three per character
    let cert = signed_certificate(&station, &name);
    let file_name = cert.file_name().unwrap().to_str().unwrap();
    assert!(file_name.len() < 255 - ".witness-1.statement.sig".len() - ".XXXXXX.tmp".len(), "{file_name}");
    let text = std::fs::read_to_string(&cert).unwrap();
    assert!(text.contains(&name), "the certificate keeps the whole name");
    let (witness, line) = key_for(station.dir.path(), "witness", "zhang.san", &["witness"]);
    allow(&station.allowed, &line);
    let out = countersign(&cert, &witness, "witness", "Zhang San", &station.allowed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 0, "{output}");
}
