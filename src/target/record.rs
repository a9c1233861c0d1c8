//! Record: what became of a target — its report, certificate, PDF and ledger
//! entry, each step's result kept rather than stopping at the first failure.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

use super::CertificatePlan;
use crate::cert::files::{Bundle, write_certificate};
use crate::cert::judge::Trust;
use crate::cert::pdf::{self, PdfError};
use crate::cert::records::Records;
use crate::cert::{CertError, Certificate};
use crate::ledger::{Imported, Ledger, LedgerError};
use crate::report::{Report, Status};

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

/// A certificate's path, its PDF's, and its ledger entry, each if asked for.
type Recorded = (
    Option<Result<PathBuf, StepError>>,
    Option<Result<(PathBuf, Vec<char>), StepError>>,
    Option<Result<Imported, StepError>>,
);

/// Bytes of a medium's name kept in its certificate's file name: a file
/// system allows 255 per name, and the id (37), `.json`, the longest
/// countersignature suffix (`.validator-NN.statement.sig`) and a temporary
/// name's wrapping (`.` + `.XXXXXX.tmp`) must still fit. The certificate
/// itself keeps the whole name.
const NAME_PART_BYTES: usize = 160;

fn file_name_part(name: &str) -> &str {
    let mut end = name.len().min(NAME_PART_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The certificate, its PDF and its ledger entry.
pub(super) fn certify(
    plan: &CertificatePlan,
    ledger: Option<&Mutex<Ledger>>,
    report: &Report,
    records: Records,
) -> Recorded {
    let cert = Certificate::issue(report.clone(), records);
    let path = plan.dir.join(format!("{}-{}.json", file_name_part(&report.target.name), cert.certificate_id));
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

pub(super) fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    crate::durable::write_atomically(path, &crate::cert::canonical::to_bytes(report), 0o644)
}
