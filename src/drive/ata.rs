//! ATA commands tunnelled through SCSI: the ATA PASS-THROUGH(16) CDB (SAT-4
//! §12.2.2, opcode 85h) and the ATA commands certwipe sends in it (ACS-4):
//! IDENTIFY, the HPA and DCO commands, SANITIZE DEVICE and the Security feature
//! set. Builders here are pure; [`AtaDevice`] sends them through the
//! [`Passthrough`] seam and reads the registers back from the sense data.

use std::time::Duration;

use super::sense::{self, AtaRegisters};
use super::{CommandError, Passthrough, ScsiReply, Transfer};

/// The ATA protocol of a command (SAT PROTOCOL field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    NonData,
    PioIn,
    PioOut,
}

impl Protocol {
    fn code(self) -> u8 {
        match self {
            Protocol::NonData => 3,
            Protocol::PioIn => 4,
            Protocol::PioOut => 5,
        }
    }
}

/// One ATA command: the registers that go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taskfile {
    pub command: u8,
    pub feature: u16,
    pub count: u16,
    pub lba: u64,
    pub device: u8,
    pub protocol: Protocol,
    /// A 48-bit (EXT) command: the upper register bytes are sent.
    pub extend: bool,
}

/// The DEVICE register's LBA bit, which 48-bit and LBA-addressed commands set.
const DEVICE_LBA: u8 = 0x40;

impl Taskfile {
    const fn new(command: u8, protocol: Protocol, extend: bool) -> Taskfile {
        Taskfile { command, feature: 0, count: 0, lba: 0, device: 0, protocol, extend }
    }

    /// The ATA PASS-THROUGH(16) CDB. Non-data commands set CK_COND so the
    /// registers come back; data-in commands do not (a drive that leaves DRQ set
    /// then turns a good IDENTIFY into ABORTED COMMAND), and count their
    /// transfer in 512-byte blocks in the COUNT field, as USB bridges expect.
    pub fn cdb(&self) -> [u8; 16] {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x85;
        cdb[1] = self.protocol.code() << 1 | u8::from(self.extend);
        cdb[2] = match self.protocol {
            Protocol::NonData => 0x20,
            // T_DIR from device, BYTE_BLOCK, T_LENGTH in COUNT.
            Protocol::PioIn => 0x0E,
            Protocol::PioOut => 0x06,
        };
        let [feature_high, feature_low] = self.feature.to_be_bytes();
        let [count_high, count_low] = self.count.to_be_bytes();
        let lba = self.lba.to_le_bytes();
        if self.extend {
            cdb[3] = feature_high;
            cdb[5] = count_high;
            cdb[7] = lba[3];
            cdb[9] = lba[4];
            cdb[11] = lba[5];
        }
        cdb[4] = feature_low;
        cdb[6] = count_low;
        cdb[8] = lba[0];
        cdb[10] = lba[1];
        cdb[12] = lba[2];
        cdb[13] = self.device;
        cdb[14] = self.command;
        cdb
    }
}

pub const IDENTIFY_DEVICE: u8 = 0xEC;
pub const READ_NATIVE_MAX_ADDRESS_EXT: u8 = 0x27;
pub const SET_MAX_ADDRESS_EXT: u8 = 0x37;
pub const ACCESSIBLE_MAX_ADDRESS: u8 = 0x78;
pub const DEVICE_CONFIGURATION: u8 = 0xB1;
pub const SANITIZE_DEVICE: u8 = 0xB4;
pub const SECURITY_SET_PASSWORD: u8 = 0xF1;
pub const SECURITY_ERASE_PREPARE: u8 = 0xF3;
pub const SECURITY_ERASE_UNIT: u8 = 0xF4;

pub fn identify() -> Taskfile {
    Taskfile { count: 1, ..Taskfile::new(IDENTIFY_DEVICE, Protocol::PioIn, false) }
}

pub fn read_native_max_ext() -> Taskfile {
    Taskfile { device: DEVICE_LBA, ..Taskfile::new(READ_NATIVE_MAX_ADDRESS_EXT, Protocol::NonData, true) }
}

