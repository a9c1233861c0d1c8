//! What a drive says about itself, decoded: ATA IDENTIFY DEVICE (ACS-4 §7.13,
//! 512 bytes of little-endian words), NVMe Identify Controller and Namespace
//! (NVMe Base 2.0 §5.17; decoded in [`nvme`](super::nvme)) and SCSI INQUIRY and
//! VPD pages ([`scsi`](super::scsi)), all into one [`DriveInfo`].

use serde::{Deserialize, Serialize};

pub use crate::device::{HiddenAreas, IdentitySource};

/// The drive's own account of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveInfo {
    pub source: Option<IdentitySource>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    /// ATA/SCSI World Wide Name, hex.
    pub wwn: Option<String>,
    /// NVMe namespace EUI-64 and NGUID, hex.
    pub eui64: Option<String>,
    pub nguid: Option<String>,
    pub capacity: Option<Capacity>,
    pub rotation: Rotation,
    pub ata: Option<AtaFeatures>,
    pub nvme: Option<NvmeFeatures>,
    pub scsi: Option<ScsiFeatures>,
    pub hidden: Option<HiddenAreas>,
    /// ATA IDENTIFY's integrity word (word 255).
    pub checksum: Option<Checksum>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// User-addressable logical sectors.
    pub sectors: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
}

