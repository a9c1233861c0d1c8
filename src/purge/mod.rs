//! Purge by the drive's own command, proven by reading the medium: mark a
//! NIST sample, send the command and follow it, read the sample again, and
//! report — the counterpart of the [`engine`](crate::engine) for `certwipe
//! sanitize`. The drive's word alone never makes a medium "erased".

pub mod verify;

use std::time::Instant;

use crate::device::{BlockIo, Identity};
use crate::drive::Passthrough;
use crate::drive::probe::Protocol;
use crate::drive::sanitize::{self, DriveOutcome, Ending, Follow, Plan};
use crate::report::{
    ErrorLog, FirmwareRecord, FirmwareVerification, MethodRecord, REPORT_FORMAT, Report, Status, Tool,
    VerificationResult, VerificationSummary, VerifyMode, host_name, now,
};
use crate::stream::{Prng, Seed};

pub struct Job<'a> {
    pub medium: &'a dyn BlockIo,
    pub pt: &'a mut dyn Passthrough,
    pub target: &'a Identity,
    pub protocol: Protocol,
    pub plan: &'a Plan,
    pub follow: &'a Follow<'a>,
    /// The marker's generator.
    pub prng: Prng,
}

/// Runs the drive's command between the two readings of the sample.
pub fn run(job: Job<'_>) -> Report {
    let started_at = now();
    let clock = Instant::now();
    let expected = job.plan.command.expectation();
    // One marker, recorded as the one written even when marking stops part way.
    let marker = job.prng.fresh();
    let (outcome, verification) = match verify::mark(job.medium, Seed::from_os(), marker.clone()) {
        Err(error) => {
            let outcome =
                DriveOutcome { ending: Ending::Refused, drive_status: format!("not sent: {error}") };
            (outcome, verify::unprepared(marker, expected))
        }
        Ok(marked) => {
            let outcome = sanitize::run(job.pt, job.plan, job.follow);
            let verification = match outcome.ending {
                Ending::Succeeded => verify::check(job.medium, &marked, expected),
                _ => verify::not_run(job.medium, &marked, expected),
            };
            (outcome, verification)
        }
    };
    let (status, status_reason) = judge(&outcome, &verification, &job.target.path);
    let command = job.plan.command;
    let firmware = FirmwareRecord {
        technique: command.technique(),
        protocol: job.protocol.as_str().into(),
        command: command.name().into(),
        command_bytes: command.bytes(),
        chosen_because: job.plan.reason.clone(),
        drive_reported_success: outcome.ending == Ending::Succeeded,
        drive_status: outcome.drive_status,
        started_at: started_at.clone(),
        finished_at: now(),
        seconds: clock.elapsed().as_secs_f64(),
        drive_estimate_seconds: job.plan.estimate.map(|e| e.as_secs()),
        notes: job.plan.notes.clone(),
        verification,
    };
    Report {
        format: REPORT_FORMAT.into(),
        tool: Tool::this(),
        host: host_name(),
        target: job.target.clone(),
        method: MethodRecord {
            id: command.technique().as_str().into(),
            name: command.name().into(),
            source: command.source().into(),
            rounds: 1,
        },
        verify_mode: VerifyMode::Sample,
        cache_bypass: job.medium.cache_bypass(),
        started_at,
        finished_at: firmware.finished_at.clone(),
        passes: Vec::new(),
        verification: VerificationSummary {
            mode: VerifyMode::Sample,
            result: firmware.verification.result,
            passes_verified: Vec::new(),
        },
        final_content_digest: None,
        errors: ErrorLog::default(),
        retried_io_errors: 0,
        interruptions: Vec::new(),
        firmware: Some(firmware),
        status,
        status_reason,
    }
}

/// `erased` only when the drive reported success and reading the sample
/// proved it.
pub fn judge(outcome: &DriveOutcome, verification: &FirmwareVerification, path: &str) -> (Status, String) {
    let drive = &outcome.drive_status;
    match outcome.ending {
        Ending::Succeeded => judge_verified(drive, verification),
        Ending::Refused => (
            Status::Failed,
            format!(
                "the drive did not run the command ({drive}); only the sampled locations were overwritten, with the verification marker"
            ),
        ),
        Ending::Failed => (Status::Failed, format!("the drive reports the command failed: {drive}")),
        Ending::Gone => (Status::Failed, format!("the device stopped answering during the command: {drive}")),
        Ending::Interrupted => (
            Status::Aborted,
            format!(
                "certwipe stopped following the command ({drive}); the drive carries on by itself: `certwipe sanitize --status {path}` shows where it stands"
            ),
        ),
    }
}

