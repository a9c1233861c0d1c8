//! One pass at a time: writing the medium, and reading it back. Both can start
//! part-way (a resumed run) and both save checkpoints as they go.

use std::ops::{ControlFlow, Range};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use sha2::Digest as _;

use super::checkpoint::{self, Checkpoint, Frontier, InFlight, Journal};
use super::events::{Event, Observer};
use super::pipeline;
use super::resilient::{DeviceGone, Resilient, Transfer};
use super::workers::Workers;
use super::{Halt, lock, sample};
use crate::device::BlockIo;
use crate::report::*;
use crate::stream::{PassData, Seed, merged};

/// One target's run: the medium, its settings, and everything gathered so far.
pub(super) struct Run<'a> {
    pub medium: &'a dyn BlockIo,
    pub io: Resilient<'a>,
    pub workers: &'a Workers,
    pub observer: &'a dyn Observer,
    pub stop: &'a AtomicBool,
    pub passes_total: usize,
    /// What is read back, for the time left over the whole run.
    pub verify: VerifyMode,
    /// When this run (this session of it) started.
    pub started: Instant,
    pub errors: Mutex<ErrorLog>,
    pub journal: Option<&'a dyn Journal>,
    /// `None` for an audit, which has nothing to resume.
    pub checkpoint: Mutex<Option<Checkpoint>>,
    pub last_save: Mutex<Instant>,
    /// Bad areas (unwritten, unreadable, mismatched sector ranges) listed by the
    /// passes already finished.
    pub areas_before: std::sync::atomic::AtomicUsize,
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

/// One write pass under way.
struct Writing {
    pass: usize,
    content: PassContent,
    size: u64,
    sector: u64,
    clock: Clock,
    progress: Mutex<Progress>,
}

/// One verification under way: what is read, and what was found so far.
struct Verifying<'p> {
    write: &'p PassRecord,
    data: &'p PassData,
    size: u64,
    sector: usize,
    /// Byte ranges of sectors the pass could not write.
    unwritten: Vec<Range<u64>>,
    planned: u64,
    read_before: u64,
    sample: Option<SampleRecord>,
    clock: Clock,
    progress: Mutex<Progress>,
    frontier: Mutex<Frontier>,
}