impl Capacity {
    pub fn bytes(&self) -> u64 {
        self.sectors.saturating_mul(u64::from(self.logical_sector_size))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotation {
    #[default]
    NotReported,
    /// Non-rotating: flash.
    SolidState,
    Rpm(u16),
}

impl Rotation {
    /// From ATA word 217 or SCSI VPD B1h's MEDIUM ROTATION RATE (same coding).
    pub fn from_rate(rate: u16) -> Rotation {
        match rate {
            1 => Rotation::SolidState,
            0x0401..=0xFFFE => Rotation::Rpm(rate),
            _ => Rotation::NotReported,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Checksum {
    Valid,
    /// No signature (A5h) in word 255: the drive does not keep a checksum.
    NotPresent,
    /// The 512 bytes do not sum to zero: the data is corrupt.
    Invalid {
        sum: u8,
    },
}

/// ATA SANITIZE feature set (IDENTIFY word 59).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaSanitize {
    pub supported: bool,
    pub crypto_scramble: bool,
    pub block_erase: bool,
    pub overwrite: bool,
    pub antifreeze_lock: bool,
}

/// ATA Security feature set (words 82, 85, 89, 90, 128).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaSecurity {
    pub supported: bool,
    pub enabled: bool,
    pub locked: bool,
    pub frozen: bool,
    pub count_expired: bool,
    pub enhanced_erase: bool,
    pub erase_time: Option<EraseTime>,
    pub enhanced_erase_time: Option<EraseTime>,
}

/// A drive's own estimate of how long an erase takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseTime {
    pub minutes: u32,
    /// "More than": the field's largest value.
    pub at_least: bool,
}

impl EraseTime {
    /// Words 89/90: bit 15 selects the extended format (bits 14:0, 0x7FFF
    /// meaning "more than"), else bits 7:0 (0xFF meaning "more than"); both
    /// count units of 2 minutes, 0 meaning "not reported".
    fn from_word(word: u16) -> Option<EraseTime> {
        let (value, max) = if word & 0x8000 != 0 { (word & 0x7FFF, 0x7FFF) } else { (word & 0xFF, 0xFF) };
        (value != 0).then_some(EraseTime { minutes: u32::from(value) * 2, at_least: value == max })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaFeatures {
    pub sanitize: AtaSanitize,
    pub security: AtaSecurity,
    pub lba48: bool,
    pub hpa_supported: bool,
    pub dco_supported: bool,
    pub trim: bool,
    /// Word 69 bit 4: all user data is encrypted, so a crypto scramble reaches all of it.
    pub encrypts_all_user_data: bool,
}

/// NVMe controller capabilities that decide how it can be sanitized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeFeatures {
    pub namespace: u32,
    /// SANICAP bits 0..2.
    pub sanitize_crypto_erase: bool,
    pub sanitize_block_erase: bool,
    pub sanitize_overwrite: bool,
    /// OACS bit 1.
    pub format_nvm: bool,
    /// FNA bit 0: a format applies to every namespace.
    pub format_all_namespaces: bool,
    /// FNA bit 1: a secure erase by format applies to every namespace.
    pub erase_all_namespaces: bool,
    /// FNA bit 2: Format NVM can erase cryptographically (SES=2).
    pub format_crypto_erase: bool,
    pub namespaces: u32,
    pub oacs: u16,
    pub sanicap: u32,
    pub fna: u8,
}

/// What a SCSI device offers of SANITIZE (SBC-4 §5.30), per service action;
/// `None` when the device would not say (REPORT SUPPORTED OPERATION CODES
/// unsupported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScsiFeatures {
    pub sanitize_overwrite: Option<bool>,
    pub sanitize_block_erase: Option<bool>,
    pub sanitize_crypto_erase: Option<bool>,
}

/// Word `n` of a 512-byte ATA data block (little-endian words).
pub fn word(data: &[u8; 512], n: usize) -> u16 {
    u16::from_le_bytes([data[2 * n], data[2 * n + 1]])
}

/// ATA IDENTIFY DEVICE data, decoded.
pub fn decode_ata(data: &[u8; 512]) -> DriveInfo {
    let w = |n: usize| word(data, n);
    let dword = |n: usize| u32::from(w(n)) | u32::from(w(n + 1)) << 16;
    let qword = |n: usize| u64::from(dword(n)) | u64::from(dword(n + 2)) << 32;
    // Words 82..84 and 85..87 count only when their validity bits read 01b.
    let valid = |n: usize| w(n) & 0xC000 == 0x4000;
    let bit = |n: usize, b: u32| w(n) & (1 << b) != 0;
    let lba48 = valid(83) && bit(83, 10);
    let sectors = if bit(69, 3) && qword(230) != 0 {
        qword(230)
    } else if lba48 && qword(100) != 0 {
        qword(100)
    } else {
        u64::from(dword(60))
    };
    let w106_valid = w(106) & 0xC000 == 0x4000;
    let logical = if w106_valid && bit(106, 12) { dword(117).saturating_mul(2) } else { 512 };
    let physical = if w106_valid && bit(106, 13) { logical << (w(106) & 0x0F) } else { logical };
    let security_word = w(128);
    let security = AtaSecurity {
        supported: w(82) != 0xFFFF && bit(82, 1) && security_word & 0x01 != 0,
        enabled: security_word & 0x02 != 0,
        locked: security_word & 0x04 != 0,
        frozen: security_word & 0x08 != 0,
        count_expired: security_word & 0x10 != 0,
        enhanced_erase: security_word & 0x20 != 0,
        erase_time: EraseTime::from_word(w(89)),
        enhanced_erase_time: EraseTime::from_word(w(90)),
    };
    let sanitize_supported = bit(59, 12);
    let ata = AtaFeatures {
        sanitize: AtaSanitize {
            supported: sanitize_supported,
            crypto_scramble: sanitize_supported && bit(59, 13),
            overwrite: sanitize_supported && bit(59, 14),
            block_erase: sanitize_supported && bit(59, 15),
            antifreeze_lock: sanitize_supported && bit(59, 10),
        },
        security,
        lba48,
        hpa_supported: w(82) != 0xFFFF && bit(82, 10),
        dco_supported: valid(83) && bit(83, 11),
        trim: bit(169, 0),
        encrypts_all_user_data: bit(69, 4),
    };
    let wwn = (valid(84) && bit(84, 8)).then(|| qword_be(w(108), w(109), w(110), w(111))).filter(|&v| v != 0);
    DriveInfo {
        source: Some(IdentitySource::AtaIdentify),
        model: ata_string(&data[54..94]),
        serial: ata_string(&data[20..40]),
        firmware: ata_string(&data[46..54]),
        wwn: wwn.map(|v| format!("{v:016x}")),
        capacity: (sectors > 0).then_some(Capacity {
            sectors,
            logical_sector_size: logical,
            physical_sector_size: physical,
        }),
        rotation: Rotation::from_rate(w(217)),
        ata: Some(ata),
        checksum: Some(checksum(data)),
        ..DriveInfo::default()
    }
}

/// The WWN: word 108 holds the most significant 16 bits.
fn qword_be(a: u16, b: u16, c: u16, d: u16) -> u64 {
    u64::from(a) << 48 | u64::from(b) << 32 | u64::from(c) << 16 | u64::from(d)
}

/// Word 255: signature A5h in the low byte, and a high byte that makes all 512
/// bytes sum to zero.
pub fn checksum(data: &[u8; 512]) -> Checksum {
    if data[510] != 0xA5 {
        return Checksum::NotPresent;
    }
    match data.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) {
        0 => Checksum::Valid,
        sum => Checksum::Invalid { sum },
    }
}

/// ATA strings keep two characters per word, the first in the high byte.
fn ata_string(bytes: &[u8]) -> Option<String> {
    let swapped: Vec<u8> = bytes.chunks_exact(2).flat_map(|pair| [pair[1], pair[0]]).collect();
    clean(&swapped)
}

/// Printable ASCII, trimmed of spaces and NULs; `None` when nothing is left.
pub fn clean(bytes: &[u8]) -> Option<String> {
    let text: String =
        bytes.iter().map(|&b| if (0x20..0x7F).contains(&b) { char::from(b) } else { ' ' }).collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::fake::identify_block as synthetic;
    use std::path::Path;

    fn fixture(name: &str) -> Option<[u8; 512]> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/identify").join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes.try_into().expect("fixtures are 512 bytes")),
            Err(_) => {
                eprintln!("note: {} absent; real-drive IDENTIFY check skipped", path.display());
                None
            }
        }
    }

    #[test]
    fn a_real_intel_ssd_decodes_as_its_label_says() {
        let Some(data) = fixture("ata-INTEL_SSDSA2CW120G3--4PC10302.bin") else { return };
        let info = decode_ata(&data);
        assert_eq!(info.model.as_deref(), Some("INTEL SSDSA2CW120G3"));
        assert_eq!(info.serial.as_deref(), Some("CVPR109301UZ120LGN"));
        assert_eq!(info.firmware.as_deref(), Some("4PC10302"));
        assert_eq!(info.checksum, Some(Checksum::Valid));
        assert_eq!(info.rotation, Rotation::SolidState);
        assert_eq!(info.wwn.as_deref(), Some("50015179594f0f14"));
        let capacity = info.capacity.unwrap();
        assert_eq!(capacity.sectors, 234_441_648);
        assert_eq!(capacity.logical_sector_size, 512);
        let ata = info.ata.unwrap();
        // Word 128 = 012Bh: supported, enabled, frozen, enhanced erase; not locked.
        let s = ata.security;
        assert!(s.supported && s.enabled && s.frozen && s.enhanced_erase && !s.locked);
        assert_eq!(s.erase_time, Some(EraseTime { minutes: 2, at_least: false }));
        assert!(!ata.sanitize.supported && ata.trim && ata.lba48);
    }

    #[test]
    fn real_disks_capacities_hpa_and_dco_flags() {
        // (file, model, sectors, HPA feature, DCO feature, security supported, frozen)
        let cases = [
            ("ata-FUJITSU_MHY2250BH--0085000B.bin", "FUJITSU MHY2250BH", 488_397_168, true, true, true, true),
            ("ata-Maxtor_96147H8--BAC51KJ0.bin", "Maxtor 96147H8", 120_060_864, true, false, false, false),
            ("ata-MCCOE64GEMPP--2.9.09.bin", "MCCOE64GEMPP", 117_231_408, true, true, true, false),
            (
                "ata-WDC_WD5000AAKS--00TMA0-12.01C01.bin",
                "WDC WD5000AAKS-00TMA0",
                976_773_168,
                true,
                true,
                true,
                false,
            ),
            ("ata-ST320410A--3.39.bin", "ST320410A", 39_100_223, true, true, true, false),
        ];
        for (file, model, sectors, hpa, dco, security, frozen) in cases {
            let Some(data) = fixture(file) else { return };
            let info = decode_ata(&data);
            assert_eq!(info.model.as_deref(), Some(model), "{file}");
            assert_eq!(info.capacity.unwrap().sectors, sectors, "{file}");
            assert_eq!(info.checksum, Some(Checksum::Valid), "{file}");
            let ata = info.ata.unwrap();
            assert_eq!((ata.hpa_supported, ata.dco_supported), (hpa, dco), "{file}");
            assert_eq!((ata.security.supported, ata.security.frozen), (security, frozen), "{file}");
            assert_eq!(info.rotation, Rotation::NotReported, "{file}");
        }
    }

    #[test]
    fn every_real_dump_has_a_valid_checksum_and_a_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/identify");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("note: {} absent; skipped", dir.display());
            return;
        };
        let mut seen = 0;
        for entry in entries.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "bin")) {
            let data: [u8; 512] = std::fs::read(entry.path()).unwrap().try_into().unwrap();
            let info = decode_ata(&data);
            assert_eq!(info.checksum, Some(Checksum::Valid), "{:?}", entry.path());
            assert!(info.model.is_some() && info.serial.is_some(), "{:?}", entry.path());
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} dumps read");
    }

    #[test]
    fn a_synthetic_sanitize_capable_4kn_drive() {
        let data = synthetic(
            &[
                (59, 0xB400 | 0x0100), // sanitize: block erase, crypto, supported, antifreeze
                (69, 0x0010),          // encrypts all user data
                (82, 0x4000),
                (83, 0x4400), // 48-bit
                (84, 0x4100), // WWN
                (100, 0x0000),
                (101, 0x0100), // 0x0100_0000 sectors
                (106, 0x7003), // logical > 256 words, 8 logical per physical
                (108, 0x5000),
                (109, 0xC500),
                (110, 0x1234),
                (111, 0x5678),
                (117, 0x0800), // 2048 words = 4096 bytes
                (217, 7200),
            ],
            "SYNTHETIC SANITIZE 4KN",
            "SYN-0001",
            "1.0",
        );
        let info = decode_ata(&data);
        assert_eq!(info.checksum, Some(Checksum::Valid));
        let ata = info.ata.unwrap();
        assert!(ata.sanitize.supported && ata.sanitize.block_erase && ata.sanitize.crypto_scramble);
        assert!(!ata.sanitize.overwrite && ata.sanitize.antifreeze_lock && ata.encrypts_all_user_data);
        let capacity = info.capacity.unwrap();
        assert_eq!(
            (capacity.sectors, capacity.logical_sector_size, capacity.physical_sector_size),
            (0x0100_0000, 4096, 32768)
        );
        assert_eq!(capacity.bytes(), 0x0100_0000 * 4096);
        assert_eq!(info.rotation, Rotation::Rpm(7200));
        assert_eq!(info.wwn.as_deref(), Some("5000c50012345678"));
        assert_eq!(info.serial.as_deref(), Some("SYN-0001"));
    }

    #[test]
    fn erase_times_in_both_formats() {
        assert_eq!(EraseTime::from_word(0x003c), Some(EraseTime { minutes: 120, at_least: false }));
        assert_eq!(EraseTime::from_word(0x00FF), Some(EraseTime { minutes: 510, at_least: true }));
        assert_eq!(EraseTime::from_word(0x8000 | 300), Some(EraseTime { minutes: 600, at_least: false }));
        assert_eq!(EraseTime::from_word(0xFFFF), Some(EraseTime { minutes: 65534, at_least: true }));
        assert_eq!(EraseTime::from_word(0), None);
    }

    #[test]
    fn a_corrupted_identify_is_reported_not_ignored() {
        let mut data = synthetic(&[(83, 0x4400)], "M", "S", "F");
        assert_eq!(checksum(&data), Checksum::Valid);
        data[100] ^= 0x01;
        assert!(matches!(checksum(&data), Checksum::Invalid { .. }));
        data[510] = 0;
        assert_eq!(checksum(&data), Checksum::NotPresent);
    }

    #[test]
    fn words_82_to_84_without_their_validity_bits_are_ignored() {
        // Word 83 = 0: no 48-bit feature claimed, so words 100..103 are not read.
        let data = synthetic(&[(60, 0x1000), (83, 0x0400), (100, 0xFFFF), (101, 0xFFFF)], "M", "S", "F");
        let info = decode_ata(&data);
        assert_eq!(info.capacity.unwrap().sectors, 0x1000);
        assert!(!info.ata.unwrap().lba48);
    }
}