/// SET MAX ADDRESS EXT. `keep` (COUNT bit 0, "value volatile") makes the new
/// maximum survive a power cycle; certwipe restores hidden areas volatilely.
pub fn set_max_address_ext(max_lba: u64, keep: bool) -> Taskfile {
    Taskfile {
        lba: max_lba,
        count: u16::from(keep),
        device: DEVICE_LBA,
        ..Taskfile::new(SET_MAX_ADDRESS_EXT, Protocol::NonData, true)
    }
}

/// GET NATIVE MAX ADDRESS EXT (ACS-3 Accessible Max Address Configuration).
pub fn get_native_max_ext() -> Taskfile {
    Taskfile { device: DEVICE_LBA, ..Taskfile::new(ACCESSIBLE_MAX_ADDRESS, Protocol::NonData, true) }
}

/// SET ACCESSIBLE MAX ADDRESS EXT, volatile (COUNT bit 0 clear).
pub fn set_accessible_max_ext(max_lba: u64) -> Taskfile {
    Taskfile { feature: 0x0001, lba: max_lba, ..get_native_max_ext() }
}

pub fn dco_identify() -> Taskfile {
    Taskfile { feature: 0xC2, count: 1, ..Taskfile::new(DEVICE_CONFIGURATION, Protocol::PioIn, false) }
}

/// DEVICE CONFIGURATION RESTORE: the drive's factory capacity and features,
/// permanently.
pub fn dco_restore() -> Taskfile {
    Taskfile { feature: 0xC0, ..Taskfile::new(DEVICE_CONFIGURATION, Protocol::NonData, false) }
}

/// The SANITIZE DEVICE sub-commands (ACS-4 §7.32), with the signature each
/// carries in the LBA field so that a stray command cannot start one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sanitize {
    Status {
        clear_failure: bool,
    },
    CryptoScramble,
    BlockErase,
    /// One pass of a 32-bit pattern.
    Overwrite {
        pattern: u32,
    },
}

impl Sanitize {
    pub fn taskfile(self) -> Taskfile {
        let (feature, lba, count) = match self {
            Sanitize::Status { clear_failure } => (0x0000, 0, u16::from(clear_failure)),
            // FAILURE MODE 0: a failed sanitize is left only by a successful one.
            Sanitize::CryptoScramble => (0x0011, 0x4372_7970, 0),
            Sanitize::BlockErase => (0x0012, 0x426B_4572, 0),
            // OVERWRITE PASS COUNT 1, no inversion; signature "OW" above the pattern.
            Sanitize::Overwrite { pattern } => (0x0014, 0x4F57 << 32 | u64::from(pattern), 1),
        };
        Taskfile {
            feature,
            lba,
            count,
            device: DEVICE_LBA,
            ..Taskfile::new(SANITIZE_DEVICE, Protocol::NonData, true)
        }
    }
}

pub fn security_set_password() -> Taskfile {
    Taskfile { count: 1, ..Taskfile::new(SECURITY_SET_PASSWORD, Protocol::PioOut, false) }
}

pub fn security_erase_prepare() -> Taskfile {
    Taskfile::new(SECURITY_ERASE_PREPARE, Protocol::NonData, false)
}

pub fn security_erase_unit() -> Taskfile {
    Taskfile { count: 1, ..Taskfile::new(SECURITY_ERASE_UNIT, Protocol::PioOut, false) }
}

/// The 512-byte data block of SECURITY SET PASSWORD / ERASE UNIT (ACS-4
/// §7.45): word 0 bit 0 selects the user password, bit 1 an enhanced erase;
/// the password follows in bytes 2..34, as given.
pub fn security_block(password: &[u8; 32], enhanced: bool) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[0] = if enhanced { 0x02 } else { 0x00 };
    block[2..34].copy_from_slice(password);
    block
}

/// SANITIZE STATUS EXT's answer (ACS-4 §7.32.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SanitizeStatus {
    pub completed_without_error: bool,
    pub in_progress: bool,
    pub frozen: bool,
    pub antifreeze: bool,
    /// In 65536ths; `None` when not in progress.
    pub progress: Option<u16>,
}

impl SanitizeStatus {
    pub fn from_registers(r: &AtaRegisters) -> SanitizeStatus {
        let bits = r.count >> 8;
        let in_progress = bits & 0x40 != 0;
        SanitizeStatus {
            completed_without_error: bits & 0x80 != 0,
            in_progress,
            frozen: bits & 0x20 != 0,
            antifreeze: bits & 0x10 != 0,
            progress: in_progress.then_some((r.lba & 0xFFFF) as u16),
        }
    }
}

