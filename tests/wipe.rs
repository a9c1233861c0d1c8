//! End-to-end wipes of real image files and real loop devices: every method leaves
//! no marker anywhere and exactly the last pass on the medium.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use certwipe::device::{self, Medium, SystemUse};
use certwipe::engine::events::{Event, Observer};
use certwipe::engine::{self, Options};
use certwipe::method::{self, METHODS, Plan};
use certwipe::report::Phase;
use certwipe::report::{Report, SectorRange, Status, VerificationKind, VerificationResult, VerifyMode};
use certwipe::stream::RandomStream;
use common::*;

fn wipe_every_method(target: &Path) {
    for method in METHODS {
        plant_markers(target);
        let (code, report) = wipe_with_report(target, &["--method", method.id, "--verify", "all"]);
        assert_eq!(code, 0, "{}: {}", method.id, report.status_reason);
        assert_eq!(report.status, Status::Erased);
        assert_eq!(report.passes.len(), method.steps.len());
        assert_eq!(report.verification.passes_verified.len(), method.steps.len());
        assert_wiped(target, &report);
    }
}

#[test]
fn every_method_wipes_an_odd_sized_image_file_completely() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("odd.img");
    // Neither a multiple of the 4 MiB chunk nor of a sector.
    make_file(&image, (9 << 20) + 12_345);
    wipe_every_method(&image);
}

#[test]
fn every_method_wipes_loop_devices_of_both_sector_sizes_on_tmpfs_and_disk() {
    if !have_root() {
        return;
    }
    for backing in [Backing::Tmpfs, Backing::Disk] {
        for sector in [512, 4096] {
            // Several chunks plus a partial one.
            let device = LoopDevice::new(backing, (9 << 20) + 8192, sector);
            wipe_every_method(&device.path);
            let (_, report) = wipe_with_report(&device.path, &["--method", "zero"]);
            assert_eq!(report.target.logical_sector_size, sector, "{backing:?}");
            assert_eq!(report.target.kind, device::TargetKind::BlockDevice);
            assert_eq!(report.target.size_bytes, (9 << 20) + 8192);
            assert_eq!(report.cache_bypass, device::CacheBypass::ODirect);
        }
    }
}

#[test]
fn custom_pass_lists_and_rounds_keep_three_byte_patterns_in_phase() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("phase.img");
    make_file(&image, (8 << 20) + 1);
    plant_markers(&image);
    let (code, report) = wipe_with_report(&image, &["--passes", "random,0x924924", "--rounds", "2"]);
    assert_eq!(code, 0);
    assert_eq!(report.passes.len(), 4);
    assert_eq!(report.method.id, "custom");
    let content = read_all(&image);
    for (i, byte) in content.iter().enumerate() {
        assert_eq!(*byte, [0x92, 0x49, 0x24][i % 3], "byte {i}");
    }
    let seeds: Vec<_> = report
        .passes
        .iter()
        .filter_map(|p| match &p.content {
            certwipe::report::PassContent::Random(stream) => Some(stream.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(seeds.len(), 2);
    assert_ne!(seeds[0], seeds[1], "every random pass gets a fresh key");
}

/// Writes over one sector through a separate descriptor as soon as verification
/// starts: the medium no longer holds what was written.
struct Saboteur<'a> {
    target: &'a Path,
    offset: u64,
    done: AtomicBool,
}

impl Observer for Saboteur<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::PhaseStarted { phase: Phase::Verifying, .. } = event
            && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let file = open_raw(self.target);
            let junk = certwipe::buffer::AlignedBuf::new(4096);
            std::os::unix::fs::FileExt::write_all_at(&file, &junk, self.offset).unwrap();
            file.sync_all().unwrap();
        }
    }
}

fn wipe_with_saboteur(target: &Path, verify: VerifyMode, offset: u64) -> Report {
    let mut inspected = device::inspect(target, &SystemUse::read()).unwrap();
    let medium = Medium::open(&mut inspected, device::Access::ReadWrite).unwrap();
    let plan = Plan::from_method(method::find("random").unwrap(), 1).unwrap();
    let options = Options { verify, ..Options::default() };
    let saboteur = Saboteur { target, offset, done: AtomicBool::new(false) };
    engine::wipe(&medium, &inspected.identity, &plan, &options, &saboteur, &AtomicBool::new(false))
}

#[test]
fn verification_finds_exactly_the_sectors_changed_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("sabotaged.img");
    make_file(&image, 16 << 20);
    let offset = 5 * (1 << 20) + 8192; // 4096 bytes = sectors 10256..10264
    let report = wipe_with_saboteur(&image, VerifyMode::Last, offset);
    assert_eq!(report.status, Status::Failed, "{}", report.status_reason);
    let verification = report.passes[0].verification.as_ref().unwrap();
    assert_eq!(verification.result, VerificationResult::Failed);
    assert_eq!(verification.mismatches, vec![SectorRange { first_lba: offset / 512, sectors: 8 }]);
    assert!(report.final_content_digest.is_none());
}

