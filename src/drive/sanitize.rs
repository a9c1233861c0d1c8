//! The drive's own erase commands, as state machines over the
//! [`Passthrough`] seam: choose a command the drive supports ([`choose`]),
//! check it can run now ([`plan`]), then start it and follow it to its end
//! ([`run`]). Nothing here reads the medium: whether the drive did what it
//! says is checked above, by [`purge`](crate::purge).
//!
//! Sources: ACS-4 §7.32 (SANITIZE DEVICE) and §7.45 (Security), NVMe Base 2.0
//! §5.24 (Sanitize) and §5.23 (Format NVM), SBC-4 §5.30 (SANITIZE).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ata::{self, AtaDevice, SanitizeStatus};
use super::identify::ScsiFeatures;
use super::nvme::{self, NvmeDevice, SanitizeLog, SanitizeState};
use super::probe::{Probed, Protocol};
use super::scsi::{self, ScsiDevice, ScsiError};
use super::{CommandError, NvmeAdmin, Passthrough, Transfer};
use crate::sanitization::Technique;

crate::named! {
    /// What the operator asks for.
    pub enum Action: "drive action" {
        /// The strongest the drive offers: crypto erase, block erase, then a
        /// sanitize overwrite; on NVMe a Format with secure erase after those.
        Auto = "auto",
        CryptoErase = "crypto-erase",
        BlockErase = "block-erase",
        Overwrite = "overwrite",
        FormatUserData = "format-user-data",
        FormatCrypto = "format-crypto",
        SecurityErase = "security-erase",
        SecurityEraseEnhanced = "security-erase-enhanced",
    }
}

/// The command that will be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveCommand {
    AtaSanitize(ata::Sanitize),
    AtaSecurityErase { enhanced: bool },
    NvmeSanitize(nvme::SanitizeAction),
    NvmeFormat { nsid: u32, lba_format: u8, ses: nvme::SecureErase },
    ScsiSanitize(scsi::SanitizeAction),
}

/// What every sampled sector must read like afterwards (besides holding none
/// of what was there before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// The overwrite pattern (certwipe uses zeros).
    Zeros,
    /// Erased flash or a normal security erase: each sector all 00h or all FFh.
    ZerosOrOnes,
    /// Content the standard leaves indeterminate (a crypto erase, an enhanced
    /// security erase, a format's user data erase).
    Indeterminate,
}

/// The overwrite pattern: zeros, so that its layout on the medium cannot be
/// misread whatever byte order the drive writes its 32-bit pattern in.
const OVERWRITE_PATTERN: u32 = 0;

impl DriveCommand {
    pub fn technique(self) -> Technique {
        match self {
            DriveCommand::AtaSanitize(ata::Sanitize::CryptoScramble)
            | DriveCommand::NvmeSanitize(nvme::SanitizeAction::CryptoErase)
            | DriveCommand::ScsiSanitize(scsi::SanitizeAction::CryptoErase) => Technique::SanitizeCryptoErase,
            DriveCommand::AtaSanitize(ata::Sanitize::BlockErase)
            | DriveCommand::NvmeSanitize(nvme::SanitizeAction::BlockErase)
            | DriveCommand::ScsiSanitize(scsi::SanitizeAction::BlockErase) => Technique::SanitizeBlockErase,
            DriveCommand::AtaSanitize(_) | DriveCommand::NvmeSanitize(_) | DriveCommand::ScsiSanitize(_) => {
                Technique::SanitizeOverwrite
            }
            DriveCommand::NvmeFormat { ses: nvme::SecureErase::UserData, .. } => {
                Technique::FormatUserDataErase
            }
            DriveCommand::NvmeFormat { ses: nvme::SecureErase::Cryptographic, .. } => {
                Technique::FormatCryptoErase
            }
            DriveCommand::AtaSecurityErase { enhanced: false } => Technique::SecurityErase,
            DriveCommand::AtaSecurityErase { enhanced: true } => Technique::SecurityEraseEnhanced,
        }
    }

    pub fn expectation(self) -> Expectation {
        match self.technique() {
            Technique::SanitizeOverwrite => Expectation::Zeros,
            Technique::SanitizeBlockErase | Technique::SecurityErase => Expectation::ZerosOrOnes,
            _ => Expectation::Indeterminate,
        }
    }

    /// The command's name in its standard.
    pub fn name(self) -> &'static str {
        match self {
            DriveCommand::AtaSanitize(ata::Sanitize::CryptoScramble) => {
                "ATA SANITIZE DEVICE: CRYPTO SCRAMBLE EXT"
            }
            DriveCommand::AtaSanitize(ata::Sanitize::BlockErase) => "ATA SANITIZE DEVICE: BLOCK ERASE EXT",
            DriveCommand::AtaSanitize(_) => "ATA SANITIZE DEVICE: OVERWRITE EXT",
            DriveCommand::AtaSecurityErase { enhanced: false } => "ATA SECURITY ERASE UNIT (normal)",
            DriveCommand::AtaSecurityErase { enhanced: true } => "ATA SECURITY ERASE UNIT (enhanced)",
            DriveCommand::NvmeSanitize(nvme::SanitizeAction::CryptoErase) => "NVMe Sanitize: Crypto Erase",
            DriveCommand::NvmeSanitize(nvme::SanitizeAction::BlockErase) => "NVMe Sanitize: Block Erase",
            DriveCommand::NvmeSanitize(_) => "NVMe Sanitize: Overwrite",
            DriveCommand::NvmeFormat { ses: nvme::SecureErase::UserData, .. } => {
                "NVMe Format NVM: User Data Erase (SES=1)"
            }
            DriveCommand::NvmeFormat { .. } => "NVMe Format NVM: Cryptographic Erase (SES=2)",
            DriveCommand::ScsiSanitize(scsi::SanitizeAction::CryptoErase) => {
                "SCSI SANITIZE: CRYPTOGRAPHIC ERASE"
            }
            DriveCommand::ScsiSanitize(scsi::SanitizeAction::BlockErase) => "SCSI SANITIZE: BLOCK ERASE",
            DriveCommand::ScsiSanitize(_) => "SCSI SANITIZE: OVERWRITE",
        }
    }

    /// Where the command and the category it may claim come from.
    pub fn source(self) -> &'static str {
        match self {
            DriveCommand::AtaSanitize(_) => {
                "ACS-4 7.32 SANITIZE DEVICE; NIST SP 800-88 Rev. 1 Tables A-7/A-8; IEEE 2883-2022"
            }
            DriveCommand::AtaSecurityErase { .. } => {
                "ACS-4 7.45 SECURITY ERASE UNIT; NIST SP 800-88 Rev. 1 Tables A-7/A-8"
            }
            DriveCommand::NvmeSanitize(_) => {
                "NVMe Base 2.0 5.24 Sanitize; NIST SP 800-88 Rev. 1 Table A-8; IEEE 2883-2022"
            }
            DriveCommand::NvmeFormat { .. } => {
                "NVMe Base 2.0 5.23 Format NVM; NIST SP 800-88 Rev. 1 Table A-8; IEEE 2883-2022"
            }
            DriveCommand::ScsiSanitize(_) => {
                "SBC-4 5.30 SANITIZE; NIST SP 800-88 Rev. 1 Tables A-7/A-8; IEEE 2883-2022"
            }
        }
    }

    /// The bytes sent: a CDB in hex, or the NVMe command's dwords.
    pub fn bytes(self) -> String {
        match self {
            DriveCommand::AtaSanitize(sub) => hex::encode(sub.taskfile().cdb()),
            DriveCommand::AtaSecurityErase { .. } => hex::encode(ata::security_erase_unit().cdb()),
            DriveCommand::NvmeSanitize(action) => nvme_words(&nvme::sanitize(action)),
            DriveCommand::NvmeFormat { nsid, lba_format, ses } => {
                nvme_words(&nvme::format_nvm(nsid, lba_format, ses))
            }
            DriveCommand::ScsiSanitize(action) => {
                let (cdb, parameters) = scsi::sanitize(action);
                match parameters.is_empty() {
                    true => hex::encode(cdb),
                    false => format!("{} parameters {}", hex::encode(cdb), hex::encode(parameters)),
                }
            }
        }
    }
}

