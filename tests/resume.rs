//! Crashes and resumption: `kill -9` at several points of a real (slowed-down,
//! FUSE-backed) loop device's wipe, then `wipe --resume`, which redoes at most the
//! work since the last checkpoint and only on the same medium.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use certwipe::engine::checkpoint::Checkpoint;
use certwipe::engine::events::Phase;
use certwipe::engine::report::{Report, Status};
use common::faulty::{Faults, FaultyDisk};
use common::*;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 32 * MIB;

fn slow_disk() -> FaultyDisk {
    // 100 ms per MiB: some three seconds per pass, so checkpoints (every two seconds)
    // land inside passes.
    FaultyDisk::new(SIZE, 512, Faults { delay_per_mib: Duration::from_millis(100), ..Faults::default() })
}

fn read_journal(target: &Path) -> Option<Checkpoint> {
    let text = std::fs::read(journal_path(target)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn start_wipe(target: &Path, extra: &[&str]) -> Child {
    let _ = std::fs::remove_file(journal_path(target));
    certwipe_command()
        .args(["wipe", "--yes", "--method", "dod-short"])
        .args(extra)
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the journal satisfies `ready`, then kills the wipe with SIGKILL.
fn kill_when(mut child: Child, target: &Path, ready: impl Fn(&Checkpoint) -> bool) -> Checkpoint {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if read_journal(target).as_ref().is_some_and(&ready) {
            // Stopped, the wipe cannot move its journal past the point just seen
            // before the kill; the kill takes it from the stopped state.
            let checkpoint = while_stopped(child.id(), || {
                let checkpoint = read_journal(target);
                child.kill().unwrap();
                checkpoint
            });
            child.wait().unwrap();
            return checkpoint.filter(&ready).expect("the wipe moved past the kill point before it stopped");
        }
        if child.try_wait().unwrap().is_some() {
            panic!("the wipe finished before the kill point");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the kill point was never reached in two minutes");
}

fn resume(target: &Path) -> (i32, Report) {
    wipe_with_report(target, &["--resume"])
}

fn written(disk: &FaultyDisk) -> u64 {
    disk.faults.lock().unwrap().bytes_written
}

fn assert_resumed_cleanly(disk: &FaultyDisk, report: &Report, killed_at: &Checkpoint) {
    assert_eq!(report.status, Status::Erased, "{}", report.status_reason);
    assert_eq!(report.passes.len(), 3);
    assert_eq!(report.interruptions.len(), 1);
    let interruption = &report.interruptions[0];
    assert_eq!(interruption.checkpoint_at, killed_at.saved_at);
    assert!(interruption.medium_check.contains("size and identity match"), "{}", interruption.medium_check);
    // The seeds of passes finished before the crash are kept, not redrawn.
    for (before, after) in killed_at.passes.iter().zip(&report.passes) {
        assert_eq!(before.content, after.content);
    }
    let verification = report.passes[2].verification.as_ref().unwrap();
    assert_eq!(verification.bytes_read, SIZE, "the verification covers the whole medium");
    assert!(!journal_path(disk.path()).exists(), "a finished run leaves no journal");
    disk.set(|f| f.delay_per_mib = Duration::ZERO);
    let content = std::fs::read(disk.backing()).unwrap();
    assert!(content == expected_last_pass(report, content.len()));
}

#[test]
fn kill_during_a_write_pass_then_resume_redoes_only_the_work_since_the_checkpoint() {
    if !have_root() {
        return;
    }
    let disk = slow_disk();
    let child = start_wipe(disk.path(), &[]);
    let checkpoint = kill_when(child, disk.path(), |c| {
        c.current.as_ref().is_some_and(|f| f.index == 1 && f.phase == Phase::Writing && f.offset > 0)
    });
    let offset = checkpoint.current.as_ref().unwrap().offset;
    let before = written(&disk);
    let (code, report) = resume(disk.path());
    assert_eq!(code, 0, "{}", report.status_reason);
    assert_resumed_cleanly(&disk, &report, &checkpoint);
    assert_eq!(report.interruptions[0].pass, Some(1));
    assert_eq!(report.interruptions[0].phase, Some(Phase::Writing));
    // Exactly the rest of pass 1 and passes 2 and 3 were written after the crash.
    assert_eq!(written(&disk) - before, 3 * SIZE - offset);
}

#[test]
fn kill_during_verification_then_resume_finishes_the_verification_only() {
    if !have_root() {
        return;
    }
    let disk = slow_disk();
    let child = start_wipe(disk.path(), &[]);
    let checkpoint = kill_when(child, disk.path(), |c| {
        c.current.as_ref().is_some_and(|f| f.index == 3 && f.phase == Phase::Verifying && f.offset > 0)
    });
    let before = written(&disk);
    let (code, report) = resume(disk.path());
    assert_eq!(code, 0, "{}", report.status_reason);
    assert_resumed_cleanly(&disk, &report, &checkpoint);
    assert_eq!(report.interruptions[0].phase, Some(Phase::Verifying));
    assert_eq!(written(&disk), before, "nothing is rewritten to finish a verification");
    assert!(report.final_content_digest.is_none(), "a digest needs one uninterrupted read");
}

#[test]
fn kill_between_passes_then_resume() {
    if !have_root() {
        return;
    }
    let disk = slow_disk();
    let child = start_wipe(disk.path(), &[]);
    // Pass 1 is done and pass 2 has not recorded any progress yet.
    let checkpoint = kill_when(child, disk.path(), |c| {
        c.passes.len() == 1 && c.current.as_ref().is_none_or(|f| f.index == 2 && f.offset == 0)
    });
    let (code, report) = resume(disk.path());
    assert_eq!(code, 0, "{}", report.status_reason);
    assert_resumed_cleanly(&disk, &report, &checkpoint);
}

#[test]
fn sigint_then_resume_records_the_interruption() {
    if !have_root() {
        return;
    }
    let disk = slow_disk();
    let child = start_wipe(disk.path(), &[]);
    wait_until("4 MiB written", || written(&disk) > 4 * MIB);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(1));
    let checkpoint = read_journal(disk.path()).expect("an aborted wipe keeps its journal");
    let (code, report) = resume(disk.path());
    assert_eq!(code, 0, "{}", report.status_reason);
    assert_resumed_cleanly(&disk, &report, &checkpoint);
}

#[test]
fn resume_refuses_a_medium_that_changed_and_a_target_with_no_journal() {
    if !have_root() {
        return;
    }
    let disk = slow_disk();
    let child = start_wipe(disk.path(), &[]);
    kill_when(child, disk.path(), |c| c.current.as_ref().is_some_and(|f| f.offset > 8 * MIB));
    // Another medium now answers at this path: same size, other content.
    disk.set(|f| f.delay_per_mib = Duration::ZERO);
    let backing = std::fs::OpenOptions::new().write(true).open(disk.backing()).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&backing, &vec![0x5Au8; SIZE as usize], 0).unwrap();
    let out = certwipe(&["wipe", "--yes", "--resume", disk.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not hold what the interrupted wipe wrote"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(disk.backing()).unwrap(),
        vec![0x5Au8; SIZE as usize],
        "refused: nothing written"
    );

    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fresh.img");
    make_file(&image, MIB);
    let out = certwipe(&["wipe", "--yes", "--resume", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no interrupted wipe"), "{}", stderr(&out));
}
