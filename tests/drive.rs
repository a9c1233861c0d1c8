//! The drive's own commands from the command line: `identify` on real drives'
//! IDENTIFY dumps and on devices with no drive behind them, `sanitize`
//! refusing what it cannot do before anything is written, and `cert verify`
//! refusing a purge claim that lacks the drive's command and its proof. The
//! drive commands themselves run against scripted drives (unit tests) and an
//! emulated NVMe, SATA and SCSI disk in QEMU (tests/qemu.rs).

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixture(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/identify").join(name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("note: {} absent; skipped", path.display());
        None
    }
}

#[test]
fn identify_decodes_a_real_drives_dump_and_says_what_it_offers() {
    let Some(dump) = fixture("ata-INTEL_SSDSA2CW120G3--4PC10302.bin") else { return };
    let out = certwipe(&["identify", "--from", dump.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "model      INTEL SSDSA2CW120G3",
        "serial     CVPR109301UZ120LGN",
        "234441648 sectors of 512 bytes",
        "solid state",
        "FROZEN",
        "checksum   valid",
        "offers     security-erase, security-erase-enhanced",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let out = certwipe(&["identify", "--json", "--from", dump.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["drive"]["ata"]["security"]["frozen"], true);
    assert_eq!(json["drive"]["wwn"], "50015179594f0f14");
    assert!(json["auto"].as_str().unwrap().starts_with("none:"), "auto never picks a security erase");
}

#[test]
fn a_corrupted_dump_fails_its_checksum_and_a_wrong_size_is_refused() {
    let Some(dump) = fixture("ata-WDC_WD5000AAKS--00TMA0-12.01C01.bin") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&dump).unwrap();
    bytes[100] ^= 0x20;
    let corrupt = dir.path().join("corrupt.bin");
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = certwipe(&["identify", "--from", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CHECKSUM INVALID"), "{text}");

    let short = dir.path().join("short.bin");
    std::fs::write(&short, &bytes[..300]).unwrap();
    let out = certwipe(&["identify", "--from", short.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("300 bytes; expected a 512-byte ATA IDENTIFY DEVICE"), "{}", stderr(&out));
}

#[test]
fn devices_without_a_drive_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    write_all_new(&image, 1 << 20);
    let out = certwipe(&["sanitize", "--yes", "--action", "auto", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("an image file has no drive to sanitize"), "{}", stderr(&out));
    assert!(contains_marker(&read_all(&image)));
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 1 << 20, 512);
    plant_markers(&device.path);
    let path = device.path.to_str().unwrap();
    let out = certwipe(&["sanitize", "--yes", "--action", "block-erase", path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no drive answers commands here"), "{}", stderr(&out));
    assert!(contains_marker(&read_all(&device.path)), "nothing was written");
    let out = certwipe(&["identify", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no drive answers pass-through commands"), "{}", stderr(&out));
    assert_eq!(certwipe(&["sanitize", "--status", path]).status.code(), Some(2));
}

fn write_all_new(path: &Path, size: usize) {
    make_file(path, size as u64);
    plant_markers(path);
}

#[test]
fn a_purge_claim_without_the_drive_command_and_its_proof_is_rejected() {
    let station = Station::new();
    let disk = station.dir.path().join("claim.img");
    make_file(&disk, 1 << 20);
    let cert = station.wipe(&disk, &[]);
    // A properly signed overwrite certificate, edited to claim a drive's
    // purge, and signed again with the station's own key.
    let text = std::fs::read_to_string(&cert).unwrap();
    let forged = text
        .replace("\"category\": \"clear\"", "\"category\": \"purge\"")
        .replace("\"technique\": \"overwrite\"", "\"technique\": \"sanitize-block-erase\"");
    assert_ne!(forged, text);
    std::fs::write(&cert, forged).unwrap();
    station.resign(&cert);
    let (code, output) = station.verify(&cert);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("records neither the drive's command nor the verification"), "{output}");
}

/// A 512-byte IDENTIFY DEVICE built from the ACS-4 table (words, strings in
/// byte-swapped pairs, word 255 = A5h signature and checksum).
fn ata_identify(words: &[(usize, u16)], model: &str, serial: &str) -> Vec<u8> {
    let mut data = [0u16; 256];
    let mut put_string = |first: usize, count: usize, text: &str| {
        let padded = format!("{text:<width$}", width = count * 2);
        for (i, pair) in padded.as_bytes().chunks(2).enumerate() {
            data[first + i] = u16::from_be_bytes([pair[0], pair[1]]);
        }
    };
    put_string(10, 10, serial); // words 10-19
    put_string(23, 4, "FW01"); // words 23-26
    put_string(27, 20, model); // words 27-46
    for &(word, value) in words {
        data[word] = value;
    }
    let mut bytes: Vec<u8> = data.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes[510] = 0xA5;
    let sum = bytes[..511].iter().fold(0u8, |a, &b| a.wrapping_add(b));
    bytes[511] = sum.wrapping_neg();
    bytes
}

#[test]
fn identify_from_synthetic_dumps_built_from_the_standards_tables() {
    let dir = tempfile::tempdir().unwrap();
    // ATA: 48-bit (word 83 bit 10, with its validity bits 15:14 = 01b),
    // 1,000,000 sectors (words 100-103), HPA feature (word 82 bit 10),
    // SANITIZE with crypto scramble, overwrite and block erase (word 59 bits
    // 12-15), solid state (word 217 = 1).
    let ata = ata_identify(
        &[(83, 0x4000 | 1 << 10), (100, 0x4240), (101, 0x000F), (82, 1 << 10), (59, 0xF000), (217, 1)],
        "SYNTHETIC SSD",
        "SYN-ATA-1",
    );
    let ata_path = dir.path().join("ata.bin");
    std::fs::write(&ata_path, &ata).unwrap();
    let out = certwipe(&["identify", "--json", "--from", ata_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["drive"]["model"], "SYNTHETIC SSD");
    assert_eq!(json["drive"]["serial"], "SYN-ATA-1");
    assert_eq!(json["drive"]["checksum"]["state"], "valid");
    assert_eq!(json["drive"]["capacity"]["sectors"], 1_000_000);
    assert_eq!(json["offers"], serde_json::json!(["crypto-erase", "block-erase", "overwrite"]), "{json:#}");
    assert!(json["auto"].as_str().unwrap().contains("CRYPTO SCRAMBLE EXT"), "{json:#}");

    // NVMe Identify Controller (NVMe Base Specification, Figure "Identify
    // Controller Data Structure"): SN bytes 4-23, MN 24-63, FR 64-71, OACS
    // 256-257 (bit 1: Format NVM), SANICAP 328-331 (bit 1: block erase), NN
    // 516-519, FNA 524 (bit 2: crypto erase by format).
    let mut nvme = vec![0u8; 4096];
    let mut put = |at: usize, width: usize, text: &str| {
        nvme[at..at + width].copy_from_slice(format!("{text:<width$}").as_bytes());
    };
    put(4, 20, "SYN-NVME-1");
    put(24, 40, "SYNTHETIC NVME");
    put(64, 8, "1.0");
    nvme[256] = 0x02;
    nvme[328] = 0x02;
    nvme[516] = 1;
    nvme[524] = 0x04;
    let nvme_path = dir.path().join("nvme.bin");
    std::fs::write(&nvme_path, &nvme).unwrap();
    let out = certwipe(&["identify", "--json", "--from", nvme_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["drive"]["source"], "nvme-identify");
    assert_eq!(json["drive"]["serial"], "SYN-NVME-1");
    assert_eq!(json["drive"]["model"], "SYNTHETIC NVME");
    assert_eq!(json["drive"]["nvme"]["sanicap"], 2);
    assert_eq!(json["drive"]["nvme"]["fna"], 4);
    assert_eq!(json["drive"]["nvme"]["format_nvm"], true);
    assert_eq!(json["drive"]["nvme"]["format_crypto_erase"], true);
    // A Format NVM command names the namespace and its LBA format, which a
    // controller's dump does not hold: only the sanitize is on offer.
    assert_eq!(json["offers"], serde_json::json!(["block-erase"]), "{json:#}");
    assert!(json["auto"].as_str().unwrap().contains("Block Erase"), "{json:#}");
}