fn nvme_words(c: &NvmeAdmin) -> String {
    format!("opcode {:02x} nsid {:08x} cdw10 {:08x} cdw11 {:08x}", c.opcode, c.nsid, c.cdw10, c.cdw11)
}

/// Why a drive command cannot be run; found before anything is written.
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("the drive does not support {asked}; it offers: {offers} (the drive's answer: {answer})")]
    Unsupported { asked: String, offers: String, answer: String },
    #[error(
        "the drive's {what} is frozen (the firmware or BIOS locked it at power-on); suspend and resume the machine (systemctl suspend) or unplug and re-plug the drive, then run again"
    )]
    Frozen { what: &'static str },
    #[error("the drive is locked by an ATA password; unlock it first (its owner knows the password)")]
    Locked,
    #[error(
        "an ATA user password is already set on the drive, and certwipe did not set it; disable it first (hdparm --security-disable PASSWORD)"
    )]
    PasswordSet,
    #[error("the drive's password attempt counter has expired; power-cycle it and run again")]
    AttemptsExpired,
    #[error(
        "a sanitize operation is already running on the drive ({progress}); `certwipe sanitize --status` shows where it stands"
    )]
    InProgress { progress: String },
    #[error(
        "Format NVM would erase all {active} namespaces of the controller (its FNA says a secure erase applies to every namespace), not just this one"
    )]
    OtherNamespaces { active: u32 },
    #[error(
        "the drive's sanitize status cannot be read through this interface ({0}), so its end could never be confirmed"
    )]
    StatusUnreadable(CommandError),
    #[error(transparent)]
    Command(#[from] CommandError),
}

// A drive's refusal comes before its command is sent.
impl crate::exit::ExitStatus for Refusal {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// A checked command, ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub command: DriveCommand,
    /// Why this command (for `auto`, why it was the strongest offered).
    pub reason: String,
    /// The drive's own estimate.
    pub estimate: Option<Duration>,
    pub notes: Vec<String>,
}

/// The actions this drive offers, strongest first.
pub fn offered(probed: &Probed) -> Vec<(Action, DriveCommand)> {
    let info = &probed.info;
    let mut offers = Vec::new();
    let mut offer = |yes: bool, action: Action, command: DriveCommand| {
        if yes {
            offers.push((action, command));
        }
    };
    match probed.protocol {
        Protocol::Ata => {
            let ata = info.ata.unwrap_or_default();
            offer(
                ata.sanitize.crypto_scramble,
                Action::CryptoErase,
                DriveCommand::AtaSanitize(ata::Sanitize::CryptoScramble),
            );
            offer(
                ata.sanitize.block_erase,
                Action::BlockErase,
                DriveCommand::AtaSanitize(ata::Sanitize::BlockErase),
            );
            let overwrite = ata::Sanitize::Overwrite { pattern: OVERWRITE_PATTERN };
            offer(ata.sanitize.overwrite, Action::Overwrite, DriveCommand::AtaSanitize(overwrite));
            offer(
                ata.security.supported,
                Action::SecurityErase,
                DriveCommand::AtaSecurityErase { enhanced: false },
            );
            let enhanced = ata.security.supported && ata.security.enhanced_erase;
            offer(enhanced, Action::SecurityEraseEnhanced, DriveCommand::AtaSecurityErase { enhanced: true });
        }
        Protocol::Nvme => {
            let nvme = info.nvme.unwrap_or_default();
            let sanitize = DriveCommand::NvmeSanitize;
            offer(
                nvme.sanitize_crypto_erase,
                Action::CryptoErase,
                sanitize(nvme::SanitizeAction::CryptoErase),
            );
            offer(nvme.sanitize_block_erase, Action::BlockErase, sanitize(nvme::SanitizeAction::BlockErase));
            let overwrite = nvme::SanitizeAction::Overwrite { pattern: OVERWRITE_PATTERN };
            offer(nvme.sanitize_overwrite, Action::Overwrite, sanitize(overwrite));
            if let Some(ns) = probed.namespace.filter(|_| nvme.format_nvm) {
                let format = |ses| DriveCommand::NvmeFormat { nsid: ns.nsid, lba_format: ns.lba_format, ses };
                offer(
                    nvme.format_crypto_erase,
                    Action::FormatCrypto,
                    format(nvme::SecureErase::Cryptographic),
                );
                offer(true, Action::FormatUserData, format(nvme::SecureErase::UserData));
            }
        }
        Protocol::Scsi => {
            let scsi = info.scsi.unwrap_or_default();
            // "Unknown" (the device would not say) is offered and tried: the
            // device's answer to SANITIZE itself then decides.
            let sanitize = DriveCommand::ScsiSanitize;
            offer(
                scsi.sanitize_crypto_erase != Some(false),
                Action::CryptoErase,
                sanitize(scsi::SanitizeAction::CryptoErase),
            );
            offer(
                scsi.sanitize_block_erase != Some(false),
                Action::BlockErase,
                sanitize(scsi::SanitizeAction::BlockErase),
            );
            let overwrite = scsi::SanitizeAction::Overwrite { pattern: OVERWRITE_PATTERN };
            offer(scsi.sanitize_overwrite != Some(false), Action::Overwrite, sanitize(overwrite));
        }
    }
    offers
}

