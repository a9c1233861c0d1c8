//! A target's whole life: inspect → open → wipe → report → certificate → PDF →
//! ledger. `wipe` runs it for the targets named on its command line, `station`
//! for every medium plugged in; both through these same steps, checked in the
//! same order, so that what one promises the other keeps.
//!
//! Everything that could stop a certificate from being written or filed is
//! checked in [`Settings`] and [`Settings::prepare`], before anything is written;
//! [`Prepared::run`] then wipes and records, and reports every step's result in
//! an [`Outcome`] instead of stopping at the first one that fails.

mod hidden;
mod prepare;
mod record;
mod resume;
mod run;

use std::path::PathBuf;
use std::sync::Mutex;

use thiserror::Error;

use crate::cert::records::Records;
use crate::cert::sign::{AllowedSigners, SigningKey};
use crate::device::{DeviceError, HiddenAreas, Inspected, Medium, Protect};
use crate::drive::CommandError;
use crate::drive::probe::{Probed, Protocol};
use crate::drive::sanitize::{self, Action};
use crate::engine::Options;
use crate::engine::checkpoint::{Checkpoint, FileJournal, JournalError};
use crate::ledger::{Ledger, LedgerError};
use crate::method::Plan;

pub use hidden::{judge_hidden, restore_all};
pub use prepare::{ask_drive, inspect_all, prepare_all, report_file, report_paths, report_stamp};
pub use record::{Outcome, StepError};
pub use run::run_all;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{path}: refused: {refusals}. Nothing was written.")]
    Unsafe { path: String, refusals: String },
    #[error("{first} and {second} are the same medium; give each target once")]
    SameMedium { first: String, second: String },
    #[error("--report {path}: with several targets, give an existing directory")]
    ReportNeedsDirectory { path: String },
    #[error(
        "--report {path} is the target {target} itself: the report would replace what was wiped; write it elsewhere"
    )]
    ReportIsTarget { path: String, target: String },
    #[error("cannot write the report {path}: {source}; choose another --report")]
    ReportUnwritable { path: String, source: std::io::Error },
    #[error(
        "{path}: no medium in the ledger has asset number {asset} or serial {serial}; register it first (certwipe ledger register) — nothing was written"
    )]
    Unregistered { path: String, asset: String, serial: String },
    #[error("{path}: {what}; use `certwipe wipe` — nothing was written")]
    NoDrive { path: String, what: &'static str },
    #[error("{path}: {source} — nothing was written")]
    Refused { path: String, source: crate::drive::sanitize::Refusal },
    #[error(
        "{path}: it is protected ({id} is in --protect or the profile's protect list); certwipe never writes it — nothing was written"
    )]
    Protected { path: String, id: String },
    #[error(
        "{path}: it could not be read to check it against the protect list ({why}) — nothing was written"
    )]
    Unchecked { path: String, why: String },
    #[error("{path}: the hidden area cannot be restored: {why} — nothing was written")]
    HiddenNotRestored { path: String, why: String },
    /// After the operator confirmed, restoring changed (or may have changed)
    /// the drive's size, so this is not a refusal.
    #[error(
        "{path}: restoring the hidden area failed: {source}; the drive's size may have changed (see certwipe identify) — no data was overwritten"
    )]
    RestoreFailed { path: String, source: CommandError },
    #[error(
        "{source}; this followed restoring the hidden area of {path}, so its size has changed — no data was overwritten"
    )]
    AfterRestore { path: String, source: Box<TargetError> },
}

impl crate::exit::ExitStatus for TargetError {
    /// Everything but a failed restore is found before the target is touched.
    fn exit_status(&self) -> u8 {
        match self {
            TargetError::Ledger(error) => error.exit_status(),
            TargetError::RestoreFailed { .. } | TargetError::AfterRestore { .. } => crate::exit::FAILED,
            _ => crate::exit::USAGE,
        }
    }
}

/// Everything needed to issue a certificate, gathered (and the key unlocked)
/// before any wiping starts, so a wrong passphrase or an unwritable directory is
/// found in seconds, not after hours.
pub struct CertificatePlan {
    pub dir: PathBuf,
    /// `None` only with an explicit `--unsigned`.
    pub key: Option<SigningKey>,
    pub pdf: bool,
    /// The records office's page, for the PDF's QR code.
    pub verify_url: Option<String>,
    /// The trust list each certificate is judged against as it is printed
    /// (and, with a ledger, the ledger's trust root).
    pub allowed: Option<AllowedSigners>,
}

