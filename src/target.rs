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
use crate::cert::pdf::{self, Lang, PdfError};
use crate::cert::records::Records;
use crate::cert::sign::SigningKey;
use crate::cert::{CertError, Certificate};
use crate::device::{Access, DeviceError, Inspected, Medium};
use crate::engine::checkpoint::{self, Checkpoint, FileJournal, Interruption, Journal, JournalError};
use crate::engine::events::Observer;
use crate::engine::report::{Report, Status};
use crate::engine::workers::Workers;
use crate::engine::{self, Job, Options};
use crate::ledger::{Imported, Ledger, LedgerError};
use crate::method::Plan;

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
}

impl crate::exit::ExitStatus for TargetError {
    /// Everything here is found before the target is written.
    fn exit_status(&self) -> u8 {
        match self {
            TargetError::Ledger(error) => error.exit_status(),
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

/// How every target of a run is treated, checked before anything is written.
pub struct Settings {
    /// The plan of a new wipe; `None` only with [`ResumePolicy::Always`].
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
        Settings { plan, resume, options, state_dir, require_journal, certificates, ledger: None }
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
        records: Option<Records>,
        report_path: Option<PathBuf>,
        note: &dyn Fn(&str),
    ) -> Result<Prepared, TargetError> {
        if self.ledger.is_some() {
            let asset = records.as_ref().and_then(|r| r.asset_number.as_deref());
            let serial = target.identity.serial.as_deref();
            if self.registered(asset, serial)?.is_none() {
                return Err(TargetError::Unregistered {
                    path: target.identity.path.clone(),
                    asset: asset.unwrap_or("(none given)").to_string(),
                    serial: serial.unwrap_or("(unknown)").to_string(),
                });
            }
        }
        let medium = Medium::open(&mut target, Access::ReadWrite)?;
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
                Some(resumed_checkpoint(journal, &target, &medium)?)
            }
            (ResumePolicy::WhenJournaled, Some(journal)) => {
                match resumed_checkpoint(journal, &target, &medium) {
                    Ok(checkpoint) => Some(checkpoint),
                    Err(error) => {
                        note(&format!("note: {error}; this wipe starts over"));
                        None
                    }
                }
            }
        };
        let (plan, options) = match &resume {
            Some(checkpoint) => {
                let options = Options {
                    verify: checkpoint.verify,
                    digest: checkpoint.digest || self.options.digest,
                    prng: checkpoint.prng,
                };
                (checkpoint.plan.clone(), options)
            }
            None => (self.plan.clone().expect("a plan unless always resuming"), self.options.clone()),
        };
        Ok(Prepared { target, medium, plan, options, journal, resume, records, report_path })
    }
}

/// The checkpoint of an interrupted wipe of this medium, once the medium is
/// recognised as the one it was writing; the interruption is recorded.
fn resumed_checkpoint(
    journal: &FileJournal,
    target: &Inspected,
    medium: &Medium,
) -> Result<Checkpoint, JournalError> {
    let path = &target.identity.path;
    let mut checkpoint = journal.load(path)?;
    let how = checkpoint::recognise(&checkpoint, &target.identity, medium)
        .map_err(|why| JournalError::NotTheSameMedium { target: path.clone(), why })?;
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

/// A target ready to run: opened, with its plan, journal and records.
pub struct Prepared {
    pub target: Inspected,
    medium: Medium,
    pub plan: Plan,
    options: Options,
    journal: Option<FileJournal>,
    resume: Option<Checkpoint>,
    records: Option<Records>,
    report_path: Option<PathBuf>,
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
        match &self.filed {
            Some(Ok(imported)) => parts.push(format!("in ledger as {}", imported.number)),
            Some(Err(error)) => parts.push(error.to_string()),
            None => {}
        }
        parts.join("; ")
    }
}

impl Prepared {
    pub fn medium_path(&self) -> &str {
        &self.target.identity.path
    }

    pub fn resuming(&self) -> bool {
        self.resume.is_some()
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
        let report = engine::run(Job {
            medium: &self.medium,
            target: &self.target.identity,
            plan: &self.plan,
            options: &self.options,
            workers,
            observer,
            stop,
            journal: self.journal.as_ref().map(|j| j as &dyn Journal),
            resume: self.resume.take(),
        });
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
        let resumable = matches!(report.status, Status::Aborted | Status::Failed)
            && self.journal.as_ref().is_some_and(|j| j.path().exists());
        Outcome { report, report_path, certificate, pdf, filed, resumable }
    }
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
        pdf::write_file(&path, &output, Lang::Both, None, None)
            .map(|missing| (output, missing))
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
    let mut text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::durable::write_atomically(path, &text, 0o644)
}
