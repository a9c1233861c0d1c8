//! The write/verify engine: runs a plan's passes over an open medium, reads back
//! what was asked, saves checkpoints, and produces the report. It never decides
//! *whether* a target may be written; the device module and the CLI do that before
//! a medium is opened.

pub mod checkpoint;
pub mod events;
pub mod outcome;
mod passes;
pub(crate) mod pipeline;
mod resilient;
pub mod sample;
pub mod workers;

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::device::{BlockIo, Identity};
use crate::method::{PassKind, Plan};
use crate::report::*;
use crate::stream::{PassData, Prng};
use checkpoint::{Checkpoint, JOURNAL_FORMAT, Journal};
use events::{Event, Observer};
use passes::Run;
use resilient::Resilient;
use workers::Workers;

pub use crate::report::VerifyMode;

/// What a run does beyond its plan; the defaults suit every device.
#[derive(Clone, Debug)]
pub struct Options {
    pub verify: VerifyMode,
    /// Compute SHA-256 and BLAKE3 of the final content while reading it back.
    pub digest: bool,
    /// The generator of new random passes.
    pub prng: Prng,
}

impl Default for Options {
    fn default() -> Self {
        Options { verify: VerifyMode::Last, digest: false, prng: Prng::for_this_cpu() }
    }
}

/// A poisoned lock still holds consistent progress data: a panicking worker has
/// already been reported by the thread scope.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a run stopped before its plan was done.
enum Halt {
    /// Interrupted (SIGINT, SIGTERM): resumable.
    Aborted,
    /// The device stopped answering: resumable once it is back.
    Gone(String),
    Failed(String),
}

/// Everything one target's run needs.
pub struct Job<'a> {
    pub medium: &'a dyn BlockIo,
    pub target: &'a Identity,
    pub plan: &'a Plan,
    pub options: &'a Options,
    /// The compute threads and buffers shared with every other target of the run.
    pub workers: &'a Workers,
    pub observer: &'a dyn Observer,
    pub stop: &'a AtomicBool,
    /// Where checkpoints go; without one, a crash means starting over.
    pub journal: Option<&'a dyn Journal>,
    /// A checkpoint to continue from (already checked against the medium).
    pub resume: Option<Checkpoint>,
}

