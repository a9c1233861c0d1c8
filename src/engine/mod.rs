//! The write/verify engine: runs a plan's passes over an open medium, reads back
//! what was asked, and produces the report. It never decides *whether* a target may
//! be written; the device module and the CLI do that before a medium is opened.

pub mod events;
mod pipeline;
pub mod report;
mod resilient;
pub mod sample;

use std::ops::{ControlFlow, Range};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use sha2::Digest as _;

use crate::device::{Identity, Medium};
use crate::method::{PassKind, Plan};
use crate::stream::{PassData, Seed};
use events::{Event, Observer, Phase};
use pipeline::Stage;
use report::*;
use resilient::{DeviceGone, Resilient, Transfer};

pub use report::VerifyMode;

/// How the engine runs; the defaults suit every device.
#[derive(Clone, Debug)]
pub struct Options {
    pub verify: VerifyMode,
    /// Compute SHA-256 and BLAKE3 of the final content while reading it back.
    pub digest: bool,
    /// Bytes per I/O. Large enough that per-request overhead vanishes, small enough
    /// that memory stays bounded (three buffers per target).
    pub chunk_bytes: usize,
    /// Threads that generate (write passes) or regenerate and compare (verification).
    pub workers: usize,
}

pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Every core but one: the kernel's side of the I/O (copies, the loop worker, the
/// driver) needs a core too, and starving it slows the device more than one more
/// generator thread speeds it up (measured with benches/vs_dd.py).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl Default for Options {
    fn default() -> Self {
        Options {
            verify: VerifyMode::Last,
            digest: false,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            workers: default_workers(),
        }
    }
}

/// Why a run stopped before its plan was done.
enum Halt {
    Aborted,
    Gone(String),
    SyncFailed(String),
}

/// One target's run: the medium, the plan, and everything gathered so far.
struct Run<'a> {
    medium: &'a Medium,
    io: Resilient<'a>,
    options: &'a Options,
    observer: &'a dyn Observer,
    stop: &'a AtomicBool,
    passes_total: usize,
    errors: Mutex<ErrorLog>,
}

