//! SCSI sense data, as a drive (or the translator in front of it) explains a
//! CHECK CONDITION: fixed format (response codes 70h/71h) and descriptor format
//! (72h/73h), the ATA registers an ATA PASS-THROUGH returns in either, and the
//! progress indication of a long operation (SPC-5 §4.4, SAT-4 §12.2.2.6/7).
//!
//! The ATA registers are the part to distrust. A SAT translator answering in
//! fixed format has room for only the low bytes (COUNT 7:0, LBA 23:0) plus two
//! "upper bytes nonzero" flags, and Linux 6.1 writes even those at the wrong
//! offsets without setting VALID. So fixed-format registers are used only when
//! VALID is set or the sense says "ATA PASS-THROUGH INFORMATION AVAILABLE"
//! (00h/1Dh), and their upper bytes only when both flags say they are zero.

use thiserror::Error;

pub const NO_SENSE: u8 = 0x0;
pub const RECOVERED_ERROR: u8 = 0x1;
pub const NOT_READY: u8 = 0x2;
pub const MEDIUM_ERROR: u8 = 0x3;
pub const ILLEGAL_REQUEST: u8 = 0x5;
pub const UNIT_ATTENTION: u8 = 0x6;
pub const ABORTED_COMMAND: u8 = 0xB;

/// The registers an ATA command left behind (SAT's "ATA Status Return").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtaRegisters {
    pub error: u8,
    pub status: u8,
    pub device: u8,
    pub count: u16,
    pub lba: u64,
    /// COUNT 15:8 and LBA 47:24 are known (descriptor format, or fixed format
    /// with both "upper bytes nonzero" flags clear).
    pub upper_known: bool,
    /// They came in descriptor format, which always has room for them.
    pub descriptor: bool,
}

impl AtaRegisters {
    /// ATA STATUS bit 0: the command ended in error.
    pub fn failed(&self) -> bool {
        self.status & 0x01 != 0
    }

