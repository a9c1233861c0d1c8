//! The wipe report: one JSON document per target saying exactly what was done and
//! what was proved. It is the single source the certificate is made from.

use std::ops::Range;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::device::{CacheBypass, Identity};
use crate::drive::sanitize::Expectation;
use crate::sanitization::Technique;
use crate::stream::{PassData, RandomStream, Seed};

pub const REPORT_FORMAT: &str = "certwipe.report/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub format: String,
    pub tool: Tool,
    pub host: String,
    pub target: Identity,
    pub method: MethodRecord,
    pub verify_mode: VerifyMode,
    /// How reads avoided the page cache.
    pub cache_bypass: CacheBypass,
    pub started_at: String,
    pub finished_at: String,
    pub passes: Vec<PassRecord>,
    pub verification: VerificationSummary,
    /// Digests of the whole final content, present only when the last pass was read
    /// back in full and matched.
    pub final_content_digest: Option<ContentDigest>,
    pub errors: ErrorLog,
    /// I/O errors that succeeded when retried (not bad sectors).
    pub retried_io_errors: u64,
    /// Interruptions (crash, kill, Ctrl-C) this run was resumed from.
    pub interruptions: Vec<Interruption>,
    /// The drive's own erase command and its verification (`certwipe
    /// sanitize`); absent for host overwrites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareRecord>,
    pub status: Status,
    /// One sentence a person can act on.
    pub status_reason: String,
}

/// A drive's own erase command, what the drive answered, and the reading of
/// the medium that checked it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareRecord {
    pub technique: Technique,
    /// ata, nvme or scsi.
    pub protocol: String,
    /// The command's name in its standard.
    pub command: String,
    /// The bytes sent: a CDB in hex, or the NVMe command's dwords.
    pub command_bytes: String,
    /// Why this command (for `auto`, why it was the strongest offered).
    pub chosen_because: String,
    pub drive_reported_success: bool,
    /// What the drive answered at the end, in its own terms.
    pub drive_status: String,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    /// The drive's own estimate of the time it needs.
    pub drive_estimate_seconds: Option<u64>,
    pub notes: Vec<String>,
    pub verification: FirmwareVerification,
}

/// The check of a drive's erase: before the command, a NIST sample of the
/// medium was read (its SHA-256 kept) and overwritten with a marker stream;
/// afterwards the same sample is read again. No sector may still hold the
/// marker, and each must read as the command leaves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareVerification {
    /// How the sample positions derive; absent when the medium is small
    /// enough to check every sector.
    pub sample: Option<SampleRecord>,
    pub bytes: u64,
    /// Fraction of the medium sampled.
    pub coverage: f64,
    /// SHA-256 of the sampled content before anything was written.
    pub before_sha256: String,
    /// What every sampled sector held when the drive's command was sent.
    pub marker: RandomStream,
    pub expected: Expectation,
    /// Sectors that still hold the marker after the drive's command.
    pub marker_remaining: Vec<SectorRange>,
    /// Sectors that do not read as the command leaves them.
    pub unexpected: Vec<SectorRange>,
    pub unreadable: Vec<SectorRange>,
    pub result: VerificationResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Tool {
        Tool { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRecord {
    pub id: String,
    pub name: String,
    pub source: String,
    pub rounds: u32,
}

crate::named! {
    pub enum VerifyMode: "verify mode" {
        /// No read-back.
        Off = "off",
        /// Read back the whole medium after the last pass.
        Last = "last",
        /// Read back the whole medium after every pass.
        All = "all",
        /// NIST SP 800-88 r1 §4.7 representative sampling of the last pass (≥ 10 %).
        Sample = "sample",
    }
}

crate::named! {
    pub enum Status: "status" {
        /// Every addressable byte was written by every pass and the requested
        /// verification passed.
        Erased = "erased",
        /// Finished, but some sectors could not be written or read; they are listed.
        Incomplete = "incomplete",
        /// Verification found data that differs from what was written, or the device
        /// stopped answering.
        Failed = "failed",
        /// Interrupted before finishing.
        Aborted = "aborted",
    }
}

/// What one pass wrote: a pattern, or the random generator and its seed, which is
/// all anyone needs to regenerate the pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PassContent {
    Fixed {
        pattern: String,
    },
    /// `generator` (`chacha8`, `aes-128-ctr`) and its key, flattened beside `kind`.
    Random(RandomStream),
}

impl std::fmt::Display for PassContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassContent::Fixed { pattern } => write!(f, "0x{pattern}"),
            PassContent::Random(stream) => write!(f, "{stream}"),
        }
    }
}

impl PassContent {
    pub fn of(data: &PassData) -> PassContent {
        match data {
            PassData::Pattern(bytes) => PassContent::Fixed { pattern: hex::encode(bytes) },
            PassData::Random(stream) => PassContent::Random(stream.clone()),
        }
    }

    /// The generator for this content, or `None` when the record names a generator
    /// or pattern this version cannot reproduce.
    pub fn data(&self) -> Option<PassData> {
        match self {
            PassContent::Fixed { pattern } => {
                hex::decode(pattern).ok().filter(|p| !p.is_empty()).map(PassData::Pattern)
            }
            PassContent::Random(stream) => Some(PassData::Random(stream.clone())),
        }
    }
}

