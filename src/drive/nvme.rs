//! NVMe admin commands (NVMe Base Specification 2.0, §5): Identify, the
//! Sanitize Status log, Format NVM and Sanitize, their dwords built here and
//! their data decoded here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::identify::{Capacity, DriveInfo, IdentitySource, NvmeFeatures, clean};
use super::{CommandError, NvmeAdmin, Passthrough, Transfer};

pub const GET_LOG_PAGE: u8 = 0x02;
pub const IDENTIFY: u8 = 0x06;
pub const FORMAT_NVM: u8 = 0x80;
pub const SANITIZE: u8 = 0x84;

/// The Sanitize Status log page.
pub const SANITIZE_LOG: u8 = 0x81;
/// The whole controller (all namespaces).
pub const ALL_NAMESPACES: u32 = 0xFFFF_FFFF;

pub fn identify_controller() -> NvmeAdmin {
    NvmeAdmin { opcode: IDENTIFY, cdw10: 0x01, ..NvmeAdmin::default() }
}

pub fn identify_namespace(nsid: u32) -> NvmeAdmin {
    NvmeAdmin { opcode: IDENTIFY, nsid, cdw10: 0x00, ..NvmeAdmin::default() }
}

/// Get Log Page for the 512-byte Sanitize Status log: NUMDL is the number of
/// dwords minus one (7Fh), LID 81h.
pub fn sanitize_log() -> NvmeAdmin {
    NvmeAdmin {
        opcode: GET_LOG_PAGE,
        nsid: ALL_NAMESPACES,
        cdw10: (127 << 16) | u32::from(SANITIZE_LOG),
        ..NvmeAdmin::default()
    }
}

/// Format NVM's Secure Erase Settings. SES is always given explicitly: a
/// format with SES 0 erases nothing, however long it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureErase {
    UserData = 1,
    Cryptographic = 2,
}

/// Format NVM with the namespace's current LBA format (so nothing but the data
/// changes) and the given secure erase.
pub fn format_nvm(nsid: u32, lba_format: u8, ses: SecureErase) -> NvmeAdmin {
    // LBAF bits 3:0 and (NVMe 2.0) LBAFU bits 13:12; SES bits 11:9.
    let lbaf = u32::from(lba_format & 0x0F) | (u32::from(lba_format >> 4) & 0x3) << 12;
    NvmeAdmin { opcode: FORMAT_NVM, nsid, cdw10: lbaf | (ses as u32) << 9, ..NvmeAdmin::default() }
}

/// Sanitize actions (SANACT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SanitizeAction {
    BlockErase,
    /// One pass of a 32-bit pattern.
    Overwrite {
        pattern: u32,
    },
    CryptoErase,
}

/// Sanitize with AUSE clear (a failed sanitize can only be left by a
/// successful one) and deallocation allowed.
pub fn sanitize(action: SanitizeAction) -> NvmeAdmin {
    let (cdw10, cdw11) = match action {
        SanitizeAction::BlockErase => (0x2, 0),
        // SANACT 3, OWPASS 1 (bits 7:4), no pattern inversion.
        SanitizeAction::Overwrite { pattern } => (0x3 | 1 << 4, pattern),
        SanitizeAction::CryptoErase => (0x4, 0),
    };
    NvmeAdmin { opcode: SANITIZE, cdw10, cdw11, ..NvmeAdmin::default() }
}

pub const SUCCESS: u16 = 0x0000;
pub const INVALID_OPCODE: u16 = 0x0001;
pub const INVALID_FIELD: u16 = 0x0002;
pub const SANITIZE_FAILED: u16 = 0x001C;
pub const SANITIZE_IN_PROGRESS: u16 = 0x001D;

/// SCT and SC without the MORE and DNR flags.
pub fn status_code(status: u16) -> u16 {
    status & 0x07FF
}

