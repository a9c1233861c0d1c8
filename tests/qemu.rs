//! End to end in a QEMU guest (TCG) with an emulated NVMe, SATA (AHCI) and
//! SCSI (virtio-scsi) disk, certwipe itself in a busybox initramfs:
//! `identify` reports the serials and models given to QEMU; NVMe Format NVM
//! with secure erase runs, is verified by reading the medium and certified as
//! purge; and every command QEMU does not implement (NVMe Sanitize, ATA
//! SANITIZE and Security, SCSI SANITIZE, crypto erase by format, which its
//! controller does not announce) ends "not supported" with the drive's own
//! answer, before anything is written. `tests/qemu/setup.sh` (run by
//! `.ci/run`) installs QEMU and unpacks a Debian kernel; without them this
//! test is skipped with a note.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const DISK: u64 = 16 << 20;

/// The kernel (an ELF vmlinux QEMU boots directly) and its module tree.
fn bench() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("CERTWIPE_QEMU_DIR")
        .map_or(PathBuf::from("/var/cache/certwipe-qemu"), PathBuf::from);
    let find = |parent: &Path, prefix: &str| {
        std::fs::read_dir(parent)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
    };
    let found = find(&dir, "vmlinux-").zip(find(&dir.join("root/lib/modules"), ""));
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output().is_ok_and(|o| o.status.success());
    match found {
        Some(found) if qemu && Path::new("/bin/busybox").exists() => Some(found),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the QEMU test: .ci/run calls tests/qemu/setup.sh"
            );
            eprintln!("skipping: QEMU or its kernel is missing (run tests/qemu/setup.sh as root)");
            None
        }
    }
}

/// One command the guest ran.
#[derive(Debug, Default)]
struct Ran {
    rc: i32,
    stdout: String,
    stderr: String,
}

/// The guest's console, parsed: each command's result, and the files it sent.
fn parse(console: &str) -> (HashMap<String, Ran>, HashMap<String, Vec<u8>>) {
    use base64ct::{Base64, Encoding};
    let (mut runs, mut files) = (HashMap::new(), HashMap::new());
    let mut lines = console.lines().map(|l| l.trim_end_matches('\r'));
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("@@RUN ") {
            let (name, rc) = rest.rsplit_once(" rc=").expect("@@RUN name rc=N");
            let mut ran = Ran { rc: rc.parse().unwrap(), ..Ran::default() };
            let mut into_stderr = false;
            for line in lines.by_ref() {
                match line {
                    "@@STDOUT" => {}
                    "@@STDERR" => into_stderr = true,
                    "@@END" => break,
                    text if into_stderr => ran.stderr += &format!("{text}\n"),
                    text => ran.stdout += &format!("{text}\n"),
                }
            }
            runs.insert(name.to_string(), ran);
        } else if let Some(name) = line.strip_prefix("@@FILE ") {
            let text: String = lines.by_ref().take_while(|l| *l != "@@EOF").collect();
            files.insert(name.to_string(), Base64::decode_vec(&text).expect("base64 from the guest"));
        }
    }
    (runs, files)
}

