//! Bad sectors, transient errors and pulled drives on a real (FUSE-backed) loop
//! device: the report lists exactly the sectors that failed, and nothing more is claimed.

mod common;

use std::ops::Range;

use certwipe::report::{Report, SectorRange, Status, VerificationResult};
use common::faulty::{Faults, FaultyDisk};
use common::*;

const MIB: u64 = 1 << 20;

fn sectors(range: Range<u64>, sector: u64) -> SectorRange {
    SectorRange { first_lba: range.start / sector, sectors: (range.end - range.start) / sector }
}

/// The disk's content equals the last pass everywhere outside `except`.
fn assert_holds_last_pass_except(disk: &FaultyDisk, report: &Report, except: &[Range<u64>]) {
    disk.set(|faults| *faults = Faults::default());
    let content = std::fs::read(disk.backing()).unwrap();
    let expected = expected_last_pass(report, content.len());
    for (offset, (got, want)) in content.iter().zip(&expected).enumerate() {
        let offset = offset as u64;
        if got != want && !except.iter().any(|r| r.contains(&offset)) {
            panic!("byte {offset} does not hold the last pass");
        }
    }
}

#[test]
fn unwritable_sectors_at_start_middle_end_and_across_chunks_are_listed_exactly() {
    if !have_root() {
        return;
    }
    let bad = vec![
        0..1024,                          // the first two sectors
        4 * MIB - 512..4 * MIB + 1024,    // across the first chunk boundary
        10 * MIB + 1536..10 * MIB + 2048, // one sector in the middle
        16 * MIB - 512..16 * MIB,         // the last sector
    ];
    let disk = FaultyDisk::new(16 * MIB, 512, Faults { bad_writes: bad.clone(), ..Faults::default() });
    let (code, report) = wipe_with_report(disk.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(report.status, Status::Incomplete, "{}", report.status_reason);
    let pass = &report.passes[0];
    let expected: Vec<SectorRange> = bad.iter().map(|r| sectors(r.clone(), 512)).collect();
    assert_eq!(pass.unwritten, expected);
    let bad_bytes: u64 = bad.iter().map(|r| r.end - r.start).sum();
    assert_eq!(pass.bytes_written, 16 * MIB - bad_bytes);
    // Verification read everything; the unwritten sectors are not counted twice.
    let verification = pass.verification.as_ref().unwrap();
    assert!(verification.mismatches.is_empty() && verification.unreadable.is_empty());
    assert_eq!(report.retried_io_errors, 0, "bad sectors are not transient errors");
    assert!(report.status_reason.contains("7 sector(s) could not be written"), "{}", report.status_reason);
    assert_holds_last_pass_except(&disk, &report, &bad);
}

#[test]
fn a_bad_4k_sector_is_one_sector_on_a_4kn_device() {
    if !have_root() {
        return;
    }
    let bad = 3 * MIB + 8192..3 * MIB + 12288;
    let disk = FaultyDisk::new(8 * MIB, 4096, Faults { bad_writes: vec![bad.clone()], ..Faults::default() });
    let (code, report) = wipe_with_report(disk.path(), &["--method", "zero"]);
    assert_eq!(code, 1);
    assert_eq!(report.passes[0].unwritten, vec![sectors(bad.clone(), 4096)]);
    assert_holds_last_pass_except(&disk, &report, &[bad]);
}

#[test]
fn unreadable_sectors_are_found_by_verification_only() {
    if !have_root() {
        return;
    }
    let bad = vec![5 * MIB..5 * MIB + 4096, 12 * MIB - 512..12 * MIB];
    let disk = FaultyDisk::new(12 * MIB, 512, Faults { bad_reads: bad.clone(), ..Faults::default() });
    let (code, report) = wipe_with_report(disk.path(), &["--method", "dod-short"]);
    assert_eq!(code, 1);
    assert_eq!(report.status, Status::Incomplete);
    assert!(report.passes.iter().all(|p| p.unwritten.is_empty() && p.bytes_written == 12 * MIB));
    let verification = report.passes[2].verification.as_ref().unwrap();
    assert_eq!(verification.result, VerificationResult::Incomplete);
    assert_eq!(verification.unreadable, bad.iter().map(|r| sectors(r.clone(), 512)).collect::<Vec<_>>());
    assert!(verification.mismatches.is_empty());
    assert_holds_last_pass_except(&disk, &report, &[]);
}

#[test]
fn transient_errors_are_retries_not_bad_sectors() {
    if !have_root() {
        return;
    }
    let faults = Faults {
        transient: vec![(2 * MIB..2 * MIB + 512, 2), (7 * MIB..7 * MIB + 4096, 1)],
        ..Faults::default()
    };
    let disk = FaultyDisk::new(8 * MIB, 512, faults);
    let (code, report) = wipe_with_report(disk.path(), &[]);
    assert_eq!(code, 0, "{}", report.status_reason);
    assert_eq!(report.status, Status::Erased);
    assert!(report.passes[0].unwritten.is_empty());
    assert!(report.retried_io_errors >= 2, "retries counted: {}", report.retried_io_errors);
    assert!(report.errors.entries.iter().all(|e| e.message.contains("succeeded when retried")));
    assert_holds_last_pass_except(&disk, &report, &[]);
}

#[test]
fn a_pulled_drive_fails_quickly_and_the_other_targets_carry_on() {
    if !have_root() {
        return;
    }
    let disk =
        FaultyDisk::new(32 * MIB, 512, Faults { pull_after_written: Some(9 * MIB), ..Faults::default() });
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("healthy.img");
    make_file(&image, 16 * MIB);
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let out = certwipe(&[
        "wipe",
        "--yes",
        "--report",
        reports.to_str().unwrap(),
        disk.path().to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report_for = |name: &str| -> Report {
        let path = std::fs::read_dir(&reports)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(name))
            .unwrap();
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let pulled = report_for(&disk.device.as_ref().unwrap().name());
    assert_eq!(pulled.status, Status::Failed);
    assert!(pulled.status_reason.contains("stopped answering"), "{}", pulled.status_reason);
    let pass = &pulled.passes[0];
    assert!(!pass.completed && pass.bytes_written >= 8 * MIB && pass.bytes_written < 32 * MIB);
    // No sector-by-sector retry storm: a handful of failed requests, not thousands.
    let failed = disk.faults.lock().unwrap().failed_requests;
    assert!(failed < 100, "{failed} failed requests");
    assert_eq!(report_for("healthy").status, Status::Erased);
}

#[test]
fn sigint_aborts_cleanly_with_a_report_of_how_far_it_got() {
    if !have_root() {
        return;
    }
    let disk = FaultyDisk::new(
        48 * MIB,
        512,
        Faults { delay_per_mib: std::time::Duration::from_millis(8), ..Faults::default() },
    );
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let child = certwipe_command()
        .args(["wipe", "--yes", "--report", report_path.to_str().unwrap(), disk.path().to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // From 4 MiB on, a quarter of a second a MiB: the signal lands mid-pass.
    wait_for_bytes(&disk, 4 * MIB, std::time::Duration::from_millis(250));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    disk.set(|f| f.delay_per_mib = std::time::Duration::ZERO);
    assert_eq!(out.status.code(), Some(1));
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report.status, Status::Aborted);
    let pass = &report.passes[0];
    assert!(!pass.completed && pass.bytes_written > 0 && pass.bytes_written < 48 * MIB);
    // What the report says was written, was written.
    let content = std::fs::read(disk.backing()).unwrap();
    let expected = expected_last_pass(&report, content.len());
    let written = pass.bytes_written as usize;
    assert!(content[..written] == expected[..written]);
}

/// Waits until `bytes` are written, and at that moment (under the disk's lock, so
/// no further write slips through) makes the disk take `per_mib` a MiB from then on.
fn wait_for_bytes(disk: &FaultyDisk, bytes: u64, per_mib: std::time::Duration) {
    wait_until(&format!("{bytes} bytes written"), || {
        let mut faults = disk.faults.lock().unwrap();
        let reached = faults.bytes_written >= bytes;
        if reached {
            faults.delay_per_mib = per_mib;
        }
        reached
    });
}

#[test]
fn a_second_sigint_exits_at_once() {
    if !have_root() {
        return;
    }
    // So slow that a clean stop would take long: the second Ctrl-C must not wait for it.
    let disk = FaultyDisk::new(
        16 * MIB,
        512,
        Faults { delay_per_mib: std::time::Duration::from_millis(500), ..Faults::default() },
    );
    let child = certwipe_command()
        .args(["wipe", "--yes", disk.path().to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // From the first write on, 1 s a MiB: a clean stop would take seconds.
    wait_for_bytes(&disk, 1, std::time::Duration::from_secs(1));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGINT).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    nix::sys::signal::kill(pid, nix::sys::signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
}

#[test]
fn a_device_that_reads_but_no_longer_writes_is_given_up_not_retried_forever() {
    if !have_root() {
        return;
    }
    // Worn-out flash turns read-only: every write fails, every read (the liveness probe) works.
    let disk = FaultyDisk::new(16 * MIB, 512, Faults { bad_writes: vec![0..16 * MIB], ..Faults::default() });
    let (code, report) = wipe_with_report(disk.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(report.status, Status::Failed, "{}", report.status_reason);
    assert!(report.status_reason.contains("no longer accepts"), "{}", report.status_reason);
    assert_eq!(report.passes[0].bytes_written, 0);
}