pub fn status_name(status: u16) -> &'static str {
    match status_code(status) {
        SUCCESS => "success",
        INVALID_OPCODE => "Invalid Command Opcode",
        INVALID_FIELD => "Invalid Field in Command",
        0x0006 => "Internal Error",
        0x000B => "Invalid Namespace or Format",
        0x0015 => "Operation Denied",
        SANITIZE_FAILED => "Sanitize Failed",
        SANITIZE_IN_PROGRESS => "Sanitize In Progress",
        0x0020 => "Namespace is Write Protected",
        0x0082 => "Namespace Not Ready",
        0x0084 => "Format In Progress",
        0x010A => "Invalid Format",
        0x0123 => "Sanitize Prohibited While Persistent Memory Region is Enabled",
        _ => "see the NVMe status code tables",
    }
}

/// The drive does not have this command or feature.
pub fn is_unsupported(status: u16) -> bool {
    matches!(status_code(status), INVALID_OPCODE | INVALID_FIELD)
}

/// The Sanitize Status log (§5.16.1.25).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizeLog {
    /// In 65536ths, while in progress.
    pub progress: Option<u16>,
    pub state: SanitizeState,
    pub global_data_erased: bool,
    /// Command dword 10 of the sanitize that set this state.
    pub last_cdw10: u32,
    /// The drive's estimates, seconds, for overwrite / block erase / crypto erase.
    pub estimates: [Option<u32>; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SanitizeState {
    NeverSanitized,
    Succeeded,
    InProgress,
    Failed,
    /// Succeeded, with no-deallocate as requested (SSTAT 4).
    SucceededNoDeallocate,
    Unknown,
}

impl SanitizeLog {
    pub fn decode(page: &[u8; 512]) -> SanitizeLog {
        let u16_at = |i: usize| u16::from_le_bytes([page[i], page[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([page[i], page[i + 1], page[i + 2], page[i + 3]]);
        let sstat = u16_at(2);
        let state = match sstat & 0x7 {
            0 => SanitizeState::NeverSanitized,
            1 => SanitizeState::Succeeded,
            2 => SanitizeState::InProgress,
            3 => SanitizeState::Failed,
            4 => SanitizeState::SucceededNoDeallocate,
            _ => SanitizeState::Unknown,
        };
        // 0 means "completes with the command", FFFFFFFFh "not reported".
        let estimate = |i: usize| Some(u32_at(i)).filter(|&s| s != u32::MAX);
        SanitizeLog {
            progress: (state == SanitizeState::InProgress).then_some(u16_at(0)),
            state,
            global_data_erased: sstat & 0x100 != 0,
            last_cdw10: u32_at(4),
            estimates: [estimate(8), estimate(12), estimate(16)],
        }
    }

    pub fn succeeded(&self) -> bool {
        matches!(self.state, SanitizeState::Succeeded | SanitizeState::SucceededNoDeallocate)
    }
}

/// Identify Controller: identity and the sanitize-relevant capabilities.
pub fn decode_controller(data: &[u8; 4096]) -> DriveInfo {
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let (oacs, sanicap, fna) = (u16_at(256), u32_at(328), data[524]);
    DriveInfo {
        source: Some(IdentitySource::NvmeIdentify),
        serial: clean(&data[4..24]),
        model: clean(&data[24..64]),
        firmware: clean(&data[64..72]),
        nvme: Some(NvmeFeatures {
            namespace: 0,
            sanitize_crypto_erase: sanicap & 0x1 != 0,
            sanitize_block_erase: sanicap & 0x2 != 0,
            sanitize_overwrite: sanicap & 0x4 != 0,
            format_nvm: oacs & 0x2 != 0,
            format_all_namespaces: fna & 0x1 != 0,
            erase_all_namespaces: fna & 0x2 != 0,
            format_crypto_erase: fna & 0x4 != 0,
            namespaces: u32_at(516),
            oacs,
            sanicap,
            fna,
        }),
        ..DriveInfo::default()
    }
}

/// Identify Namespace: size, sector size, the format in use, EUI-64 and NGUID.
pub struct Namespace {
    pub capacity: Capacity,
    /// Index of the LBA format in use (FLBAS).
    pub lba_format: u8,
    pub nguid: Option<String>,
    pub eui64: Option<String>,
}

pub fn decode_namespace(data: &[u8; 4096]) -> Namespace {
    let sectors = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
    let flbas = data[26];
    // FLBAS bits 3:0, and bits 6:5 as the index's bits 5:4 (NVMe 2.0).
    let lba_format = (flbas & 0x0F) | (flbas & 0x60) >> 1;
    let lbads = data[128 + 4 * usize::from(lba_format) + 2];
    let sector = if (9..=16).contains(&lbads) { 1u32 << lbads } else { 512 };
    let nonzero = |bytes: &[u8]| bytes.iter().any(|&b| b != 0).then(|| hex::encode(bytes));
    Namespace {
        capacity: Capacity { sectors, logical_sector_size: sector, physical_sector_size: sector },
        lba_format,
        nguid: nonzero(&data[104..120]),
        eui64: nonzero(&data[120..128]),
    }
}

/// An NVMe namespace block device and its controller.
pub struct NvmeDevice<'a> {
    pub pt: &'a mut dyn Passthrough,
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

impl NvmeDevice<'_> {
    /// Sends a command; an NVMe error status is an error.
    pub fn admin(
        &mut self,
        name: &'static str,
        command: &NvmeAdmin,
        transfer: Transfer<'_>,
        timeout: Duration,
    ) -> Result<u32, CommandError> {
        let reply = self.pt.nvme_admin(command, transfer, timeout).map_err(|e| CommandError::io(name, e))?;
        match reply.status {
            SUCCESS => Ok(reply.result),
            status => Err(CommandError::Nvme { command: name, status }),
        }
    }

    pub fn read_4k(
        &mut self,
        name: &'static str,
        command: &NvmeAdmin,
    ) -> Result<Box<[u8; 4096]>, CommandError> {
        let mut data = Box::new([0u8; 4096]);
        self.admin(name, command, Transfer::FromDevice(&mut data[..]), ADMIN_TIMEOUT)?;
        Ok(data)
    }

    pub fn sanitize_log(&mut self) -> Result<SanitizeLog, CommandError> {
        let mut page = [0u8; 512];
        self.admin(
            "GET LOG PAGE (sanitize status)",
            &sanitize_log(),
            Transfer::FromDevice(&mut page),
            ADMIN_TIMEOUT,
        )?;
        Ok(SanitizeLog::decode(&page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dwords from the NVMe Base Specification's field tables, as libnvme and
    /// nvme-cli compose them.
    #[test]
    fn admin_dwords_are_exact() {
        assert_eq!((identify_controller().opcode, identify_controller().cdw10), (0x06, 0x0000_0001));
        assert_eq!((identify_namespace(1).nsid, identify_namespace(1).cdw10), (1, 0));
        let log = sanitize_log();
        assert_eq!((log.opcode, log.nsid, log.cdw10, log.cdw11), (0x02, 0xFFFF_FFFF, 0x007F_0081, 0));
        assert_eq!(format_nvm(1, 0, SecureErase::UserData).cdw10, 0x0000_0200);
        assert_eq!(format_nvm(1, 0, SecureErase::Cryptographic).cdw10, 0x0000_0400);
        assert_eq!(format_nvm(1, 3, SecureErase::UserData).cdw10, 0x0000_0203);
        assert_eq!(format_nvm(1, 0x13, SecureErase::UserData).cdw10, 0x0000_1203);
        assert_eq!(format_nvm(7, 0, SecureErase::UserData).opcode, 0x80);
        let crypto = sanitize(SanitizeAction::CryptoErase);
        assert_eq!((crypto.opcode, crypto.nsid, crypto.cdw10, crypto.cdw11), (0x84, 0, 0x4, 0));
        assert_eq!(sanitize(SanitizeAction::BlockErase).cdw10, 0x2);
        let overwrite = sanitize(SanitizeAction::Overwrite { pattern: 0xDEAD_BEEF });
        assert_eq!((overwrite.cdw10, overwrite.cdw11), (0x13, 0xDEAD_BEEF));
    }

    #[test]
    fn status_codes_strip_dnr_and_more() {
        // QEMU answers Sanitize with DNR | Invalid Command Opcode.
        assert_eq!(status_code(0x4001), INVALID_OPCODE);
        assert!(is_unsupported(0x4001) && is_unsupported(0x4002));
        assert!(!is_unsupported(0x401D));
        assert_eq!(status_name(0x401D), "Sanitize In Progress");
    }

    #[test]
    fn sanitize_log_states() {
        let mut page = [0u8; 512];
        page[0..2].copy_from_slice(&0x8000u16.to_le_bytes());
        page[2..4].copy_from_slice(&(2u16 | 3 << 3).to_le_bytes());
        page[4..8].copy_from_slice(&0x4u32.to_le_bytes());
        page[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        page[16..20].copy_from_slice(&30u32.to_le_bytes());
        let log = SanitizeLog::decode(&page);
        assert_eq!(log.state, SanitizeState::InProgress);
        assert_eq!(log.progress, Some(0x8000));
        assert_eq!(log.last_cdw10, 4);
        assert_eq!(log.estimates, [None, Some(0), Some(30)]);
        page[2..4].copy_from_slice(&(1u16 | 0x100).to_le_bytes());
        let done = SanitizeLog::decode(&page);
        assert!(done.succeeded() && done.global_data_erased && done.progress.is_none());
        page[2] = 3;
        assert_eq!(SanitizeLog::decode(&page).state, SanitizeState::Failed);
    }

    /// A synthetic Identify Controller laid out per the NVMe Base Specification
    /// (figure 275): what QEMU's controller reports, plus sanitize capabilities.
    pub(crate) fn synthetic_controller(sanicap: u32, fna: u8) -> Box<[u8; 4096]> {
        let mut data = Box::new([0u8; 4096]);
        data[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
        data[4..24].copy_from_slice(b"NVME-SERIAL-1       ");
        data[24..64].copy_from_slice(format!("{:<40}", "QEMU NVMe Ctrl").as_bytes());
        data[64..72].copy_from_slice(b"10.0.2  ");
        data[256..258].copy_from_slice(&0x012au16.to_le_bytes());
        data[328..332].copy_from_slice(&sanicap.to_le_bytes());
        data[516..520].copy_from_slice(&256u32.to_le_bytes());
        data[524] = fna;
        data
    }

    #[test]
    fn identify_controller_decodes_identity_and_capabilities() {
        let info = decode_controller(&synthetic_controller(0x7, 0x4));
        assert_eq!(info.serial.as_deref(), Some("NVME-SERIAL-1"));
        assert_eq!(info.model.as_deref(), Some("QEMU NVMe Ctrl"));
        assert_eq!(info.firmware.as_deref(), Some("10.0.2"));
        let nvme = info.nvme.unwrap();
        assert!(nvme.sanitize_crypto_erase && nvme.sanitize_block_erase && nvme.sanitize_overwrite);
        assert!(nvme.format_nvm && nvme.format_crypto_erase && !nvme.format_all_namespaces);
        assert_eq!(nvme.namespaces, 256);
        let none = decode_controller(&synthetic_controller(0, 0)).nvme.unwrap();
        assert!(!none.sanitize_crypto_erase && !none.sanitize_block_erase && !none.format_crypto_erase);
    }

    #[test]
    fn identify_namespace_uses_the_format_in_use() {
        let mut data = Box::new([0u8; 4096]);
        data[0..8].copy_from_slice(&131_072u64.to_le_bytes());
        data[25] = 1;
        data[26] = 0x01; // format 1 in use
        data[128 + 2] = 9; // format 0: 512 bytes
        data[132 + 2] = 12; // format 1: 4096 bytes
        data[120..128].copy_from_slice(&[0x00, 0x25, 0x38, 0x5a, 0x11, 0x22, 0x33, 0x44]);
        let ns = decode_namespace(&data);
        assert_eq!(ns.capacity.sectors, 131_072);
        assert_eq!(ns.capacity.logical_sector_size, 4096);
        assert_eq!(ns.lba_format, 1);
        assert_eq!(ns.eui64.as_deref(), Some("0025385a11223344"));
        assert_eq!(ns.nguid, None);
    }
}