impl Run<'_> {
    /// Writes pass `pass` from the start, or from where `resumed` stopped.
    pub fn write_pass(
        &self,
        pass: usize,
        data: &PassData,
        resumed: Option<&InFlight>,
    ) -> (PassRecord, Option<Halt>) {
        let size = self.medium.size();
        let sector = self.medium.sector_size() as u64;
        let content = PassContent::of(data);
        let start = resumed.map_or(0, |f| f.offset);
        self.observer.event(&Event::PhaseStarted {
            pass,
            passes: self.passes_total,
            phase: Phase::Writing,
            content: &content,
            bytes_total: size,
        });
        let bad = resumed.map(|f| to_bytes(&f.unwritten, sector, size)).unwrap_or_default();
        let writing = Writing {
            pass,
            content,
            size,
            sector,
            clock: Clock::resume(resumed),
            progress: Mutex::new(Progress { bytes: start, bad, ..Progress::default() }),
        };
        // Recorded before the first write, so a crash at any moment of this pass leaves a
        // journal that says which content was going onto the medium.
        {
            let progress = lock(&writing.progress);
            self.save_writing(&writing, progress.bytes, &progress.bad);
        }
        let fill = |offset: u64, buf: &mut [u8]| data.fill(offset, buf);
        pipeline::fill_then_write(
            self.workers,
            pipeline::chunks(&[start..size], self.workers.chunk()),
            self.stop,
            &fill,
            // One writer, in order: sequential writes are what every device does best.
            |offset, buf: &mut [u8]| self.write_chunk(&writing, offset, buf),
        );
        self.finish_write(writing, start)
    }

    fn write_chunk(&self, writing: &Writing, offset: u64, buf: &[u8]) -> ControlFlow<()> {
        let pass = writing.pass;
        let result = self.io.write(buf, offset);
        let mut progress = lock(&writing.progress);
        let transfer = match result {
            Ok(transfer) => transfer,
            Err(DeviceGone(why)) => {
                self.log(pass, "write", Some(offset), None, &why);
                progress.halt = Some(Halt::Gone(why));
                return ControlFlow::Break(());
            }
        };
        self.note_transfer(pass, "write", offset, &transfer);
        progress.bad.extend(transfer.bad);
        if let Some(halt) = self.too_many_areas(&progress) {
            progress.halt = Some(halt);
            return ControlFlow::Break(());
        }
        progress.bytes += buf.len() as u64;
        self.progress(pass, Phase::Writing, progress.bytes, writing.size, &writing.clock);
        if self.save_due() {
            // What the checkpoint counts as written must be on the medium, and a
            // failed flush fails the pass: Linux reports a write-back error once, so
            // the final flush might not see it again.
            if let Err(error) = self.medium.sync() {
                progress.halt = Some(self.flush_failed(pass, Some(offset), &error));
                return ControlFlow::Break(());
            }
            self.save_writing(writing, progress.bytes, &progress.bad);
        }
        ControlFlow::Continue(())
    }

    /// Checkpoints a pass being written: `bytes` written, `bad` not.
    fn save_writing(&self, writing: &Writing, bytes: u64, bad: &[Range<u64>]) {
        let current =
            InFlight::writing(writing.pass, &writing.content, bytes, bad, &writing.clock, writing.sector);
        self.save(|c| c.current = Some(current));
    }

    /// Flushes even an interrupted pass, so the report's byte count is on the
    /// medium, and makes the pass's record.
    fn finish_write(&self, writing: Writing, start: u64) -> (PassRecord, Option<Halt>) {
        let Progress { bytes: done, bad, mut halt, .. } = std::mem::take(&mut *lock(&writing.progress));
        // A bad area can span two chunks.
        let bad = merged(bad);
        if halt.is_none() && done < writing.size {
            halt = Some(Halt::Aborted);
        }
        let pass = writing.pass;
        match self.medium.sync() {
            Ok(()) => self.save_writing(&writing, done, &bad),
            Err(error) => {
                let failed = self.flush_failed(pass, None, &error);
                halt.get_or_insert(failed);
            }
        }
        let unwritten_bytes: u64 = bad.iter().map(|r| r.end - r.start).sum();
        let Writing { content, size, sector, clock, .. } = writing;
        let record = PassRecord {
            index: pass,
            content,
            bytes_total: size,
            bytes_written: done - unwritten_bytes,
            unwritten: SectorRange::list(&bad, sector),
            completed: halt.is_none(),
            started_at: clock.started_at.clone(),
            finished_at: now(),
            seconds: clock.seconds(),
            bytes_per_second: clock.rate(done - start),
            verification: None,
        };
        (record, halt)
    }

    /// Reads back what pass `write.index` wrote, from the start or from where
    /// `resumed` stopped. Sectors the pass could not write are already reported as
    /// unwritten; they are not counted again as mismatches. A digest needs the
    /// whole content in one go, so a resumed verification has none.
    pub fn verify_pass(
        &self,
        write: &PassRecord,
        data: &PassData,
        sampled: bool,
        want_digest: bool,
        resumed: Option<&InFlight>,
    ) -> (PassVerification, Option<ContentDigest>, Option<Halt>) {
        let (verifying, ranges) = self.plan_verification(write, data, sampled, resumed);
        self.observer.event(&Event::PhaseStarted {
            pass: write.index,
            passes: self.passes_total,
            phase: Phase::Verifying,
            content: &write.content,
            bytes_total: verifying.planned,
        });
        // One reader, in order, so the digest covers the content in order.
        let mut hashers =
            (want_digest && resumed.is_none()).then(|| (sha2::Sha256::new(), blake3::Hasher::new()));
        let read = |offset: u64, buf: &mut [u8]| {
            let result = self.io.read(buf, offset);
            if let (Some((sha, b3)), Ok(_)) = (hashers.as_mut(), &result) {
                sha.update(&*buf);
                b3.update(buf);
            }
            result
        };
        let check = |offset: u64, buf: &mut [u8], result| self.check_chunk(&verifying, offset, buf, result);
        pipeline::read_then_check(
            self.workers,
            pipeline::chunks(&ranges, self.workers.chunk()),
            self.stop,
            read,
            &check,
        );
        self.finish_verification(verifying, hashers)
    }

    /// The ranges to read (all, or a NIST sample), from where a resumed
    /// verification stopped, and the state of the verification.
    fn plan_verification<'p>(
        &self,
        write: &'p PassRecord,
        data: &'p PassData,
        sampled: bool,
        resumed: Option<&InFlight>,
    ) -> (Verifying<'p>, Vec<Range<u64>>) {
        let size = self.medium.size();
        let sector = self.medium.sector_size();
        let sample_unit = sample::unit(sector as u64);
        let sample_seed = resumed.and_then(|f| f.sample.as_ref().map(|s| s.seed));
        let sample = sampled
            .then(|| sample::plan(size, sample_unit, sample_seed.unwrap_or_else(Seed::from_os)))
            .flatten();
        let all_ranges = sample.as_ref().map_or_else(|| vec![0..size], |s| s.ranges.clone());
        let ranges = checkpoint::from_offset(&all_ranges, resumed.map_or(0, |f| f.offset));
        let chunk = self.workers.chunk();
        let verifying = Verifying {
            write,
            data,
            size,
            sector,
            unwritten: to_bytes(&write.unwritten, sector as u64, size),
            planned: all_ranges.iter().map(|r| r.end - r.start).sum(),
            read_before: resumed.map_or(0, |f| f.bytes_read),
            sample: sample.as_ref().map(sample::SamplePlan::record),
            clock: Clock::resume(resumed),
            progress: Mutex::new(Progress {
                bytes: resumed.map_or(0, |f| f.bytes_read),
                bad: resumed.map(|f| to_bytes(&f.unreadable, sector as u64, size)).unwrap_or_default(),
                mismatched: resumed.map(|f| to_bytes(&f.mismatches, sector as u64, size)).unwrap_or_default(),
                halt: None,
            }),
            frontier: Mutex::new(Frontier::new(pipeline::chunks(&ranges, chunk).collect())),
        };
        (verifying, ranges)
    }

    fn check_chunk(
        &self,
        v: &Verifying<'_>,
        offset: u64,
        buf: &[u8],
        result: Result<Transfer, DeviceGone>,
    ) -> ControlFlow<()> {
        let pass = v.write.index;
        let transfer = match result {
            Ok(transfer) => transfer,
            Err(DeviceGone(why)) => {
                self.log(pass, "verify", Some(offset), None, &why);
                lock(&v.progress).halt = Some(Halt::Gone(why));
                return ControlFlow::Break(());
            }
        };
        self.note_transfer(pass, "verify", offset, &transfer);
        // Unreadable sectors hold whatever the failed read left, and unwritten ones
        // were never written: both are reported already.
        let found = v.data.mismatches(offset, buf, v.sector);
        // Mismatches are rare: only then is the list of explained sectors built.
        let explained = if found.is_empty() {
            Vec::new()
        } else {
            merged(transfer.bad.iter().chain(&v.unwritten).cloned().collect())
        };
        let mut progress = lock(&v.progress);
        progress.mismatched.extend(found.into_iter().flat_map(|m| subtract(m, &explained)));
        progress.bad.extend(transfer.bad);
        if let Some(halt) = self.too_many_areas(&progress) {
            progress.halt = Some(halt);
            return ControlFlow::Break(());
        }
        progress.bytes += buf.len() as u64;
        self.progress(pass, Phase::Verifying, progress.bytes, v.planned, &v.clock);
        let mut frontier = lock(&v.frontier);
        let done_below = frontier.complete(offset);
        if self.save_due() {
            let below = |ranges: &[Range<u64>]| -> Vec<SectorRange> {
                // Clipped: what lies beyond is read again after a resume.
                let kept = ranges.iter().filter(|r| r.start < done_below);
                let kept = merged(kept.map(|r| r.start..r.end.min(done_below)).collect());
                SectorRange::list(&kept, v.sector as u64)
            };
            let current = InFlight {
                index: pass,
                content: v.write.content.clone(),
                phase: Phase::Verifying,
                offset: done_below,
                started_at: v.clock.started_at.clone(),
                seconds: v.clock.seconds(),
                unwritten: v.write.unwritten.clone(),
                write: Some(v.write.clone()),
                sample: v.sample.clone(),
                bytes_read: v.read_before + frontier.bytes_done(),
                mismatches: below(&progress.mismatched),
                unreadable: below(&progress.bad),
            };
            self.save(|c| c.current = Some(current));
        }
        ControlFlow::Continue(())
    }

    fn finish_verification(
        &self,
        v: Verifying<'_>,
        hashers: Option<(sha2::Sha256, blake3::Hasher)>,
    ) -> (PassVerification, Option<ContentDigest>, Option<Halt>) {
        let Progress { bytes: read, bad, mismatched, mut halt } =
            v.progress.into_inner().unwrap_or_else(|e| e.into_inner());
        if halt.is_none() && read < v.planned {
            halt = Some(Halt::Aborted);
        }
        let (unreadable, mismatches) = (merged(bad), merged(mismatched));
        let result = if !mismatches.is_empty() {
            VerificationResult::Failed
        } else if !unreadable.is_empty() || read < v.planned {
            VerificationResult::Incomplete
        } else {
            VerificationResult::Passed
        };
        let digest =
            hashers.filter(|_| result == VerificationResult::Passed).map(|(sha, b3)| ContentDigest {
                sha256: hex::encode(sha.finalize()),
                blake3: b3.finalize().to_hex().to_string(),
                bytes: read,
            });
        let sector = v.sector as u64;
        let verification = PassVerification {
            kind: if v.sample.is_some() { VerificationKind::Sample } else { VerificationKind::Full },
            bytes_read: read,
            coverage: read as f64 / v.size as f64,
            sample: v.sample,
            mismatches: SectorRange::list(&mismatches, sector),
            unreadable: SectorRange::list(&unreadable, sector),
            result,
            started_at: v.clock.started_at.clone(),
            finished_at: now(),
            seconds: v.clock.seconds(),
            bytes_per_second: v.clock.rate(read - v.read_before),
        };
        (verification, digest, halt)
    }

    /// A failed flush fails the pass: the write-back error is reported once, so
    /// what the flush covered may not be on the medium. A device that no longer
    /// answers at all was pulled or died, which is resumable once it is back.
    fn flush_failed(&self, pass: usize, offset: Option<u64>, error: &std::io::Error) -> Halt {
        let why = format!("flushing the device failed: {error}");
        self.log(pass, "sync", offset, None, &why);
        if self.io.alive() { Halt::Failed(why) } else { Halt::Gone(why) }
    }

    /// A medium failing in thousands of separate places is failed as a whole: its
    /// list of bad areas would otherwise grow without bound, and with it the report
    /// and the certificate.
    fn too_many_areas(&self, progress: &Progress) -> Option<Halt> {
        let before = self.areas_before.load(std::sync::atomic::Ordering::Relaxed);
        let areas = before + progress.bad.len() + progress.mismatched.len();
        (areas > MAX_BAD_AREAS).then(|| {
            Halt::Failed(format!(
                "more than {MAX_BAD_AREAS} separate bad or differing areas: the medium is failing; it is not listed further"
            ))
        })
    }

    fn save_due(&self) -> bool {
        self.journal.is_some() && lock(&self.last_save).elapsed() >= checkpoint::SAVE_INTERVAL
    }

    /// Updates the checkpoint and writes it to the journal, if there is one.
    pub fn save(&self, update: impl FnOnce(&mut Checkpoint)) {
        let mut checkpoint = lock(&self.checkpoint);
        let Some(checkpoint) = checkpoint.as_mut() else { return };
        update(checkpoint);
        let Some(journal) = self.journal else { return };
        checkpoint.saved_at = now();
        checkpoint.errors = lock(&self.errors).clone();
        checkpoint.retried_io_errors = self.io.retried();
        journal.save(checkpoint);
        *lock(&self.last_save) = Instant::now();
    }

    fn note_transfer(&self, pass: usize, operation: &str, offset: u64, transfer: &Transfer) {
        let Some(error) = &transfer.first_error else { return };
        let length = transfer.bad.iter().map(|r| r.end - r.start).sum::<u64>();
        let message = if transfer.bad.is_empty() {
            format!("{error}; succeeded when retried")
        } else {
            let sectors = length / self.medium.sector_size() as u64;
            format!("{error}; {sectors} sector(s) failed every attempt")
        };
        self.log(pass, operation, Some(offset), Some(length), &message);
    }

    pub fn log(&self, pass: usize, operation: &str, offset: Option<u64>, length: Option<u64>, message: &str) {
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
        let bytes_per_second = clock.rate(done);
        self.observer.event(&Event::Progress {
            pass,
            passes: self.passes_total,
            phase,
            bytes_done: done,
            bytes_total: total,
            bytes_per_second,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            seconds_left: self.seconds_left(pass, phase, total.saturating_sub(done), bytes_per_second),
        });
    }

    /// The whole run's time left at `rate`: the rest of this phase, the write
    /// passes after it, and the read-backs the verify mode still asks for (a
    /// sample counted at NIST's 10 %). `None` before a rate is known.
    fn seconds_left(&self, pass: usize, phase: Phase, left_in_phase: u64, rate: f64) -> Option<f64> {
        if rate <= 0.0 {
            return None;
        }
        let size = self.medium.size() as f64;
        let writes_after = self.passes_total.saturating_sub(pass) as f64;
        let (verifies_after, each) = match (self.verify, phase) {
            (VerifyMode::Off, _) => (0, 0.0),
            (VerifyMode::All, Phase::Writing) => (self.passes_total - pass + 1, size),
            (VerifyMode::All, Phase::Verifying) => (self.passes_total - pass, size),
            (VerifyMode::Last, Phase::Writing) => (1, size),
            (VerifyMode::Sample, Phase::Writing) => (1, size / 10.0),
            (VerifyMode::Last | VerifyMode::Sample, Phase::Verifying) => (0, 0.0),
        };
        Some((left_in_phase as f64 + writes_after * size + verifies_after as f64 * each) / rate)
    }
}