/// Why SANITIZE DEVICE was refused: LBA 7:0 of an aborted sanitize command.
pub fn sanitize_error_reason(r: &AtaRegisters) -> &'static str {
    match r.lba & 0xFF {
        1 => "the last sanitize operation failed (the drive is in its sanitize failure state)",
        2 => "the drive does not support this sanitize sub-command or value",
        3 => "the drive's sanitize feature is frozen (SANITIZE FREEZE LOCK)",
        4 => "SANITIZE ANTIFREEZE LOCK is in effect",
        _ => "the drive gave no reason",
    }
}

/// An ATA drive behind a SAT translator (libata, or a USB bridge).
pub struct AtaDevice<'a> {
    pub pt: &'a mut dyn Passthrough,
}

/// Long enough for any non-data command but the erases, which pass their own.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

impl AtaDevice<'_> {
    /// A non-data command that must be answered with registers (READ NATIVE
    /// MAX, SANITIZE STATUS): a translator that returns none leaves them
    /// unknown, which is an error, never a success.
    pub fn query(&mut self, name: &'static str, tf: &Taskfile) -> Result<AtaRegisters, CommandError> {
        self.run(name, tf)?.ok_or(CommandError::NoRegisters { command: name })
    }

    /// A non-data command; the registers it returned, when the translator
    /// returned them.
    pub fn run(&mut self, name: &'static str, tf: &Taskfile) -> Result<Option<AtaRegisters>, CommandError> {
        let reply = self
            .pt
            .scsi(&tf.cdb(), Transfer::None, COMMAND_TIMEOUT)
            .map_err(|e| CommandError::io(name, e))?;
        registers(name, &reply)
    }

    /// A PIO data-in command of one 512-byte block.
    pub fn read_block(&mut self, name: &'static str, tf: &Taskfile) -> Result<[u8; 512], CommandError> {
        let mut block = [0u8; 512];
        let reply = self
            .pt
            .scsi(&tf.cdb(), Transfer::FromDevice(&mut block), COMMAND_TIMEOUT)
            .map_err(|e| CommandError::io(name, e))?;
        registers(name, &reply)?;
        Ok(block)
    }

    /// A PIO data-out command of one 512-byte block.
    pub fn write_block(
        &mut self,
        name: &'static str,
        tf: &Taskfile,
        block: &[u8; 512],
        timeout: Duration,
    ) -> Result<(), CommandError> {
        let reply = self
            .pt
            .scsi(&tf.cdb(), Transfer::ToDevice(block), timeout)
            .map_err(|e| CommandError::io(name, e))?;
        registers(name, &reply).map(drop)
    }
}