/// Runs `plan` over `medium` and reports what happened. Never panics on I/O
/// failure: every failure ends up in the report's status.
pub fn wipe(
    medium: &Medium,
    target: &Identity,
    plan: &Plan,
    options: &Options,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Report {
    let started_at = now();
    let run = Run {
        medium,
        io: Resilient::new(medium),
        options,
        observer,
        stop,
        passes_total: plan.passes.len(),
        errors: Mutex::default(),
    };
    let mut passes = Vec::new();
    let mut halt = None;
    let mut digest = None;
    let last = plan.passes.len() - 1;
    for (index, kind) in plan.passes.iter().enumerate() {
        let data = match kind {
            PassKind::Fixed { pattern } => PassData::Pattern(pattern.clone()),
            PassKind::Random => PassData::Random(Seed::from_os()),
        };
        let (mut record, pass_halt) = run.write_pass(index + 1, &data);
        let verify_now = match options.verify {
            VerifyMode::Off => false,
            VerifyMode::All => true,
            VerifyMode::Last | VerifyMode::Sample => index == last,
        };
        if pass_halt.is_none() && verify_now {
            let sampled = options.verify == VerifyMode::Sample;
            let want_digest = options.digest && index == last && !sampled;
            let sector = medium.sector_size() as u64;
            let unwritten: Vec<Range<u64>> =
                record.unwritten.iter().map(|r| r.bytes(sector, medium.size())).collect();
            let (verification, pass_digest, verify_halt) =
                run.verify_pass(index + 1, &data, &unwritten, sampled, want_digest);
            observer.event(&Event::VerificationFinished { pass: index + 1, verification: &verification });
            record.verification = Some(verification);
            digest = pass_digest;
            halt = verify_halt;
        } else {
            halt = pass_halt;
        }
        observer.event(&Event::PassFinished { pass: &record });
        passes.push(record);
        if halt.is_some() {
            break;
        }
    }
    let verification = summarize_verification(options.verify, &passes);
    let (status, status_reason) = judge(&passes, plan.passes.len(), &verification, halt.as_ref());
    let report = Report {
        format: REPORT_FORMAT.into(),
        tool: Tool::this(),
        host: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        target: target.clone(),
        method: MethodRecord {
            id: plan.method.clone(),
            name: plan.method_name.clone(),
            source: plan.source.clone(),
            rounds: plan.rounds,
        },
        verify_mode: options.verify,
        cache_bypass: medium.cache_bypass(),
        started_at,
        finished_at: now(),
        final_content_digest: digest.filter(|_| status == Status::Erased),
        passes,
        verification,
        errors: run.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
        retried_io_errors: run.io.retried(),
        status,
        status_reason,
    };
    observer.event(&Event::Finished { report: &report });
    report
}

/// What an audit found: the read-back of one pass's content, long after the wipe.
pub struct Audit {
    pub verification: PassVerification,
    /// SHA-256 and BLAKE3 of what was read, when asked for and the read was full and matched.
    pub digest: Option<ContentDigest>,
    pub errors: ErrorLog,
    /// Why the audit stopped early, if it did.
    pub halted: Option<String>,
}

/// Reads `medium` back (in full, or sampled) and compares it with `content`: the
/// secondary verification NIST recommends, possible because every pass can be
/// regenerated from its record.
pub fn audit(
    medium: &Medium,
    content: &PassData,
    sampled: bool,
    options: &Options,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Audit {
    let run = Run {
        medium,
        io: Resilient::new(medium),
        options,
        observer,
        stop,
        passes_total: 1,
        errors: Mutex::default(),
    };
    let (verification, digest, halt) = run.verify_pass(1, content, &[], sampled, options.digest && !sampled);
    let halted = halt.map(|halt| match halt {
        Halt::Aborted => "interrupted".to_string(),
        Halt::Gone(why) | Halt::SyncFailed(why) => why,
    });
    Audit { verification, digest, errors: run.errors.into_inner().unwrap_or_else(|e| e.into_inner()), halted }
}

impl Run<'_> {
    fn write_pass(&self, pass: usize, data: &PassData) -> (PassRecord, Option<Halt>) {
        let size = self.medium.size();
        let content = PassContent::of(data);
        self.observer.event(&Event::PhaseStarted {
            pass,
            passes: self.passes_total,
            phase: Phase::Writing,
            content: &content,
            bytes_total: size,
        });
        let clock = Clock::start();
        let progress = Mutex::new(Progress::default());
        let chunk = self.options.chunk_bytes;
        pipeline::run(
            pipeline::chunks(&[0..size], chunk),
            chunk,
            self.stop,
            Stage { threads: self.options.workers, work: |offset, buf: &mut [u8]| data.fill(offset, buf) },
            // One writer, in order: sequential writes are what every device does best.
            Stage {
                threads: 1,
                work: |offset, buf: &mut [u8], ()| {
                    let result = self.io.write(buf, offset);
                    let mut progress = lock(&progress);
                    match result {
                        Ok(transfer) => {
                            self.note_transfer(pass, "write", offset, &transfer);
                            progress.bad.extend(transfer.bad);
                            progress.bytes += buf.len() as u64;
                            self.progress(pass, Phase::Writing, progress.bytes, size, &clock);
                            ControlFlow::Continue(())
                        }
                        Err(DeviceGone(why)) => {
                            self.log(pass, "write", Some(offset), None, &why);
                            progress.halt = Some(Halt::Gone(why));
                            ControlFlow::Break(())
                        }
                    }
                },
            },
        );
        let Progress { bytes: done, bad, mut halt, .. } =
            progress.into_inner().unwrap_or_else(|e| e.into_inner());
        // A bad area can span two chunks.
        let bad = sorted_merged(bad);
        if halt.is_none() && done < size {
            halt = Some(Halt::Aborted);
        }
        // Even an aborted pass is flushed, so the report's byte count is on the medium.
        if let Err(error) = self.medium.sync() {
            let why = format!("flushing the device failed: {error}");
            self.log(pass, "sync", None, None, &why);
            halt.get_or_insert(Halt::SyncFailed(why));
        }
        let unwritten_bytes: u64 = bad.iter().map(|r| r.end - r.start).sum();
        let sector = self.medium.sector_size() as u64;
        let record = PassRecord {
            index: pass,
            content,
            bytes_total: size,
            bytes_written: done - unwritten_bytes,
            unwritten: bad.iter().map(|r| SectorRange::from_bytes(r, sector)).collect(),
            completed: halt.is_none(),
            started_at: clock.started_at.clone(),
            finished_at: now(),
            seconds: clock.seconds(),
            bytes_per_second: clock.rate(done),
            verification: None,
        };
        (record, halt)
    }

    /// Reads back what pass `pass` wrote. Sectors the pass could not write are
    /// already reported as unwritten; they are not counted again as mismatches.
    fn verify_pass(
        &self,
        pass: usize,
        data: &PassData,
        unwritten: &[Range<u64>],
        sampled: bool,
        want_digest: bool,
    ) -> (PassVerification, Option<ContentDigest>, Option<Halt>) {
        let size = self.medium.size();
        let sample_unit = (self.medium.sector_size() as u64).max(crate::buffer::ALIGN as u64);
        let sample = sampled.then(|| sample::plan(size, sample_unit, Seed::from_os())).flatten();
        let ranges = sample.as_ref().map_or_else(|| vec![0..size], |s| s.ranges.clone());
        let planned: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        self.observer.event(&Event::PhaseStarted {
            pass,
            passes: self.passes_total,
            phase: Phase::Verifying,
            content: &PassContent::of(data),
            bytes_total: planned,
        });
        let clock = Clock::start();
        let sector = self.medium.sector_size();
        let chunk = self.options.chunk_bytes;
        let hashers = want_digest.then(|| Mutex::new((sha2::Sha256::new(), blake3::Hasher::new())));
        let progress = Mutex::new(Progress::default());
        pipeline::run(
            pipeline::chunks(&ranges, chunk),
            chunk,
            self.stop,
            // One reader, in order, so the digest covers the content in order.
            Stage {
                threads: 1,
                work: |offset, buf: &mut [u8]| {
                    let result = self.io.read(buf, offset);
                    if let (Some(hashers), Ok(_)) = (&hashers, &result) {
                        let (sha, b3) = &mut *lock(hashers);
                        sha.update(&*buf);
                        b3.update(buf);
                    }
                    result
                },
            },
            Stage {
                threads: self.options.workers,
                work: |offset, buf: &mut [u8], result: Result<Transfer, DeviceGone>| match result {
                    Ok(transfer) => {
                        self.note_transfer(pass, "verify", offset, &transfer);
                        // Unreadable sectors hold whatever the failed read left, and unwritten
                        // ones were never written: both are reported already.
                        let found = data.mismatches(offset, buf, sector);
                        let explained =
                            sorted_merged(transfer.bad.iter().chain(unwritten).cloned().collect());
                        let mut progress = lock(&progress);
                        progress.mismatched.extend(found.into_iter().flat_map(|m| subtract(m, &explained)));
                        progress.bad.extend(transfer.bad);
                        progress.bytes += buf.len() as u64;
                        self.progress(pass, Phase::Verifying, progress.bytes, planned, &clock);
                        ControlFlow::Continue(())
                    }
                    Err(DeviceGone(why)) => {
                        self.log(pass, "verify", Some(offset), None, &why);
                        lock(&progress).halt = Some(Halt::Gone(why));
                        ControlFlow::Break(())
                    }
                },
            },
        );
        let Progress { bytes: read, bad, mismatched, mut halt } =
            progress.into_inner().unwrap_or_else(|e| e.into_inner());
        if halt.is_none() && read < planned {
            halt = Some(Halt::Aborted);
        }
        let (unreadable, mismatches) = (sorted_merged(bad), sorted_merged(mismatched));
        let sector = sector as u64;
        let to_sectors =
            |ranges: &[Range<u64>]| ranges.iter().map(|r| SectorRange::from_bytes(r, sector)).collect();
        let result = if !mismatches.is_empty() {
            VerificationResult::Failed
        } else if !unreadable.is_empty() || read < planned {
            VerificationResult::Incomplete
        } else {
            VerificationResult::Passed
        };
        let digest = hashers.filter(|_| result == VerificationResult::Passed).map(|hashers| {
            let (sha, b3) = hashers.into_inner().unwrap_or_else(|e| e.into_inner());
            ContentDigest {
                sha256: crate::stream::hex_encode(&sha.finalize()),
                blake3: b3.finalize().to_hex().to_string(),
                bytes: read,
            }
        });
        let verification = PassVerification {
            kind: if sample.is_some() { VerificationKind::Sample } else { VerificationKind::Full },
            bytes_read: read,
            coverage: read as f64 / size as f64,
            sample: sample.map(|s| SampleRecord {
                seed: s.seed,
                subsections: s.subsections,
                samples_per_subsection: s.samples_per_subsection,
                sample_bytes: s.sample_bytes,
            }),
            mismatches: to_sectors(&mismatches),
            unreadable: to_sectors(&unreadable),
            result,
            started_at: clock.started_at.clone(),
            finished_at: now(),
            seconds: clock.seconds(),
            bytes_per_second: clock.rate(read),
        };
        (verification, digest, halt)
    }

    fn note_transfer(&self, pass: usize, operation: &str, offset: u64, transfer: &Transfer) {
        let Some(error) = &transfer.first_error else { return };
        let message = if transfer.bad.is_empty() {
            format!("{error}; succeeded when retried")
        } else {
            let sectors: u64 =
                transfer.bad.iter().map(|r| r.end - r.start).sum::<u64>() / self.medium.sector_size() as u64;
            format!("{error}; {sectors} sector(s) failed every attempt")
        };
        let length = transfer.bad.iter().map(|r| r.end - r.start).sum::<u64>();
        self.log(pass, operation, Some(offset), Some(length), &message);
    }

    fn log(&self, pass: usize, operation: &str, offset: Option<u64>, length: Option<u64>, message: &str) {
        let text = match offset {
            Some(offset) => format!("pass {pass} {operation} at byte {offset}: {message}"),
            None => format!("pass {pass} {operation}: {message}"),
        };
        self.observer.event(&Event::Warning { message: &text });
        lock(&self.errors).push(ErrorRecord {
            at: now(),
            pass: Some(pass),
            operation: operation.into(),
            offset,
            length,
            message: message.into(),
        });
    }

    fn progress(&self, pass: usize, phase: Phase, done: u64, total: u64, clock: &Clock) {
        self.observer.event(&Event::Progress {
            pass,
            passes: self.passes_total,
            phase,
            bytes_done: done,
            bytes_total: total,
            bytes_per_second: clock.rate(done),
        });
    }
}

/// What a phase has done so far, shared by the pipeline's threads.
#[derive(Default)]
struct Progress {
    bytes: u64,
    /// Ranges that failed every attempt (unwritten or unreadable).
    bad: Vec<Range<u64>>,
    mismatched: Vec<Range<u64>>,
    halt: Option<Halt>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Ranges found by parallel workers, in order and with touching ranges joined.
fn sorted_merged(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged = Vec::with_capacity(ranges.len());
    for range in ranges {
        crate::stream::push_merged(&mut merged, range);
    }
    merged
}

/// `range` minus the (sorted, merged) ranges in `holes`.
fn subtract(range: Range<u64>, holes: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    for hole in holes.iter().filter(|h| h.start < range.end && h.end > range.start) {
        if hole.start > start {
            pieces.push(start..hole.start);
        }
        start = start.max(hole.end);
    }
    if start < range.end {
        pieces.push(start..range.end);
    }
    pieces
}

struct Clock {
    started: Instant,
    started_at: String,
}

impl Clock {
    fn start() -> Clock {
        Clock { started: Instant::now(), started_at: timestamp(SystemTime::now()) }
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn rate(&self, bytes: u64) -> f64 {
        let seconds = self.seconds();
        if seconds > 0.0 { bytes as f64 / seconds } else { 0.0 }
    }
}

fn summarize_verification(mode: VerifyMode, passes: &[PassRecord]) -> VerificationSummary {
    let verified: Vec<&PassRecord> = passes.iter().filter(|p| p.verification.is_some()).collect();
    let results = verified.iter().filter_map(|p| p.verification.as_ref().map(|v| v.result));
    let result = results.fold(None, |worst: Option<VerificationResult>, r| {
        Some(match (worst, r) {
            (Some(VerificationResult::Failed), _) | (_, VerificationResult::Failed) => {
                VerificationResult::Failed
            }
            (Some(VerificationResult::Incomplete), _) | (_, VerificationResult::Incomplete) => {
                VerificationResult::Incomplete
            }
            _ => r,
        })
    });
    VerificationSummary {
        mode,
        result: result.unwrap_or(VerificationResult::NotRun),
        passes_verified: verified.iter().map(|p| p.index).collect(),
    }
}

/// The outcome, by the rule the certificate relies on: `erased` only when every
/// pass wrote every byte and the requested verification passed.
fn judge(
    passes: &[PassRecord],
    planned: usize,
    verification: &VerificationSummary,
    halt: Option<&Halt>,
) -> (Status, String) {
    let unwritten: u64 = passes.iter().map(|p| total_sectors(&p.unwritten)).sum();
    let unreadable: u64 =
        passes.iter().filter_map(|p| p.verification.as_ref()).map(|v| total_sectors(&v.unreadable)).sum();
    let mismatched: u64 =
        passes.iter().filter_map(|p| p.verification.as_ref()).map(|v| total_sectors(&v.mismatches)).sum();
    match halt {
        Some(Halt::Aborted) => {
            return (Status::Aborted, format!("interrupted during pass {} of {planned}", passes.len()));
        }
        Some(Halt::Gone(why)) => {
            return (
                Status::Failed,
                format!("the device stopped answering during pass {}: {why}", passes.len()),
            );
        }
        Some(Halt::SyncFailed(why)) => return (Status::Failed, why.clone()),
        None => {}
    }
    if mismatched > 0 {
        return (
            Status::Failed,
            format!("verification failed: {mismatched} sector(s) read back differ from what was written"),
        );
    }
    if unwritten > 0 || unreadable > 0 {
        return (
            Status::Incomplete,
            format!(
                "{unwritten} sector(s) could not be written and {unreadable} could not be read back; they are listed"
            ),
        );
    }
    let reason = match (verification.mode, verification.result) {
        (VerifyMode::Off, _) => "every pass wrote every byte; no verification was requested".to_string(),
        (_, VerificationResult::Passed) => {
            "every pass wrote every byte and the verification passed".to_string()
        }
        (_, other) => return (Status::Incomplete, format!("the verification did not pass ({other:?})")),
    };
    (Status::Erased, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_removes_holes() {
        assert_eq!(subtract(0..100, &[10..20, 50..60]), vec![0..10, 20..50, 60..100]);
        assert_eq!(subtract(0..100, &[0..100]), Vec::<Range<u64>>::new());
        assert_eq!(subtract(10..20, &[0..5, 30..40]), vec![10..20]);
    }
}
