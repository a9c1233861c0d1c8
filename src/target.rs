//! A target's whole life: inspect → open → wipe → report → certificate → PDF →
//! ledger. `wipe` runs it for the targets named on its command line, `station`
//! for every medium plugged in; both through these same steps, checked in the
//! same order, so that what one promises the other keeps.
//!
//! Everything that could stop a certificate from being written or filed is
//! checked in [`Settings`] and [`Settings::prepare`], before anything is written;
//! [`Prepared::run`] then wipes and records, and reports every step's result in
//! an [`Outcome`] instead of stopping at the first one that fails.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use thiserror::Error;

use crate::cert::files::{Bundle, write_certificate};
use crate::cert::judge::Trust;
use crate::cert::pdf::{self, PdfError};
use crate::cert::records::Records;
use crate::cert::sign::{AllowedSigners, SigningKey};
use crate::cert::{CertError, Certificate};
use std::os::fd::AsFd;

use crate::device::{Access, DeviceError, HiddenAreas, Inspected, Medium, Protect, TargetKind};
use crate::drive::ata::AtaDevice;
use crate::drive::hidden;
use crate::drive::hidden::MaxAddressCommands;
use crate::drive::linux::with_drive;
use crate::drive::probe::{self, Probed, Protocol};
use crate::drive::sanitize::{self, Action};
use crate::drive::{CommandError, Passthrough};
use crate::engine::checkpoint::{self, Checkpoint, FileJournal, Interruption, Journal, JournalError};
use crate::engine::events::Observer;
use crate::engine::report::{Report, Status};
use crate::engine::workers::Workers;
use crate::engine::{self, Job, Options};
use crate::ledger::{Imported, Ledger, LedgerError};
use crate::method::Plan;
use crate::purge;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "{path}: no medium in the ledger has asset number {asset} or serial {serial}; register it first (certwipe ledger register) — nothing was written"
    )]
    Unregistered { path: String, asset: String, serial: String },
    #[error(
        "{path}: no drive answers commands here (a loop device, image file or virtual disk has no drive firmware to sanitize); use `certwipe wipe` — nothing was written"
    )]
    NoDrive { path: String },
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

    /// Opens an inspected target for writing, with its journal and, when
    /// resuming, the checkpoint it continues from (after recognising the medium).
    /// `records` are the certificate's, when certificates are written. `note`
    /// hears what the operator should know but need not act on.
    pub fn prepare(
        &self,
        mut target: Inspected,
        mut records: Option<Records>,
        report_path: Option<PathBuf>,
        note: &dyn Fn(&str),
    ) -> Result<Prepared, TargetError> {
        let drive = ask_drive(&mut target, note)?;
        self.check_protected(&target)?;
        let restore = plan_restore(drive.as_ref(), &target.identity.path, self.restore, note)?;
        let restore = restore.map(|areas| PendingRestore {
            areas,
            probed: drive.clone().expect("hidden areas are reported by a drive"),
        });
        self.check_registered(&target, records.as_mut())?;
        let medium = Medium::open(&mut target, Access::ReadWrite)?;
        let work = self.work(&target, &medium, drive, note)?;
        Ok(Prepared { target, medium, work, records, report_path, restore })
    }

    fn work(
        &self,
        target: &Inspected,
        medium: &Medium,
        drive: Option<Probed>,
        note: &dyn Fn(&str),
    ) -> Result<Work, TargetError> {
        match self.drive_erase {
            Some(action) => drive_erase_work(medium, target, drive, action),
            None => self.overwrite_work(target, medium, note),
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

    /// Overwrite passes: the plan, the journal, and the checkpoint resumed from.
    fn overwrite_work(
        &self,
        target: &Inspected,
        medium: &Medium,
        note: &dyn Fn(&str),
    ) -> Result<Work, TargetError> {
        let journal = match FileJournal::new(&self.state_dir, &target.identity) {
            Ok(journal) => Some(journal),
            Err(error) if self.require_journal || self.resume != ResumePolicy::Never => {
                return Err(error.into());
            }
            Err(error) => {
                note(&format!("warning: no checkpoints, so an interrupted wipe cannot be resumed: {error}"));
                None
            }
        };
        let interrupted = journal.as_ref().filter(|j| j.path().exists());
        let planned = self.plan.clone().expect("an overwrite has a plan");
        let verify = self.options.verify;
        let resume = match (self.resume, interrupted) {
            (ResumePolicy::Never, Some(_)) => {
                note(&format!(
                    "note: an interrupted wipe of {} is discarded; this run starts over (--resume continues one)",
                    target.identity.path
                ));
                None
            }
            (ResumePolicy::Never, None) | (ResumePolicy::WhenJournaled, None) => None,
            (ResumePolicy::Always, _) => {
                let journal = journal.as_ref().expect("a journal is required when resuming");
                Some(resumed_checkpoint(journal, target, medium, &planned, verify)?)
            }
            (ResumePolicy::WhenJournaled, Some(journal)) => {
                match resumed_checkpoint(journal, target, medium, &planned, verify) {
                    Ok(checkpoint) => Some(checkpoint),
                    Err(error) => {
                        note(&format!("note: {error}; this wipe starts over"));
                        None
                    }
                }
            }
        };
        let options = match &resume {
            Some(checkpoint) => Options {
                verify: checkpoint.verify,
                digest: checkpoint.digest || self.options.digest,
                prng: checkpoint.prng,
            },
            None => self.options.clone(),
        };
        Ok(Work::Overwrite { plan: planned, options, journal, resume: resume.map(Box::new) })
    }
}

/// Asks the drive behind a block device who it is; its own model, serial and
/// hidden areas replace what sysfs said. Changes nothing on the drive.
/// `None` when nothing answers (loop devices, image files, some bridges).
pub fn ask_drive(target: &mut Inspected, note: &dyn Fn(&str)) -> Result<Option<Probed>, TargetError> {
    if target.identity.kind != TargetKind::BlockDevice {
        return Ok(None);
    }
    let path = target.identity.path.clone();
    let file = std::fs::File::open(&path).map_err(|e| DeviceError::io(Path::new(&path), e))?;
    let probed = match with_drive(file.as_fd(), |drive| probe::probe(drive, &target.identity.transport)) {
        Ok(Some(probed)) => probed,
        Ok(None) => return Ok(None),
        Err(error) => {
            note(&format!("note: {path}: the drive did not answer ({error}); its identity comes from sysfs"));
            return Ok(None);
        }
    };
    for problem in &probed.notes {
        note(&format!("note: {path}: {problem}"));
    }
    take_identity(&mut target.identity, &probed.info);
    Ok(Some(probed))
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

/// Which hidden sectors will be restored once the operator has confirmed:
/// refused now when that cannot be done as asked, and the operator told when
/// they are left hidden (the result can then only be incomplete).
fn plan_restore(
    drive: Option<&Probed>,
    path: &str,
    restore: HiddenRestore,
    note: &dyn Fn(&str),
) -> Result<Option<HiddenAreas>, TargetError> {
    let Some(drive) = drive else { return Ok(None) };
    let Some(areas) = drive.info.hidden.filter(|h| h.hidden_sectors() > 0) else { return Ok(None) };
    let refused = |why: String| TargetError::HiddenNotRestored { path: path.to_string(), why };
    if restore == HiddenRestore::Leave {
        note(&format!(
            "warning: {path}: {} sectors are hidden by an HPA/DCO and will not be reached, so the result can only be incomplete; --restore-hidden (and --restore-dco for a DCO) makes them addressable first",
            areas.hidden_sectors()
        ));
        return Ok(None);
    }
    if areas.dco_sectors() > 0 && restore != HiddenRestore::HpaAndDco {
        return Err(refused(format!(
            "a DCO hides {} sectors; restoring it is permanent, so it needs --restore-dco as well",
            areas.dco_sectors()
        )));
    }
    if areas.hpa_sectors() > 0 && drive.max_address.is_none() {
        return Err(refused("the drive has no command to restore its HPA".into()));
    }
    Ok(Some(areas))
}

/// Restores what [`plan_restore`] planned: the DCO first (permanent), then the
/// HPA (until power-off) if one still limits the size. The areas, as restored.
fn restore_areas(
    drive: &mut dyn Passthrough,
    mut areas: HiddenAreas,
    commands: Option<MaxAddressCommands>,
    path: &str,
    note: &dyn Fn(&str),
) -> Result<HiddenAreas, CommandError> {
    let mut ata = AtaDevice { pt: drive };
    if areas.dco_sectors() > 0 {
        hidden::restore_dco(&mut ata)?;
        areas.dco_restored = true;
        note(&format!("{path}: DCO restored (permanently) to {} sectors", areas.full_sectors()));
    }
    let identify = ata.read_block("IDENTIFY DEVICE", &crate::drive::ata::identify())?;
    let now = crate::drive::identify::decode_ata(&identify).capacity.map_or(0, |c| c.sectors);
    // Without the commands (checked when planned) the rescan finds the size short.
    if now < areas.full_sectors()
        && let Some(commands) = commands
    {
        hidden::restore_hpa(&mut ata, commands)?;
        areas.hpa_restored = true;
        note(&format!("{path}: HPA restored until power-off: {} sectors addressable", areas.full_sectors()));
    }
    Ok(areas)
}

/// Makes the kernel re-read the drive's size, and checks it now sees all of it.
fn rescan(
    target: &mut Inspected,
    sectors: u64,
    failed: &dyn Fn(String) -> TargetError,
) -> Result<(), TargetError> {
    let name = &target.identity.name;
    std::fs::write(format!("/sys/block/{name}/device/rescan"), "1")
        .map_err(|e| failed(format!("the kernel could not be asked to re-read the size ({e})")))?;
    let logical = u64::from(target.identity.logical_sector_size.max(512));
    let fresh = crate::device::inspect(Path::new(&target.identity.path), &crate::device::SystemUse::read())?;
    if fresh.identity.size_bytes != sectors * logical {
        return Err(failed(format!(
            "the kernel sees {} bytes, not the {} the drive now has",
            fresh.identity.size_bytes,
            sectors * logical
        )));
    }
    target.identity.size_bytes = fresh.identity.size_bytes;
    Ok(())
}

/// The drive's own erase: checked now (supported, not frozen, not running).
fn drive_erase_work(
    medium: &Medium,
    target: &Inspected,
    probed: Option<Probed>,
    action: Action,
) -> Result<Work, TargetError> {
    let path = target.identity.path.clone();
    let (Some(probed), Some(fd)) = (probed, medium.block_fd()) else {
        return Err(TargetError::NoDrive { path });
    };
    let plan = with_drive(fd, |drive| sanitize::plan(drive, &probed, action))
        .map_err(|source| TargetError::Refused { path, source })?;
    Ok(Work::DriveErase { plan, protocol: probed.protocol })
}

/// The checkpoint of an interrupted wipe of this medium, once its plan and
/// verification are the ones this run asks for and the medium is recognised
/// as the one it was writing; the interruption is recorded, and the last pass
/// is set to be read back over the whole medium again.
fn resumed_checkpoint(
    journal: &FileJournal,
    target: &Inspected,
    medium: &Medium,
    planned: &Plan,
    verify: crate::engine::VerifyMode,
) -> Result<Checkpoint, JournalError> {
    let path = &target.identity.path;
    let mut checkpoint = journal.load(path)?;
    if checkpoint.plan != *planned || checkpoint.verify != verify {
        let describe = |plan: &Plan, verify: crate::engine::VerifyMode| {
            format!("method {} x{} with verify {}", plan.method, plan.rounds, verify.as_str())
        };
        return Err(JournalError::PlanDiffers {
            target: path.clone(),
            journal: describe(&checkpoint.plan, checkpoint.verify),
            asked: describe(planned, verify),
        });
    }
    let how = checkpoint::recognise(&checkpoint, &target.identity, medium)
        .map_err(|why| JournalError::NotTheSameMedium { target: path.clone(), why })?;
    checkpoint.reverify_last(planned.passes.len());
    let how =
        format!("{how}; the last pass is read back over the whole medium again, whatever the journal said");
    checkpoint.interruptions.push(Interruption {
        checkpoint_at: checkpoint.saved_at.clone(),
        pass: checkpoint.current.as_ref().map(|f| f.index),
        phase: checkpoint.current.as_ref().map(|f| f.phase),
        offset: checkpoint.current.as_ref().map_or(0, |f| f.offset),
        resumed_at: crate::engine::report::now(),
        medium_check: how,
    });
    Ok(checkpoint)
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

impl PendingRestore {
    fn describe(&self) -> String {
        let dco = self.areas.dco_sectors();
        let hpa = self.areas.hpa_sectors();
        let mut steps = Vec::new();
        if dco > 0 {
            steps.push(format!("restore the DCO PERMANENTLY ({dco} sectors)"));
        }
        if hpa > 0 {
            steps.push(format!("restore the HPA until power-off ({hpa} sectors)"));
        }
        format!("first {}, then ", steps.join(" and "))
    }
}

/// What is done to a target.
enum Work {
    /// Overwrite passes, with the journal they checkpoint into.
    Overwrite { plan: Plan, options: Options, journal: Option<FileJournal>, resume: Option<Box<Checkpoint>> },
    /// The drive's own erase, proven by reading the medium.
    DriveErase { plan: sanitize::Plan, protocol: Protocol },
}

/// Why a step after the wipe did not happen. The wipe itself is in the report.
#[derive(Debug, Error)]
pub enum StepError {
    #[error("report NOT saved to {path}: {source}")]
    Report { path: String, source: std::io::Error },
    #[error("certificate NOT written: {0}")]
    Certificate(CertError),
    #[error("PDF NOT written: {0}")]
    Pdf(PdfError),
    #[error("NOT filed in the ledger: {0}")]
    Ledger(LedgerError),
}

/// What happened to a target: the wipe's report, and each step after it.
pub struct Outcome {
    pub report: Report,
    pub report_path: Option<Result<PathBuf, StepError>>,
    pub certificate: Option<Result<PathBuf, StepError>>,
    /// The PDF, and the characters its font could not show.
    pub pdf: Option<Result<(PathBuf, Vec<char>), StepError>>,
    pub filed: Option<Result<Imported, StepError>>,
    /// The journal is kept: `wipe --resume` (or re-plugging, at a station) continues.
    pub resumable: bool,
}

impl Outcome {
    /// Erased, and every record asked for was written and filed.
    pub fn succeeded(&self) -> bool {
        self.report.status == Status::Erased && self.step_errors().next().is_none()
    }

    pub fn step_errors(&self) -> impl Iterator<Item = &StepError> {
        let report = self.report_path.as_ref().and_then(|r| r.as_ref().err());
        let certificate = self.certificate.as_ref().and_then(|r| r.as_ref().err());
        let pdf = self.pdf.as_ref().and_then(|r| r.as_ref().err());
        let filed = self.filed.as_ref().and_then(|r| r.as_ref().err());
        [report, certificate, pdf, filed].into_iter().flatten()
    }

    /// What was kept, for the operator: report, certificate, ledger number.
    pub fn records_line(&self) -> String {
        let mut parts = Vec::new();
        match &self.report_path {
            Some(Ok(path)) => parts.push(format!("report: {}", path.display())),
            Some(Err(error)) => parts.push(error.to_string()),
            None if self.certificate.is_none() => parts.push("no report saved: add --report FILE".into()),
            None => {}
        }
        match &self.certificate {
            Some(Ok(path)) => parts.push(format!("certificate: {}", path.display())),
            Some(Err(error)) => parts.push(error.to_string()),
            None => {}
        }
        if let Some(Err(error)) = &self.pdf {
            parts.push(error.to_string());
        }
        match (&self.filed, &self.certificate) {
            (Some(Ok(imported)), _) => parts.push(format!("in ledger as {}", imported.number)),
            (Some(Err(error)), Some(Ok(path))) => parts.push(format!(
                "{error} — the signed certificate is kept: file it later with `certwipe ledger import {}`",
                path.display()
            )),
            (Some(Err(error)), _) => parts.push(error.to_string()),
            (None, _) => {}
        }
        parts.join("; ")
    }
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

    /// Makes the planned hidden sectors addressable — after the operator has
    /// confirmed, because a DCO restore is permanent — then opens the medium
    /// again at its full size and plans its work for that size.
    pub fn restore_hidden(
        mut self,
        settings: &Settings,
        note: &dyn Fn(&str),
    ) -> Result<Prepared, TargetError> {
        let Some(PendingRestore { areas, mut probed }) = self.restore.take() else { return Ok(self) };
        let path = self.target.identity.path.clone();
        let fd = self.medium.block_fd().expect("hidden areas are a drive's, on a block device");
        let restored = with_drive(fd, |drive| restore_areas(drive, areas, probed.max_address, &path, note))
            .map_err(|source| TargetError::RestoreFailed { path: path.clone(), source })?;
        let Prepared { mut target, medium, records, report_path, .. } = self;
        drop(medium);
        let after =
            |source: TargetError| TargetError::AfterRestore { path: path.clone(), source: Box::new(source) };
        let failed = |why: String| TargetError::HiddenNotRestored { path: path.clone(), why };
        rescan(&mut target, restored.full_sectors(), &failed).map_err(after)?;
        probed.info.hidden = Some(restored);
        take_identity(&mut target.identity, &probed.info);
        let medium = Medium::open(&mut target, Access::ReadWrite).map_err(|e| after(e.into()))?;
        let work = settings.work(&target, &medium, Some(probed), note).map_err(after)?;
        Ok(Prepared { target, medium, work, records, report_path, restore: None })
    }

    /// The kernel's disk sequence number of the opened device, to check it is
    /// still the medium that was seen.
    pub fn disk_sequence(&self) -> Option<u64> {
        self.medium.disk_sequence()
    }

    /// Wipes, then writes the report, the certificate and its PDF, and files it.
    pub fn run(
        mut self,
        settings: &Settings,
        workers: &Workers,
        observer: &dyn Observer,
        stop: &AtomicBool,
    ) -> Outcome {
        let report = match &mut self.work {
            Work::Overwrite { plan, options, journal, resume } => engine::run(Job {
                medium: &self.medium,
                target: &self.target.identity,
                plan,
                options,
                workers,
                observer,
                stop,
                journal: journal.as_ref().map(|j| j as &dyn Journal),
                resume: resume.take().map(|c| *c),
            }),
            Work::DriveErase { plan, protocol } => {
                drive_erase(&self.medium, &self.target.identity, plan, *protocol, observer, stop)
            }
        };
        let report = judge_hidden(report);
        observer.event(&crate::engine::events::Event::Finished { report: &report });
        // The device is closed before the records are made: a station can power it off.
        drop(self.medium);
        let report_path = self.report_path.as_ref().map(|path| {
            write_report(path, &report)
                .map(|()| path.clone())
                .map_err(|source| StepError::Report { path: path.display().to_string(), source })
        });
        let (certificate, pdf, filed) = match (&settings.certificates, self.records) {
            (Some(plan), Some(records)) => certify(plan, settings.ledger.as_ref(), &report, records),
            _ => (None, None, None),
        };
        let journal = match &self.work {
            Work::Overwrite { journal, .. } => journal.as_ref(),
            Work::DriveErase { .. } => None,
        };
        let resumable = matches!(report.status, Status::Aborted | Status::Failed)
            && journal.is_some_and(|j| j.path().exists());
        Outcome { report, report_path, certificate, pdf, filed, resumable }
    }
}

/// Runs the drive's erase between the two readings of its sample.
fn drive_erase(
    medium: &Medium,
    target: &crate::device::Identity,
    plan: &sanitize::Plan,
    protocol: Protocol,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Report {
    use crate::engine::events::Event;
    let fd = medium.block_fd().expect("a drive erase was prepared on a block device");
    observer.event(&Event::DriveStep {
        step: &format!("marking the verification sample, then {}", plan.command.name()),
    });
    let progress = |p: &sanitize::Progress| {
        observer
            .event(&Event::DriveProgress { fraction: p.fraction, elapsed_seconds: p.elapsed.as_secs_f64() });
    };
    let follow =
        sanitize::Follow { observer: &progress, stop, poll_every: std::time::Duration::from_secs(1) };
    with_drive(fd, |pt| {
        purge::run(purge::Job {
            medium,
            pt,
            target,
            protocol,
            plan,
            follow: &follow,
            prng: crate::stream::Prng::for_this_cpu(),
        })
    })
}

/// Sectors an HPA or DCO hid, and that were not restored, were not reached:
/// such a medium is not `erased`, whatever the rest says.
pub fn judge_hidden(mut report: Report) -> Report {
    if let Some(hidden) = report.target.hidden
        && report.status == Status::Erased
        && hidden.hidden_sectors() > 0
        && !(hidden.hpa_restored || hidden.dco_restored)
    {
        report.status = Status::Incomplete;
        report.status_reason = format!(
            "{} hidden sectors not overwritten: an HPA/DCO hides them (the drive has {}, the host reached {}); run again with --restore-hidden",
            hidden.hidden_sectors(),
            hidden.full_sectors(),
            hidden.accessible_sectors
        );
    }
    report
}

/// A certificate's path, its PDF's, and its ledger entry, each if asked for.
type Recorded = (
    Option<Result<PathBuf, StepError>>,
    Option<Result<(PathBuf, Vec<char>), StepError>>,
    Option<Result<Imported, StepError>>,
);

/// The certificate, its PDF and its ledger entry.
fn certify(
    plan: &CertificatePlan,
    ledger: Option<&Mutex<Ledger>>,
    report: &Report,
    records: Records,
) -> Recorded {
    let cert = Certificate::issue(report.clone(), records);
    let path = plan.dir.join(format!("{}-{}.json", report.target.name, cert.certificate_id));
    if let Err(error) = write_certificate(&path, &cert, plan.key.as_ref()) {
        return (Some(Err(StepError::Certificate(error))), None, None);
    }
    let pdf = plan.pdf.then(|| {
        let output = path.with_extension("pdf");
        let options = pdf::Options { verify_url: plan.verify_url.as_deref(), ..pdf::Options::default() };
        let trust = plan.allowed.as_ref().map(|allowed| Trust { allowed, station: None });
        pdf::write_file(&path, &output, &options, trust)
            .map(|written| (output, written.missing_glyphs))
            .map_err(StepError::Pdf)
    });
    let filed = ledger.map(|ledger| {
        let key = plan.key.as_ref().expect("Settings::with_ledger required a key");
        Bundle::from_files(&path).map_err(|e| StepError::Ledger(LedgerError::Sign(e))).and_then(|bundle| {
            let mut ledger = crate::engine::lock(ledger);
            ledger.import(&bundle, &path.display().to_string(), key).map_err(StepError::Ledger)
        })
    });
    (Some(Ok(path)), pdf, filed)
}

fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    crate::durable::write_atomically(path, &crate::cert::canonical::to_bytes(report), 0o644)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::drive::fake::FakeAta;
    use crate::exit::ExitStatus;

    const SET_MAX_ADDRESS_EXT: u8 = 0x37;

    fn probed(drive: &mut FakeAta) -> Probed {
        probe::probe(drive, "sata").unwrap().expect("the fake drive answers")
    }

    #[test]
    fn a_restore_is_planned_without_changing_the_drive_and_done_only_when_asked() {
        let mut drive = FakeAta::new(1000).with_dco(900).with_hpa(700);
        let probed = probed(&mut drive);
        let planned = plan_restore(Some(&probed), "/dev/sdx", HiddenRestore::HpaAndDco, &|_| {}).unwrap();
        let planned = planned.expect("both areas are to be restored");
        assert_eq!(drive.accessible(), 700, "probing and planning left the sizes alone");
        assert!(
            !drive.sent.contains(&SET_MAX_ADDRESS_EXT),
            "no SET MAX before confirmation: {:x?}",
            drive.sent
        );
        let description = PendingRestore { areas: planned, probed: probed.clone() }.describe();
        assert_eq!(
            description,
            "first restore the DCO PERMANENTLY (100 sectors) and restore the HPA until power-off (200 sectors), then "
        );

        let restored = restore_areas(&mut drive, planned, probed.max_address, "/dev/sdx", &|_| {}).unwrap();
        assert_eq!(drive.accessible(), 1000);
        assert!(restored.dco_restored);
        assert_eq!(restored.full_sectors(), 1000);
    }

    #[test]
    fn a_medium_with_sectors_left_hidden_is_incomplete_not_erased() {
        let mut drive = crate::drive::fake::FakeNvme::new(4096);
        let disk = drive.disk.clone();
        let erased = crate::purge::run_scripted(
            &mut drive,
            &*disk,
            "nvme",
            Action::Auto,
            crate::device::MediaType::Nvme,
        );
        assert_eq!(erased.status, Status::Erased, "{}", erased.status_reason);
        let with_hpa = |restored: bool| {
            let mut report = erased.clone();
            report.target.hidden = Some(HiddenAreas {
                accessible_sectors: 4096,
                native_sectors: Some(5000),
                factory_sectors: None,
                hpa_restored: restored,
                dco_restored: false,
            });
            judge_hidden(report)
        };
        let left = with_hpa(false);
        assert_eq!(left.status, Status::Incomplete);
        assert!(
            left.status_reason.starts_with("904 hidden sectors not overwritten"),
            "{}",
            left.status_reason
        );
        assert_eq!(with_hpa(true).status, Status::Erased, "restored first, then reached");
    }

    #[test]
    fn hidden_areas_that_cannot_be_restored_as_asked_are_refused_before_anything() {
        let mut drive = FakeAta::new(1000).with_dco(900).with_hpa(700);
        let mut probed = probed(&mut drive);
        let notes = RefCell::new(Vec::new());
        let note = |text: &str| notes.borrow_mut().push(text.to_string());
        assert!(plan_restore(Some(&probed), "/dev/sdx", HiddenRestore::Leave, &note).unwrap().is_none());
        assert!(notes.borrow()[0].contains("300 sectors are hidden"), "{:?}", notes.borrow());

        let error = plan_restore(Some(&probed), "/dev/sdx", HiddenRestore::Hpa, &note).unwrap_err();
        assert!(error.to_string().contains("needs --restore-dco"), "{error}");
        assert_eq!(error.exit_status(), crate::exit::USAGE);

        probed.max_address = None;
        let error = plan_restore(Some(&probed), "/dev/sdx", HiddenRestore::HpaAndDco, &note).unwrap_err();
        assert!(error.to_string().contains("no command to restore its HPA"), "{error}");
        assert_eq!(drive.accessible(), 700);

        // Once the drive was changed, nothing may promise that nothing was.
        let failed = TargetError::RestoreFailed {
            path: "/dev/sdx".into(),
            source: CommandError::io("SET MAX ADDRESS EXT", std::io::Error::other("gone")),
        };
        assert_eq!(failed.exit_status(), crate::exit::FAILED);
    }
}