/// A run of logical sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorRange {
    pub first_lba: u64,
    pub sectors: u64,
}

impl SectorRange {
    pub fn from_bytes(range: &Range<u64>, sector: u64) -> SectorRange {
        let first = range.start / sector;
        SectorRange { first_lba: first, sectors: range.end.div_ceil(sector) - first }
    }

    /// Byte ranges as sector ranges.
    pub fn list(ranges: &[Range<u64>], sector: u64) -> Vec<SectorRange> {
        ranges.iter().map(|r| SectorRange::from_bytes(r, sector)).collect()
    }

    pub fn bytes(&self, sector: u64, size: u64) -> Range<u64> {
        // Saturating: ranges can come from files (journals, certificates) being checked.
        let start = self.first_lba.saturating_mul(sector).min(size);
        start..self.first_lba.saturating_add(self.sectors).saturating_mul(sector).min(size)
    }
}

/// The most separate bad areas (runs of unwritten, unreadable or mismatched
/// sectors) a run lists before it gives the medium up as failed.
pub const MAX_BAD_AREAS: usize = 4096;

/// Bad areas a pass lists: unwritten, and unreadable or mismatched when read back.
pub fn areas_listed(pass: &PassRecord) -> usize {
    pass.unwritten.len() + pass.verification.as_ref().map_or(0, |v| v.unreadable.len() + v.mismatches.len())
}

pub fn total_sectors(ranges: &[SectorRange]) -> u64 {
    ranges.iter().fold(0, |total, r| total.saturating_add(r.sectors))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassRecord {
    /// 1-based.
    pub index: usize,
    pub content: PassContent,
    /// Bytes this pass had to write (the whole medium).
    pub bytes_total: u64,
    /// Bytes written successfully.
    pub bytes_written: u64,
    /// Sectors that could not be written.
    pub unwritten: Vec<SectorRange>,
    pub completed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub bytes_per_second: f64,
    /// Present when this pass was read back.
    pub verification: Option<PassVerification>,
}

crate::named! {
    pub enum VerificationKind: "verification kind" {
        Full = "full",
        Sample = "sample",
    }
}

crate::named! {
    pub enum VerificationResult: "verification result" {
        /// Everything read matched what was written.
        Passed = "passed",
        /// Some data read back differs from what was written.
        Failed = "failed",
        /// What could be read matched, but some sectors could not be read (or the read
        /// was interrupted).
        Incomplete = "incomplete",
        NotRun = "not-run",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecord {
    /// Seed of the pseudo-random sample positions: re-derive them with it.
    pub seed: Seed,
    pub subsections: u64,
    pub samples_per_subsection: u64,
    /// Bytes in each sample.
    pub sample_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassVerification {
    pub kind: VerificationKind,
    pub bytes_read: u64,
    /// Fraction of the medium that was read and compared (1.0 for full).
    pub coverage: f64,
    pub sample: Option<SampleRecord>,
    /// Sectors whose content differs from what the pass wrote.
    pub mismatches: Vec<SectorRange>,
    /// Sectors that could not be read.
    pub unreadable: Vec<SectorRange>,
    pub result: VerificationResult,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub bytes_per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationSummary {
    pub mode: VerifyMode,
    pub result: VerificationResult,
    /// 1-based indexes of the passes that were read back.
    pub passes_verified: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentDigest {
    pub sha256: String,
    pub blake3: String,
    pub bytes: u64,
}

/// Errors as they happened; capped so a dying drive cannot grow the report without bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorLog {
    pub entries: Vec<ErrorRecord>,
    /// Errors beyond the cap, counted but not listed.
    pub omitted: u64,
}

pub const MAX_ERROR_ENTRIES: usize = 1000;

impl ErrorLog {
    pub fn push(&mut self, record: ErrorRecord) {
        if self.entries.len() < MAX_ERROR_ENTRIES {
            self.entries.push(record);
        } else {
            self.omitted += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.omitted == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRecord {
    pub at: String,
    /// 1-based pass index, when the error belongs to a pass.
    pub pass: Option<usize>,
    /// write, verify, sync, ...
    pub operation: String,
    pub offset: Option<u64>,
    pub length: Option<u64>,
    pub message: String,
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// This machine's name, for the record.
pub fn host_name() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn now() -> String {
    timestamp(SystemTime::now())
}

crate::named! {
    /// Which half of a pass: writing the medium, or reading it back.
    pub enum Phase: "phase" {
        Writing = "writing",
        Verifying = "verifying",
    }
}

/// An interruption the run recovered from, as the report and certificate record it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interruption {
    /// When the last checkpoint before the interruption was saved.
    pub checkpoint_at: String,
    pub pass: Option<usize>,
    pub phase: Option<Phase>,
    pub offset: u64,
    pub resumed_at: String,
    /// How the medium was recognised as the same one.
    pub medium_check: String,
}
