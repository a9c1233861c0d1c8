//! Checkpoints: enough of a run's state, saved atomically every few seconds, to
//! continue after a crash, `kill -9` or Ctrl-C, redoing at most the work since the
//! last save. A resumed run checks first that the medium is the one it was writing.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::buffer::AlignedBuf;
use crate::device::{BlockIo, Identity};
use crate::method::Plan;
use crate::report::{ErrorLog, PassContent, PassRecord, SampleRecord, SectorRange, VerifyMode};
use crate::report::{Interruption, Phase};

pub const JOURNAL_FORMAT: &str = "certwipe.journal/v1";
/// Where root keeps journals (and the ledger) unless told otherwise.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/certwipe";

/// The environment variable that names the state directory for every command.
pub const STATE_DIR_ENV: &str = "CERTWIPE_STATE_DIR";

/// The state directory: `$CERTWIPE_STATE_DIR`, else `/var/lib/certwipe` for
/// root; for another user (wiping image files) `$XDG_STATE_HOME/certwipe` or
/// `~/.local/state/certwipe`.
pub fn default_state_dir() -> PathBuf {
    // Every command honours it, so a station's journals and its notes of the
    // ledgers it wrote to are kept together.
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from(SYSTEM_STATE_DIR);
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state")))
        .map_or_else(|| PathBuf::from(SYSTEM_STATE_DIR), |base| base.join("certwipe"))
}
/// How often progress is saved; also the most work a crash can cost.
pub const SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    pub target: Identity,
    pub plan: Plan,
    pub verify: VerifyMode,
    pub digest: bool,
    /// The generator of the run's random passes (journals from before the choice: ChaCha8).
    #[serde(default = "crate::stream::Prng::legacy")]
    pub prng: crate::stream::Prng,
    pub started_at: String,
    pub saved_at: String,
    /// Passes finished (written, and read back where asked).
    pub passes: Vec<PassRecord>,
    /// The pass under way, if any.
    pub current: Option<InFlight>,
    pub errors: ErrorLog,
    pub retried_io_errors: u64,
    pub interruptions: Vec<Interruption>,
}

/// A pass caught in the middle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InFlight {
    pub index: usize,
    pub content: PassContent,
    pub phase: Phase,
    /// Everything below this offset is done (written, or read back and compared).
    pub offset: u64,
    pub started_at: String,
    /// Seconds spent on this phase before the interruption.
    pub seconds: f64,
    /// Writing: sectors that failed so far. Verifying: the finished write.
    pub unwritten: Vec<SectorRange>,
    pub write: Option<PassRecord>,
    /// Verifying: the sample seed (sampled verification), and findings below `offset`.
    pub sample: Option<SampleRecord>,
    pub bytes_read: u64,
    pub mismatches: Vec<SectorRange>,
    pub unreadable: Vec<SectorRange>,
}

impl Checkpoint {
    /// What a resumed run proves again, whatever the journal claims: the last
    /// pass is read back over the whole medium, from the first byte. A
    /// journal is a file someone could have edited to say that a pass was
    /// written to the end, or that its verification had passed; reading the
    /// medium is what shows whether every byte holds the last pass. So a
    /// verification in flight starts over, a last pass the journal calls done
    /// is read back again, and a plan without a full read-back gets one.
    pub fn reverify_last(&mut self, passes_planned: usize) {
        self.verify = match self.verify {
            VerifyMode::Off | VerifyMode::Sample => VerifyMode::Last,
            full => full,
        };
        if let Some(flight) = self.current.as_mut().filter(|f| f.phase == Phase::Verifying) {
            flight.restart_verification();
        }
        if self.current.is_none()
            && self.passes.len() == passes_planned
            && let Some(mut last) = self.passes.pop()
        {
            last.verification = None;
            let mut flight = InFlight {
                index: last.index,
                content: last.content.clone(),
                phase: Phase::Verifying,
                offset: 0,
                started_at: crate::report::now(),
                seconds: 0.0,
                unwritten: last.unwritten.clone(),
                write: Some(last),
                sample: None,
                bytes_read: 0,
                mismatches: Vec::new(),
                unreadable: Vec::new(),
            };
            flight.restart_verification();
            self.current = Some(flight);
        }
    }
}

impl InFlight {
    fn restart_verification(&mut self) {
        self.offset = 0;
        self.seconds = 0.0;
        self.sample = None;
        self.bytes_read = 0;
        self.mismatches.clear();
        self.unreadable.clear();
    }
}