/// Picks the command for an action from what the drive offers.
pub fn choose(probed: &Probed, action: Action) -> Result<(DriveCommand, String), Refusal> {
    let offers = offered(probed);
    let names = || match offers.is_empty() {
        true => "no erase command at all".to_string(),
        false => offers.iter().map(|(a, _)| action_name(*a)).collect::<Vec<_>>().join(", "),
    };
    let found = match action {
        // Security erase is never chosen automatically: one blocking command
        // for hours, which bridges may reset, leaving a password set.
        Action::Auto => {
            offers.iter().find(|(a, _)| !matches!(a, Action::SecurityErase | Action::SecurityEraseEnhanced))
        }
        _ => offers.iter().find(|(a, _)| *a == action),
    };
    let Some(&(chosen, command)) = found else {
        let asked = match action {
            Action::Auto => {
                "any command `auto` may choose (a sanitize or an NVMe format with secure erase)".to_string()
            }
            _ => action_name(action).to_string(),
        };
        return Err(Refusal::Unsupported { asked, offers: names(), answer: capabilities(probed) });
    };
    if let DriveCommand::NvmeFormat { .. } = command {
        check_format_scope(probed)?;
    }
    let reason = match action {
        Action::Auto => format!(
            "auto: {} is the strongest the drive offers (it offers: {}; certwipe prefers crypto erase, then block erase, then a sanitize overwrite, then NVMe Format)",
            action_name(chosen),
            names()
        ),
        _ => format!("{} as asked", action_name(chosen)),
    };
    Ok((command, reason))
}

/// What the drive said about its erase commands, in its own terms.
pub fn capabilities(probed: &Probed) -> String {
    let info = &probed.info;
    let word = |yes: bool| if yes { "supported" } else { "not supported" };
    match probed.protocol {
        Protocol::Ata => {
            let ata = info.ata.unwrap_or_default();
            format!(
                "IDENTIFY DEVICE: SANITIZE feature set {}, Security feature set {}",
                word(ata.sanitize.supported),
                word(ata.security.supported)
            )
        }
        Protocol::Nvme => {
            let n = info.nvme.unwrap_or_default();
            format!(
                "Identify Controller: SANICAP {:#010x}, OACS {:#06x}, FNA {:#04x}",
                n.sanicap, n.oacs, n.fna
            )
        }
        Protocol::Scsi => {
            let s = info.scsi.unwrap_or_default();
            let known = |v: Option<bool>| v.map_or("unknown", word);
            format!(
                "SANITIZE overwrite {}, block erase {}, crypto erase {}",
                known(s.sanitize_overwrite),
                known(s.sanitize_block_erase),
                known(s.sanitize_crypto_erase)
            )
        }
    }
}

/// Format NVM's secure erase covers every namespace when FNA bit 1 says so:
/// allowed only when this is the controller's one namespace.
fn check_format_scope(probed: &Probed) -> Result<(), Refusal> {
    let nvme = probed.info.nvme.unwrap_or_default();
    let active = probed.namespace.and_then(|n| n.active);
    match (nvme.erase_all_namespaces || nvme.format_all_namespaces, active) {
        (false, _) | (true, Some(1)) => Ok(()),
        (true, Some(active)) => Err(Refusal::OtherNamespaces { active }),
        (true, None) => Err(Refusal::OtherNamespaces { active: 0 }),
    }
}

pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Auto => "auto",
        Action::CryptoErase => "crypto-erase",
        Action::BlockErase => "block-erase",
        Action::Overwrite => "overwrite",
        Action::FormatUserData => "format-user-data",
        Action::FormatCrypto => "format-crypto",
        Action::SecurityErase => "security-erase",
        Action::SecurityEraseEnhanced => "security-erase-enhanced",
    }
}

/// Chooses and checks: the drive supports the command and is in a state to
/// run it (not frozen, locked, or already sanitizing).
pub fn plan(pt: &mut dyn Passthrough, probed: &Probed, action: Action) -> Result<Plan, Refusal> {
    let (command, reason) = choose(probed, action)?;
    let mut plan = Plan { command, reason, estimate: None, notes: Vec::new() };
    match command {
        DriveCommand::AtaSanitize(_) => check_ata_sanitize(pt, &mut plan)?,
        DriveCommand::AtaSecurityErase { enhanced } => check_ata_security(probed, enhanced, &mut plan)?,
        DriveCommand::NvmeSanitize(_) => check_nvme_sanitize(pt, &mut plan, true)?,
        DriveCommand::NvmeFormat { .. } => {
            if probed.info.nvme.is_some_and(|n| n.sanicap != 0) {
                check_nvme_sanitize(pt, &mut plan, false)?;
            }
        }
        DriveCommand::ScsiSanitize(_) => check_scsi_sanitize(pt, probed)?,
    }
    Ok(plan)
}

fn sanitize_status(pt: &mut dyn Passthrough) -> Result<SanitizeStatus, CommandError> {
    let tf = ata::Sanitize::Status { clear_failure: false }.taskfile();
    let registers = AtaDevice { pt }.query("SANITIZE STATUS EXT", &tf)?;
    if !registers.upper_known {
        return Err(CommandError::NoRegisters { command: "SANITIZE STATUS EXT" });
    }
    Ok(SanitizeStatus::from_registers(&registers))
}

