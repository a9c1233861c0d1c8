//! Run: a prepared target is wiped (passes, or the drive's own erase) and
//! its records made.

use std::sync::atomic::AtomicBool;

use super::hidden::judge_hidden;
use super::record::{Outcome, StepError, certify, write_report};
use super::{Prepared, Settings, Work};
use crate::device::Medium;
use crate::drive::linux::with_drive;
use crate::drive::probe::Protocol;
use crate::drive::sanitize;
use crate::engine::checkpoint::Journal;
use crate::engine::events::Observer;
use crate::engine::workers::Workers;
use crate::engine::{self, Job};
use crate::purge;
use crate::report::{Report, Status};

impl Prepared {
    /// Wipes, then writes the report, the certificate and its PDF, and files it.
    pub fn run(
        mut self,
        settings: &Settings,
        workers: &Workers,
        observer: &dyn Observer,
        stop: &AtomicBool,
    ) -> Outcome {
        let report = match &mut self.work {
            Work::Overwrite { plan, options, journal, resume } => engine::run(Job {
                medium: &self.medium,
                target: &self.target.identity,
                plan,
                options,
                workers,
                observer,
                stop,
                journal: journal.as_ref().map(|j| j as &dyn Journal),
                resume: resume.take().map(|c| *c),
            }),
            Work::DriveErase { plan, protocol } => {
                drive_erase(&self.medium, &self.target.identity, plan, *protocol, observer, stop)
            }
        };
        let report = judge_hidden(report);
        observer.event(&crate::engine::events::Event::Finished { report: &report });
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
        let journal = match &self.work {
            Work::Overwrite { journal, .. } => journal.as_ref(),
            Work::DriveErase { .. } => None,
        };
        let resumable = matches!(report.status, Status::Aborted | Status::Failed)
            && journal.is_some_and(|j| j.path().exists());
        Outcome { report, report_path, certificate, pdf, filed, resumable }
    }
}

/// Runs the drive's erase between the two readings of its sample.
fn drive_erase(
    medium: &Medium,
    target: &crate::device::Identity,
    plan: &sanitize::Plan,
    protocol: Protocol,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Report {
    use crate::engine::events::Event;
    let fd = medium.block_fd().expect("a drive erase was prepared on a block device");
    observer.event(&Event::DriveStep {
        step: &format!("marking the verification sample, then {}", plan.command.name()),
    });
    let progress = |p: &sanitize::Progress| {
        observer
            .event(&Event::DriveProgress { fraction: p.fraction, elapsed_seconds: p.elapsed.as_secs_f64() });
    };
    let follow =
        sanitize::Follow { observer: &progress, stop, poll_every: std::time::Duration::from_secs(1) };
    with_drive(fd, |pt| {
        purge::run(purge::Job {
            medium,
            pt,
            target,
            protocol,
            plan,
            follow: &follow,
            prng: crate::stream::Prng::for_this_cpu(),
        })
    })
}

/// Runs every prepared target at once, each on its own thread with its own
/// view (`view`, made from the target's identity), sharing one pool of I/O
/// workers; the outcomes in the targets' order.
pub fn run_all<V: Observer>(
    prepared: Vec<Prepared>,
    settings: &Settings,
    view: impl Fn(&crate::device::Identity) -> V + Sync,
    stop: &AtomicBool,
) -> Vec<Outcome> {
    let workers = Workers::new(prepared.len(), crate::engine::workers::DEFAULT_BUDGET);
    std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .into_iter()
            .map(|job| {
                let (workers, view) = (&workers, &view);
                scope.spawn(move || {
                    let view = view(&job.target.identity);
                    job.run(settings, workers, &view, stop)
                })
            })
            .collect();
        // A panic on a wipe's thread is a bug; it is carried on, not hidden.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}