    /// ATA ERROR bit 2 (ABRT): the drive refused the command.
    pub fn aborted(&self) -> bool {
        self.error & 0x04 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    pub format: SenseFormat,
    /// Progress of a long operation, in 65536ths, when the sense carries one.
    pub progress: Option<u16>,
    /// What an ATA PASS-THROUGH returned, when it can be trusted (see the module notes).
    pub ata: Option<AtaRegisters>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenseFormat {
    Fixed,
    Descriptor,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SenseError {
    #[error("no sense data was returned")]
    Empty,
    #[error("sense data cut short at {0} bytes")]
    Truncated(usize),
    #[error("sense data of unknown response code {0:#04x}")]
    UnknownFormat(u8),
}

impl Sense {
    /// "ATA PASS-THROUGH INFORMATION AVAILABLE": the registers of a command that
    /// completed, returned because CK_COND asked for them.
    pub fn is_ata_information(&self) -> bool {
        self.asc == 0x00 && self.ascq == 0x1D
    }

    /// ASC/ASCQ 20h/00h: the device does not know this command at all.
    pub fn is_invalid_opcode(&self) -> bool {
        self.key == ILLEGAL_REQUEST && self.asc == 0x20 && self.ascq == 0x00
    }

    /// ILLEGAL REQUEST for a field of the command (24h) or parameter list (26h).
    pub fn is_invalid_field(&self) -> bool {
        self.key == ILLEGAL_REQUEST && matches!(self.asc, 0x24 | 0x26)
    }

    /// 04h/1Bh: LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
    pub fn is_sanitize_in_progress(&self) -> bool {
        self.asc == 0x04 && self.ascq == 0x1B
    }

    /// 31h/03h: SANITIZE COMMAND FAILED.
    pub fn is_sanitize_failed(&self) -> bool {
        self.asc == 0x31 && self.ascq == 0x03
    }

    /// What a person reads: key name and ASC/ASCQ.
    pub fn describe(&self) -> String {
        format!("{} (ASC/ASCQ {:02X}h/{:02X}h)", key_name(self.key), self.asc, self.ascq)
    }
}

pub fn key_name(key: u8) -> &'static str {
    match key {
        NO_SENSE => "NO SENSE",
        RECOVERED_ERROR => "RECOVERED ERROR",
        NOT_READY => "NOT READY",
        MEDIUM_ERROR => "MEDIUM ERROR",
        0x4 => "HARDWARE ERROR",
        ILLEGAL_REQUEST => "ILLEGAL REQUEST",
        UNIT_ATTENTION => "UNIT ATTENTION",
        0x7 => "DATA PROTECT",
        ABORTED_COMMAND => "ABORTED COMMAND",
        _ => "sense key",
    }
}

/// Decodes sense data in either format.
pub fn parse(bytes: &[u8]) -> Result<Sense, SenseError> {
    let Some(&first) = bytes.first() else { return Err(SenseError::Empty) };
    match first & 0x7F {
        0x70 | 0x71 => parse_fixed(bytes),
        0x72 | 0x73 => parse_descriptor(bytes),
        other => Err(SenseError::UnknownFormat(other)),
    }
}

fn parse_fixed(b: &[u8]) -> Result<Sense, SenseError> {
    // Key at 2, ASC/ASCQ at 12..14: anything shorter says nothing usable.
    if b.len() < 14 {
        return Err(SenseError::Truncated(b.len()));
    }
    let (key, asc, ascq) = (b[2] & 0x0F, b[12], b[13]);
    let valid = b[0] & 0x80 != 0;
    // Sense-key-specific progress: SKSV set, with key NO SENSE or NOT READY.
    let progress = (b.len() >= 18 && b[15] & 0x80 != 0 && matches!(key, NO_SENSE | NOT_READY))
        .then(|| u16::from_be_bytes([b[16], b[17]]));
    let ata_layout = valid || (asc == 0x00 && ascq == 0x1D);
    let ata = ata_layout.then(|| {
        // SAT fixed format: ERROR, STATUS, DEVICE, COUNT 7:0 in the INFORMATION
        // field (3..7); EXTEND and the two "upper nonzero" flags at 8; LBA 23:0 at 9..12.
        let upper_nonzero = b[8] & 0x60 != 0;
        AtaRegisters {
            error: b[3],
            status: b[4],
            device: b[5],
            count: u16::from(b[6]),
            lba: u64::from(b[9]) | u64::from(b[10]) << 8 | u64::from(b[11]) << 16,
            upper_known: !upper_nonzero,
            descriptor: false,
        }
    });
    Ok(Sense { key, asc, ascq, format: SenseFormat::Fixed, progress, ata })
}

fn parse_descriptor(b: &[u8]) -> Result<Sense, SenseError> {
    if b.len() < 8 {
        return Err(SenseError::Truncated(b.len()));
    }
    let (key, asc, ascq) = (b[1] & 0x0F, b[2], b[3]);
    let end = (8 + usize::from(b[7])).min(b.len());
    let mut sense = Sense { key, asc, ascq, format: SenseFormat::Descriptor, progress: None, ata: None };
    let mut at = 8;
    // Each descriptor: type, additional length, then that many bytes.
    while at + 2 <= end {
        let (kind, len) = (b[at], usize::from(b[at + 1]));
        let Some(d) = b.get(at..at + 2 + len).filter(|_| at + 2 + len <= end) else { break };
        match kind {
            // Sense key specific: SKSV at byte 4, progress at 5..7.
            0x02 if len >= 6 && d[4] & 0x80 != 0 && matches!(key, NO_SENSE | NOT_READY) => {
                sense.progress = Some(u16::from_be_bytes([d[5], d[6]]));
            }
            // Another progress indication (SPC-5 §4.4.2.2.8): progress at 6..8.
            0x0A if len >= 6 && sense.progress.is_none() => {
                sense.progress = Some(u16::from_be_bytes([d[6], d[7]]));
            }
            0x09 if len >= 12 => sense.ata = Some(ata_status_return(d)),
            _ => {}
        }
        at += 2 + len;
    }
    Ok(sense)
}

/// The ATA Status Return descriptor (09h, SAT-4 §12.2.2.6).
fn ata_status_return(d: &[u8]) -> AtaRegisters {
    let extend = d[2] & 0x01 != 0;
    let byte = |i: usize| u64::from(d[i]);
    let low = byte(7) | byte(9) << 8 | byte(11) << 16;
    let high = byte(6) << 24 | byte(8) << 32 | byte(10) << 40;
    AtaRegisters {
        error: d[3],
        count: if extend { u16::from_be_bytes([d[4], d[5]]) } else { u16::from(d[5]) },
        lba: if extend { low | high } else { low },
        device: d[12],
        status: d[13],
        upper_known: true,
        descriptor: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace(' ', "")).unwrap()
    }

    #[test]
    fn descriptor_sense_with_ata_return_gives_48_bit_registers() {
        // libata, READ NATIVE MAX ADDRESS EXT on QEMU's 64 MiB disk (captured in a guest).
        let sense =
            parse(&bytes("72 01 00 1d 00 00 00 0e 09 0c 01 00 00 00 00 ff 00 ff 00 01 40 50")).unwrap();
        assert_eq!((sense.key, sense.asc, sense.ascq), (RECOVERED_ERROR, 0x00, 0x1D));
        assert!(sense.is_ata_information());
        let ata = sense.ata.unwrap();
        assert_eq!(ata.lba, 0x1_FFFF);
        assert_eq!((ata.status, ata.error, ata.device), (0x50, 0, 0x40));
        assert!(ata.upper_known && !ata.failed());
    }

    #[test]
    fn descriptor_sanitize_status_keeps_count_15_8() {
        // SANITIZE STATUS EXT, "completed without error" is COUNT bit 15.
        let sense =
            parse(&bytes("72 01 00 1D 00 00 00 0E 09 0C 01 00 80 00 00 FF 00 FF 00 00 40 50")).unwrap();
        let ata = sense.ata.unwrap();
        assert_eq!(ata.count, 0x8000);
        assert_eq!(ata.lba & 0xFFFF, 0xFFFF);
    }

    #[test]
    fn an_aborted_ata_command_in_descriptor_format() {
        // SECURITY ERASE PREPARE refused by QEMU's disk with D_SENSE set.
        let sense =
            parse(&bytes("72 0b 00 00 00 00 00 0e 09 0c 00 04 00 00 00 00 00 00 00 00 00 41")).unwrap();
        assert_eq!(sense.key, ABORTED_COMMAND);
        let ata = sense.ata.unwrap();
        assert!(ata.failed() && ata.aborted());
    }

    #[test]
    fn fixed_sat_layout_is_read_when_valid_is_set() {
        // Linux 6.12: SET MAX ADDRESS EXT aborted, fixed format with VALID.
        let sense = parse(&bytes("f0 00 0b 04 41 40 00 0a 80 ff ff 00 00 00 00 00 00 00")).unwrap();
        assert_eq!(sense.format, SenseFormat::Fixed);
        let ata = sense.ata.unwrap();
        assert_eq!((ata.error, ata.status, ata.device), (0x04, 0x41, 0x40));
        assert_eq!(ata.lba, 0x00FFFF);
        assert!(ata.aborted() && ata.upper_known);
    }

    #[test]
    fn fixed_registers_without_valid_are_not_trusted() {
        // Linux 6.1 puts the registers at the wrong offsets and leaves VALID clear;
        // only the key (ABORTED COMMAND) may be believed.
        let sense = parse(&bytes("70 00 0b 00 00 00 00 0a 04 41 40 00 00 00 00 00 80 ff")).unwrap();
        assert_eq!(sense.key, ABORTED_COMMAND);
        assert_eq!(sense.ata, None);
    }

    #[test]
    fn fixed_upper_bytes_are_unknown_when_flagged_nonzero() {
        // SANITIZE STATUS EXT in fixed format: COUNT 15:8 (which holds the result) is lost.
        let sense = parse(&bytes("F0 00 01 00 50 40 00 0A C0 FF FF 00 00 1D 00 00 00 00")).unwrap();
        let ata = sense.ata.unwrap();
        assert!(!ata.upper_known);
        assert_eq!(ata.count, 0);
    }

    #[test]
    fn progress_in_fixed_and_descriptor_formats() {
        // A SCSI SANITIZE a quarter done: NOT READY, 04h/1Bh, SKSV with 0x4000.
        let fixed = parse(&bytes("70 00 02 00 00 00 00 0a 00 00 00 00 04 1b 00 80 40 00")).unwrap();
        assert!(fixed.is_sanitize_in_progress());
        assert_eq!(fixed.progress, Some(0x4000));
        let descriptor = parse(&bytes("72 02 04 1b 00 00 00 08 02 06 00 00 80 40 00 00")).unwrap();
        assert_eq!(descriptor.progress, Some(0x4000));
        let another = parse(&bytes("72 00 00 00 00 00 00 08 0a 06 02 04 1b 00 20 00")).unwrap();
        assert_eq!(another.progress, Some(0x2000));
    }

    #[test]
    fn truncated_empty_and_foreign_sense_are_errors_not_panics() {
        assert_eq!(parse(&[]), Err(SenseError::Empty));
        assert_eq!(parse(&bytes("70 00 05 00")), Err(SenseError::Truncated(4)));
        assert_eq!(parse(&bytes("72 05 20")), Err(SenseError::Truncated(3)));
        assert_eq!(parse(&bytes("7f 00")), Err(SenseError::UnknownFormat(0x7f)));
        // A descriptor that claims more bytes than there are is ignored, not read past the end.
        let cut = parse(&bytes("72 01 00 1d 00 00 00 0e 09 0c 01 00")).unwrap();
        assert_eq!(cut.ata, None);
        // Invalid opcode, as QEMU's SCSI disk answers SANITIZE.
        let sense = parse(&bytes("70 00 05 00 00 00 00 0a 00 00 00 00 20 00 00 00 00 00")).unwrap();
        assert!(sense.is_invalid_opcode());
    }
}