/// A sanitize reports progress and its result in COUNT 15:8, which only
/// descriptor-format sense can carry: without it the end could not be seen.
fn check_ata_sanitize(pt: &mut dyn Passthrough, plan: &mut Plan) -> Result<(), Refusal> {
    let tf = ata::Sanitize::Status { clear_failure: false }.taskfile();
    match (AtaDevice { pt }).query("SANITIZE STATUS EXT", &tf) {
        Ok(registers) if !registers.descriptor => {
            Err(Refusal::StatusUnreadable(CommandError::NoRegisters { command: "SANITIZE STATUS EXT" }))
        }
        Ok(registers) => match SanitizeStatus::from_registers(&registers) {
            status if status.frozen => Err(Refusal::Frozen { what: "sanitize feature set" }),
            status if status.in_progress => Err(Refusal::InProgress { progress: percent(status.progress) }),
            _ => Ok(()),
        },
        Err(CommandError::Ata { registers, .. }) => match registers.lba & 0xFF {
            1 => {
                plan.notes.push("the drive's last sanitize had failed; this one replaces it".into());
                Ok(())
            }
            3 => Err(Refusal::Frozen { what: "sanitize feature set" }),
            _ => Err(Refusal::StatusUnreadable(CommandError::Ata {
                command: "SANITIZE STATUS EXT",
                registers,
            })),
        },
        Err(error @ CommandError::NoRegisters { .. }) => Err(Refusal::StatusUnreadable(error)),
        Err(error) => Err(error.into()),
    }
}

fn check_ata_security(probed: &Probed, enhanced: bool, plan: &mut Plan) -> Result<(), Refusal> {
    let security = probed.info.ata.unwrap_or_default().security;
    if security.frozen {
        return Err(Refusal::Frozen { what: "security feature set" });
    }
    if security.locked {
        return Err(Refusal::Locked);
    }
    if security.enabled {
        return Err(Refusal::PasswordSet);
    }
    if security.count_expired {
        return Err(Refusal::AttemptsExpired);
    }
    let time = if enhanced { security.enhanced_erase_time } else { security.erase_time };
    plan.estimate = time.map(|t| Duration::from_secs(u64::from(t.minutes) * 60));
    plan.notes.push(format!(
        "certwipe sets the user password {SECURITY_PASSWORD_TEXT:?} for the erase, which removes it; if the erase is interrupted, unlock with: hdparm --user-master u --security-disable {SECURITY_PASSWORD_TEXT} DEVICE"
    ));
    Ok(())
}

fn check_nvme_sanitize(pt: &mut dyn Passthrough, plan: &mut Plan, required: bool) -> Result<(), Refusal> {
    match (NvmeDevice { pt }).sanitize_log() {
        Ok(log) if log.state == SanitizeState::InProgress => {
            Err(Refusal::InProgress { progress: percent(log.progress) })
        }
        Ok(log) => {
            if log.state == SanitizeState::Failed {
                plan.notes.push("the drive's last sanitize had failed; this one replaces it".into());
            }
            let index = match plan.command {
                DriveCommand::NvmeSanitize(nvme::SanitizeAction::Overwrite { .. }) => 0,
                DriveCommand::NvmeSanitize(nvme::SanitizeAction::BlockErase) => 1,
                _ => 2,
            };
            plan.estimate = log.estimates[index].map(|s| Duration::from_secs(u64::from(s)));
            Ok(())
        }
        Err(error) if required => Err(Refusal::StatusUnreadable(error)),
        Err(_) => Ok(()),
    }
}

fn check_scsi_sanitize(pt: &mut dyn Passthrough, probed: &Probed) -> Result<(), Refusal> {
    // A device that would not say which actions it has is asked whether it has
    // the command at all, before any sample is marked.
    let silent = probed.info.scsi.unwrap_or_default() == ScsiFeatures::default();
    if silent && let Err(answer) = super::probe::sanitize_known(pt) {
        return Err(Refusal::Unsupported {
            asked: "SANITIZE".into(),
            offers: "no SANITIZE command".into(),
            answer: format!("REPORT SUPPORTED OPERATION CODES: no answer; {answer}"),
        });
    }
    match (ScsiDevice { pt }).request_sense() {
        Ok(Some(sense)) if sense.is_sanitize_in_progress() => {
            Err(Refusal::InProgress { progress: percent(sense.progress) })
        }
        _ => Ok(()),
    }
}

pub fn percent(progress: Option<u16>) -> String {
    match progress {
        Some(p) => format!("{:.1} % done", f64::from(p) * 100.0 / 65536.0),
        None => "progress not reported".into(),
    }
}

/// The password certwipe sets for a security erase, which the erase removes.
pub const SECURITY_PASSWORD_TEXT: &str = "certwipe";

fn security_password() -> [u8; 32] {
    let mut password = [0u8; 32];
    password[..SECURITY_PASSWORD_TEXT.len()].copy_from_slice(SECURITY_PASSWORD_TEXT.as_bytes());
    password
}

/// How the drive's command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The drive reported success.
    Succeeded,
    /// The drive would not start it: the drive did nothing.
    Refused,
    /// It ran, and the drive reported failure or never reported success.
    Failed,
    /// The device stopped answering.
    Gone,
    /// certwipe stopped following it (Ctrl-C); the drive carries on.
    Interrupted,
}

/// The drive's account of the command: how it ended, in its own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveOutcome {
    pub ending: Ending,
    /// What the drive answered, for the record.
    pub drive_status: String,
}

impl DriveOutcome {
    fn new(ending: Ending, drive_status: impl Into<String>) -> DriveOutcome {
        DriveOutcome { ending, drive_status: drive_status.into() }
    }

    /// The drive refused the start command, or the command failed to reach it.
    fn from_start_error(error: CommandError) -> DriveOutcome {
        let ending = if error.is_gone() { Ending::Gone } else { Ending::Refused };
        DriveOutcome::new(ending, error.to_string())
    }
}

/// Progress while the drive works.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// 0..1, when the drive reports it.
    pub fraction: Option<f64>,
    pub elapsed: Duration,
}

/// How a running command is followed.
pub struct Follow<'a> {
    pub observer: &'a dyn Fn(&Progress),
    /// Set by Ctrl-C: stop polling (the drive does not stop).
    pub stop: &'a AtomicBool,
    pub poll_every: Duration,
}