impl InFlight {
    fn writing(
        pass: usize,
        content: &PassContent,
        offset: u64,
        bad: &[Range<u64>],
        clock: &Clock,
        sector: u64,
    ) -> InFlight {
        InFlight {
            index: pass,
            content: content.clone(),
            phase: Phase::Writing,
            offset,
            started_at: clock.started_at.clone(),
            seconds: clock.seconds(),
            unwritten: SectorRange::list(&merged(bad.to_vec()), sector),
            write: None,
            sample: None,
            bytes_read: 0,
            mismatches: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

fn to_bytes(ranges: &[SectorRange], sector: u64, size: u64) -> Vec<Range<u64>> {
    ranges.iter().map(|r| r.bytes(sector, size)).collect()
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

/// Time spent on a phase, including before an interruption.
struct Clock {
    started: Instant,
    started_at: String,
    seconds_before: f64,
}

impl Clock {
    fn resume(resumed: Option<&InFlight>) -> Clock {
        Clock {
            started: Instant::now(),
            started_at: resumed.map_or_else(|| timestamp(SystemTime::now()), |f| f.started_at.clone()),
            seconds_before: resumed.map_or(0.0, |f| f.seconds),
        }
    }

    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    /// Throughput of this session's share of the work.
    fn rate(&self, bytes: u64) -> f64 {
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 { bytes as f64 / seconds } else { 0.0 }
    }
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
