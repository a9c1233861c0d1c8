//! SCSI commands (SPC-5, SBC-4): INQUIRY and its VPD pages, READ CAPACITY(16),
//! SANITIZE with REPORT SUPPORTED OPERATION CODES and REQUEST SENSE for its
//! progress, and the Control mode page's D_SENSE bit. CDBs are built and
//! answers decoded here; [`ScsiDevice`] sends them.

use std::time::Duration;

use super::identify::{Capacity, Rotation};
use super::sense::{self, Sense};
use super::{CommandError, GOOD, Passthrough, Transfer};

pub fn inquiry(vpd_page: Option<u8>, allocation: u16) -> [u8; 6] {
    let [high, low] = allocation.to_be_bytes();
    match vpd_page {
        Some(page) => [0x12, 0x01, page, high, low, 0],
        None => [0x12, 0x00, 0x00, high, low, 0],
    }
}

pub fn read_capacity_16() -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9E;
    cdb[1] = 0x10;
    cdb[13] = 32;
    cdb
}

/// SANITIZE service actions (SBC-4 §5.30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SanitizeAction {
    /// One pass of a 4-byte pattern.
    Overwrite {
        pattern: u32,
    },
    BlockErase,
    CryptoErase,
}

impl SanitizeAction {
    pub fn service_action(self) -> u8 {
        match self {
            SanitizeAction::Overwrite { .. } => 0x01,
            SanitizeAction::BlockErase => 0x02,
            SanitizeAction::CryptoErase => 0x03,
        }
    }
}

/// SANITIZE with IMMED (it returns at once; progress is polled with REQUEST
/// SENSE) and AUSE clear; the OVERWRITE parameter list when one is needed.
pub fn sanitize(action: SanitizeAction) -> ([u8; 10], Vec<u8>) {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x48;
    cdb[1] = 0x80 | action.service_action();
    let parameters = match action {
        // OVERWRITE COUNT 1, no inversion, a 4-byte INITIALIZATION PATTERN.
        SanitizeAction::Overwrite { pattern } => {
            let mut list = vec![0x01, 0x00, 0x00, 0x04];
            list.extend_from_slice(&pattern.to_be_bytes());
            list
        }
        _ => Vec::new(),
    };
    cdb[7..9].copy_from_slice(&(parameters.len() as u16).to_be_bytes());
    (cdb, parameters)
}

/// REQUEST SENSE in descriptor format, 252 bytes.
pub fn request_sense() -> [u8; 6] {
    [0x03, 0x01, 0x00, 0x00, 252, 0x00]
}

/// REPORT SUPPORTED OPERATION CODES for one opcode and service action.
pub fn report_supported(opcode: u8, service_action: u16) -> [u8; 12] {
    let [sa_high, sa_low] = service_action.to_be_bytes();
    [0xA3, 0x0C, 0x02, opcode, sa_high, sa_low, 0, 0, 0, 20, 0, 0]
}

/// MODE SENSE(10) of the Control mode page (0Ah), current values.
pub fn mode_sense_control() -> [u8; 10] {
    [0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 0xFF, 0]
}

/// MODE SELECT(10), page format, not saved: `length` bytes of parameters.
pub fn mode_select(length: u16) -> [u8; 10] {
    let [high, low] = length.to_be_bytes();
    [0x55, 0x10, 0, 0, 0, 0, 0, high, low, 0]
}

/// Standard INQUIRY data: vendor, product, revision.
pub struct Inquiry {
    pub peripheral_type: u8,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub revision: Option<String>,
}

pub fn decode_inquiry(data: &[u8]) -> Option<Inquiry> {
    (data.len() >= 36).then(|| Inquiry {
        peripheral_type: data[0] & 0x1F,
        vendor: super::identify::clean(&data[8..16]),
        product: super::identify::clean(&data[16..32]),
        revision: super::identify::clean(&data[32..36]),
    })
}

