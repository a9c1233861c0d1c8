//! Signed certificates end to end: issued by real wipes, checked by certwipe and by
//! stock `ssh-keygen -Y verify`, and rejected by both when anything is wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use certwipe::cert::Certificate;
use certwipe::cert::files::{self, write_certificate};
use certwipe::cert::model::{Category, FLASH_WARNING};
use certwipe::cert::records::{BackedUp, Person, Records};
use certwipe::cert::sign::SigningKey;
use certwipe::device::{self, Access, MediaType, Medium, SystemUse};
use certwipe::engine::events::Silent;
use certwipe::engine::{self, Options};
use certwipe::method::{self, Plan};
use certwipe::report::{PassContent, Status};
use common::*;

fn ssh_keygen(args: &[&str]) {
    let status =
        Command::new("ssh-keygen").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "ssh-keygen {args:?}");
}

fn image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let path = dir.join(name);
    make_file(&path, size);
    plant_markers(&path);
    path
}

fn signature(cert: &Path) -> PathBuf {
    files::signature_path(cert)
}

#[test]
fn a_wiped_image_gets_a_certificate_that_certwipe_and_ssh_keygen_accept() {
    let station = Station::new();
    let disk = image(station.dir.path(), "disk.img", (6 << 20) + 4096);
    let cert_path = station.wipe(&disk, &[]);
    let (code, output) = station.verify(&cert_path);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("good signature by station-1"), "{output}");
    assert!(ssh_keygen_verifies(&station.allowed, "station-1", &signature(&cert_path), &cert_path));

    let cert = Certificate::parse(&std::fs::read(&cert_path).unwrap()).unwrap();
    assert_eq!(cert.sanitization.status, Status::Erased);
    assert_eq!(cert.sanitization.category, Category::Clear);
    assert_eq!(cert.medium.size_bytes, (6 << 20) + 4096);
    assert_eq!(cert.records.asset_number.as_deref(), Some("LEDGER-0042"));
    assert_eq!(cert.records.classification_after, cert.records.classification_before);
    assert_eq!(cert.records.operator.name.as_deref(), Some("Li Wei"));
    // The digest is of what is on the medium, and the last pass regenerates it.
    let content = read_all(&disk);
    let digest = cert.sanitization.final_content_digest.as_ref().expect("full read-back gives a digest");
    assert_eq!(digest.sha256, certwipe::stream::sha256_hex(&content));
    assert_eq!(digest.blake3, blake3::hash(&content).to_hex().to_string());
    let mut regenerated = vec![0u8; content.len()];
    cert.sanitization.passes.last().unwrap().content.data().unwrap().fill(0, &mut regenerated);
    assert!(regenerated == content, "the recorded seed regenerates the medium's content");
}

#[test]
fn a_loop_device_certificate_tells_the_truth_about_the_device() {
    if !have_root() {
        return;
    }
    let station = Station::new();
    let device = LoopDevice::new(Backing::Tmpfs, 12 << 20, 4096);
    plant_markers(&device.path);
    let cert_path = station.wipe(&device.path, &["--method", "dod-short", "--verify", "all"]);
    assert_eq!(station.verify(&cert_path).0, 0);
    assert!(ssh_keygen_verifies(&station.allowed, "station-1", &signature(&cert_path), &cert_path));
    let cert = Certificate::parse(&std::fs::read(&cert_path).unwrap()).unwrap();
    assert_eq!(cert.medium.size_bytes, size_of(&device.path));
    assert_eq!(cert.medium.logical_sector_size, 4096);
    assert_eq!(cert.medium.resolved_path, device.path.to_str().unwrap());
    assert_eq!(cert.medium.media_type, MediaType::Virtual);
    assert_eq!(cert.sanitization.passes.len(), 3);
    let content = read_all(&device.path);
    assert!(!contains_marker(&content));
    let PassContent::Random(stream) = &cert.sanitization.passes[2].content else {
        panic!("pass 3 is random")
    };
    let mut regenerated = vec![0u8; content.len()];
    certwipe::stream::PassData::Random(stream.clone()).fill(0, &mut regenerated);
    assert!(regenerated == content);
}