#[test]
fn verification_on_a_loop_device_catches_a_change() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 16 << 20, 4096);
    let report = wipe_with_saboteur(&device.path, VerifyMode::Last, 12 << 20);
    assert_eq!(report.status, Status::Failed);
    let verification = report.passes[0].verification.as_ref().unwrap();
    assert_eq!(verification.mismatches, vec![SectorRange { first_lba: (12 << 20) / 4096, sectors: 1 }]);
}

#[test]
fn sampled_verification_covers_a_tenth_and_sees_the_first_sector() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("sampled.img");
    make_file(&image, 64 << 20);
    let (code, report) = wipe_with_report(&image, &["--verify", "sample"]);
    assert_eq!(code, 0);
    let verification = report.passes[0].verification.as_ref().unwrap();
    assert_eq!(verification.kind, VerificationKind::Sample);
    assert!(verification.coverage >= 0.10 && verification.coverage < 0.5, "{}", verification.coverage);
    let sample = verification.sample.as_ref().unwrap();
    assert_eq!(sample.subsections, 1000);
    // The recorded seed reproduces the positions, and they add up to what was read.
    let plan = certwipe::engine::sample::plan(64 << 20, 4096, sample.seed).unwrap();
    let planned: u64 = plan.ranges.iter().map(|r| r.end - r.start).sum();
    assert_eq!(planned, verification.bytes_read);

    // The first sector is always sampled: changing it fails a sampled verification.
    let report = wipe_with_saboteur(&image, VerifyMode::Sample, 0);
    assert_eq!(report.status, Status::Failed);
}

#[test]
fn json_mode_prints_only_ndjson_events_ending_in_done_then_records() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("json.img");
    make_file(&image, 6 << 20);
    let out = certwipe(&["wipe", "--yes", "--json", "--method", "dod-short", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "pass-end").count(), 3);
    assert!(kinds.contains(&"progress") && kinds.contains(&"verification-end"));
    let done = &events[events.len() - 2];
    assert_eq!(done["event"], "done");
    assert_eq!(done["status"], "erased");
    assert_eq!(done["report"]["passes"].as_array().unwrap().len(), 3);
    // Nothing was asked to be kept, so nothing was, and that is no problem.
    let records = events.last().unwrap();
    assert_eq!(records["event"], "records");
    assert_eq!(records["erased_and_recorded"], true);
    assert_eq!(records["certificate"], serde_json::Value::Null);
    assert_eq!(records["problems"], serde_json::json!([]));
}

#[test]
fn several_targets_run_together_with_a_report_each() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let images: Vec<_> = (0..3).map(|i| dir.path().join(format!("t{i}.img"))).collect();
    for image in &images {
        make_file(image, 5 << 20);
        plant_markers(image);
    }
    let mut args = vec!["wipe", "--yes", "--report", reports.to_str().unwrap()];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let out = certwipe(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for image in &images {
        let name = image.file_name().unwrap().to_str().unwrap();
        let entry = std::fs::read_dir(&reports)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no report for {name}"));
        let report: Report = serde_json::from_str(&std::fs::read_to_string(entry).unwrap()).unwrap();
        assert_wiped(image, &report);
    }
}

#[test]
fn an_aes_pass_is_what_stock_openssl_writes_and_chacha8_stays_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("aes.img");
    let size = (3 << 20) + 4096 + 512; // odd tail: O_DIRECT bulk and buffered tail
    make_file(&image, size);
    let (code, report) = wipe_with_report(&image, &["--prng", "aes-ctr"]);
    assert_eq!(code, 0);
    let certwipe::report::PassContent::Random(RandomStream::Aes128Ctr { key, iv }) =
        &report.passes[0].content
    else {
        panic!("--prng aes-ctr recorded {:?}", report.passes[0].content);
    };
    let written = read_all(&image);
    // The whole pass, and a window at an offset (`dd skip=`), from OpenSSL alone.
    let openssl = |skip_blocks: u64, blocks: u64| -> Vec<u8> {
        let script = format!(
            "openssl enc -aes-128-ctr -K {} -iv {} -nosalt < /dev/zero 2>/dev/null | dd bs=512 skip={skip_blocks} count={blocks} iflag=fullblock status=none",
            hex::encode(key),
            hex::encode(iv)
        );
        Command::new("sh").arg("-c").arg(script).output().unwrap().stdout
    };
    let whole = openssl(0, size / 512);
    assert_eq!(whole.len() as u64, size);
    assert!(whole == written, "the medium does not hold openssl's keystream");
    assert_eq!(openssl(4097, 8), written[4097 * 512..4105 * 512]);
    let (code, report) = wipe_with_report(&image, &["--prng", "chacha8"]);
    assert_eq!(code, 0);
    assert!(matches!(
        report.passes[0].content,
        certwipe::report::PassContent::Random(RandomStream::ChaCha8 { .. })
    ));
    assert_wiped(&image, &report);
}