/// A VPD page's payload (after its 4-byte header), cut to its own length.
pub fn vpd_payload(data: &[u8], page: u8) -> Option<&[u8]> {
    if data.len() < 4 || data[1] != page {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
    data.get(4..(4 + length).min(data.len()))
}

/// The unit serial number (VPD 80h).
pub fn decode_serial(payload: &[u8]) -> Option<String> {
    super::identify::clean(payload)
}

/// The logical unit's NAA designator (VPD 83h, association 0, type 3), hex.
pub fn decode_naa(payload: &[u8]) -> Option<String> {
    let mut at = 0;
    while at + 4 <= payload.len() {
        let (association, kind, length) =
            ((payload[at + 1] >> 4) & 0x3, payload[at + 1] & 0x0F, usize::from(payload[at + 3]));
        let designator = payload.get(at + 4..at + 4 + length)?;
        if association == 0 && kind == 3 && matches!(length, 8 | 16) {
            return Some(hex::encode(designator));
        }
        at += 4 + length;
    }
    None
}

/// MEDIUM ROTATION RATE from Block Device Characteristics (VPD B1h).
pub fn decode_rotation(payload: &[u8]) -> Rotation {
    match payload {
        [high, low, ..] => Rotation::from_rate(u16::from_be_bytes([*high, *low])),
        _ => Rotation::NotReported,
    }
}

/// IDENTIFY DEVICE data inside the ATA Information page (VPD 89h), which a
/// SAT translator offers without any ATA PASS-THROUGH.
pub fn decode_ata_information(payload: &[u8]) -> Option<[u8; 512]> {
    payload.get(56..568).map(|block| block.try_into().expect("512 bytes"))
}

pub fn decode_capacity(data: &[u8; 32]) -> Capacity {
    let last = u64::from_be_bytes(data[0..8].try_into().expect("8 bytes"));
    let block = u32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
    let exponent = u32::from(data[13] & 0x0F);
    Capacity {
        sectors: last.saturating_add(1),
        logical_sector_size: block,
        physical_sector_size: block.checked_shl(exponent).unwrap_or(block),
    }
}

/// What REPORT SUPPORTED OPERATION CODES says of one command: `None` when the
/// answer is "not available now" or unknown.
pub fn decode_supported(data: &[u8]) -> Option<bool> {
    match data.get(1).map(|b| b & 0x07) {
        Some(3 | 5) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

pub struct ScsiDevice<'a> {
    pub pt: &'a mut dyn Passthrough,
}

const TIMEOUT: Duration = Duration::from_secs(15);

impl ScsiDevice<'_> {
    /// Runs a command; CHECK CONDITION becomes an error carrying the sense.
    pub fn command(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        transfer: Transfer<'_>,
    ) -> Result<(), ScsiError> {
        let reply = self.pt.scsi(cdb, transfer, TIMEOUT).map_err(|e| CommandError::io(name, e))?;
        reply.transport_ok(name)?;
        if reply.status == GOOD {
            return Ok(());
        }
        let sense =
            sense::parse(&reply.sense).map_err(|why| CommandError::BadSense { command: name, why })?;
        Err(ScsiError::Sense { command: name, sense })
    }

    pub fn read(&mut self, name: &'static str, cdb: &[u8], length: usize) -> Result<Vec<u8>, ScsiError> {
        let mut data = vec![0u8; length];
        self.command(name, cdb, Transfer::FromDevice(&mut data))?;
        Ok(data)
    }

    pub fn vpd(&mut self, page: u8) -> Result<Vec<u8>, ScsiError> {
        let data = self.read("INQUIRY (VPD)", &inquiry(Some(page), 1024), 1024)?;
        vpd_payload(&data, page).map(<[u8]>::to_vec).ok_or(ScsiError::Malformed { command: "INQUIRY (VPD)" })
    }

    /// REQUEST SENSE: the sense the device holds (a long operation's progress).
    pub fn request_sense(&mut self) -> Result<Option<Sense>, ScsiError> {
        let data = self.read("REQUEST SENSE", &request_sense(), 252)?;
        Ok(sense::parse(&data).ok())
    }
}

/// A SCSI command's failure: the device's sense, or a failure below it.
#[derive(Debug, thiserror::Error)]
pub enum ScsiError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{command}: the device answered {}", sense.describe())]
    Sense { command: &'static str, sense: Sense },
    #[error("{command}: the answer is malformed")]
    Malformed { command: &'static str },
}

impl ScsiError {
    /// As a [`CommandError`], the device's sense named as "not supported" when
    /// it says it does not know the command.
    pub fn into_command(self) -> CommandError {
        match self {
            ScsiError::Command(error) => error,
            ScsiError::Sense { command, sense } if sense.is_invalid_opcode() || sense.is_invalid_field() => {
                CommandError::NotSupported { command, answer: sense.describe() }
            }
            ScsiError::Sense { command, sense } => {
                CommandError::Refused { command, answer: sense.describe() }
            }
            ScsiError::Malformed { command } => {
                CommandError::Refused { command, answer: "a malformed answer".into() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs_are_byte_exact() {
        // SBC-4 table 93/95 (SANITIZE), SPC-5 (INQUIRY, REQUEST SENSE, RSOC, MODE).
        assert_eq!(sanitize(SanitizeAction::CryptoErase), ([0x48, 0x83, 0, 0, 0, 0, 0, 0, 0, 0], vec![]));
        assert_eq!(sanitize(SanitizeAction::BlockErase).0, [0x48, 0x82, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (cdb, list) = sanitize(SanitizeAction::Overwrite { pattern: 0 });
        assert_eq!(cdb, [0x48, 0x81, 0, 0, 0, 0, 0, 0, 0x08, 0]);
        assert_eq!(list, [0x01, 0x00, 0x00, 0x04, 0, 0, 0, 0]);
        assert_eq!(inquiry(None, 36), [0x12, 0, 0, 0, 36, 0]);
        assert_eq!(inquiry(Some(0x80), 1024), [0x12, 1, 0x80, 0x04, 0x00, 0]);
        assert_eq!(read_capacity_16(), [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]);
        assert_eq!(request_sense(), [0x03, 0x01, 0, 0, 0xFC, 0]);
        assert_eq!(report_supported(0x48, 3), [0xA3, 0x0C, 0x02, 0x48, 0x00, 0x03, 0, 0, 0, 0x14, 0, 0]);
        assert_eq!(mode_sense_control(), [0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 0xFF, 0]);
        assert_eq!(mode_select(20), [0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0]);
    }

    #[test]
    fn inquiry_and_vpd_pages_as_qemu_answers_them() {
        let mut std = b"\x00\x00\x05\x12\x5b\x00\x00\x12CWVENDORCW-SCSI-PRODUCT 2.5+".to_vec();
        std.resize(96, 0);
        let inquiry = decode_inquiry(&std).unwrap();
        assert_eq!(inquiry.vendor.as_deref(), Some("CWVENDOR"));
        assert_eq!(inquiry.product.as_deref(), Some("CW-SCSI-PRODUCT"));
        assert_eq!(inquiry.revision.as_deref(), Some("2.5+"));
        let page80 = b"\x00\x80\x00\x0dSCSI-SERIAL-1\x00\x00";
        assert_eq!(decode_serial(vpd_payload(page80, 0x80).unwrap()).as_deref(), Some("SCSI-SERIAL-1"));
        // VPD 83h: a vendor-specific ASCII designator, then an NAA one.
        let page83 = [
            &[0x00, 0x83, 0x00, 0x1d][..],
            &[0x02, 0x00, 0x00, 0x0d],
            b"SCSI-SERIAL-1",
            &[0x01, 0x03, 0x00, 0x08, 0x50, 0x00, 0xc5, 0x00, 0x12, 0x34, 0x56, 0x78],
        ]
        .concat();
        assert_eq!(decode_naa(vpd_payload(&page83, 0x83).unwrap()).as_deref(), Some("5000c50012345678"));
        assert_eq!(vpd_payload(page80, 0x83), None);
        assert_eq!(decode_rotation(&[0x00, 0x01, 0, 0]), Rotation::SolidState);
        assert_eq!(decode_rotation(&[0x1c, 0x20]), Rotation::Rpm(7200));
    }

    #[test]
    fn capacity_and_supported_opcodes() {
        let mut data = [0u8; 32];
        data[0..8].copy_from_slice(&0x1FFFFu64.to_be_bytes());
        data[8..12].copy_from_slice(&512u32.to_be_bytes());
        data[13] = 3;
        let capacity = decode_capacity(&data);
        assert_eq!(
            (capacity.sectors, capacity.logical_sector_size, capacity.physical_sector_size),
            (0x20000, 512, 4096)
        );
        assert_eq!(decode_supported(&[0, 3, 0, 10]), Some(true));
        assert_eq!(decode_supported(&[0, 1]), Some(false));
        assert_eq!(decode_supported(&[0, 0]), None);
        assert_eq!(decode_supported(&[]), None);
    }
}