/// Receives checkpoints while a run goes on.
pub trait Journal: Sync {
    fn save(&self, checkpoint: &Checkpoint);
    /// The run ended (other than by interruption): nothing is left to resume.
    fn finish(&self);
}

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("state directory {path}: {why}; choose another with --state-dir")]
    StateDir { path: String, why: String },
    #[error("no interrupted wipe of {target} in {dir}; nothing to resume")]
    NothingToResume { target: String, dir: String },
    #[error("journal {path}: {why}")]
    Unreadable { path: String, why: String },
    #[error("refusing to resume {target}: {why}")]
    NotTheSameMedium { target: String, why: String },
    #[error(
        "refusing to resume {target}: the interrupted wipe's journal says {journal}, this run asks for {asked}; give the same method, passes, rounds and --verify as the interrupted run (a journal can never change the plan or lower the verification)"
    )]
    PlanDiffers { target: String, journal: String, asked: String },
}

// A journal is checked before the medium is opened for writing.
impl crate::exit::ExitStatus for JournalError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// A journal file in the state directory, replaced atomically on every save.
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    /// The journal of `target` in `dir`, which must be writable.
    pub fn new(dir: &Path, target: &Identity) -> Result<FileJournal, JournalError> {
        let fail = |why: String| JournalError::StateDir { path: dir.display().to_string(), why };
        // Made private (whatever the umask), and refused when someone else could write it.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|e| fail(e.to_string()))?;
        crate::durable::check_private_dir(dir).map_err(|e| fail(e.to_string()))?;
        crate::durable::check_writable_dir(dir).map_err(|e| fail(e.to_string()))?;
        Ok(FileJournal { path: Self::path_for(dir, target) })
    }

    /// One journal per medium, found again when the medium comes back under
    /// another name (a stick re-plugged as sdc instead of sdb): named after its
    /// model, serial and size where it has a serial, the file behind a loop
    /// device, else the resolved path.
    pub fn path_for(dir: &Path, target: &Identity) -> PathBuf {
        let medium = match (&target.serial, &target.backing_file) {
            (Some(serial), _) => {
                format!("serial\0{}\0{serial}\0{}", target.model.as_deref().unwrap_or(""), target.size_bytes)
            }
            (None, Some(file)) => format!("file\0{file}"),
            (None, None) => format!("path\0{}", target.resolved_path),
        };
        let hash = crate::stream::sha256_hex(medium.as_bytes());
        dir.join(format!("medium-{}.journal.json", &hash[..16]))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self, target: &str) -> Result<Checkpoint, JournalError> {
        let unreadable =
            |why: String| JournalError::Unreadable { path: self.path.display().to_string(), why };
        let text = crate::input::read_regular(&self.path, crate::input::JOURNAL).map_err(|e| {
            if e.is_missing() {
                JournalError::NothingToResume {
                    target: target.to_string(),
                    dir: self.path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                }
            } else {
                unreadable(e.to_string())
            }
        })?;
        let checkpoint: Checkpoint = serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))?;
        if checkpoint.format != JOURNAL_FORMAT {
            return Err(unreadable(format!("unknown format {:?}", checkpoint.format)));
        }
        Ok(checkpoint)
    }
}

impl Journal for FileJournal {
    fn save(&self, checkpoint: &Checkpoint) {
        if let Ok(bytes) = serde_json::to_vec(checkpoint) {
            // A failed save costs at most a longer redo after a crash; the wipe goes on.
            let _ = crate::durable::write_atomically(&self.path, &bytes, 0o600);
        }
    }

