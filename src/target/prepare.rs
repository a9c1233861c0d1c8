//! Plan: from inspected targets to opened ones with their work decided, every
//! refusal found before anything is written.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::hidden::plan_restore;
use super::resume::resumed_checkpoint;
use super::{PendingRestore, Prepared, ResumePolicy, Settings, TargetError, Work, take_identity};
use crate::cert::records::Records;
use crate::device::{Access, DeviceError, Inspected, Medium, SystemUse, TargetKind};
use crate::drive::linux::with_drive;
use crate::drive::probe::{self, Probed};
use crate::drive::sanitize::{self, Action};
use crate::engine::Options;
use crate::engine::checkpoint::FileJournal;

impl Settings {
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
        if self.drive_erase.is_some() && target.identity.kind == TargetKind::ImageFile {
            return Err(TargetError::NoDrive {
                path: target.identity.path.clone(),
                what: "an image file has no drive to sanitize",
            });
        }
        let drive = ask_drive(&mut target, note)?;
        self.check_protected(&target)?;
        let restore = match &drive {
            Some(probed) => plan_restore(probed, &target.identity.path, self.restore, note)?
                .map(|areas| PendingRestore { areas, probed: probed.clone() }),
            None => None,
        };
        self.check_registered(&target, records.as_mut())?;
        let medium = Medium::open(&mut target, Access::ReadWrite)?;
        let work = self.work(&target, &medium, drive, note)?;
        Ok(Prepared { target, medium, work, records, report_path, restore })
    }

    pub(super) fn work(
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

/// The drive's own erase: checked now (supported, not frozen, not running).
fn drive_erase_work(
    medium: &Medium,
    target: &Inspected,
    probed: Option<Probed>,
    action: Action,
) -> Result<Work, TargetError> {
    let path = target.identity.path.clone();
    let (Some(probed), Some(fd)) = (probed, medium.block_fd()) else {
        return Err(TargetError::NoDrive {
            path,
            what: "no drive answers commands here (a loop device or virtual disk has no drive firmware to sanitize)",
        });
    };
    let plan = with_drive(fd, |drive| sanitize::plan(drive, &probed, action))
        .map_err(|source| TargetError::Refused { path, source })?;
    Ok(Work::DriveErase { plan, protocol: probed.protocol })
}

/// The plan of a run: every target in `paths` inspected, its report path
/// checked, opened and its work decided, with `records[i]` for the i-th
/// target's certificate. Any refusal stops the whole run before anything is
/// written.
pub fn prepare_all(
    settings: &Settings,
    paths: &[PathBuf],
    records: Vec<Option<Records>>,
    report: Option<&Path>,
    note: &dyn Fn(&str),
) -> Result<Vec<Prepared>, TargetError> {
    let targets = inspect_all(paths, &SystemUse::read())?;
    let report_paths = report_paths(report, &targets)?;
    targets
        .into_iter()
        .zip(records)
        .zip(report_paths)
        .map(|((target, records), report)| settings.prepare(target, records, report, note))
        .collect()
}

/// Inspects every target and refuses the whole run if any is unsafe, so a
/// typo in a list of devices never wipes the others half-way through a batch.
pub fn inspect_all(paths: &[PathBuf], system: &SystemUse) -> Result<Vec<Inspected>, TargetError> {
    // By the medium itself: a loop device and the file behind it are one.
    let mut seen: HashMap<(u64, u64), &Path> = HashMap::new();
    let mut targets = Vec::new();
    for path in paths {
        let target = crate::device::inspect(path, system)?;
        if !target.refusals.is_empty() {
            return Err(TargetError::Unsafe {
                path: path.display().to_string(),
                refusals: target.refusals.join("; "),
            });
        }
        if let Some(first) = seen.insert(target.medium_key(), path) {
            return Err(TargetError::SameMedium {
                first: first.display().to_string(),
                second: path.display().to_string(),
            });
        }
        targets.push(target);
    }
    Ok(targets)
}

/// The time in a report's file name, UTC: `20261130T002000Z`.
pub fn report_stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace([':', '-'], "")
}

/// A report's file in `dir`, named after the device and the time.
pub fn report_file(dir: &Path, name: &str, stamp: &str) -> PathBuf {
    dir.join(format!("{name}-{stamp}.report.json"))
}

/// Where each target's report goes (`report`: a file for one target, or a
/// directory), checked before anything is written so hours of wiping never
/// end in an unwritable report.
pub fn report_paths(
    report: Option<&Path>,
    targets: &[Inspected],
) -> Result<Vec<Option<PathBuf>>, TargetError> {
    let Some(report) = report else { return Ok(vec![None; targets.len()]) };
    let stamp = report_stamp();
    let paths: Vec<PathBuf> = if report.is_dir() {
        targets.iter().map(|t| report_file(report, &t.identity.name, &stamp)).collect()
    } else if targets.len() == 1 {
        vec![report.to_path_buf()]
    } else {
        return Err(TargetError::ReportNeedsDirectory { path: report.display().to_string() });
    };
    for path in &paths {
        check_report_path(path, targets)?;
    }
    Ok(paths.into_iter().map(Some).collect())
}

/// A report replaces its file: it must be neither a target nor a file of
/// another kind, in a directory certwipe can write.
fn check_report_path(path: &Path, targets: &[Inspected]) -> Result<(), TargetError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let resolved = std::fs::canonicalize(path)
        .or_else(|_| std::fs::canonicalize(dir).map(|d| d.join(path.file_name().unwrap_or_default())))
        .unwrap_or_else(|_| path.to_path_buf());
    if let Some(target) = targets.iter().find(|t| Path::new(&t.identity.resolved_path) == resolved) {
        return Err(TargetError::ReportIsTarget {
            path: path.display().to_string(),
            target: target.identity.path.clone(),
        });
    }
    crate::durable::Replaceable::Report
        .check(path)
        .and_then(|()| crate::durable::check_writable_dir(dir))
        .map_err(|source| TargetError::ReportUnwritable { path: path.display().to_string(), source })
}
