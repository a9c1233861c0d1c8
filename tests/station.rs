//! Station mode on real loop devices that appear and vanish while it runs (the
//! test-only `CERTWIPE_STATION_TEST_TRANSPORT=loop:DIR` makes the test's own loop
//! devices count as USB sticks; nothing else changes). The USB classifier and port
//! names are covered by unit tests against fake sysfs trees (station::scan).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::faulty::{Faults, FaultyDisk};
use common::*;
use serde_json::{Value, json};

/// A loop device made with LOOP_CTL_ADD at a high index (the kernel then sends a
/// real `add` uevent), with a file of the test's attached; removed on drop.
struct HotStick {
    path: PathBuf,
    index: u32,
    file: PathBuf,
}

const LOOP_CTL_ADD: libc::c_ulong = 0x4C80;
const LOOP_CTL_REMOVE: libc::c_ulong = 0x4C81;

fn loop_control(request: libc::c_ulong, index: u32) -> i32 {
    let control = std::fs::File::open("/dev/loop-control").unwrap();
    // SAFETY: LOOP_CTL_ADD/REMOVE take the index as a plain integer argument.
    unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&control), request, index as libc::c_ulong) }
}

impl HotStick {
    /// Plugs in a stick of `size` bytes backed by a new file in `dir`.
    fn plug(dir: &Path, size: u64) -> HotStick {
        Self::plug_with(dir, size, &[])
    }

    fn plug_with(dir: &Path, size: u64, flags: &[&str]) -> HotStick {
        let mut stick = Self::slot(PathBuf::new());
        stick.file = dir.join(format!("stick{}.img", stick.index));
        make_file(&stick.file, size);
        plant_markers(&stick.file);
        stick.attach(flags);
        stick
    }

    /// A new, empty loop device for `file` (attached by `attach`).
    fn slot(file: PathBuf) -> HotStick {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 200 + (std::process::id() % 50) * 20;
        loop {
            let index = base + NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
            if loop_control(LOOP_CTL_ADD, index) >= 0 {
                return HotStick { path: PathBuf::from(format!("/dev/loop{index}")), index, file };
            }
        }
    }