    fn finish(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Tracks the contiguous prefix of pieces done when they finish out of order.
pub struct Frontier {
    pieces: Vec<Range<u64>>,
    done: BTreeSet<u64>,
    next: usize,
}

impl Frontier {
    pub fn new(pieces: Vec<Range<u64>>) -> Frontier {
        Frontier { pieces, done: BTreeSet::new(), next: 0 }
    }

    /// Marks the piece starting at `start` done; returns the offset below which
    /// everything is done.
    pub fn complete(&mut self, start: u64) -> u64 {
        self.done.insert(start);
        while self.next < self.pieces.len() && self.done.remove(&self.pieces[self.next].start) {
            self.next += 1;
        }
        self.offset()
    }

    /// Bytes in the pieces below the frontier.
    pub fn bytes_done(&self) -> u64 {
        self.pieces[..self.next].iter().map(|p| p.end - p.start).sum()
    }

    pub fn offset(&self) -> u64 {
        match self.next {
            0 => self.pieces.first().map_or(0, |p| p.start),
            n => self.pieces[n - 1].end,
        }
    }
}

/// `ranges` from `offset` on.
pub fn from_offset(ranges: &[Range<u64>], offset: u64) -> Vec<Range<u64>> {
    ranges.iter().filter(|r| r.end > offset).map(|r| r.start.max(offset)..r.end).collect()
}

/// Checks that `medium` holds what the interrupted run wrote: the same size and
/// identity, and at spots spread over the medium, the very bytes the recorded
/// pass content regenerates. Returns how it knew.
///
/// Below the offset the journal gives, a spot must hold the pass in flight;
/// elsewhere the pass before it — or the pass in flight, which may have gone
/// on for up to one save interval past its last checkpoint. A pass in flight
/// that recorded no progress is no reason to look at nothing: the medium must
/// still hold the pass before it (or the new one, near the start).
pub fn recognise(checkpoint: &Checkpoint, now: &Identity, medium: &dyn BlockIo) -> Result<String, String> {
    let differences = checkpoint.target.differences(now);
    if !differences.is_empty() {
        return Err(differences.join("; "));
    }
    let sector = medium.sector_size() as u64;
    let size = medium.size();
    let unreadable = || "the journal's pass content cannot be regenerated".to_string();
    let regenerable = |content: &PassContent| content.data().ok_or_else(unreadable);
    let previous = checkpoint.passes.last();
    // (content below `written`, content beyond it, sectors to skip)
    let (below, written, beyond, skip) = match &checkpoint.current {
        Some(f) if f.phase == Phase::Verifying => {
            let skip = f.unwritten.iter().chain(&f.mismatches).copied().collect();
            (Some(regenerable(&f.content)?), size, None, skip)
        }
        Some(f) => {
            let mut skip: Vec<SectorRange> = f.unwritten.clone();
            skip.extend(previous.iter().flat_map(|p| p.unwritten.iter().copied()));
            let before = previous.map(|p| regenerable(&p.content)).transpose()?;
            (Some(regenerable(&f.content)?), f.offset, before, skip)
        }
        None => match previous {
            Some(pass) => (Some(regenerable(&pass.content)?), size, None, pass.unwritten.clone()),
            None => return Ok("size and identity match; nothing had been written yet".into()),
        },
    };
    let in_flight = checkpoint.current.as_ref().is_some_and(|f| f.phase == Phase::Writing);
    let bad: Vec<Range<u64>> = skip.iter().map(|r| r.bytes(sector, size)).collect();
    let mut checked = 0;
    let mut spots = Spots { medium, bad: &bad, checked: &mut checked };
    spots.check(0..written, &below.iter().collect::<Vec<_>>())?;
    // Beyond: the pass before (nothing is known of what a first pass found
    // there), or the pass in flight, which may have run past its checkpoint.
    if let Some(before) = &beyond {
        let mut candidates = vec![before];
        candidates.extend(below.iter().filter(|_| in_flight));
        spots.check(written..size, &candidates)?;
    }
    if checked == 0 && written > 0 {
        return Err("no spot of the medium could be checked against what the interrupted wipe wrote".into());
    }
    Ok(format!("size and identity match, and {checked} spots hold the content the journal records"))
}

/// Sixteen 4 KiB spots spread over a range of a medium, each of which must
/// hold one of the candidate contents.
struct Spots<'a> {
    medium: &'a dyn BlockIo,
    bad: &'a [Range<u64>],
    checked: &'a mut usize,
}

impl Spots<'_> {
    fn check(&mut self, range: Range<u64>, candidates: &[&crate::stream::PassData]) -> Result<(), String> {
        const SPOTS: u64 = 16;
        const SPOT: u64 = 4096;
        let first = range.start.div_ceil(SPOT);
        let last = range.end / SPOT;
        if candidates.is_empty() || last <= first {
            return Ok(());
        }
        let mut buf = AlignedBuf::new(SPOT as usize);
        let mut expected = vec![0u8; SPOT as usize];
        let count = SPOTS.min(last - first);
        for index in 0..count {
            let at = (first + (last - first - 1) * index / (count - 1).max(1)) * SPOT;
            if self.bad.iter().any(|r| r.start < at + SPOT && at < r.end) {
                continue;
            }
            self.medium
                .read_at(&mut buf[..SPOT as usize], at)
                .map_err(|e| format!("reading byte {at}: {e}"))?;
            let holds = candidates.iter().any(|data| {
                data.fill(at, &mut expected);
                buf[..SPOT as usize] == expected[..]
            });
            if !holds {
                return Err(format!(
                    "the medium does not hold what the interrupted wipe wrote at byte {at}: it is another medium, or it changed since"
                ));
            }
            *self.checked += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_advances_only_over_contiguous_pieces() {
        let mut frontier = Frontier::new(vec![0..10, 10..20, 30..40, 40..45]);
        assert_eq!(frontier.offset(), 0);
        assert_eq!(frontier.complete(10), 0);
        assert_eq!(frontier.complete(30), 0);
        assert_eq!(frontier.complete(0), 40);
        assert_eq!(frontier.complete(40), 45);
        assert_eq!(frontier.bytes_done(), 35);
    }

    #[test]
    fn ranges_resume_from_an_offset() {
        assert_eq!(from_offset(&[0..10, 20..30, 40..50], 25), vec![25..30, 40..50]);
        assert_eq!(from_offset(&[0..10], 10), Vec::<Range<u64>>::new());
    }
}
