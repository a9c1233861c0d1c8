//! Crashes and resumption: `kill -9` at several points of a real (slowed-down,
//! FUSE-backed) loop device's wipe, then `wipe --resume`, which redoes at most the
//! work since the last checkpoint and only on the same medium.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use certwipe::engine::checkpoint::Checkpoint;
use certwipe::report::Phase;
use certwipe::report::{Report, Status};
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
    wipe_with_report(target, &["--resume", "--method", "dod-short"])
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
    let out =
        certwipe(&["wipe", "--yes", "--resume", "--method", "dod-short", disk.path().to_str().unwrap()]);
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

fn write_journal(target: &Path, checkpoint: &Checkpoint) {
    std::fs::write(journal_path(target), serde_json::to_vec(checkpoint).unwrap()).unwrap();
}

/// Issue 15: a journal edited to say that the last pass had been written to
/// the end (or written and read back) when a megabyte of the medium still
/// holds what was there before, placed between the spots a resume samples to
/// recognise its medium. The plan comes from the command line and must match
/// the journal's; the journal cannot lower the verification; and a resumed run
/// reads the last pass back over the whole medium, so the bytes never written
/// are found.
#[test]
fn an_edited_journal_never_makes_a_resumed_wipe_claim_what_it_did_not_do() {
    use certwipe::engine::checkpoint::InFlight;
    use certwipe::report::VerifyMode;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("edited.img");
    make_file(&image, SIZE);
    let (code, wiped) = wipe_with_report(&image, &["--method", "random"]);
    assert_eq!(code, 0, "{}", wiped.status_reason);
    // 4.5 to 5.5 MiB never written, as far as the medium is concerned.
    let survivor = vec![0x5Au8; MIB as usize];
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::File::options().write(true).open(&image).unwrap(),
        &survivor,
        4 * MIB + MIB / 2,
    )
    .unwrap();
    let plan = certwipe::method::Plan::from_method(certwipe::method::find("random").unwrap(), 1).unwrap();
    let options =
        certwipe::engine::Options { verify: VerifyMode::Off, ..certwipe::engine::Options::default() };
    let mut journal = Checkpoint::start(&wiped.target, &plan, &options);
    journal.current = Some(InFlight {
        index: 1,
        content: wiped.passes[0].content.clone(),
        phase: Phase::Writing,
        offset: SIZE,
        started_at: wiped.started_at.clone(),
        seconds: 1.0,
        unwritten: Vec::new(),
        write: None,
        sample: None,
        bytes_read: 0,
        mismatches: Vec::new(),
        unreadable: Vec::new(),
    });
    write_journal(&image, &journal);
    let target = image.to_str().unwrap();
    // Another plan or verification than the journal's: refused.
    for (extra, said) in [
        (&["--method", "dod-short", "--verify", "off"][..], "method dod-short"),
        (&[][..], "verify last"),
        (&["--verify", "sample"][..], "verify sample"),
    ] {
        let out = certwipe(&[&["wipe", "--yes", "--resume"][..], extra, &[target]].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(said)
                && stderr(&out).contains("journal says method random x1 with verify off"),
            "{}",
            stderr(&out)
        );
    }
    // Resumed as the journal says: nothing left to write, and no read-back asked for.
    let (code, report) = wipe_with_report(&image, &["--resume", "--verify", "off"]);
    assert_eq!(code, 1, "{}", report.status_reason);
    assert_eq!(report.status, Status::Failed, "{}", report.status_reason);
    assert_eq!(report.verify_mode, VerifyMode::Last, "a resumed run reads back in full");
    let verification = report.passes[0].verification.as_ref().unwrap();
    assert_eq!(verification.bytes_read, SIZE);
    assert_eq!(certwipe::report::total_sectors(&verification.mismatches) * 512, MIB);
    assert!(report.interruptions[0].medium_check.contains("read back over the whole medium again"));

    // A journal that says the pass was written and read back in full.
    let mut done = wiped.passes[0].clone();
    done.index = 1;
    let mut journal = journal.clone();
    journal.current = None;
    journal.verify = VerifyMode::Last;
    journal.passes = vec![done];
    write_journal(&image, &journal);
    let (code, report) = wipe_with_report(&image, &["--resume"]);
    assert_eq!(code, 1, "{}", report.status_reason);
    assert_eq!(report.status, Status::Failed, "a pass the journal called verified was read again");
}

#[test]
fn journals_and_certificates_are_kept_only_in_directories_nobody_else_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    make_file(&image, MIB);
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = std::fs::read(&image).unwrap();
    let out = certwipe(&["wipe", "--yes", "--state-dir", shared.to_str().unwrap(), image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("others may write in it (mode 777)"), "{}", stderr(&out));
    let station = Station::new();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--cert-dir",
        shared.to_str().unwrap(),
        "--sign-key",
        station.key.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot keep certificates in"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&image).unwrap(), before, "refused: nothing written");
    if have_root() {
        // Owned by someone else, even if not writable by others.
        nix::unistd::chown(&shared, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out =
            certwipe(&["wipe", "--yes", "--state-dir", shared.to_str().unwrap(), image.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("belongs to uid 65534"), "{}", stderr(&out));
    }
}

/// The trial after issue 15: a journal copied onto another medium, saying
/// its first two passes were written and read back and the third had not
/// started. The medium must hold the second pass (or the third, near the
/// start); another medium's content is refused, so no certificate claims
/// passes nobody wrote.
#[test]
fn a_journal_put_on_another_medium_is_refused_even_between_passes() {
    use certwipe::engine::checkpoint::InFlight;
    let dir = tempfile::tempdir().unwrap();
    let wiped = dir.path().join("wiped.img");
    make_file(&wiped, SIZE);
    let (code, report) = wipe_with_report(&wiped, &["--method", "dod-short", "--verify", "all"]);
    assert_eq!(code, 0, "{}", report.status_reason);
    let other = dir.path().join("other.img");
    make_file(&other, SIZE);
    plant_markers(&other);
    let before = std::fs::read(&other).unwrap();
    let inspected = certwipe::device::inspect(&other, &certwipe::device::SystemUse::read()).unwrap();
    let plan = certwipe::method::Plan::from_method(certwipe::method::find("dod-short").unwrap(), 1).unwrap();
    let options = certwipe::engine::Options {
        verify: certwipe::report::VerifyMode::All,
        ..certwipe::engine::Options::default()
    };
    let mut journal = Checkpoint::start(&inspected.identity, &plan, &options);
    journal.passes = report.passes[..2].to_vec();
    journal.current = Some(InFlight {
        index: 3,
        content: report.passes[2].content.clone(),
        phase: Phase::Writing,
        offset: 0,
        started_at: report.started_at.clone(),
        seconds: 0.0,
        unwritten: Vec::new(),
        write: None,
        sample: None,
        bytes_read: 0,
        mismatches: Vec::new(),
        unreadable: Vec::new(),
    });
    write_journal(&other, &journal);
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--resume",
        "--method",
        "dod-short",
        "--verify",
        "all",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not hold what the interrupted wipe wrote"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&other).unwrap(), before, "refused: nothing written");
}
