//! Attacks that once got past certwipe (issue 12), each performed for real and
//! asserted refused. `docs/bad-inputs.md` lists them with what certwipe says.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Re-signs `cert` with the station key using stock ssh-keygen, as an attacker
/// holding the key (or a careless operator) would.
fn resign(station: &Station, cert: &Path) {
    let sig = certwipe::cert::files::signature_path(cert);
    let _ = std::fs::remove_file(&sig);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "certwipe", "-f"])
        .arg(&station.key)
        .arg(cert)
        .status()
        .unwrap();
    assert!(status.success());
}

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
        resign(&station, &cert);
        let (code, output) = station.verify(&cert);
        assert_eq!(code, 1, "a re-signed certificate with two readings was accepted: {output}");
        assert!(output.contains(expected), "expected {expected:?} in {output}");
        let shown = certwipe(&["cert", "show", cert.to_str().unwrap()]);
        assert_ne!(shown.status.code(), Some(0), "cert show displayed a certificate with two readings");
    }
}
