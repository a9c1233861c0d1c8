//! The printable certificate: real PDF readers find the text in both languages,
//! the QR code decodes to the certificate id and digest, and the attachments are
//! the exact signed files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use certwipe::cert::Certificate;
use certwipe::cert::files::write_certificate;
use certwipe::cert::records::{BackedUp, Classification, Destination, Person, Records};
use certwipe::cert::sign::SigningKey;
use certwipe::device::{self, Access, Medium, SystemUse};
use certwipe::engine::events::Silent;
use certwipe::engine::{self, Options};
use certwipe::method::{self, Plan};
use common::*;

/// poppler-utils and zbar-tools: CI installs them; elsewhere the test says it skipped.
fn have_tools() -> bool {
    let present = ["pdftotext", "pdftoppm", "pdfdetach", "zbarimg"]
        .iter()
        .all(|tool| Command::new(tool).arg("-v").output().is_ok());
    if !present {
        assert!(std::env::var_os("CI").is_none(), "CI installs poppler-utils and zbar-tools");
        eprintln!("skipping: poppler-utils or zbar-tools missing");
    }
    present
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A signed certificate of a real wipe of a medium with a serial and model, plus a
/// witness countersignature.
fn certified(dir: &Path) -> PathBuf {
    let (key, station_line) = station_key(dir, "station", "station-1");
    let (witness, witness_line) = key_for(dir, "witness", "zhang.san", &["witness"]);
    let allowed = dir.join("allowed_signers");
    std::fs::write(&allowed, [station_line, witness_line].concat()).unwrap();
    let image = dir.join("disk.img");
    make_file(&image, 2 << 20);
    let mut inspected = device::inspect(&image, &SystemUse::read()).unwrap();
    let medium = Medium::open(&mut inspected, Access::ReadWrite).unwrap();
    let mut identity = inspected.identity.clone();
    identity.serial = Some("WD-WCC4N7PX1234".into());
    identity.model = Some("WDC WD10EZEX-08WN4A0".into());
    let plan = Plan::from_method(method::find("dod-short").unwrap(), 1).unwrap();
    let options = Options { digest: true, ..Options::default() };
    let report = engine::wipe(&medium, &identity, &plan, &options, &Silent, &AtomicBool::new(false));
    let records = Records {
        organisation: Some("Example Bureau".into()),
        site: Some("Room 5".into()),
        asset_number: Some("MJ-2026-0042".into()),
        classification_before: Some(Classification::Secret),
        classification_after: Some(Classification::Secret),
        media_source: Some("PC-17".into()),
        data_backed_up: BackedUp::No,
        backup_location: None,
        destination: Some(Destination::Destruction),
        operator: Person {
            name: Some("Li Wei".into()),
            title: Some("Technician".into()),
            ..Person::default()
        },
        notes: None,
    };
    let cert = Certificate::issue(report, records);
    let path = dir.join("cert.json");
    let signer = SigningKey::load(&key, || unreachable!()).unwrap();
    write_certificate(&path, &cert, Some(&signer)).unwrap();
    let out = countersign(&path, &witness, "witness", "Zhang San", &allowed, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    path
}

#[test]
fn the_pdf_holds_the_facts_in_both_languages_a_qr_code_and_the_signed_files() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert_path = certified(dir.path());
    let cert = Certificate::parse(&std::fs::read(&cert_path).unwrap()).unwrap();
    let pdf = dir.path().join("cert.pdf");
    let out = certwipe(&["cert", "pdf", cert_path.to_str().unwrap(), "-o", pdf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let text = run(Command::new("pdftotext").arg(&pdf).arg("-"));
    for expected in [
        "WD-WCC4N7PX1234",
        "MJ-2026-0042",
        cert.certificate_id.as_str(),
        "已清除",
        "ERASED",
        "机密",
        "Zhang San",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from the PDF text:\n{text}");
    }
    let info = run(Command::new("pdfinfo").arg(&pdf));
    assert!(info.contains("Pages:           1"), "the summary fits one page:\n{info}");
    let fonts = run(Command::new("pdffonts").arg(&pdf));
    assert!(
        fonts.contains("NotoSansCJK") && fonts.lines().skip(2).all(|l| l.contains(" yes yes ")),
        "{fonts}"
    );

    // The QR code carries the id and the SHA-256 of the exact JSON bytes.
    let png = dir.path().join("page");
    run(Command::new("pdftoppm").args(["-r", "150", "-png", "-f", "1", "-l", "1"]).arg(&pdf).arg(&png));
    let decoded = run(Command::new("zbarimg").args(["-q", "--raw"]).arg(dir.path().join("page-1.png")));
    let sha256 = certwipe::stream::sha256_hex(&std::fs::read(&cert_path).unwrap());
    assert_eq!(decoded.trim(), format!("certwipe:{}:sha256:{sha256}", cert.certificate_id));

    // The attachments are the certificate and every signature file, byte for byte.
    let attachments = dir.path().join("attached");
    std::fs::create_dir(&attachments).unwrap();
    run(Command::new("pdfdetach").arg("-saveall").arg("-o").arg(&attachments).arg(&pdf));
    let originals: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("cert.json"))
        .collect();
    assert_eq!(originals.len(), 5, "certificate, signature, and the witness's three files");
    for original in originals {
        let name = original.file_name().unwrap();
        assert_eq!(
            std::fs::read(attachments.join(name)).unwrap(),
            std::fs::read(&original).unwrap(),
            "{name:?}"
        );
    }
}

#[test]
fn english_only_and_font_errors() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert_path = certified(dir.path());
    let cert = cert_path.to_str().unwrap();
    let english = dir.path().join("en.pdf");
    let out = certwipe(&["cert", "pdf", cert, "--lang", "en", "-o", english.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = run(Command::new("pdftotext").arg(&english).arg("-"));
    assert!(text.contains("ERASED") && !text.contains("已清除"), "{text}");

    let out = certwipe(&["cert", "pdf", cert, "--font", "/no/such/font.ttc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/font.ttc"), "{}", stderr(&out));
    let latin = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    if Path::new(latin).exists() {
        let out = certwipe(&["cert", "pdf", cert, "--lang", "zh", "--font", latin]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no Chinese glyphs"), "{}", stderr(&out));
        let out = certwipe(&[
            "cert",
            "pdf",
            cert,
            "--lang",
            "en",
            "--font",
            latin,
            "-o",
            english.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[test]
fn wipe_pdf_writes_the_pdf_beside_the_certificate() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("w.img");
    make_file(&image, 1 << 20);
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--unsigned",
        "--pdf",
        "--cert-dir",
        certs.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pdfs: Vec<_> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    assert_eq!(pdfs.len(), 1);
    let text = run(Command::new("pdftotext").arg(&pdfs[0]).arg("-"));
    assert!(
        text.contains("数字签名无效") || text.contains("签名 / Signature"),
        "an unsigned certificate shows blank lines:\n{text}"
    );
}

#[test]
fn with_a_verify_url_the_qr_code_opens_the_records_office_page() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert_path = certified(dir.path());
    let cert = Certificate::parse(&std::fs::read(&cert_path).unwrap()).unwrap();
    // The station profile names the page; the QR code then carries its address.
    let profile = dir.path().join("profile.toml");
    std::fs::write(&profile, "verify_url = \"https://records.example/ledger/\"\n").unwrap();
    let pdf = dir.path().join("linked.pdf");
    let out = certwipe(&[
        "cert",
        "pdf",
        cert_path.to_str().unwrap(),
        "-o",
        pdf.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let png = dir.path().join("linked");
    run(Command::new("pdftoppm").args(["-r", "150", "-png", "-f", "1", "-l", "1"]).arg(&pdf).arg(&png));
    let decoded = run(Command::new("zbarimg").args(["-q", "--raw"]).arg(dir.path().join("linked-1.png")));
    let sha256 = certwipe::stream::sha256_hex(&std::fs::read(&cert_path).unwrap());
    assert_eq!(
        decoded.trim(),
        format!("https://records.example/ledger/c/{}?sha256={sha256}", cert.certificate_id)
    );
    // The id and the hash stay in the printed footer.
    let text = run(Command::new("pdftotext").arg(&pdf).arg("-"));
    assert!(text.contains(&sha256) && text.contains(&cert.certificate_id), "{text}");
}