    fn attach(&self, flags: &[&str]) {
        for _ in 0..50 {
            if self.path.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Re-plugged right after a pull, the device may still be busy for a moment:
        // `losetup -d` only marks it for detaching while anything has it open.
        let (path, file) = (self.path.to_str().unwrap(), self.file.to_str().unwrap());
        losetup_retrying(&[&["--direct-io=on"][..], flags, &[path, file]].concat(), 50);
    }

    fn unplug(&self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

impl Drop for HotStick {
    fn drop(&mut self) {
        self.unplug();
        for _ in 0..20 {
            if loop_control(LOOP_CTL_REMOVE, self.index) >= 0 || !self.path.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running station with its NDJSON events collected.
struct Station {
    child: Child,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    dir: tempfile::TempDir,
    allowed: PathBuf,
}

/// The ledger numbers a station gives unless a test asks for others.
const DEFAULT_TEMPLATE: [&str; 2] = ["--asset-template", "USB-{date}-{seq:04}"];

impl Station {
    fn start(extra: &[&str]) -> Station {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// A station whose test override accepts the loop devices backed in `dir`,
    /// signing with `dir`'s station key (made here unless the test made it).
    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Station {
        let (key, allowed) = Self::key_in(dir.path());
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        let mut command = certwipe_command();
        command
            .env("CERTWIPE_STATION_TEST_TRANSPORT", format!("loop:{}", dir.path().display()))
            .args(["station", "--yes", "--json", "--cert-dir"])
            .arg(dir.path().join("certs"))
            .arg("--sign-key")
            .arg(&key)
            .arg("--allowed-signers")
            .arg(&allowed)
            .args(["--summary"])
            .arg(dir.path().join("summary.csv"))
            .args(extra)
            .args(if extra.contains(&"--asset-template") { &[][..] } else { &DEFAULT_TEMPLATE[..] })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not NDJSON: {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut station = Station { child, events, seen: Vec::new(), dir, allowed };
        station.wait_for("ready", |_| true);
        station
    }

    fn key_in(dir: &Path) -> (PathBuf, PathBuf) {
        let (key, allowed) = (dir.join("station_ed25519"), dir.join("allowed_signers"));
        if !key.exists() {
            let (_, line) = station_key(dir, "station_ed25519", "station-1");
            std::fs::write(&allowed, line).unwrap();
        }
        (key, allowed)
    }

    /// Waits for an event of `kind` matching `what` that no earlier wait took (a
    /// device name comes back when a stick is plugged in again); panics after a
    /// minute.
    fn wait_for(&mut self, kind: &str, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let matches = |e: &Value| e["event"] == kind && e.get("taken").is_none() && what(e);
        loop {
            if let Some(found) = self.seen.iter_mut().find(|e| matches(e)) {
                let event = found.clone();
                found["taken"] = Value::Bool(true);
                return event;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event; saw {:#?}", self.seen));
            self.seen.push(event);
        }
    }

    fn of(device: &Path) -> impl Fn(&Value) -> bool + '_ {
        move |e: &Value| e["path"] == device.to_str().unwrap()
    }

    fn finish(mut self) -> (i32, Vec<Value>, tempfile::TempDir) {
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(event);
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (code, std::mem::take(&mut self.seen), dir)
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn verify_certificate(station_dir: &Path, allowed: &Path, certificate: &str) {
    let out = certwipe(&["cert", "verify", certificate, "--allowed-signers", allowed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(Path::new(certificate).starts_with(station_dir));
}

#[test]
fn sticks_plugged_in_one_then_two_at_once_are_certified_and_a_present_disk_is_never_touched() {
    if !have_root() {
        return;
    }
    // A loop device present before the station starts, backed where the test
    // override would accept it: only the start-up snapshot keeps it safe.
    let dir = tempfile::tempdir().unwrap();
    let present = HotStick::plug(dir.path(), 8 << 20);
    let before = std::fs::read(&present.file).unwrap();
    let mut station = Station::start_in(dir, &["--stop-after", "3"]);
    let first = HotStick::plug(station.dir.path(), 16 << 20);
    // The present device announces itself while the station runs.
    std::fs::write(format!("/sys/block/loop{}/uevent", present.index), "change").unwrap();
    let done = station.wait_for("done", Station::of(&first.path));
    assert_eq!(done["status"], "erased", "{done}");
    let certificate = done["certificate"].as_str().unwrap().to_string();
    verify_certificate(station.dir.path(), &station.allowed, &certificate);
    let cert: Value = serde_json::from_slice(&std::fs::read(&certificate).unwrap()).unwrap();
    assert!(cert["records"]["asset_number"].as_str().unwrap().ends_with("-0001"), "{}", cert["records"]);
    assert!(!contains_marker(&read_all(&first.path)));
    let two = [HotStick::plug(station.dir.path(), 16 << 20), HotStick::plug(station.dir.path(), 24 << 20)];
    for stick in &two {
        let done = station.wait_for("done", Station::of(&stick.path));
        assert_eq!(done["status"], "erased", "{done}");
        assert!(!contains_marker(&read_all(&stick.path)));
    }
    let (code, events, dir) = station.finish();
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(std::fs::read(&present.file).unwrap(), before, "a device present at start was touched");
    assert!(!events.iter().any(|e| e["path"] == present.path.to_str().unwrap()), "{events:#?}");
    // Other processes' loop devices show as refused; the test's own sticks were erased.
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(summary.as_bytes());
    let ours: Vec<String> =
        [&first.path, &two[0].path, &two[1].path].iter().map(|p| p.display().to_string()).collect();
    let statuses: Vec<String> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| ours.contains(&r[1].to_string()))
        .map(|r| r[4].to_string())
        .collect();
    assert_eq!(statuses, ["erased", "erased", "erased"], "{summary}");
    let totals = csv::Reader::from_reader(summary.as_bytes()).records().last().unwrap().unwrap();
    assert_eq!(&totals[0], "total", "{summary}");
    assert!(totals[5].starts_with("3 erased, 0 failed, "), "{summary}");
}

#[test]
fn a_stick_pulled_mid_wipe_fails_the_station_carries_on_and_plugging_it_back_resumes() {
    if !have_root() {
        return;
    }
    let mut station = Station::start(&["--stop-after", "3", "--verify", "last"]);
    // The stick pulls itself once 8 MiB are written: mid-pass, however busy the machine.
    let faults = Faults { pull_after_written: Some(8 << 20), ..Faults::default() };
    let mut flaky = FaultyDisk::new_in(station.dir.path(), 24 << 20, 512, faults);
    let device = flaky.path().to_path_buf();
    assert_eq!(station.wait_for("started", Station::of(&device))["resuming"], false);
    let done = station.wait_for("done", Station::of(&device));
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["reason"].as_str().unwrap().contains("it was removed, or it failed"), "{done}");
    // The station carries on with the next stick.
    let other = HotStick::plug(station.dir.path(), 8 << 20);
    assert_eq!(station.wait_for("done", Station::of(&other.path))["status"], "erased");
    // Plugged in again: recognised, resumed, finished.
    flaky.unplug();
    flaky.set(|f| {
        f.pulled = false;
        f.pull_after_written = None;
    });
    flaky.replug(512);
    let again = flaky.path().to_path_buf();
    let started = station.wait_for("started", Station::of(&again));
    let story: Vec<String> = station
        .seen
        .iter()
        .filter(|e| e["event"] != "progress")
        .map(|e| format!("{} {} {} {}", e["event"], e["path"], e["message"], e["reason"]))
        .collect();
    assert_eq!(started["resuming"], true, "{started} after {story:#?}");
    let done = station.wait_for("done", Station::of(&again));
    assert_eq!(done["status"], "erased", "{done}");
    let cert: Value =
        serde_json::from_slice(&std::fs::read(done["certificate"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(cert["sanitization"]["interruptions"].as_array().unwrap().len(), 1);
    let (code, seen, _) = station.finish();
    assert_eq!(code, 1, "a medium failed, so the station exits 1");
    // The station speaks the same event schema as wipe: pulled media included.
    let lines: String = seen.iter().map(|e| format!("{e}\n")).collect();
    if let Some(verdict) = events_accepted(&lines) {
        verdict.unwrap();
    }
    for pulled in seen.iter().filter(|e| e["event"] == "done" && e["pulled_while_wiping"] == true) {
        assert!(pulled["status"] != "erased" || pulled["finished_before_pulled"] == true, "{pulled}");
    }
}

#[test]
fn what_the_station_refuses_it_leaves_alone() {
    if !have_root() {
        return;
    }
    let mut station = Station::start(&["--min-size", "4MiB", "--max-size", "64MiB", "--stop-after", "2"]);
    let dir = station.dir.path().to_path_buf();
    let small = HotStick::plug(&dir, 1 << 20);
    let large = HotStick::plug(&dir, 128 << 20);
    let read_only = HotStick::plug_with(&dir, 8 << 20, &["-r"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = HotStick::plug(elsewhere.path(), 8 << 20);
    for (stick, reason) in [
        (&small, "below --min-size"),
        (&large, "above --max-size"),
        (&read_only, "read-only"),
        (&foreign, "USB media only"),
    ] {
        let refused = station.wait_for("refused", Station::of(&stick.path));
        assert!(refused["reason"].as_str().unwrap().contains(reason), "{refused}");
        assert!(contains_marker(&read_all(&stick.path)), "a refused stick was written");
    }
    // A stick erased once is not wiped again by the same run when plugged back in.
    let stick = HotStick::plug(&dir, 8 << 20);
    assert_eq!(station.wait_for("done", Station::of(&stick.path))["status"], "erased");
    stick.unplug();
    plant_markers(&stick.file);
    stick.attach(&[]);
    let refused = station.wait_for("refused", |e| {
        e["path"] == stick.path.to_str().unwrap() && e["reason"].as_str().unwrap().contains("already done")
    });
    assert!(refused["reason"].as_str().unwrap().contains("--again"));
    assert!(contains_marker(&std::fs::read(&stick.file).unwrap()));
    let last = HotStick::plug(&dir, 8 << 20);
    assert_eq!(station.wait_for("done", Station::of(&last.path))["status"], "erased");
    let (code, _, _) = station.finish();
    assert_eq!(code, 0);
}

#[test]
fn ctrl_c_stops_the_station_and_leaves_a_resumable_journal() {
    if !have_root() {
        return;
    }
    let mut station = Station::start(&[]);
    // Five seconds a pass, so Ctrl-C arrives long before the wipe could finish.
    let faults = Faults { delay_per_mib: Duration::from_millis(300), ..Faults::default() };
    let slow = FaultyDisk::new_in(station.dir.path(), 16 << 20, 512, faults);
    let device = slow.path().to_path_buf();
    station.wait_for("progress", |e| e["path"] == device.to_str().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(station.child.id() as i32), nix::sys::signal::SIGINT)
        .unwrap();
    let done = station.wait_for("done", Station::of(&device));
    assert_eq!(done["status"], "aborted", "{done}");
    let (code, _, _) = station.finish();
    assert_eq!(code, 1);
    assert!(journal_path(&device).exists(), "no journal kept for {}", device.display());
}

#[test]
fn with_a_ledger_each_stick_is_filed_under_its_number_and_the_ledgers_rules_hold() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, allowed) = Station::key_in(dir.path());
    let ledger = dir.path().join("ledger.sqlite");
    let in_ledger = |args: &[&str]| {
        let out = ledger_at(ledger.to_str().unwrap(), &key, &allowed, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    in_ledger(&["init", "--allowed-signers", allowed.to_str().unwrap()]);
    // The numbers the station's template gives the first and third stick (no
    // date in it, which could change between here and the station near midnight).
    let number = |seq: u32| format!("LEDGER-{seq:04}");
    in_ledger(&["register", &number(1), "--type", "usb", "--classification", "secret"]);
    in_ledger(&["register", &number(3), "--type", "usb", "--classification", "top-secret"]);
    in_ledger(&["register", &number(4), "--type", "usb", "--classification", "secret"]);
    let mut station = Station::start_in(
        dir,
        &[
            &["--stop-after", "2", "--ledger", ledger.to_str().unwrap(), "--classification", "secret"][..],
            &["--asset-template", "LEDGER-{seq:04}"],
        ]
        .concat(),
    );
    // One at a time, so that each gets the next sequence number.
    let mut sticks = Vec::new();
    for expected in ["started", "refused", "refused", "started"] {
        let stick = HotStick::plug(station.dir.path(), 8 << 20);
        station.wait_for(expected, Station::of(&stick.path));
        sticks.push(stick);
    }

    let filed = station.wait_for("done", Station::of(&sticks[0].path));
    assert_eq!(
        (&filed["status"], &filed["erased_and_recorded"]),
        (&json!("erased"), &json!(true)),
        "{filed}"
    );
    // Not registered: refused before anything is written.
    let refused = station.seen.iter().find(|e| e["event"] == "refused" && Station::of(&sticks[1].path)(e));
    let refused = refused.unwrap().to_string();
    assert!(
        refused.contains(&format!("no medium in the ledger has asset number {}", number(2))),
        "{refused}"
    );
    assert!(contains_marker(&read_all(&sticks[1].path)));
    // A secret certificate for a top-secret medium would be a downgrade: every
    // rule the ledger applies is checked before the first byte, so the stick
    // is refused and left as it was.
    let refused = station.seen.iter().find(|e| e["event"] == "refused" && Station::of(&sticks[2].path)(e));
    let refused = refused.unwrap().to_string();
    assert!(refused.contains("can never be lowered"), "{refused}");
    assert!(contains_marker(&read_all(&sticks[2].path)), "a refused stick was written");
    let fourth = station.wait_for("done", Station::of(&sticks[3].path));
    assert_eq!(fourth["erased_and_recorded"], json!(true), "{fourth}");
    let (code, _, _dir) = station.finish();
    assert_eq!(code, 0, "refusals are not failures");

    let history: Value = serde_json::from_str(&in_ledger(&["show", &number(1), "--json"])).unwrap();
    let kinds: Vec<&str> =
        history["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["register", "certificate"]);
    let certificate: Value =
        serde_json::from_slice(&std::fs::read(filed["certificate"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(history["history"][1]["data"]["certificate_id"], certificate["certificate_id"], "{history:#}");
    let untouched: Value = serde_json::from_str(&in_ledger(&["show", &number(3), "--json"])).unwrap();
    assert_eq!(untouched["history"].as_array().unwrap().len(), 1);
    assert_eq!(untouched["medium"]["classification"], "top-secret");
}

/// `len` bytes no other file has, at the start of `file`.
fn make_unique(file: &Path, len: usize) {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&handle, &bytes, 0).unwrap();
}

/// Issue 21: a disk present at start with no serial whose link resets comes
/// back as a "new" device (a new disk sequence number, maybe another name).
/// It is recognised by its content and refused, under the same number and
/// under another; a different medium under its old number is wiped.
#[test]
fn a_medium_present_at_start_that_re_enumerates_is_never_wiped() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut present = HotStick::plug(dir.path(), 8 << 20);
    make_unique(&present.file, 4096);
    let before = std::fs::read(&present.file).unwrap();
    let mut station = Station::start_in(dir, &["--stop-after", "1"]);
    // The link resets: the same file back under the same number.
    present.unplug();
    present.attach(&[]);
    let refused = station.wait_for("refused", Station::of(&present.path)).to_string();
    assert!(refused.contains("present when the station started"), "{refused}");
    assert!(refused.contains(&format!("what loop{} held", present.index)), "{refused}");
    // And under another number.
    present.unplug();
    let moved = HotStick::slot(present.file.clone());
    moved.attach(&[]);
    let refused = station.wait_for("refused", Station::of(&moved.path)).to_string();
    assert!(refused.contains("present when the station started"), "{refused}");
    moved.unplug();
    drop(moved);
    // A different medium under the old number is a new medium: wiped.
    let fresh = station.dir.path().join("fresh.img");
    make_file(&fresh, 8 << 20);
    plant_markers(&fresh);
    make_unique(&fresh, 4096);
    present.file = fresh.clone();
    present.attach(&[]);
    let done = station.wait_for("done", Station::of(&present.path));
    assert_eq!(done["status"], "erased", "{done}");
    let (code, _, dir) = station.finish();
    assert_eq!(code, 0);
    assert!(!contains_marker(&std::fs::read(&fresh).unwrap()));
    let original = dir.path().join(format!("stick{}.img", present.index));
    assert_eq!(std::fs::read(original).unwrap(), before, "the medium present at start was written");
}

/// Issue 21: `--protect` names media by what they are; a medium carrying a
/// protected file-system UUID is refused by the station and by `wipe`.
#[test]
fn a_protected_file_system_is_never_wiped() {
    const UUID: &str = "3f8a5c2e-9d41-4b7a-8e6f-1c2d3e4f5a6b";
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("backup.img");
    make_file(&image, 8 << 20);
    let made = Command::new("mkfs.ext4").args(["-q", "-F", "-U", UUID]).arg(&image).status();
    if !made.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "CI installs e2fsprogs");
        return;
    }
    let before = std::fs::read(&image).unwrap();
    let out = certwipe(&["wipe", "--yes", "--protect", &UUID.to_uppercase(), image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("it is protected ({} is in", UUID.to_uppercase())),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&image).unwrap(), before);
    if !have_root() {
        return;
    }
    let mut station = Station::start_in(dir, &["--stop-after", "1", "--protect", UUID]);
    let stick = HotStick::slot(image.clone());
    stick.attach(&[]);
    let refused = station.wait_for("refused", Station::of(&stick.path)).to_string();
    assert!(refused.contains("it is protected"), "{refused}");
    let other = HotStick::plug(station.dir.path(), 8 << 20);
    assert_eq!(station.wait_for("done", Station::of(&other.path))["status"], "erased");
    let (code, _, _dir) = station.finish();
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&image).unwrap(), before, "a protected medium was written");
}