/// Whether a target continues an interrupted wipe of the same medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumePolicy {
    /// Always start over (an interrupted wipe's journal is discarded).
    Never,
    /// Only continue one: a target without a journal is refused (`wipe --resume`).
    Always,
    /// Continue one when the medium has a journal and is recognised, else start
    /// over (a station, when a stick is plugged in again).
    WhenJournaled,
}

/// Which hidden areas (ATA HPA, DCO) may be made addressable before a target
/// is sanitized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HiddenRestore {
    /// Leave them: the result is then `incomplete` if anything is hidden.
    #[default]
    Leave,
    /// Restore an HPA until the next power cycle.
    Hpa,
    /// Also restore a DCO, permanently.
    HpaAndDco,
}

/// How every target of a run is treated, checked before anything is written.
pub struct Settings {
    /// The overwrite plan, from the command line, which a resumed journal
    /// must match; `None` only for a drive's own erase.
    pub plan: Option<Plan>,
    pub resume: ResumePolicy,
    pub options: Options,
    pub state_dir: PathBuf,
    /// A journal is required (an explicit state directory, or resuming); without
    /// one a fresh wipe runs without checkpoints.
    pub require_journal: bool,
    pub certificates: Option<CertificatePlan>,
    /// The ledger each certificate is filed in; its station key must be allowed
    /// there (checked by [`Settings::with_ledger`]).
    ledger: Option<Mutex<Ledger>>,
    /// The drive's own erase instead of overwrite passes (`sanitize`).
    drive_erase: Option<Action>,
    restore: HiddenRestore,
    /// Media never written, by serial, WWN or content identifier.
    protect: Protect,
}

impl Settings {
    pub fn new(
        plan: Option<Plan>,
        resume: ResumePolicy,
        options: Options,
        state_dir: PathBuf,
        require_journal: bool,
        certificates: Option<CertificatePlan>,
    ) -> Settings {
        Settings {
            plan,
            resume,
            options,
            state_dir,
            require_journal,
            certificates,
            ledger: None,
            drive_erase: None,
            restore: HiddenRestore::Leave,
            protect: Protect::default(),
        }
    }

    /// Media that are never written, whatever else is asked.
    pub fn with_protect(mut self, protect: Protect) -> Settings {
        self.protect = protect;
        self
    }

    pub fn protect(&self) -> &Protect {
        &self.protect
    }

    /// Each target gets the drive's own erase (`sanitize`) instead of passes.
    pub fn with_drive_erase(mut self, action: Action) -> Settings {
        self.drive_erase = Some(action);
        self
    }

    pub fn with_hidden_restore(mut self, restore: HiddenRestore) -> Settings {
        self.restore = restore;
        self
    }

    /// Files every certificate in `ledger`: only signed ones can be, and only by
    /// a station key the ledger allows — both checked now.
    pub fn with_ledger(mut self, mut ledger: Ledger) -> Result<Settings, LedgerError> {
        let key = self
            .certificates
            .as_ref()
            .and_then(|c| c.key.as_ref())
            .ok_or(LedgerError::NeedsSignedCertificates)?;
        ledger.check_writer(key)?;
        self.ledger = Some(Mutex::new(ledger));
        Ok(self)
    }

    pub fn hidden_restore(&self) -> HiddenRestore {
        self.restore
    }

    pub fn has_ledger(&self) -> bool {
        self.ledger.is_some()
    }