/// Builds the initramfs and boots the guest; its console output.
fn boot(vmlinux: &Path, modules: &Path, dir: &Path, key: &Path) -> String {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qemu");
    let initrd = dir.join("initrd.cpio.gz");
    let built = Command::new("bash")
        .arg(scripts.join("build-initramfs.sh"))
        .args(["-k".as_ref(), modules.as_os_str(), "-s".as_ref(), scripts.join("guest.sh").as_os_str()])
        .args(["-o".as_ref(), initrd.as_os_str(), "-b".as_ref(), env!("CARGO_BIN_EXE_certwipe").as_ref()])
        .arg("-f")
        .arg(format!("{}:/key/station_ed25519", key.display()))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let drive = |name: &str, device: &str| {
        [
            "-drive".to_string(),
            format!("file={},if=none,id={name},format=raw", dir.join(format!("{name}.img")).display()),
            "-device".to_string(),
            format!("{device},drive={name}"),
        ]
    };
    let output = Command::new("timeout")
        .args(["-k", "5", "600", "qemu-system-x86_64", "-machine", "q35", "-nodefaults", "-accel", "tcg"])
        .args(["-cpu", "max", "-smp", "1", "-m", "256", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(vmlinux)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 quiet loglevel=1 panic=-1 mitigations=off cw.guest=1"])
        .args(drive("nvme", "nvme,serial=NVME-SERIAL-1"))
        .args(drive("sata", "ide-hd,bus=ide.0,model=CERTWIPE-SATA-MODEL,serial=SATA-SERIAL-1"))
        .args(["-device", "virtio-scsi-pci,id=scsi0"])
        .args(drive(
            "scsi",
            "scsi-hd,bus=scsi0.0,serial=SCSI-SERIAL-1,vendor=CWVENDOR,product=CW-SCSI-PRODUCT",
        ))
        // With stdin closed QEMU's console would read an image file as input.
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(console.contains("@@GUEST-END rc=0@@"), "the guest did not finish:\n{console}");
    console
}

fn json(ran: &Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

#[test]
fn drive_commands_against_emulated_nvme_sata_and_scsi_disks() {
    let Some((vmlinux, modules)) = bench() else { return };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (key, allowed_line) = station_key(dir.path(), "station_ed25519", "station-1");
    for name in ["nvme", "sata", "scsi"] {
        let image = dir.path().join(format!("{name}.img"));
        make_file(&image, DISK);
        plant_markers(&image);
    }
    let console = boot(&vmlinux, &modules, dir.path(), &key);
    let (runs, files) = parse(&console);
    let run = |name: &str| runs.get(name).unwrap_or_else(|| panic!("{name} did not run:\n{console}"));

    check_identities(run("identify-nvme"), run("identify-sata"), run("identify-scsi"));
    check_unsupported(&run);
    check_nvme_format(run("sanitize-nvme-format"), &files, dir.path(), &allowed_line);

    // An overwrite of the SATA disk records the drive's own identity.
    let wipe = run("wipe-sata");
    assert_eq!(wipe.rc, 0, "{wipe:?}");
    let report: serde_json::Value = serde_json::from_slice(&files["sata.report.json"]).unwrap();
    assert_eq!(report["status"], "erased");
    assert_eq!(report["target"]["identity_source"], "ata-identify");
    assert_eq!(report["target"]["serial"], "SATA-SERIAL-1");
    // QEMU's disk has no HPA feature (IDENTIFY word 82 bit 10 clear) and no
    // DCO: nothing can hide, and the record says what was examined.
    assert_eq!(report["target"]["hidden"]["accessible_sectors"], DISK / 512);
    assert_eq!(report["target"]["hidden"]["native_sectors"], serde_json::Value::Null);
    assert_eq!(report["target"]["hidden"]["factory_sectors"], serde_json::Value::Null);
    assert!(!contains_marker(&read_all(&dir.path().join("sata.img"))));
    // What was refused was not touched.
    assert!(contains_marker(&read_all(&dir.path().join("scsi.img"))));
}

fn check_identities(nvme: &Ran, sata: &Ran, scsi: &Ran) {
    let (nvme, sata, scsi) = (json(nvme), json(sata), json(scsi));
    assert_eq!(nvme["drive"]["serial"], "NVME-SERIAL-1");
    assert_eq!(nvme["drive"]["model"], "QEMU NVMe Ctrl");
    assert_eq!(nvme["drive"]["source"], "nvme-identify");
    assert_eq!(nvme["drive"]["capacity"]["sectors"], DISK / 512);
    assert_eq!(nvme["offers"], serde_json::json!(["format-user-data"]));
    assert_eq!(sata["drive"]["serial"], "SATA-SERIAL-1");
    assert_eq!(sata["drive"]["model"], "CERTWIPE-SATA-MODEL");
    assert_eq!(sata["drive"]["source"], "ata-identify");
    // QEMU keeps no integrity word (no A5h signature in word 255).
    assert_eq!(sata["drive"]["checksum"]["state"], "not-present");
    assert_eq!(sata["drive"]["hidden"]["accessible_sectors"], DISK / 512);
    // QEMU has no DCO (IDENTIFY word 83 bit 11 clear): nothing is read as a
    // factory size, so nothing could be restored.
    assert_eq!(sata["drive"]["ata"]["dco_supported"], false, "{sata:#}");
    assert_eq!(sata["drive"]["hidden"]["factory_sectors"], serde_json::Value::Null);
    assert_eq!(sata["offers"], serde_json::json!([]));
    assert_eq!(scsi["drive"]["serial"], "SCSI-SERIAL-1");
    assert_eq!(scsi["drive"]["vendor"], "CWVENDOR");
    assert_eq!(scsi["drive"]["model"], "CW-SCSI-PRODUCT");
    assert_eq!(scsi["drive"]["source"], "scsi-vpd");
}

/// What QEMU lacks ends "not supported", with the drive's answer, exit 2.
fn check_unsupported<'a>(run: &impl Fn(&str) -> &'a Ran) {
    for (name, expected) in [
        (
            "sanitize-nvme-format-crypto",
            "does not support format-crypto; it offers: format-user-data (the drive's answer: Identify Controller: SANICAP 0x00000000, OACS 0x012a, FNA 0x00)",
        ),
        ("sanitize-nvme-block-erase", "does not support block-erase"),
        ("status-nvme", "NVMe status 0x4002"),
        ("sanitize-sata-auto", "SANITIZE feature set not supported"),
        ("sanitize-sata-security", "Security feature set not supported"),
        (
            "sanitize-scsi",
            "does not support SANITIZE; it offers: no SANITIZE command (the drive's answer: REPORT SUPPORTED OPERATION CODES: no answer; SANITIZE: ILLEGAL REQUEST (ASC/ASCQ 20h/00h))",
        ),
    ] {
        let ran = run(name);
        assert_eq!(ran.rc, 2, "{name}: {ran:?}");
        assert!(ran.stderr.contains(expected), "{name}: {ran:?}");
        assert!(!ran.stderr.contains("purge"), "{name}: {ran:?}");
    }
}

/// Format NVM with SES=1: run, verified by reading the medium, certified purge.
fn check_nvme_format(ran: &Ran, files: &HashMap<String, Vec<u8>>, dir: &Path, allowed_line: &[u8]) {
    assert_eq!(ran.rc, 0, "{ran:?}");
    let report: serde_json::Value = serde_json::from_slice(&files["nvme.report.json"]).unwrap();
    assert_eq!(report["status"], "erased", "{report:#}");
    let firmware = &report["firmware"];
    assert_eq!(firmware["technique"], "format-user-data-erase");
    assert_eq!(firmware["command_bytes"], "opcode 80 nsid 00000001 cdw10 00000200 cdw11 00000000");
    assert_eq!(firmware["drive_reported_success"], true);
    assert_eq!(firmware["verification"]["result"], "passed");
    assert!(firmware["verification"]["sample"]["subsections"] == 1000, "16 MiB is sampled by the NIST rule");
    assert_eq!(report["target"]["serial"], "NVME-SERIAL-1");
    // QEMU's format writes zeros over the whole namespace, the sample too.
    assert!(read_all(&dir.join("nvme.img")).iter().all(|&b| b == 0));

    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    for (name, bytes) in files.iter().filter(|(n, _)| n.starts_with("nvme0n1-")) {
        std::fs::write(certs.join(name), bytes).unwrap();
    }
    let cert = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("the guest wrote a certificate");
    let allowed = dir.join("allowed_signers");
    std::fs::write(&allowed, allowed_line).unwrap();
    let out =
        certwipe(&["cert", "verify", "--allowed-signers", allowed.to_str().unwrap(), cert.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", stderr(&out));
    assert!(shown.contains("valid (status erased)"), "{shown}");
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(document["sanitization"]["category"], "purge");
    assert_eq!(document["sanitization"]["technique"], "format-user-data-erase");
    assert_eq!(document["medium"]["identity_source"], "nvme-identify");
    assert!(ssh_keygen_verifies(&allowed, "station-1", &certwipe::cert::files::signature_path(&cert), &cert));
    assert_ne!(schema_accepts(&cert), Some(false), "{}", cert.display());
}
