//! The write/verify engine: runs a plan's passes over an open medium, reads back
//! what was asked, saves checkpoints, and produces the report. It never decides
//! *whether* a target may be written; the device module and the CLI do that before
//! a medium is opened.

pub mod checkpoint;
pub mod events;
pub mod outcome;
mod passes;
mod pipeline;
pub mod report;
mod resilient;
pub mod sample;

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::device::{Identity, Medium};
use crate::method::{PassKind, Plan};
use crate::stream::{PassData, Prng};
use checkpoint::{Checkpoint, JOURNAL_FORMAT, Journal};
use events::{Event, Observer, Phase};
use passes::Run;
use report::*;
use resilient::Resilient;

pub use report::VerifyMode;

/// How the engine runs; the defaults suit every device.
#[derive(Clone, Debug)]
pub struct Options {
    pub verify: VerifyMode,
    /// Compute SHA-256 and BLAKE3 of the final content while reading it back.
    pub digest: bool,
    /// Bytes per I/O. Large enough that per-request overhead vanishes, small enough
    /// that memory stays bounded (a few buffers per target).
    pub chunk_bytes: usize,
    /// Threads that generate (write passes) or regenerate and compare (verification).
    pub workers: usize,
    /// The generator of new random passes.
    pub prng: Prng,
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
            prng: Prng::for_this_cpu(),
        }
    }
}

/// A poisoned lock still holds consistent progress data: a panicking worker has
/// already been reported by the thread scope.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
    pub medium: &'a Medium,
    pub target: &'a Identity,
    pub plan: &'a Plan,
    pub options: &'a Options,
    pub observer: &'a dyn Observer,
    pub stop: &'a AtomicBool,
    /// Where checkpoints go; without one, a crash means starting over.
    pub journal: Option<&'a dyn Journal>,
    /// A checkpoint to continue from (already checked against the medium).
    pub resume: Option<Checkpoint>,
}

/// Runs `plan` over `medium` from the start, without a journal.
pub fn wipe(
    medium: &Medium,
    target: &Identity,
    plan: &Plan,
    options: &Options,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Report {
    run(Job { medium, target, plan, options, observer, stop, journal: None, resume: None })
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
    let Job { medium, target, plan, options, observer, stop, journal, resume } = job;
    let checkpoint = resume.unwrap_or_else(|| Checkpoint::start(target, plan, options));
    let (first, in_flight) = (checkpoint.passes.len(), checkpoint.current.clone());
    let run = Run {
        medium,
        io: Resilient::new(medium, checkpoint.retried_io_errors),
        options,
        observer,
        stop,
        passes_total: plan.passes.len(),
        errors: Mutex::new(checkpoint.errors.clone()),
        journal,
        areas_before: checkpoint.passes.iter().map(areas_listed).sum::<usize>().into(),
        checkpoint: Mutex::new(Some(checkpoint)),
        last_save: Mutex::new(Instant::now()),
    };
    // Saved at once, so even a crash in the first seconds can be resumed.
    run.save(|_| {});
    let mut halt = None;
    let mut digest = None;
    let last = plan.passes.len() - 1;
    for (index, kind) in plan.passes.iter().enumerate().skip(first) {
        let pass = index + 1;
        let resumed = in_flight.as_ref().filter(|f| f.index == pass);
        let data = match (resumed, kind) {
            (Some(f), _) => match f.content.data() {
                Some(data) => data,
                None => {
                    halt = Some(Halt::Failed("the checkpoint's pass content cannot be regenerated".into()));
                    break;
                }
            },
            (None, PassKind::Fixed { pattern }) => PassData::Pattern(pattern.clone()),
            (None, PassKind::Random) => PassData::Random(options.prng.fresh()),
        };
        let (mut record, write_halt) = match resumed {
            Some(f) if f.phase == Phase::Verifying => match &f.write {
                Some(write) => (write.clone(), None),
                None => (run.write_pass(pass, &data, None).0, None),
            },
            _ => run.write_pass(pass, &data, resumed),
        };
        let verify_now = match options.verify {
            VerifyMode::Off => false,
            VerifyMode::All => true,
            VerifyMode::Last | VerifyMode::Sample => index == last,
        };
        halt = write_halt;
        if halt.is_none() && verify_now {
            let sampled = options.verify == VerifyMode::Sample;
            let want_digest = options.digest && index == last && !sampled;
            let resumed_verify = resumed.filter(|f| f.phase == Phase::Verifying);
            let (verification, pass_digest, verify_halt) =
                run.verify_pass(&record, &data, sampled, want_digest, resumed_verify);
            observer.event(&Event::VerificationFinished { pass, verification: &verification });
            record.verification = Some(verification);
            digest = pass_digest;
            halt = verify_halt;
        }
        observer.event(&Event::PassFinished { pass: &record });
        run.areas_before.fetch_add(areas_listed(&record), std::sync::atomic::Ordering::Relaxed);
        if halt.is_some() {
            // The checkpoint keeps the pass in flight, to be resumed.
            if let Some(checkpoint) = lock(&run.checkpoint).as_mut() {
                checkpoint.passes.push(record);
            }
            break;
        }
        run.save(|c| {
            c.passes.push(record);
            c.current = None;
        });
    }
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
        started_at: checkpoint.started_at,
        finished_at: now(),
        final_content_digest: digest.filter(|_| status == Status::Erased),
        passes,
        verification,
        errors: run.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
        retried_io_errors: run.io.retried(),
        interruptions: checkpoint.interruptions,
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

/// Reads `medium` back (in full, or sampled) and compares it with `pass`'s content:
/// the secondary verification NIST recommends, possible because every pass can be
/// regenerated from its record.
pub fn audit(
    medium: &Medium,
    pass: &PassRecord,
    sampled: bool,
    options: &Options,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Option<Audit> {
    let data = pass.content.data()?;
    let run = Run {
        medium,
        io: Resilient::new(medium, 0),
        options,
        observer,
        stop,
        passes_total: 1,
        errors: Mutex::default(),
        journal: None,
        checkpoint: Mutex::new(None),
        last_save: Mutex::new(Instant::now()),
        areas_before: 0.into(),
    };
    let (verification, digest, halt) =
        run.verify_pass(pass, &data, sampled, options.digest && !sampled, None);
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