    /// The ledger's medium for an asset number or serial, when there is a ledger.
    pub fn registered(
        &self,
        asset: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Option<crate::ledger::Medium>, LedgerError> {
        match &self.ledger {
            Some(ledger) => crate::engine::lock(ledger).find_medium(asset, serial),
            None => Ok(None),
        }
    }

    /// A protected medium is refused before anything is written: by the serial
    /// and WWN it reports (the drive's own, once asked), or by an identifier
    /// its content carries, read without writing.
    fn check_protected(&self, target: &Inspected) -> Result<(), TargetError> {
        if self.protect.is_empty() {
            return Ok(());
        }
        let id = &target.identity;
        let marks = crate::device::marks::of_target(target)
            .map_err(|why| TargetError::Unchecked { path: id.path.clone(), why: why.to_string() })?;
        match self.protect.names(id.serial.as_deref(), id.wwn.as_deref(), Some(&marks)) {
            Some(protected) => {
                Err(TargetError::Protected { path: id.path.clone(), id: protected.to_string() })
            }
            None => Ok(()),
        }
    }

    /// With a ledger, every rule filing the certificate will apply, checked
    /// now: the medium is registered there (by asset number or the serial the
    /// drive gave), its history verifies, it is not destroyed, and the records
    /// keep its level and a destination it allows.
    fn check_registered(&self, target: &Inspected, records: Option<&mut Records>) -> Result<(), TargetError> {
        let (Some(ledger), Some(records)) = (&self.ledger, records) else { return Ok(()) };
        let serial = target.identity.serial.as_deref();
        match crate::engine::lock(ledger).admit(records, serial)? {
            Some(_) => Ok(()),
            None => Err(TargetError::Unregistered {
                path: target.identity.path.clone(),
                asset: records.asset_number.as_deref().unwrap_or("(none given)").to_string(),
                serial: serial.unwrap_or("(unknown)").to_string(),
            }),
        }
    }
}

/// A target ready to run: opened, with its work and records.
pub struct Prepared {
    pub target: Inspected,
    medium: Medium,
    work: Work,
    records: Option<Records>,
    report_path: Option<PathBuf>,
    /// Hidden sectors to make addressable once the operator has confirmed.
    restore: Option<PendingRestore>,
}

/// A restore planned before confirmation and done after it, with the drive's
/// account it is planned from.
struct PendingRestore {
    areas: HiddenAreas,
    probed: Probed,
}

/// What is done to a target.
enum Work {
    /// Overwrite passes, with the journal they checkpoint into.
    Overwrite { plan: Plan, options: Options, journal: Option<FileJournal>, resume: Option<Box<Checkpoint>> },
    /// The drive's own erase, proven by reading the medium.
    DriveErase { plan: sanitize::Plan, protocol: Protocol },
}

impl Prepared {
    pub fn medium_path(&self) -> &str {
        &self.target.identity.path
    }

    pub fn resuming(&self) -> bool {
        matches!(&self.work, Work::Overwrite { resume: Some(_), .. })
    }

    /// The overwrite plan; `None` for a drive's own erase.
    pub fn plan(&self) -> Option<&Plan> {
        match &self.work {
            Work::Overwrite { plan, .. } => Some(plan),
            Work::DriveErase { .. } => None,
        }
    }

    /// What will be done, in one line for the confirmation.
    pub fn describe(&self) -> String {
        let first = self.restore.as_ref().map(|r| r.describe()).unwrap_or_default();
        let work = match &self.work {
            Work::Overwrite { plan, resume, .. } => format!(
                "{} [{}], {} pass(es){}",
                plan.method_name,
                plan.method,
                plan.passes.len(),
                if resume.is_some() { ", resuming" } else { "" }
            ),
            Work::DriveErase { plan, .. } => {
                let estimate = plan
                    .estimate
                    .map(|e| format!("; the drive estimates {} min", e.as_secs().div_ceil(60)))
                    .unwrap_or_default();
                format!("{} ({}){estimate}", plan.command.name(), plan.reason)
            }
        };
        format!("{first}{work}")
    }

    /// The kernel's disk sequence number of the opened device, to check it is
    /// still the medium that was seen.
    pub fn disk_sequence(&self) -> Option<u64> {
        self.medium.disk_sequence()
    }
}

/// The drive's own account replaces sysfs's where the drive gave one.
fn take_identity(identity: &mut crate::device::Identity, info: &crate::drive::DriveInfo) {
    // What the drive reports is escaped and bounded, as sysfs's text is.
    let take = |field: &mut Option<String>, value: &Option<String>| {
        if let Some(text) = value.as_deref().and_then(crate::text::from_device) {
            *field = Some(text);
        }
    };
    take(&mut identity.vendor, &info.vendor);
    take(&mut identity.model, &info.model);
    take(&mut identity.serial, &info.serial);
    take(&mut identity.firmware, &info.firmware);
    take(&mut identity.wwn, &info.wwn.clone().or_else(|| info.eui64.clone()).or_else(|| info.nguid.clone()));
    identity.identity_source = info.source;
    if info.hidden.is_some() {
        identity.hidden = info.hidden;
    }
}