#[test]
fn every_single_byte_change_is_rejected_and_stock_ssh_keygen_agrees() {
    let station = Station::new();
    let disk = image(station.dir.path(), "tamper.img", 1 << 20);
    let cert_path = station.wipe(&disk, &[]);
    let original = std::fs::read(&cert_path).unwrap();
    let armored = std::fs::read_to_string(signature(&cert_path)).unwrap();
    let allowed = certwipe::cert::sign::AllowedSigners::load(&station.allowed).unwrap();
    let signers = certwipe::cert::sign::Signers {
        allowed: &allowed,
        at: std::time::SystemTime::now(),
        principal: None,
    };
    for position in 0..original.len() {
        let mut changed = original.clone();
        changed[position] ^= 0x01;
        assert!(
            certwipe::cert::sign::verify(
                &changed,
                &armored,
                certwipe::cert::sign::Duty::Station,
                Some(signers)
            )
            .is_err(),
            "a change at byte {position} went unnoticed"
        );
    }
    // The same through the CLI and ssh-keygen, at a spread of positions.
    for position in (0..original.len()).step_by(original.len() / 7) {
        let mut changed = original.clone();
        changed[position] ^= 0x20;
        std::fs::write(&cert_path, &changed).unwrap();
        assert_ne!(station.verify(&cert_path).0, 0, "byte {position}");
        assert!(!ssh_keygen_verifies(&station.allowed, "station-1", &signature(&cert_path), &cert_path));
    }
    std::fs::write(&cert_path, &original).unwrap();
    assert_eq!(station.verify(&cert_path).0, 0);
}

#[test]
fn swapped_truncated_foreign_and_wrong_namespace_signatures_are_rejected_by_both() {
    let station = Station::new();
    let first = station.wipe(&image(station.dir.path(), "a.img", 1 << 20), &[]);
    let second = station.wipe(&image(station.dir.path(), "b.img", 1 << 20), &[]);
    let sig = signature(&first);
    let good = std::fs::read(&sig).unwrap();
    let rejected_by_both = |why: &str| {
        assert_ne!(station.verify(&first).0, 0, "{why}: certwipe accepted");
        assert!(
            !ssh_keygen_verifies(&station.allowed, "station-1", &sig, &first),
            "{why}: ssh-keygen accepted"
        );
    };

    std::fs::copy(signature(&second), &sig).unwrap();
    rejected_by_both("the other certificate's signature");

    std::fs::write(&sig, &good[..good.len() * 2 / 3]).unwrap();
    rejected_by_both("a truncated signature");

    // Signed by a key that is not in allowed_signers.
    let stranger = station.dir.path().join("stranger");
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "", "-f", stranger.to_str().unwrap()]);
    std::fs::remove_file(&sig).unwrap();
    ssh_keygen(&["-Y", "sign", "-f", stranger.to_str().unwrap(), "-n", "certwipe", first.to_str().unwrap()]);
    rejected_by_both("a signer missing from allowed_signers");
    // Without a signer list, certwipe finds the signature intact but does not call
    // the certificate verified: anyone could have made it.
    let out = certwipe(&["cert", "verify", first.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("signature intact, signer not checked (key SHA256:"), "{said}");
    assert!(said.contains("NOT verified"), "{said}");

    // The right key, the wrong namespace.
    std::fs::remove_file(&sig).unwrap();
    ssh_keygen(&["-Y", "sign", "-f", station.key.to_str().unwrap(), "-n", "file", first.to_str().unwrap()]);
    rejected_by_both("namespace file instead of certwipe");

    std::fs::write(&sig, &good).unwrap();
    assert_eq!(station.verify(&first).0, 0);
    assert!(ssh_keygen_verifies(&station.allowed, "station-1", &sig, &first));
}