fn judge_verified(drive: &str, v: &FirmwareVerification) -> (Status, String) {
    let sectors = |ranges: &[crate::report::SectorRange]| crate::report::total_sectors(ranges);
    match v.result {
        VerificationResult::Passed => (
            Status::Erased,
            format!(
                "the drive reported success ({drive}), and none of the sampled sectors ({} bytes, {:.1} % of the medium) still holds what was written there before; each reads as expected ({:?})",
                v.bytes,
                v.coverage * 100.0,
                v.expected
            ),
        ),
        VerificationResult::Failed => (
            Status::Failed,
            format!(
                "the drive reported success, but {} sampled sector(s) still hold what was written before the command and {} do not read as the command leaves them: the drive did not erase what it says",
                sectors(&v.marker_remaining),
                sectors(&v.unexpected)
            ),
        ),
        _ => (
            Status::Incomplete,
            format!(
                "the drive reported success, but {} sampled sector(s) could not be read back, so it is not proven",
                sectors(&v.unreadable)
            ),
        ),
    }
}

/// Plans and runs `action` on a scripted drive and its medium, as a medium of
/// `media` type: what the unit tests of this module and of the certificate rules
/// start from.
#[cfg(test)]
pub(crate) fn run_scripted(
    pt: &mut dyn Passthrough,
    medium: &dyn BlockIo,
    transport: &str,
    action: sanitize::Action,
    media: crate::device::MediaType,
) -> Report {
    let probed = crate::drive::probe::probe(pt, transport).unwrap().unwrap();
    let plan = sanitize::plan(pt, &probed, action).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let follow =
        Follow { observer: &|_: &sanitize::Progress| {}, stop: &stop, poll_every: std::time::Duration::ZERO };
    // As a real run sees it once the drive has answered: its transport and
    // the drive's own identity.
    let mut target = Identity::for_tests(medium.size());
    target.media_type = media;
    target.transport = transport.to_string();
    target.identity_source = probed.info.source;
    run(Job {
        medium,
        pt,
        target: &target,
        protocol: probed.protocol,
        plan: &plan,
        follow: &follow,
        prng: Prng::Chacha8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MediaType;
    use crate::drive::fake::{FakeAta, FakeNvme, SanitizeScript};
    use crate::drive::sanitize::Action;
    use crate::report::Status;

    fn purge(pt: &mut dyn Passthrough, medium: &dyn BlockIo, transport: &str, action: Action) -> Report {
        run_scripted(pt, medium, transport, action, MediaType::Unknown)
    }

    fn script() -> SanitizeScript {
        SanitizeScript { crypto: true, block: true, overwrite: true, polls: 2, ..SanitizeScript::default() }
    }

    #[test]
    fn a_drive_that_erases_is_erased_and_one_that_only_says_so_is_failed() {
        for action in [Action::CryptoErase, Action::BlockErase, Action::Overwrite] {
            let mut honest = FakeAta::new(4096).with_sanitize(script());
            let disk = honest.disk.clone();
            let report = purge(&mut honest, &*disk, "sata", action);
            assert_eq!(report.status, Status::Erased, "{action:?}: {}", report.status_reason);
            let firmware = report.firmware.as_ref().unwrap();
            assert!(firmware.drive_reported_success);
            assert_eq!(firmware.verification.result, VerificationResult::Passed);

            let mut liar = FakeAta::new(4096).with_sanitize(SanitizeScript { lies: true, ..script() });
            let disk = liar.disk.clone();
            let report = purge(&mut liar, &*disk, "sata", action);
            assert_eq!(report.status, Status::Failed, "{action:?}");
            assert!(report.status_reason.contains("did not erase what it says"), "{}", report.status_reason);
            assert!(report.firmware.unwrap().drive_reported_success);
        }
    }

    #[test]
    fn a_vanishing_drive_fails_and_a_format_on_qemus_nvme_is_erased() {
        let mut vanishing =
            FakeAta::new(4096).with_sanitize(SanitizeScript { vanish_at_poll: Some(2), ..script() });
        let disk = vanishing.disk.clone();
        let report = purge(&mut vanishing, &*disk, "sata", Action::BlockErase);
        assert_eq!(report.status, Status::Failed);
        assert!(report.status_reason.contains("stopped answering"), "{}", report.status_reason);

        let mut nvme = FakeNvme::new(4096);
        let disk = nvme.disk.clone();
        let report = purge(&mut nvme, &*disk, "nvme", Action::Auto);
        assert_eq!(report.status, Status::Erased, "{}", report.status_reason);
        assert_eq!(report.method.id, "format-user-data-erase");
    }
}