impl Follow<'_> {
    /// Reports progress and waits for the next poll; false when told to stop.
    fn tick(&self, started: Instant, progress: Option<u16>) -> bool {
        let fraction = progress.map(|p| f64::from(p) / 65536.0);
        (self.observer)(&Progress { fraction, elapsed: started.elapsed() });
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(self.poll_every);
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Polls that may fail in a row (a bridge's hiccup) before the command is
/// given up as failed.
const POLL_ERRORS_TOLERATED: u32 = 3;
/// Polls of an NVMe drive that accepted a sanitize but whose log does not yet
/// show it.
const NVME_START_POLLS: u32 = 20;

/// Starts the command and follows it to its end.
pub fn run(pt: &mut dyn Passthrough, plan: &Plan, follow: &Follow<'_>) -> DriveOutcome {
    let started = Instant::now();
    match plan.command {
        DriveCommand::AtaSanitize(sub) => run_ata_sanitize(pt, sub, follow, started),
        DriveCommand::AtaSecurityErase { enhanced } => run_security_erase(pt, enhanced, plan.estimate),
        DriveCommand::NvmeSanitize(action) => run_nvme_sanitize(pt, action, follow, started),
        DriveCommand::NvmeFormat { nsid, lba_format, ses } => run_nvme_format(pt, nsid, lba_format, ses),
        DriveCommand::ScsiSanitize(action) => run_scsi_sanitize(pt, action, follow, started),
    }
}

/// What one status poll said.
enum Poll {
    /// Still running, with the drive's progress if it gives one.
    Running(Option<u16>),
    /// Nothing to report yet.
    Waiting,
    Ended(DriveOutcome),
}

/// Polls until the drive says how the command ended, reporting progress; a
/// vanished device ends it at once, a few failed polls in a row (a bridge's
/// hiccup) are tolerated.
fn poll_until_ended(
    follow: &Follow<'_>,
    started: Instant,
    mut poll: impl FnMut() -> Result<Poll, CommandError>,
) -> DriveOutcome {
    let mut errors = 0;
    loop {
        match poll() {
            Ok(Poll::Ended(outcome)) => return outcome,
            Ok(Poll::Running(progress)) => {
                errors = 0;
                if !follow.tick(started, progress) {
                    return DriveOutcome::new(
                        Ending::Interrupted,
                        format!("in progress, {}", percent(progress)),
                    );
                }
            }
            Ok(Poll::Waiting) => std::thread::sleep(follow.poll_every),
            Err(error) if error.is_gone() => return DriveOutcome::new(Ending::Gone, error.to_string()),
            Err(error) => {
                errors += 1;
                if errors > POLL_ERRORS_TOLERATED {
                    let status = format!("its status could no longer be read: {error}");
                    return DriveOutcome::new(Ending::Failed, status);
                }
                std::thread::sleep(follow.poll_every);
            }
        }
    }
}

fn run_ata_sanitize(
    pt: &mut dyn Passthrough,
    sub: ata::Sanitize,
    follow: &Follow<'_>,
    started: Instant,
) -> DriveOutcome {
    match (AtaDevice { pt: &mut *pt }).run("SANITIZE DEVICE", &sub.taskfile()) {
        Err(CommandError::Ata { registers, .. }) => {
            return DriveOutcome::new(
                Ending::Refused,
                format!("aborted: {}", ata::sanitize_error_reason(&registers)),
            );
        }
        Err(error) => return DriveOutcome::from_start_error(error),
        Ok(_) => {}
    }
    let ended = |ending, status: &str| Ok(Poll::Ended(DriveOutcome::new(ending, status)));
    poll_until_ended(follow, started, || match sanitize_status(pt) {
        Ok(status) if status.in_progress => Ok(Poll::Running(status.progress)),
        Ok(status) if status.completed_without_error => {
            ended(Ending::Succeeded, "SANITIZE STATUS EXT: operation completed without error")
        }
        Ok(_) => ended(Ending::Failed, "SANITIZE STATUS EXT: ended without reporting success"),
        Err(CommandError::Ata { registers, .. }) if registers.lba & 0xFF == 1 => {
            ended(Ending::Failed, "SANITIZE STATUS EXT: the sanitize operation failed")
        }
        Err(error) => Err(error),
    })
}

fn run_nvme_sanitize(
    pt: &mut dyn Passthrough,
    action: nvme::SanitizeAction,
    follow: &Follow<'_>,
    started: Instant,
) -> DriveOutcome {
    let command = nvme::sanitize(action);
    let mut device = NvmeDevice { pt };
    if let Err(error) = device.admin("SANITIZE", &command, Transfer::None, Duration::from_secs(60)) {
        return DriveOutcome::from_start_error(error);
    }
    // The drive accepted it, so the log's next verdict is this sanitize's
    // (an idle log alone could be an old sanitize's, or none).
    let mut unchanged = 0;
    poll_until_ended(follow, started, || {
        let log = device.sanitize_log()?;
        Ok(match log.state {
            SanitizeState::InProgress => Poll::Running(log.progress),
            _ if log.succeeded() && log.last_cdw10 & 0x7 == command.cdw10 & 0x7 => {
                Poll::Ended(DriveOutcome::new(Ending::Succeeded, nvme_verdict(&log)))
            }
            SanitizeState::Failed => Poll::Ended(DriveOutcome::new(Ending::Failed, nvme_verdict(&log))),
            _ if unchanged >= NVME_START_POLLS => {
                let status =
                    format!("accepted, but the sanitize log never showed it: {}", nvme_verdict(&log));
                Poll::Ended(DriveOutcome::new(Ending::Failed, status))
            }
            _ => {
                unchanged += 1;
                Poll::Waiting
            }
        })
    })
}

fn nvme_verdict(log: &SanitizeLog) -> String {
    format!("sanitize status log: {:?}, last command dword 10 {:#x}", log.state, log.last_cdw10)
}

/// Format NVM runs to completion inside the command; the drive's own time can
/// be long, so the timeout is a day.
fn run_nvme_format(
    pt: &mut dyn Passthrough,
    nsid: u32,
    lba_format: u8,
    ses: nvme::SecureErase,
) -> DriveOutcome {
    let command = nvme::format_nvm(nsid, lba_format, ses);
    match (NvmeDevice { pt }).admin("FORMAT NVM", &command, Transfer::None, Duration::from_secs(24 * 3600)) {
        Ok(_) => DriveOutcome::new(Ending::Succeeded, "FORMAT NVM completed with status 0 (success)"),
        Err(CommandError::Nvme { status, .. }) if nvme::is_unsupported(status) => DriveOutcome::new(
            Ending::Refused,
            format!("FORMAT NVM refused: status {status:#06x} ({})", nvme::status_name(status)),
        ),
        Err(error @ CommandError::Nvme { .. }) => DriveOutcome::new(Ending::Failed, error.to_string()),
        Err(error) => DriveOutcome::from_start_error(error),
    }
}

/// SET PASSWORD, ERASE PREPARE, ERASE UNIT: one blocking command for as long
/// as the drive needs (its estimate twice over, at least an hour).
fn run_security_erase(pt: &mut dyn Passthrough, enhanced: bool, estimate: Option<Duration>) -> DriveOutcome {
    let password = security_password();
    let mut device = AtaDevice { pt };
    let block = ata::security_block(&password, false);
    if let Err(error) = device.write_block(
        "SECURITY SET PASSWORD",
        &ata::security_set_password(),
        &block,
        ata::COMMAND_TIMEOUT,
    ) {
        return DriveOutcome::from_start_error(error);
    }
    if let Err(error) = device.run("SECURITY ERASE PREPARE", &ata::security_erase_prepare()) {
        return DriveOutcome::new(
            Ending::Failed,
            format!("{error}; the password {SECURITY_PASSWORD_TEXT:?} is set"),
        );
    }
    let timeout = estimate.map_or(Duration::from_secs(12 * 3600), |e| (e * 2).max(Duration::from_secs(3600)));
    let erase = ata::security_block(&password, enhanced);
    match device.write_block("SECURITY ERASE UNIT", &ata::security_erase_unit(), &erase, timeout) {
        Ok(()) => {}
        Err(error) if error.is_gone() => return DriveOutcome::new(Ending::Gone, error.to_string()),
        Err(error) => {
            let status = format!("{error}; the password {SECURITY_PASSWORD_TEXT:?} may still be set");
            return DriveOutcome::new(Ending::Failed, status);
        }
    }
    // A completed erase leaves security disabled; anything else is not success.
    match device.read_block("IDENTIFY DEVICE", &ata::identify()) {
        Ok(data) if super::identify::decode_ata(&data).ata.is_some_and(|a| !a.security.enabled) => {
            DriveOutcome::new(Ending::Succeeded, "SECURITY ERASE UNIT completed; security is disabled again")
        }
        Ok(_) => DriveOutcome::new(
            Ending::Failed,
            format!("SECURITY ERASE UNIT returned, but the password {SECURITY_PASSWORD_TEXT:?} is still set"),
        ),
        Err(error) => {
            DriveOutcome::new(Ending::Failed, format!("the drive could not be asked afterwards: {error}"))
        }
    }
}

fn run_scsi_sanitize(
    pt: &mut dyn Passthrough,
    action: scsi::SanitizeAction,
    follow: &Follow<'_>,
    started: Instant,
) -> DriveOutcome {
    let (cdb, parameters) = scsi::sanitize(action);
    let transfer = if parameters.is_empty() { Transfer::None } else { Transfer::ToDevice(&parameters) };
    let mut device = ScsiDevice { pt };
    if let Err(error) = device.command("SANITIZE", &cdb, transfer) {
        return DriveOutcome::from_start_error(error.into_command());
    }
    poll_until_ended(follow, started, || match device.request_sense().map_err(ScsiError::into_command)? {
        Some(sense) if sense.is_sanitize_in_progress() => Ok(Poll::Running(sense.progress)),
        Some(sense) if sense.is_sanitize_failed() => {
            let status = format!("SANITIZE failed: {}", sense.describe());
            Ok(Poll::Ended(DriveOutcome::new(Ending::Failed, status)))
        }
        _ => Ok(Poll::Ended(scsi_verdict(&mut device))),
    })
}

/// After a SANITIZE no longer reports progress, a failed one makes every
/// medium access answer 31h/03h; TEST UNIT READY asks.
fn scsi_verdict(device: &mut ScsiDevice<'_>) -> DriveOutcome {
    match device.command("TEST UNIT READY", &[0u8; 6], Transfer::None) {
        Ok(()) => DriveOutcome::new(Ending::Succeeded, "SANITIZE finished; TEST UNIT READY answered GOOD"),
        Err(ScsiError::Sense { sense, .. }) if sense.is_sanitize_failed() => {
            DriveOutcome::new(Ending::Failed, format!("SANITIZE failed: {}", sense.describe()))
        }
        Err(error) => {
            DriveOutcome::new(Ending::Failed, format!("the device is not ready afterwards: {error}"))
        }
    }
}

/// Where a sanitize stands, for `certwipe sanitize --status`.
pub fn status(pt: &mut dyn Passthrough, protocol: Protocol) -> Result<String, CommandError> {
    match protocol {
        Protocol::Ata => {
            let status = sanitize_status(pt)?;
            Ok(match status {
                s if s.in_progress => format!("sanitize in progress, {}", percent(s.progress)),
                s if s.frozen => "sanitize feature set frozen".into(),
                s if s.completed_without_error => "the last sanitize completed without error".into(),
                _ => "no sanitize in progress; the last one did not report success (or none has run)".into(),
            })
        }
        Protocol::Nvme => {
            let log = NvmeDevice { pt }.sanitize_log()?;
            Ok(match log.state {
                SanitizeState::InProgress => format!("sanitize in progress, {}", percent(log.progress)),
                _ => nvme_verdict(&log),
            })
        }
        Protocol::Scsi => match (ScsiDevice { pt }).request_sense().map_err(ScsiError::into_command)? {
            Some(s) if s.is_sanitize_in_progress() => {
                Ok(format!("sanitize in progress, {}", percent(s.progress)))
            }
            Some(s) if s.is_sanitize_failed() => Ok("the last sanitize failed".into()),
            _ => Ok("no sanitize in progress".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::drive::fake::{FakeAta, FakeNvme, FakeScsi, SanitizeScript, SecurityScript};
    use crate::drive::probe::{DescriptorSense, probe};

    fn probed(pt: &mut dyn Passthrough, transport: &str) -> Probed {
        probe(pt, transport).unwrap().unwrap()
    }

    /// Plans and runs an action, recording the progress reported.
    fn sanitize(
        pt: &mut dyn Passthrough,
        transport: &str,
        action: Action,
    ) -> Result<(Plan, DriveOutcome, Vec<Option<f64>>), Refusal> {
        let probed = probed(pt, transport);
        let plan = plan(pt, &probed, action)?;
        let seen = RefCell::new(Vec::new());
        let observer = |p: &Progress| seen.borrow_mut().push(p.fraction);
        let stop = AtomicBool::new(false);
        let follow = Follow { observer: &observer, stop: &stop, poll_every: Duration::ZERO };
        let outcome = run(pt, &plan, &follow);
        Ok((plan, outcome, seen.into_inner()))
    }

    fn all_sanitize(polls: u32) -> SanitizeScript {
        SanitizeScript { crypto: true, block: true, overwrite: true, polls, ..SanitizeScript::default() }
    }

    #[test]
    fn auto_picks_the_strongest_offered_and_never_a_security_erase() {
        let mut drive = FakeAta::new(4096).with_sanitize(SanitizeScript {
            block: true,
            overwrite: true,
            ..Default::default()
        });
        let (command, reason) = choose(&probed(&mut drive, "sata"), Action::Auto).unwrap();
        assert_eq!(command, DriveCommand::AtaSanitize(ata::Sanitize::BlockErase));
        assert!(reason.contains("block-erase, overwrite"), "{reason}");
        let mut only_security =
            FakeAta::new(4096).with_security(SecurityScript { supported: true, ..Default::default() });
        let error = choose(&probed(&mut only_security, "sata"), Action::Auto).unwrap_err();
        assert!(matches!(error, Refusal::Unsupported { .. }), "{error}");
        assert!(error.to_string().contains("offers: security-erase"), "{error}");
    }

    #[test]
    fn an_unsupported_action_is_refused_naming_what_is_offered() {
        let mut drive =
            FakeAta::new(4096).with_sanitize(SanitizeScript { block: true, ..Default::default() });
        let Err(error) = sanitize(&mut drive, "sata", Action::CryptoErase) else {
            panic!("crypto erase is not offered")
        };
        assert!(error.to_string().starts_with("the drive does not support crypto-erase; it offers: block-erase (the drive's answer: IDENTIFY DEVICE: SANITIZE feature set supported"), "{error}");
        assert!(
            !drive.sent.contains(&0xB4) || drive.sent.iter().filter(|&&c| c == 0xB4).count() == 0,
            "no SANITIZE sent"
        );
    }

    #[test]
    fn an_ata_sanitize_is_polled_to_success_with_progress() {
        let mut drive = FakeAta::new(4096).with_sanitize(all_sanitize(3));
        let (plan, outcome, seen) = sanitize(&mut drive, "sata", Action::Auto).unwrap();
        assert_eq!(plan.command, DriveCommand::AtaSanitize(ata::Sanitize::CryptoScramble));
        assert_eq!(outcome.ending, Ending::Succeeded, "{}", outcome.drive_status);
        assert_eq!(seen, vec![Some(0.25), Some(0.5), Some(0.75)]);
    }

    #[test]
    fn a_frozen_drive_is_refused_with_the_remedy() {
        let mut drive = FakeAta::new(4096).with_sanitize(SanitizeScript { frozen: true, ..all_sanitize(0) });
        let Err(error) = sanitize(&mut drive, "sata", Action::BlockErase) else {
            panic!("frozen must refuse")
        };
        assert!(matches!(error, Refusal::Frozen { .. }));
        assert!(error.to_string().contains("suspend and resume"), "{error}");
        let mut locked = FakeAta::new(4096).with_security(SecurityScript {
            supported: true,
            frozen: true,
            ..Default::default()
        });
        let Err(error) = sanitize(&mut locked, "sata", Action::SecurityErase) else {
            panic!("frozen security must refuse")
        };
        assert!(matches!(error, Refusal::Frozen { what: "security feature set" }));
    }

    #[test]
    fn a_drive_refusing_to_start_ends_refused_with_its_reason() {
        let mut drive = FakeAta::new(4096).with_sanitize(SanitizeScript { refuses: true, ..all_sanitize(0) });
        let (_, outcome, _) = sanitize(&mut drive, "sata", Action::BlockErase).unwrap();
        assert_eq!(outcome.ending, Ending::Refused);
        assert!(
            outcome.drive_status.contains("does not support this sanitize sub-command"),
            "{}",
            outcome.drive_status
        );
    }

    #[test]
    fn a_failed_sanitize_and_a_vanishing_drive_are_not_success() {
        let mut failing = FakeAta::new(4096).with_sanitize(SanitizeScript { fails: true, ..all_sanitize(1) });
        let (_, outcome, _) = sanitize(&mut failing, "sata", Action::Overwrite).unwrap();
        assert_eq!(outcome.ending, Ending::Failed);
        let mut vanishing =
            FakeAta::new(4096).with_sanitize(SanitizeScript { vanish_at_poll: Some(3), ..all_sanitize(5) });
        let (_, outcome, _) = sanitize(&mut vanishing, "sata", Action::BlockErase).unwrap();
        assert_eq!(outcome.ending, Ending::Gone, "{}", outcome.drive_status);
    }

    #[test]
    fn fixed_format_sense_is_refused_unless_descriptor_sense_is_switched_on() {
        let mut drive = FakeAta::new(4096).with_sanitize(all_sanitize(1)).with_fixed_sense();
        let Err(error) = sanitize(&mut drive, "sata", Action::BlockErase) else {
            panic!("status unreadable")
        };
        assert!(matches!(error, Refusal::StatusUnreadable(_)), "{error}");
        let (_, outcome, _) =
            sanitize(&mut DescriptorSense::enable(&mut drive), "sata", Action::BlockErase).unwrap();
        assert_eq!(outcome.ending, Ending::Succeeded);
        assert!(!drive.descriptor_sense());
    }

    #[test]
    fn ctrl_c_stops_following_but_not_the_drive() {
        let mut drive = FakeAta::new(4096).with_sanitize(all_sanitize(10));
        let probed = probed(&mut drive, "sata");
        let plan = plan(&mut drive, &probed, Action::BlockErase).unwrap();
        let stop = AtomicBool::new(false);
        let observer = |_: &Progress| stop.store(true, Ordering::SeqCst);
        let outcome =
            run(&mut drive, &plan, &Follow { observer: &observer, stop: &stop, poll_every: Duration::ZERO });
        assert_eq!(outcome.ending, Ending::Interrupted);
        assert!(status(&mut drive, Protocol::Ata).unwrap().starts_with("sanitize in progress"));
    }

    #[test]
    fn a_running_sanitize_is_refused_and_reported_by_status() {
        let mut drive = FakeNvme::new(4096).with_sanitize(all_sanitize(5));
        let probed = probed(&mut drive, "nvme");
        let plan = plan(&mut drive, &probed, Action::CryptoErase).unwrap();
        let stop = AtomicBool::new(true);
        let follow = Follow { observer: &|_: &Progress| {}, stop: &stop, poll_every: Duration::ZERO };
        assert_eq!(run(&mut drive, &plan, &follow).ending, Ending::Interrupted);
        let error = super::plan(&mut drive, &probed, Action::CryptoErase).unwrap_err();
        assert!(matches!(error, Refusal::InProgress { .. }), "{error}");
    }

    #[test]
    fn an_nvme_sanitize_succeeds_only_after_it_was_accepted_and_logged() {
        let mut drive = FakeNvme::new(4096).with_sanitize(all_sanitize(2));
        let (plan, outcome, seen) = sanitize(&mut drive, "nvme", Action::Auto).unwrap();
        assert_eq!(plan.command, DriveCommand::NvmeSanitize(nvme::SanitizeAction::CryptoErase));
        assert_eq!(outcome.ending, Ending::Succeeded, "{}", outcome.drive_status);
        assert_eq!(seen.len(), 2);
        let failing = SanitizeScript { fails: true, ..all_sanitize(0) };
        let (_, outcome, _) =
            sanitize(&mut FakeNvme::new(4096).with_sanitize(failing), "nvme", Action::BlockErase).unwrap();
        assert_eq!(outcome.ending, Ending::Failed);
    }

    #[test]
    fn qemus_nvme_gets_a_format_and_refuses_sanitize() {
        let mut drive = FakeNvme::new(4096);
        let (plan, outcome, _) = sanitize(&mut drive, "nvme", Action::Auto).unwrap();
        assert_eq!(plan.command.technique(), Technique::FormatUserDataErase);
        assert_eq!(outcome.ending, Ending::Succeeded);
        assert_eq!(plan.command.bytes(), "opcode 80 nsid 00000001 cdw10 00000200 cdw11 00000000");
        let Err(error) = sanitize(&mut drive, "nvme", Action::BlockErase) else {
            panic!("no sanitize on QEMU")
        };
        assert_eq!(
            error.to_string(),
            "the drive does not support block-erase; it offers: format-user-data (the drive's answer: Identify Controller: SANICAP 0x00000000, OACS 0x012a, FNA 0x00)"
        );
        // FNA without bit 2: no cryptographic erase by format.
        assert!(matches!(
            sanitize(&mut drive, "nvme", Action::FormatCrypto),
            Err(Refusal::Unsupported { .. })
        ));
    }

    #[test]
    fn a_format_that_would_erase_other_namespaces_is_refused() {
        let mut drive = FakeNvme::new(4096);
        drive.fna = 0x2;
        drive.active = 2;
        let Err(error) = sanitize(&mut drive, "nvme", Action::FormatUserData) else { panic!("must refuse") };
        assert!(matches!(error, Refusal::OtherNamespaces { active: 2 }), "{error}");
        drive.active = 1;
        assert!(sanitize(&mut drive, "nvme", Action::FormatUserData).is_ok());
    }

    #[test]
    fn a_scsi_sanitize_is_polled_through_request_sense() {
        let mut device = FakeScsi::new(4096);
        let (plan, outcome, seen) = sanitize(&mut device, "sas", Action::Auto).unwrap();
        assert_eq!(plan.command, DriveCommand::ScsiSanitize(scsi::SanitizeAction::BlockErase));
        assert_eq!(device.reserved_sanitize_probes, 0, "a device that lists its commands is not probed");
        assert_eq!(outcome.ending, Ending::Succeeded, "{}", outcome.drive_status);
        assert_eq!(seen, vec![Some(0.25), Some(0.25)]);
        device.sanitize.fails = true;
        let (_, outcome, _) = sanitize(&mut device, "sas", Action::Overwrite).unwrap();
        assert_eq!(outcome.ending, Ending::Failed, "{}", outcome.drive_status);
    }

    #[test]
    fn a_scsi_device_without_sanitize_is_refused_before_anything_is_marked() {
        let mut device = FakeScsi::new(4096);
        device.reports_opcodes = false;
        device.knows_sanitize = false;
        let Err(error) = sanitize(&mut device, "usb", Action::Auto) else { panic!("no SANITIZE") };
        assert!(error.to_string().contains("SANITIZE: ILLEGAL REQUEST (ASC/ASCQ 20h/00h)"), "{error}");
        assert_eq!(device.reserved_sanitize_probes, 1);
        assert!(device.disk.contents().iter().all(|&b| b == 0xAB), "nothing written");
    }

    #[test]
    fn a_security_erase_sets_its_password_and_the_erase_removes_it() {
        let script = SecurityScript { supported: true, enhanced: true, ..Default::default() };
        let mut drive = FakeAta::new(4096).with_security(script);
        let (plan, outcome, _) = sanitize(&mut drive, "sata", Action::SecurityEraseEnhanced).unwrap();
        assert_eq!(plan.command.technique(), Technique::SecurityEraseEnhanced);
        assert_eq!(plan.estimate, Some(Duration::from_secs(20 * 60)));
        assert_eq!(outcome.ending, Ending::Succeeded, "{}", outcome.drive_status);
        assert_eq!(&drive.sent[drive.sent.len() - 4..], &[0xF1, 0xF3, 0xF4, 0xEC]);
        let mut owned = FakeAta::new(4096).with_security(SecurityScript { enabled: true, ..script });
        assert!(matches!(sanitize(&mut owned, "sata", Action::SecurityErase), Err(Refusal::PasswordSet)));
    }
}