/// Runs a wipe that verification catches (a sector changed behind its back) and
/// returns its report.
fn failed_wipe(target: &Path) -> certwipe::report::Report {
    struct Saboteur<'a>(&'a Path, AtomicBool);
    impl certwipe::engine::events::Observer for Saboteur<'_> {
        fn event(&self, event: &certwipe::engine::events::Event<'_>) {
            use certwipe::engine::events::Event;
            use certwipe::report::Phase;
            if let Event::PhaseStarted { phase: Phase::Verifying, .. } = event
                && !self.1.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                let file = open_raw(self.0);
                std::os::unix::fs::FileExt::write_all_at(
                    &file,
                    &certwipe::buffer::AlignedBuf::new(4096),
                    8192,
                )
                .unwrap();
            }
        }
    }
    let mut inspected = device::inspect(target, &SystemUse::read()).unwrap();
    let medium = Medium::open(&mut inspected, Access::ReadWrite).unwrap();
    let plan = Plan::from_method(method::find("random").unwrap(), 1).unwrap();
    let options = Options { digest: true, ..Options::default() };
    let saboteur = Saboteur(target, AtomicBool::new(false));
    engine::wipe(&medium, &inspected.identity, &plan, &options, &saboteur, &AtomicBool::new(false))
}

fn records() -> Records {
    Records {
        organisation: Some("Example Bureau".into()),
        site: None,
        asset_number: Some("LEDGER-7".into()),
        classification_before: None,
        classification_after: None,
        media_source: None,
        data_backed_up: BackedUp::No,
        backup_location: None,
        destination: None,
        operator: Person { name: Some("Li Wei".into()), ..Person::default() },
        notes: None,
    }
}

fn signing_key(station: &Station) -> SigningKey {
    SigningKey::load(&station.key, || unreachable!("the key has no passphrase")).unwrap()
}

/// Edits a certificate, re-signs it with the station's own key and checks it.
fn resigned_problems(station: &Station, name: &str, cert: &Certificate) -> Vec<String> {
    let path = station.certs().join(name);
    write_certificate(&path, cert, Some(&signing_key(station))).unwrap();
    let (code, output) = station.verify(&path);
    assert_eq!(code, 1, "{output}");
    let checked = certwipe::cert::judge::judge_files(&path, None).unwrap();
    assert!(checked.signatures.iter().all(|s| s.result.is_ok()), "the signature itself is good");
    checked.problems
}

#[test]
fn lies_are_rejected_even_when_properly_signed() {
    let station = Station::new();
    let disk = image(station.dir.path(), "lie.img", 4 << 20);
    let report = failed_wipe(&disk);
    assert_eq!(report.status, Status::Failed);
    let honest = Certificate::issue(report, records());
    let path = station.certs().join("honest.json");
    write_certificate(&path, &honest, Some(&signing_key(&station))).unwrap();
    // An honest certificate of a failed wipe is authentic and consistent, and says so...
    let (code, output) = station.verify(&path);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("status failed"), "{output}");
    // ... but it never passes for proof of erasure.
    let out = certwipe(&["cert", "verify", "--require-erased", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));

    let mut erased = honest.clone();
    erased.sanitization.status = Status::Erased;
    erased.sanitization.warnings.retain(|w| !w.contains("does NOT attest"));
    let problems = resigned_problems(&station, "erased.json", &erased);
    assert!(problems.iter().any(|p| p.contains("differed from what was written")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("status erased")), "{problems:?}");

    let mut purge = honest.clone();
    purge.sanitization.category = Category::Purge;
    let problems = resigned_problems(&station, "purge.json", &purge);
    assert!(problems.iter().any(|p| p.contains("category purge is not what")), "{problems:?}");

    let mut other_method = honest.clone();
    other_method.sanitization.method.id = "zero".into();
    let problems = resigned_problems(&station, "method.json", &other_method);
    assert!(problems.iter().any(|p| p.contains("prescribes")), "{problems:?}");

    // Erased, with a summary that says passed over a pass whose read-back did not.
    let mut unread = honest.clone();
    unread.sanitization.status = Status::Erased;
    unread.sanitization.warnings.retain(|w| !w.contains("does NOT attest"));
    let verification = unread.sanitization.passes[0].verification.as_mut().unwrap();
    verification.unreadable = std::mem::take(&mut verification.mismatches);
    verification.result = certwipe::report::VerificationResult::Incomplete;
    unread.sanitization.verification.result = certwipe::report::VerificationResult::Passed;
    let problems = resigned_problems(&station, "unread.json", &unread);
    assert!(problems.iter().any(|p| p.contains("does not follow from the passes")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("read-back did not pass")), "{problems:?}");

    let mut flash = honest.clone();
    flash.medium.media_type = MediaType::UsbFlash;
    let problems = resigned_problems(&station, "flash.json", &flash);
    assert!(problems.iter().any(|p| p.contains("spare blocks")), "{problems:?}");
}

