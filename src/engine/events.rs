//! Progress events: what the engine tells the outside world while it runs.

use serde::Serialize;

use crate::report::{PassContent, PassRecord, PassVerification, Phase, Report};

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    /// A pass begins writing or verifying.
    PhaseStarted {
        pass: usize,
        passes: usize,
        phase: Phase,
        content: &'a PassContent,
        bytes_total: u64,
    },
    /// Called once per chunk; observers throttle what they show.
    Progress {
        pass: usize,
        passes: usize,
        phase: Phase,
        bytes_done: u64,
        bytes_total: u64,
        bytes_per_second: f64,
        /// Seconds since this run started.
        elapsed_seconds: f64,
        /// The whole run's time left (every pass and read-back still to
        /// come), at the current rate; absent until a rate is known.
        seconds_left: Option<f64>,
    },
    /// A pass's write phase ended (before any verification of it).
    PassWritten {
        pass: &'a PassRecord,
    },
    /// A pass ended: written, and read back if asked.
    PassFinished {
        pass: &'a PassRecord,
    },
    VerificationFinished {
        pass: usize,
        verification: &'a PassVerification,
    },
    /// A step of a drive's own erase (`certwipe sanitize`) begins.
    DriveStep {
        step: &'a str,
    },
    /// The drive's own erase is running; its progress when the drive reports it.
    DriveProgress {
        fraction: Option<f64>,
        elapsed_seconds: f64,
    },
    /// A problem worth telling the operator now (an I/O error, a retry).
    Warning {
        message: &'a str,
    },
    Finished {
        report: &'a Report,
    },
}

/// Receives events from one target's run. Runs on the engine's thread, so it must be quick.
pub trait Observer: Sync {
    fn event(&self, event: &Event<'_>);
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event<'_>) {}
}
