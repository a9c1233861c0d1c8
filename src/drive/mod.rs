//! The drive itself, spoken to in its own command set through Linux
//! pass-through ioctls — no hdparm, nvme-cli or smartctl in between:
//!
//! * SCSI commands through `SG_IO` ([`scsi`]), which also carries ATA commands
//!   in ATA PASS-THROUGH(16) to SATA drives behind libata or a SAT-capable USB
//!   bridge ([`ata`]);
//! * NVMe admin commands through `NVME_IOCTL_ADMIN_CMD` ([`nvme`]).
//!
//! Every command goes through one small seam, [`Passthrough`]: [`linux`] is the
//! real one, and the unit tests drive the identify, hidden-area and sanitize
//! logic above it against scripted drive models. What the drive says about
//! itself is decoded in [`identify`]; [`probe`] asks whichever protocol the
//! drive answers; [`hidden`] finds and restores HPA/DCO-hidden sectors;
//! [`sanitize`] runs the drive's own erase commands and [`verify`] checks,
//! by reading the medium, that they did what the drive says.

pub mod ata;
pub mod hidden;
pub mod identify;
pub mod linux;
pub mod nvme;
pub mod probe;
pub mod sanitize;
pub mod scsi;
pub mod sense;

#[cfg(test)]
pub(crate) mod fake;

use std::io;
use std::time::Duration;

use thiserror::Error;

pub use identify::{DriveInfo, IdentitySource};

/// SCSI status GOOD.
pub const GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION: sense data explains.
pub const CHECK_CONDITION: u8 = 0x02;

/// The data phase of a command.
pub enum Transfer<'a> {
    None,
    FromDevice(&'a mut [u8]),
    ToDevice(&'a [u8]),
}

/// What `SG_IO` returned for one SCSI command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiReply {
    pub status: u8,
    pub sense: Vec<u8>,
    /// The host adapter's verdict (DID_*); non-zero means the command may never
    /// have reached the drive.
    pub host_status: u16,
    pub driver_status: u16,
}

impl ScsiReply {
    pub fn good() -> ScsiReply {
        ScsiReply::default()
    }

    pub fn check_condition(sense: Vec<u8>) -> ScsiReply {
        ScsiReply { status: CHECK_CONDITION, sense, ..ScsiReply::default() }
    }

    /// Fails unless the command reached the drive and the drive answered GOOD
    /// or CHECK CONDITION (with sense to read).
    pub fn transport_ok(&self, command: &'static str) -> Result<(), CommandError> {
        // DRIVER_SENSE (08h) only says sense data is present.
        let driver_ok = self.driver_status == 0 || self.driver_status == 0x08;
        if self.host_status != 0 || !driver_ok || !matches!(self.status, GOOD | CHECK_CONDITION) {
            return Err(CommandError::Transport {
                command,
                detail: format!(
                    "SCSI status {:#04x}, host status {:#06x}, driver status {:#06x}",
                    self.status, self.host_status, self.driver_status
                ),
            });
        }
        Ok(())
    }
}

/// One NVMe admin command: opcode, namespace and command dwords 10..15.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NvmeAdmin {
    pub opcode: u8,
    pub nsid: u32,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
}

/// The completion of an NVMe admin command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NvmeReply {
    /// The status field without its phase bit: SC in bits 7:0, SCT in 10:8,
    /// MORE bit 13, DNR bit 14. Zero is success.
    pub status: u16,
    /// Completion queue entry dword 0.
    pub result: u32,
}

/// The seam at the hardware: every command certwipe sends a drive.
pub trait Passthrough {
    /// A SCSI command (an ATA PASS-THROUGH among them).
    fn scsi(&mut self, cdb: &[u8], transfer: Transfer<'_>, timeout: Duration) -> io::Result<ScsiReply>;
    /// An NVMe admin command.
    fn nvme_admin(
        &mut self,
        command: &NvmeAdmin,
        transfer: Transfer<'_>,
        timeout: Duration,
    ) -> io::Result<NvmeReply>;
    /// The NVMe namespace this block device is.
    fn nvme_namespace(&mut self) -> io::Result<u32>;
}

/// Why one command did not do what was asked.
#[derive(Debug, Error)]
pub enum CommandError {
    #[error("{command}: the device does not take pass-through commands ({source})")]
    NoPassthrough { command: &'static str, source: io::Error },
    #[error("{command}: the device is gone ({source})")]
    Gone { command: &'static str, source: io::Error },
    #[error("{command}: {source}")]
    Io { command: &'static str, source: io::Error },
    #[error("{command}: did not reach the drive: {detail}")]
    Transport { command: &'static str, detail: String },
    #[error("{command}: not supported: the device answered {answer}")]
    NotSupported { command: &'static str, answer: String },
    #[error("{command}: refused: the device answered {answer}")]
    Refused { command: &'static str, answer: String },
    #[error("{command}: the drive aborted it (ATA status {:#04x}, error {:#04x})", registers.status, registers.error)]
    Ata { command: &'static str, registers: sense::AtaRegisters },
    #[error("{command}: the drive answered with NVMe status {status:#06x} ({})", nvme::status_name(*status))]
    Nvme { command: &'static str, status: u16 },
    #[error("{command}: the answer carried no ATA registers, so its result is unknown")]
    NoRegisters { command: &'static str },
    #[error("{command}: unreadable sense data: {why}")]
    BadSense { command: &'static str, why: sense::SenseError },
}

impl CommandError {
    pub fn io(command: &'static str, source: io::Error) -> CommandError {
        match source.raw_os_error() {
            // What SG_IO or the NVMe ioctl say when the device has no such interface.
            Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP) => {
                CommandError::NoPassthrough { command, source }
            }
            Some(libc::ENODEV | libc::ENXIO) => CommandError::Gone { command, source },
            _ => CommandError::Io { command, source },
        }
    }

    /// The drive (or the interface) does not have this command: the caller
    /// tries another protocol or reports "not supported".
    pub fn is_unsupported(&self) -> bool {
        match self {
            CommandError::NoPassthrough { .. } | CommandError::NotSupported { .. } => true,
            CommandError::Nvme { status, .. } => nvme::is_unsupported(*status),
            _ => false,
        }
    }

    pub fn is_gone(&self) -> bool {
        matches!(self, CommandError::Gone { .. })
    }
}