#[test]
fn flash_media_are_certified_clear_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let disk = image(dir.path(), "flash.img", 1 << 20);
    let mut inspected = device::inspect(&disk, &SystemUse::read()).unwrap();
    let medium = Medium::open(&mut inspected, Access::ReadWrite).unwrap();
    let mut identity = inspected.identity.clone();
    identity.media_type = MediaType::UsbFlash;
    let plan = Plan::from_method(method::find("gutmann").unwrap(), 1).unwrap();
    let report =
        engine::wipe(&medium, &identity, &plan, &Options::default(), &Silent, &AtomicBool::new(false));
    let cert = Certificate::issue(report, records());
    assert_eq!(cert.sanitization.category, Category::Clear, "35 passes are still only Clear");
    assert!(cert.sanitization.warnings.iter().any(|w| w == FLASH_WARNING));
    assert!(certwipe::cert::check::inconsistencies(&cert).is_empty());
}

#[test]
fn audit_confirms_the_medium_and_catches_a_change_after_the_wipe() {
    let station = Station::new();
    let disk = image(station.dir.path(), "audit.img", 8 << 20);
    let cert = station.wipe(&disk, &[]);
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            disk.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--allowed-signers",
            station.allowed.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        certwipe(&args)
    };
    for mode in [&["--full"][..], &["--sample"][..]] {
        let out = audit(mode);
        assert_eq!(out.status.code(), Some(0), "{mode:?}: {}", stderr(&out));
    }
    // One sector changed after the wipe.
    let file = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"new data", 5 << 20).unwrap();
    file.sync_all().unwrap();
    let out = audit(&["--full"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 mismatched"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A different medium: same content, other size.
    file.set_len(9 << 20).unwrap();
    let out = audit(&["--sample"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("size is"));
}

#[test]
fn countersignatures_verify_with_both_tools_and_tampering_with_them_is_caught() {
    let station = Station::new();
    let cert = station.wipe(&image(station.dir.path(), "cs.img", 1 << 20), &[]);
    let witness = station.dir.path().join("witness");
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "", "-C", "zhang", "-f", witness.to_str().unwrap()]);
    let public = std::fs::read_to_string(format!("{}.pub", witness.display())).unwrap();
    let mut allowed = std::fs::read_to_string(&station.allowed).unwrap();
    allowed.push_str(&format!("zhang.san namespaces=\"certwipe-witness\" {public}"));
    std::fs::write(&station.allowed, allowed).unwrap();

    let out =
        countersign(&cert, &witness, "witness", "Zhang San", &station.allowed, &["--title", "Supervisor"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("witness: good signature by zhang.san"), "{output}");
    let countersig = PathBuf::from(format!("{}.witness-1.sig", cert.display()));
    assert!(ssh_keygen_verifies_in(&station.allowed, "zhang.san", "certwipe-witness", &countersig, &cert));
    let shown = certwipe(&[
        "cert",
        "show",
        cert.to_str().unwrap(),
        "--allowed-signers",
        station.allowed.to_str().unwrap(),
    ]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("witness Zhang San, Supervisor: good, by zhang.san"), "{shown}");
    let unchecked = certwipe(&["cert", "show", cert.to_str().unwrap()]);
    let unchecked = String::from_utf8_lossy(&unchecked.stdout);
    assert!(unchecked.contains("witness Zhang San, Supervisor: intact, signer not checked"), "{unchecked}");

    // `*.json` names certificates only: the statement is `.statement`.
    let statement = PathBuf::from(format!("{}.witness-1.statement", cert.display()));
    let jsons = std::fs::read_dir(station.certs())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json"));
    assert_eq!(jsons.count(), 1, "only the certificate ends in .json");
    // Countersignatures named as before (statement `.json`) are still read.
    let legacy = PathBuf::from(format!("{}.witness-1.json", cert.display()));
    std::fs::rename(&statement, &legacy).unwrap();
    std::fs::rename(format!("{}.sig", statement.display()), format!("{}.sig", legacy.display())).unwrap();
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("witness: good signature by zhang.san"), "{output}");
    // The statement says who signed in what role; changing it breaks its signature.
    let text = std::fs::read_to_string(&legacy).unwrap();
    std::fs::write(&legacy, text.replace("\"witness\"", "\"approver\"")).unwrap();
    assert_eq!(station.verify(&cert).0, 1);
}