/// The registers of a completed command (when returned), or why it did not
/// complete.
fn registers(name: &'static str, reply: &ScsiReply) -> Result<Option<AtaRegisters>, CommandError> {
    reply.transport_ok(name)?;
    if reply.status == super::GOOD {
        return Ok(None);
    }
    let sense = sense::parse(&reply.sense).map_err(|e| CommandError::BadSense { command: name, why: e })?;
    if sense.is_invalid_opcode() || (sense.is_invalid_field() && sense.ata.is_none()) {
        return Err(CommandError::NotSupported { command: name, answer: sense.describe() });
    }
    match sense.ata {
        Some(r) if r.failed() => Err(CommandError::Ata { command: name, registers: r }),
        Some(r) if matches!(sense.key, sense::RECOVERED_ERROR | sense::NO_SENSE) => Ok(Some(r)),
        // Anything else is an error whose registers, if any, cannot be trusted:
        // the sense key is all that is known.
        _ => Err(CommandError::Refused { command: name, answer: sense.describe() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(cdb: [u8; 16]) -> String {
        cdb.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
    }

    /// Expected bytes worked out from SAT-4's ATA PASS-THROUGH(16) field map and
    /// ACS-4's register tables, independently of the builder (smartmontools,
    /// hdparm and openSeaChest put the registers in the same bytes).
    #[test]
    fn cdbs_are_byte_exact() {
        let cases = [
            (identify(), "85 08 0E 00 00 00 01 00 00 00 00 00 00 00 EC 00"),
            (read_native_max_ext(), "85 07 20 00 00 00 00 00 00 00 00 00 00 40 27 00"),
            (
                Sanitize::Status { clear_failure: false }.taskfile(),
                "85 07 20 00 00 00 00 00 00 00 00 00 00 40 B4 00",
            ),
            (
                Sanitize::Status { clear_failure: true }.taskfile(),
                "85 07 20 00 00 00 01 00 00 00 00 00 00 40 B4 00",
            ),
            (Sanitize::CryptoScramble.taskfile(), "85 07 20 00 11 00 00 43 70 00 79 00 72 40 B4 00"),
            (Sanitize::BlockErase.taskfile(), "85 07 20 00 12 00 00 42 72 00 45 00 6B 40 B4 00"),
            (
                Sanitize::Overwrite { pattern: 0 }.taskfile(),
                "85 07 20 00 14 00 01 00 00 57 00 4F 00 40 B4 00",
            ),
            (
                Sanitize::Overwrite { pattern: 0xA5A5_A5A5 }.taskfile(),
                "85 07 20 00 14 00 01 A5 A5 57 A5 4F A5 40 B4 00",
            ),
            (dco_identify(), "85 08 0E 00 C2 00 01 00 00 00 00 00 00 00 B1 00"),
            (get_native_max_ext(), "85 07 20 00 00 00 00 00 00 00 00 00 00 40 78 00"),
            (set_accessible_max_ext(0x1D1C_5970), "85 07 20 00 01 00 00 1D 70 00 59 00 1C 40 78 00"),
            (dco_restore(), "85 06 20 00 C0 00 00 00 00 00 00 00 00 00 B1 00"),
            (set_max_address_ext(0x1D1C_5970, true), "85 07 20 00 00 00 01 1D 70 00 59 00 1C 40 37 00"),
            (set_max_address_ext(0x1D1C_5970, false), "85 07 20 00 00 00 00 1D 70 00 59 00 1C 40 37 00"),
            (security_erase_prepare(), "85 06 20 00 00 00 00 00 00 00 00 00 00 00 F3 00"),
            (security_erase_unit(), "85 0A 06 00 00 00 01 00 00 00 00 00 00 00 F4 00"),
            (security_set_password(), "85 0A 06 00 00 00 01 00 00 00 00 00 00 00 F1 00"),
        ];
        for (tf, expected) in cases {
            assert_eq!(hex(tf.cdb()), expected, "{tf:?}");
        }
    }

    #[test]
    fn a_28_bit_command_never_sends_upper_bytes() {
        let tf = Taskfile { lba: 0xFFFF_FFFF_FFFF, feature: 0xFFFF, count: 0xFFFF, ..dco_restore() };
        let cdb = tf.cdb();
        assert_eq!([cdb[3], cdb[5], cdb[7], cdb[9], cdb[11]], [0; 5]);
        assert_eq!(cdb[1] & 1, 0);
    }

    #[test]
    fn security_block_layout() {
        let mut password = [0u8; 32];
        password[..8].copy_from_slice(b"certwipe");
        let block = security_block(&password, true);
        assert_eq!(block[0], 0x02);
        assert_eq!(&block[2..10], b"certwipe");
        assert!(block[34..].iter().all(|&b| b == 0));
        assert_eq!(security_block(&password, false)[0], 0);
    }

    #[test]
    fn sanitize_status_bits() {
        let r = AtaRegisters { count: 0x4000, lba: 0x8000, upper_known: true, ..Default::default() };
        let s = SanitizeStatus::from_registers(&r);
        assert!(s.in_progress && !s.completed_without_error && !s.frozen);
        assert_eq!(s.progress, Some(0x8000));
        let done = SanitizeStatus::from_registers(&AtaRegisters { count: 0x8000, lba: 0xFFFF, ..r });
        assert!(done.completed_without_error && !done.in_progress && done.progress.is_none());
        assert!(SanitizeStatus::from_registers(&AtaRegisters { count: 0x2000, ..r }).frozen);
        assert_eq!(
            sanitize_error_reason(&AtaRegisters { lba: 3, ..r }),
            "the drive's sanitize feature is frozen (SANITIZE FREEZE LOCK)"
        );
    }
}