/// Runs `plan` over `medium` from the start, alone and without a journal.
pub fn wipe(
    medium: &dyn BlockIo,
    target: &Identity,
    plan: &Plan,
    options: &Options,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Report {
    let workers = Workers::new(1, workers::DEFAULT_BUDGET);
    run(Job { medium, target, plan, options, workers: &workers, observer, stop, journal: None, resume: None })
}

impl Checkpoint {
    /// The checkpoint of a run that has not written anything yet.
    pub fn start(target: &Identity, plan: &Plan, options: &Options) -> Checkpoint {
        Checkpoint {
            format: JOURNAL_FORMAT.into(),
            target: target.clone(),
            plan: plan.clone(),
            verify: options.verify,
            digest: options.digest,
            prng: options.prng,
            started_at: now(),
            saved_at: now(),
            passes: Vec::new(),
            current: None,
            errors: ErrorLog::default(),
            retried_io_errors: 0,
            interruptions: Vec::new(),
        }
    }
}

/// Runs a job and reports what happened. Never panics on I/O failure: every
/// failure ends up in the report's status.
pub fn run(job: Job<'_>) -> Report {
    let Job { medium, target, plan, options, workers, observer, stop, journal, resume } = job;
    let checkpoint = resume.unwrap_or_else(|| Checkpoint::start(target, plan, options));
    let run = Run {
        medium,
        io: Resilient::new(medium, checkpoint.retried_io_errors),
        workers,
        observer,
        stop,
        passes_total: plan.passes.len(),
        verify: options.verify,
        started: Instant::now(),
        errors: Mutex::new(checkpoint.errors.clone()),
        journal,
        areas_before: checkpoint.passes.iter().map(areas_listed).sum::<usize>().into(),
        checkpoint: Mutex::new(Some(checkpoint)),
        last_save: Mutex::new(Instant::now()),
    };
    // Saved at once, so even a crash in the first seconds can be resumed.
    run.save(|_| {});
    let (halt, digest) = run_passes(&run, plan, options);
    let checkpoint = run
        .checkpoint
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .expect("a wipe always has a checkpoint");
    let passes = checkpoint.passes;
    let verification = outcome::summarize_verification(options.verify, &passes);
    let (status, status_reason) = outcome::judge(&passes, plan.passes.len(), &verification, halt.as_ref());
    if let Some(journal) = journal
        && !matches!(halt, Some(Halt::Aborted | Halt::Gone(_)))
    {
        journal.finish();
    }
    Report {
        format: REPORT_FORMAT.into(),
        tool: Tool::this(),
        host: host_name(),
        target: target.clone(),
        method: MethodRecord {
            id: plan.method.clone(),
            name: plan.method_name.clone(),
            source: plan.source.clone(),
            rounds: plan.rounds,
        },
        verify_mode: options.verify,
        cache_bypass: medium.cache_bypass(),
        started_at: checkpoint.started_at,
        finished_at: now(),
        final_content_digest: digest.filter(|_| status == Status::Erased),
        passes,
        verification,
        errors: run.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
        retried_io_errors: run.io.retried(),
        interruptions: checkpoint.interruptions,
        firmware: None,
        status,
        status_reason,
    }
}

/// Every pass of the plan not yet done (after a resume, from the one in flight),
/// each written and read back as asked. Returns why it stopped early, if it did,
/// and the digest of the final content, if it was read back in full.
fn run_passes(run: &Run<'_>, plan: &Plan, options: &Options) -> (Option<Halt>, Option<ContentDigest>) {
    let (first, in_flight) = {
        let checkpoint = lock(&run.checkpoint);
        let checkpoint = checkpoint.as_ref().expect("a wipe always has a checkpoint");
        (checkpoint.passes.len(), checkpoint.current.clone())
    };
    let last = plan.passes.len() - 1;
    let mut digest = None;
    for (index, kind) in plan.passes.iter().enumerate().skip(first) {
        let pass = index + 1;
        let resumed = in_flight.as_ref().filter(|f| f.index == pass);
        let data = match (resumed, kind) {
            (Some(f), _) => match f.content.data() {
                Some(data) => data,
                None => {
                    return (
                        Some(Halt::Failed("the checkpoint's pass content cannot be regenerated".into())),
                        None,
                    );
                }
            },
            (None, PassKind::Fixed { pattern }) => PassData::Pattern(pattern.clone()),
            (None, PassKind::Random) => PassData::Random(options.prng.fresh()),
        };
        let (mut record, mut halt) = match resumed {
            Some(f) if f.phase == Phase::Verifying => match &f.write {
                Some(write) => (write.clone(), None),
                None => (run.write_pass(pass, &data, None).0, None),
            },
            _ => run.write_pass(pass, &data, resumed),
        };
        run.observer.event(&Event::PassWritten { pass: &record });
        let verify_now = match options.verify {
            VerifyMode::Off => false,
            VerifyMode::All => true,
            VerifyMode::Last | VerifyMode::Sample => index == last,
        };
        if halt.is_none() && verify_now {
            let sampled = options.verify == VerifyMode::Sample;
            let want_digest = options.digest && index == last && !sampled;
            let resumed_verify = resumed.filter(|f| f.phase == Phase::Verifying);
            let (verification, pass_digest, verify_halt) =
                run.verify_pass(&record, &data, sampled, want_digest, resumed_verify);
            run.observer.event(&Event::VerificationFinished { pass, verification: &verification });
            record.verification = Some(verification);
            digest = pass_digest;
            halt = verify_halt;
        }
        run.observer.event(&Event::PassFinished { pass: &record });
        run.areas_before.fetch_add(areas_listed(&record), std::sync::atomic::Ordering::Relaxed);
        if halt.is_some() {
            // The checkpoint keeps the pass in flight, to be resumed.
            if let Some(checkpoint) = lock(&run.checkpoint).as_mut() {
                checkpoint.passes.push(record);
            }
            return (halt, digest);
        }
        run.save(|c| {
            c.passes.push(record);
            c.current = None;
        });
    }
    (None, digest)
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

/// Reads `medium` back (in full, or sampled) and compares it with `pass`'s content:
/// the secondary verification NIST recommends, possible because every pass can be
/// regenerated from its record.
pub fn audit(
    medium: &dyn BlockIo,
    pass: &PassRecord,
    sampled: bool,
    digest: bool,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Option<Audit> {
    let data = pass.content.data()?;
    let workers = Workers::new(1, workers::DEFAULT_BUDGET);
    let run = Run {
        medium,
        io: Resilient::new(medium, 0),
        workers: &workers,
        observer,
        stop,
        passes_total: 1,
        verify: VerifyMode::Off,
        started: Instant::now(),
        errors: Mutex::default(),
        journal: None,
        checkpoint: Mutex::new(None),
        last_save: Mutex::new(Instant::now()),
        areas_before: 0.into(),
    };
    let (verification, digest, halt) = run.verify_pass(pass, &data, sampled, digest && !sampled, None);
    let halted = halt.map(|halt| match halt {
        Halt::Aborted => "interrupted".to_string(),
        Halt::Gone(why) | Halt::Failed(why) => why,
    });
    Some(Audit {
        verification,
        digest,
        errors: run.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
        halted,
    })
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::device::fake::{FakeDisk, SECTOR};
    use crate::method;

    fn wipe_fake(disk: &FakeDisk) -> Report {
        let plan = Plan::from_method(method::find("zero").unwrap(), 1).unwrap();
        let options = Options { verify: VerifyMode::Last, ..Options::default() };
        let stop = AtomicBool::new(false);
        wipe(disk, &Identity::for_tests(disk.size()), &plan, &options, &events::Silent, &stop)
    }

    fn sectors(ranges: &[SectorRange]) -> Vec<Range<u64>> {
        ranges.iter().map(|r| r.first_lba..r.first_lba + r.sectors).collect()
    }

    #[test]
    fn bad_sectors_are_narrowed_to_exactly_the_failing_ones() {
        let disk = FakeDisk::new(12 << 20, [3, 8191, 8192, 8193, 20_000]);
        let report = wipe_fake(&disk);
        assert_eq!(report.status, Status::Incomplete, "{}", report.status_reason);
        assert_eq!(sectors(&report.passes[0].unwritten), vec![3..4, 8191..8194, 20_000..20_001]);
        let data = disk.contents();
        assert!(
            data[..3 * SECTOR].iter().all(|b| *b == 0)
                && data[3 * SECTOR..4 * SECTOR].iter().all(|b| *b == 0xAB)
        );
        assert!(
            report.passes[0].verification.as_ref().unwrap().mismatches.is_empty(),
            "unwritten is not mismatched"
        );
    }

    #[test]
    fn a_medium_failing_in_thousands_of_places_is_failed_not_listed_forever() {
        let bad = (0..=MAX_BAD_AREAS as u64).map(|i| 2 * i + 1);
        let disk = FakeDisk::new(8 << 20, bad);
        let report = wipe_fake(&disk);
        assert_eq!(report.status, Status::Failed);
        assert!(report.status_reason.contains("more than 4096 separate"), "{}", report.status_reason);
        assert!(report.passes[0].unwritten.len() <= MAX_BAD_AREAS + 1);
    }

    #[test]
    fn a_pulled_medium_ends_failed_at_once() {
        let mut disk = FakeDisk::new(16 << 20, []);
        disk.pulled_after_writes = Some(2);
        let report = wipe_fake(&disk);
        assert_eq!(report.status, Status::Failed);
        assert!(report.status_reason.contains("stopped answering"), "{}", report.status_reason);
        assert!(disk.writes.load(std::sync::atomic::Ordering::Relaxed) < 10);
    }
}