#[test]
fn bad_certificates_are_clear_errors_not_panics() {
    let station = Station::new();
    let cert = station.wipe(&image(station.dir.path(), "bad.img", 1 << 20), &[]);
    let text = std::fs::read_to_string(&cert).unwrap();
    let cases = [
        ("truncated", text[..text.len() / 2].to_string(), "not a readable certificate"),
        ("not json", "garbage\n".to_string(), "not a readable certificate"),
        (
            "future",
            text.replace("certwipe.certificate/v1", "certwipe.certificate/v9"),
            "unknown certificate format",
        ),
        ("extra field", text.replacen("{", "{\n  \"purged\": true,", 1), "schema"),
        ("wrong type", text.replacen("\"size_bytes\": ", "\"size_bytes\": \"big\", \"x\": ", 1), "schema"),
    ];
    for (what, content, expected) in cases {
        let path = station.certs().join(format!("{}.json", what.replace(' ', "-")));
        std::fs::write(&path, content).unwrap();
        let out = certwipe(&["cert", "verify", path.to_str().unwrap()]);
        let output = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {output}");
        assert!(output.contains(expected), "{what}: {output}");
    }
    let out = certwipe(&["cert", "verify", station.certs().join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // An unsigned certificate is not valid.
    std::fs::remove_file(signature(&cert)).unwrap();
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 1);
    assert!(output.contains("unsigned"), "{output}");
}

#[test]
fn unusable_keys_are_refused_before_anything_is_written() {
    let station = Station::new();
    let disk = image(station.dir.path(), "keys.img", 1 << 20);
    let before = blake3::hash(&std::fs::read(&disk).unwrap());
    let try_key = |key: &Path, env: Option<&str>| {
        let mut command = certwipe_command();
        command
            .args(["wipe", "--yes", "--cert-dir", station.certs().to_str().unwrap(), "--sign-key"])
            .arg(key)
            .arg(&disk);
        if let Some(passphrase) = env {
            command.env("CERTWIPE_KEY_PASSPHRASE", passphrase);
        }
        command.output().unwrap()
    };
    let ecdsa = station.dir.path().join("ecdsa");
    ssh_keygen(&["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa.to_str().unwrap()]);
    let rsa = station.dir.path().join("rsa");
    ssh_keygen(&["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa.to_str().unwrap()]);
    let open = station.dir.path().join("open");
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "", "-f", open.to_str().unwrap()]);
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let locked = station.dir.path().join("locked");
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "right horse", "-f", locked.to_str().unwrap()]);
    let public = station.dir.path().join("locked.pub");
    let public_message = format!(
        "is a public key; signing needs the private key, the file of the same name without .pub ({})",
        locked.display()
    );
    let cases: [(&Path, Option<&str>, &str); 7] = [
        (&public, None, &public_message),
        (&ecdsa, None, "not Ed25519"),
        (&rsa, None, "signing key"),
        (&open, None, "readable by others"),
        (&locked, Some("wrong"), "wrong passphrase"),
        (&locked, None, "CERTWIPE_KEY_PASSPHRASE"),
        (&station.dir.path().join("nokey"), None, "No such file"),
    ];
    for (key, env, expected) in cases {
        let out = try_key(key, env);
        assert_eq!(out.status.code(), Some(2), "{}: {}", key.display(), stderr(&out));
        assert!(stderr(&out).contains(expected), "{}: {}", key.display(), stderr(&out));
    }
    assert_eq!(blake3::hash(&std::fs::read(&disk).unwrap()), before, "no refused run wrote anything");
    assert_eq!(std::fs::read_dir(station.certs()).unwrap().count(), 0);

    // The passphrase-protected user key works with the right passphrase.
    let out = try_key(&locked, Some("right horse"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn certificates_need_a_key_or_an_explicit_unsigned_and_honour_the_no_downgrade_rule() {
    let station = Station::new();
    let disk = image(station.dir.path(), "rules.img", 1 << 20);
    let certs = station.certs();
    let run = |extra: &[&str]| {
        let mut args = vec!["wipe", "--yes", "--cert-dir", certs.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(disk.to_str().unwrap());
        certwipe(&args)
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--unsigned"), "{}", stderr(&out));
    let out = run(&["--unsigned", "--classification", "secret", "--classification-after", "unclassified"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("never downgraded"), "{}", stderr(&out));
    let out = run(&["--unsigned", "--classification", "内部", "--destination", "external-reuse"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("destruction"), "{}", stderr(&out));
    assert!(contains_marker(&std::fs::read(&disk).unwrap()), "refused runs wrote nothing");
    let out = run(&["--unsigned"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_profile_supplies_the_records_and_flags_win() {
    let station = Station::new();
    let profile = station.dir.path().join("station.toml");
    std::fs::write(
        &profile,
        "organisation = \"Example Bureau\"\nsite = \"Room 101\"\ndestination = \"destruction\"\n\
         [operator]\nname = \"Wang Fang\"\ntitle = \"Technician\"\n",
    )
    .unwrap();
    let disk = image(station.dir.path(), "profile.img", 1 << 20);
    let cert = station.wipe(&disk, &["--profile", profile.to_str().unwrap(), "--site", "Room 202"]);
    let cert = Certificate::parse(&std::fs::read(cert).unwrap()).unwrap();
    assert_eq!(cert.records.organisation.as_deref(), Some("Example Bureau"));
    assert_eq!(cert.records.site.as_deref(), Some("Room 202"));
    assert_eq!(cert.records.operator.title.as_deref(), Some("Technician"));
    assert_eq!(cert.records.operator.name.as_deref(), Some("Li Wei"), "--operator beats the profile");

    std::fs::write(&profile, "organisation = 3\n").unwrap();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--unsigned",
        "--cert-dir",
        station.certs().to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        disk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("profile"), "{}", stderr(&out));
}

#[test]
fn the_documented_json_schema_accepts_real_certificates_and_rejects_broken_ones() {
    let station = Station::new();
    let cert = station.wipe(&image(station.dir.path(), "schema.img", 1 << 20), &["--verify", "sample"]);
    let Some(accepted) = schema_accepts(&cert) else { return };
    assert!(accepted, "{}", cert.display());
    let text = std::fs::read_to_string(&cert).unwrap();
    let broken = station.certs().join("broken.json");
    std::fs::write(&broken, text.replace("\"category\": \"clear\"", "\"category\": \"erased-ish\"")).unwrap();
    assert_eq!(schema_accepts(&broken), Some(false));
}

#[test]
fn several_targets_each_get_their_own_asset_number_in_order() {
    let station = Station::new();
    let first = image(station.dir.path(), "first.img", 1 << 20);
    let second = image(station.dir.path(), "second.img", 1 << 20);
    let (certs, key) = (station.certs(), station.key.clone());
    let wipe = |assets: &[&str]| {
        let mut args =
            vec!["wipe", "--yes", "--cert-dir", certs.to_str().unwrap(), "--sign-key", key.to_str().unwrap()];
        for asset in assets {
            args.extend(["--asset", asset]);
        }
        certwipe(&[&args[..], &[first.to_str().unwrap(), second.to_str().unwrap()]].concat())
    };
    let out = wipe(&["A-1", "A-2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (name, asset) in [("first", "A-1"), ("second", "A-2")] {
        let cert = Certificate::parse(&std::fs::read(certificate_of(&certs, name)).unwrap()).unwrap();
        assert_eq!(cert.records.asset_number.as_deref(), Some(asset));
    }
    let out = wipe(&["A-3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1 --asset given for 2 target(s)"), "{}", stderr(&out));
}

/// Rust's own spellings of the library's named values (`ImageFile`,
/// `Some(..)`) must never reach a person: screens and PDFs use the names the
/// command line and the JSON use.
#[test]
fn people_read_the_same_names_the_command_line_takes() {
    let station = Station::new();
    let disk = station.dir.path().join("names.img");
    make_file(&disk, 1 << 20);
    let cert = station.wipe(&disk, &["--verify", "all", "--data-backed-up", "unknown"]);
    let shown = certwipe(&["cert", "show", cert.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let mut texts = vec![String::from_utf8_lossy(&shown.stdout).into_owned()];
    let shown = texts[0].clone();
    for said in
        ["image-file", "backed up unknown", "destination destruction", "verified full passed", "verify all"]
    {
        assert!(shown.contains(said), "{said:?} missing from:\n{shown}");
    }
    if pdf_tools_present() {
        let pdf = station.dir.path().join("names.pdf");
        let out =
            certwipe(&["cert", "pdf", cert.to_str().unwrap(), "-o", pdf.to_str().unwrap(), "--lang", "en"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        texts.push(pdf_text(&pdf, &["-raw"]));
    }
    for text in &texts {
        for debug_name in
            ["ImageFile", "destination Destruction", "Passed", "Full", "Some(", "Unknown", "All:", "Virtual,"]
        {
            assert!(!text.contains(debug_name), "{debug_name:?} reached a person:\n{text}");
        }
    }
}

#[test]
fn countersign_takes_its_key_as_every_command_does_and_the_old_spelling_still_works() {
    let station = Station::new();
    let disk = station.dir.path().join("spelling.img");
    make_file(&disk, 1 << 20);
    let cert = station.wipe(&disk, &[]);
    let (witness, line) = key_for(station.dir.path(), "witness", "zhang.san", &["witness"]);
    allow(&station.allowed, &line);
    let out = certwipe(&[
        "cert",
        "countersign",
        cert.to_str().unwrap(),
        "--key",
        witness.to_str().unwrap(),
        "--role",
        "witness",
        "--name",
        "Zhang San",
        "--allowed-signers",
        station.allowed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = certwipe(&["cert", "countersign", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--sign-key <KEY>") && !help.contains("--key <KEY>"), "{help}");
}

#[test]
fn every_json_event_follows_the_documented_schema_and_carries_its_time() {
    let station = Station::new();
    let disk = image(station.dir.path(), "events.img", 1 << 20);
    let certs = station.certs();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--json",
        "--passes",
        "0x00,random",
        "--verify",
        "all",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--sign-key",
        station.key.to_str().unwrap(),
        disk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in ["progress", "write-end", "verification-end", "pass-end", "done", "records"] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    assert!(events.iter().all(|e| e["target"] == "events.img" && e["time"].is_string()), "{lines}");
    // Time left covers the whole run: during pass 1's write, its rest plus
    // pass 2's write and both read-backs (verify all), at the rate shown.
    let size = (1u64 << 20) as f64;
    let mut checked = 0;
    for early in
        events.iter().filter(|e| e["event"] == "progress" && e["pass"] == 1 && e["phase"] == "writing")
    {
        let Some(left) = early["seconds_left"].as_f64() else { continue };
        let bytes = left * early["bytes_per_second"].as_f64().unwrap();
        let phase_left =
            (early["bytes_total"].as_u64().unwrap() - early["bytes_done"].as_u64().unwrap()) as f64;
        assert!((bytes - (phase_left + 3.0 * size)).abs() < 1024.0, "{early}");
        checked += 1;
    }
    assert!(checked > 0, "no progress during pass 1's write told the time left: {lines}");
    if let Some(verdict) = events_accepted(&lines) {
        verdict.unwrap();
        // The schema is not a rubber stamp: an event without its time fails.
        let broken = lines.replacen("\"time\":", "\"when\":", 1);
        assert!(events_accepted(&broken).unwrap().is_err());
    }
}
