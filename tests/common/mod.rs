//! Shared test fixtures: image files, loop devices the test created itself (detached
//! by a guard even when the test fails), marker data, and running the binary.
#![allow(dead_code)] // each test file uses its own subset

pub mod faulty;
pub mod page;
pub mod postgres;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use certwipe::report::{PassContent, Report};
use certwipe::stream::RandomStream;

pub const MARKER: &[u8] = b"CERTWIPE-TEST-MARKER";

/// Loop tests need root. In CI they must run; elsewhere they are skipped with a note.
pub fn have_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI must run the loop-device tests as root");
        eprintln!("skipping: loop-device tests need root");
    }
    root
}

/// Where backing files live: tmpfs or a disk-backed file system.
#[derive(Clone, Copy, Debug)]
pub enum Backing {
    Tmpfs,
    Disk,
}

pub fn scratch_dir(backing: Backing) -> tempfile::TempDir {
    match backing {
        Backing::Tmpfs => tempfile::tempdir_in("/dev/shm").unwrap(),
        Backing::Disk => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
    }
}

pub fn make_file(path: &Path, size: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
}

/// A loop device attached to a file this test made; detached on drop.
pub struct LoopDevice {
    pub path: PathBuf,
    pub backing: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    pub fn new(backing: Backing, size: u64, sector: u32) -> LoopDevice {
        Self::with_flags(backing, size, sector, &[])
    }

    pub fn with_flags(backing: Backing, size: u64, sector: u32, flags: &[&str]) -> LoopDevice {
        let dir = scratch_dir(backing);
        let file = dir.path().join("backing.img");
        make_file(&file, size);
        Self::attach(dir, file, sector, flags)
    }

    pub fn attach(dir: tempfile::TempDir, file: PathBuf, sector: u32, flags: &[&str]) -> LoopDevice {
        let sector = sector.to_string();
        let mut args = vec!["-f", "--show", "--direct-io=on", "--sector-size", &sector];
        args.extend_from_slice(flags);
        args.push(file.to_str().unwrap());
        // `losetup -f` can race with a parallel test for the same free device.
        let out = losetup_retrying(&args, 5);
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        LoopDevice { path, backing: file, _dir: dir }
    }

    pub fn name(&self) -> String {
        self.path.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// Runs `losetup args`, trying again every 100 ms up to `attempts` times while the
/// device it wants is busy; panics if it never succeeds.
pub fn losetup_retrying(args: &[&str], attempts: u32) -> Output {
    for _ in 0..attempts {
        let out = Command::new("losetup").args(args).output().unwrap();
        if out.status.success() {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("losetup {args:?} failed {attempts} times");
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// A mount made by a test; unmounted on drop (before its loop device detaches).
pub struct Mount {
    pub dir: tempfile::TempDir,
}

impl Mount {
    pub fn ext4(device: &Path) -> Mount {
        Self::make_and_mount(device, "rw")
    }

    pub fn ext4_read_only(device: &Path) -> Mount {
        Self::make_and_mount(device, "ro")
    }

    fn make_and_mount(device: &Path, options: &str) -> Mount {
        let status = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(device).status().unwrap();
        assert!(status.success(), "mkfs.ext4 failed");
        let dir = tempfile::tempdir().unwrap();
        let status =
            Command::new("mount").args(["-o", options]).arg(device).arg(dir.path()).status().unwrap();
        assert!(status.success(), "mount failed");
        Mount { dir }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Opens a target for raw access from the test, bypassing the cache like the tool.
pub fn open_raw(path: &Path) -> File {
    let direct = OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(path);
    direct.unwrap_or_else(|_| OpenOptions::new().read(true).write(true).open(path).unwrap())
}

pub fn size_of(path: &Path) -> u64 {
    let mut file = File::open(path).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap()
}

/// Reads a whole target (page cache bypassed for block devices).
pub fn read_all(path: &Path) -> Vec<u8> {
    let size = size_of(path) as usize;
    let file = open_raw(path);
    let mut buf = certwipe::buffer::AlignedBuf::new(size);
    let aligned = size - size % 4096;
    file.read_exact_at(&mut buf[..aligned], 0).unwrap();
    if aligned < size {
        let plain = File::open(path).unwrap();
        plain.read_exact_at(&mut buf[aligned..size], aligned as u64).unwrap();
    }
    buf[..size].to_vec()
}

/// Fills a target with marker text in every 512-byte sector, so a byte the wipe
/// missed is found anywhere.
pub fn plant_markers(path: &Path) {
    let size = size_of(path) as usize;
    let mut data = vec![0u8; size];
    for (index, sector) in data.chunks_mut(512).enumerate() {
        let text = format!("{}-{index:012}-", String::from_utf8_lossy(MARKER));
        for (i, byte) in sector.iter_mut().enumerate() {
            *byte = text.as_bytes()[i % text.len()];
        }
    }
    write_all(path, &data);
}

pub fn write_all(path: &Path, data: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(data, 0).unwrap();
    file.sync_all().unwrap();
}

pub fn contains_marker(data: &[u8]) -> bool {
    data.windows(MARKER.len()).any(|w| w == MARKER)
}

/// What the report says the last pass wrote, regenerated from its record.
pub fn expected_last_pass(report: &Report, size: usize) -> Vec<u8> {
    let last = report.passes.last().unwrap();
    let mut expected = vec![0u8; size];
    last.content.data().expect("reproducible content").fill(0, &mut expected);
    expected
}

/// The binary, with its checkpoint journals kept under the build directory rather
/// than the machine's /var/lib/certwipe.
pub fn certwipe_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_certwipe"));
    command.env("CERTWIPE_STATE_DIR", state_dir()).stdin(Stdio::null());
    command
}

pub fn state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("certwipe-state")
}

/// Where certwipe keeps the checkpoint journal of `target`'s wipe.
pub fn journal_path(target: &Path) -> PathBuf {
    let inspected = certwipe::device::inspect(target, &certwipe::device::SystemUse::read()).unwrap();
    certwipe::engine::checkpoint::FileJournal::path_for(&state_dir(), &inspected.identity)
}

/// Runs `act` while the process `pid` is stopped (SIGSTOP, then SIGCONT), so that
/// what the test does lands at the point of the run it observed, however busy
/// the machine.
pub fn while_stopped<T>(pid: u32, act: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{Signal, kill};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    // SIGSTOP takes effect as each thread leaves the kernel: wait until all have.
    let tasks = format!("/proc/{pid}/task");
    let stopped = |task: std::fs::DirEntry| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        stat.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('T'))
    };
    wait_until("the process to stop", || std::fs::read_dir(&tasks).unwrap().flatten().all(stopped));
    let result = act();
    kill(pid, Signal::SIGCONT).unwrap();
    result
}

/// Polls `done` every 10 ms for up to a minute; panics with `what` if it never holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited a minute for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn certwipe(args: &[&str]) -> Output {
    certwipe_command().args(args).output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `certwipe wipe --yes` with a report, returning the exit code and report.
pub fn wipe_with_report(target: &Path, extra: &[&str]) -> (i32, Report) {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut args = vec!["wipe", "--yes", "--report", report_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(target.to_str().unwrap());
    let out = certwipe(&args);
    let text = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr: {}", stderr(&out)));
    (out.status.code().unwrap(), serde_json::from_str(&text).unwrap())
}

/// Asserts a finished wipe left exactly the last pass everywhere and no marker.
pub fn assert_wiped(target: &Path, report: &Report) {
    let content = read_all(target);
    assert_eq!(content.len() as u64, report.target.size_bytes);
    assert!(!contains_marker(&content), "a marker survived on {}", target.display());
    let expected = expected_last_pass(report, content.len());
    if let Some(offset) = content.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!("{}: byte {offset} differs from the last pass ({:?})", target.display(), report.passes.last());
    }
    for pass in &report.passes {
        assert_eq!(pass.bytes_written, report.target.size_bytes, "pass {}", pass.index);
        assert!(pass.completed && pass.unwritten.is_empty());
        match &pass.content {
            PassContent::Random(RandomStream::ChaCha8 { seed }) => assert_ne!(seed.0, [0u8; 32]),
            PassContent::Random(RandomStream::Aes128Ctr { key, .. }) => assert_ne!(*key, [0u8; 16]),
            PassContent::Fixed { .. } => {}
        }
    }
}

/// `certwipe cert countersign CERT` by `key` in `role` as `name`, checked
/// against `allowed`; `extra` adds options such as `--title`.
pub fn countersign(
    cert: &Path,
    key: &Path,
    role: &str,
    name: &str,
    allowed: &Path,
    extra: &[&str],
) -> Output {
    let (cert, key, allowed) = (cert.to_str().unwrap(), key.to_str().unwrap(), allowed.to_str().unwrap());
    let args = [
        "cert",
        "countersign",
        cert,
        "--sign-key",
        key,
        "--role",
        role,
        "--name",
        name,
        "--allowed-signers",
        allowed,
    ];
    certwipe(&[&args[..], extra].concat())
}

/// A station key made by `certwipe keygen` in `dir`; returns the key and its
/// allowed_signers line.
pub fn station_key(dir: &Path, name: &str, principal: &str) -> (PathBuf, Vec<u8>) {
    key_for(dir, name, principal, &["station"])
}

/// A key made by `certwipe keygen --role ROLE...` in `dir` (station, office,
/// validator, witness, approver); returns the key and its allowed_signers line.
pub fn key_for(dir: &Path, name: &str, principal: &str, roles: &[&str]) -> (PathBuf, Vec<u8>) {
    let key = dir.join(name);
    let mut args = vec!["keygen", "-f", key.to_str().unwrap(), "--no-passphrase", "--principal", principal];
    for role in roles {
        args.extend(["--role", role]);
    }
    let out = certwipe(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (key, out.stdout)
}

/// `SHA256:...` of the key at `key` (its `.pub` beside it), as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(format!("{}.pub", key.display())).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
}

/// A scratch directory with an image, a station key made by certwipe, and its
/// allowed_signers file.
pub struct Station {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub allowed: PathBuf,
}

impl Station {
    pub fn new() -> Station {
        let dir = tempfile::tempdir().unwrap();
        let (key, line) = station_key(dir.path(), "station_ed25519", "station-1");
        let allowed = dir.path().join("allowed_signers");
        std::fs::write(&allowed, line).unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        Station { dir, key, allowed }
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// Wipes `target` with a signed certificate; returns the certificate's path.
    pub fn wipe(&self, target: &Path, extra: &[&str]) -> PathBuf {
        let certs = self.certs();
        let mut args = vec![
            "wipe",
            "--yes",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--sign-key",
            self.key.to_str().unwrap(),
            "--asset",
            "LEDGER-0042",
            "--classification",
            "秘密",
            "--destination",
            "destruction",
            "--operator",
            "Li Wei",
        ];
        args.extend_from_slice(extra);
        args.push(target.to_str().unwrap());
        let out = certwipe(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // A certificate's file name keeps the start of a long medium name.
        let name: String = target.file_name().unwrap().to_str().unwrap().chars().take(40).collect();
        std::fs::read_dir(self.certs())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let file = p.file_name().unwrap().to_str().unwrap();
                file.starts_with(&name) && file.ends_with(".json") && !file.contains(".json.")
            })
            .expect("a certificate was written")
    }

    /// Re-signs `cert` with the station key using stock ssh-keygen, as an
    /// attacker holding the key (or a careless operator) would.
    pub fn resign(&self, cert: &Path) {
        let _ = std::fs::remove_file(certwipe::cert::files::signature_path(cert));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "certwipe", "-f"])
            .arg(&self.key)
            .arg(cert)
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn verify(&self, cert: &Path) -> (i32, String) {
        let out = certwipe(&[
            "cert",
            "verify",
            cert.to_str().unwrap(),
            "--allowed-signers",
            self.allowed.to_str().unwrap(),
        ]);
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out))
    }
}

/// Stock OpenSSH: `ssh-keygen -Y verify -f allowed -I principal -n certwipe -s SIG < FILE`.
pub fn ssh_keygen_verifies(allowed: &Path, principal: &str, signature: &Path, file: &Path) -> bool {
    ssh_keygen_verifies_at(allowed, principal, signature, file, None)
}

/// As [`ssh_keygen_verifies`], in another namespace (`certwipe-ledger`, `certwipe-witness`...).
pub fn ssh_keygen_verifies_in(
    allowed: &Path,
    principal: &str,
    namespace: &str,
    signature: &Path,
    file: &Path,
) -> bool {
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", principal, "-n", namespace, "-s"])
        .arg(signature)
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// As [`ssh_keygen_verifies`], as of `verify_time` (`YYYYMMDDhhmmss`) when given.
pub fn ssh_keygen_verifies_at(
    allowed: &Path,
    principal: &str,
    signature: &Path,
    file: &Path,
    verify_time: Option<&str>,
) -> bool {
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", principal, "-n", "certwipe", "-s"])
        .arg(signature)
        .args(verify_time.map(|t| format!("-Overify-time={t}")))
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Whether `document` matches docs/certificate.schema.json (Python's
/// jsonschema); `None` where jsonschema is missing (never in CI).
pub fn schema_accepts(document: &Path) -> Option<bool> {
    validate_with("certificate.schema.json", document, "[json.load(open(sys.argv[1]))]").map(|r| r.is_ok())
}

/// Whether every line of `events` (certwipe's `--json` output) is valid
/// under docs/events.schema.json: `Err` names the first that is not; `None`
/// when python's jsonschema is missing (outside CI).
pub fn events_accepted(events: &str) -> Option<Result<(), String>> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), events).unwrap();
    validate_with(
        "events.schema.json",
        file.path(),
        "[json.loads(l) for l in open(sys.argv[1]) if l.strip()]",
    )
}

/// Validates the documents `load` reads from `document` against `schema` in docs/.
fn validate_with(schema: &str, document: &Path, load: &str) -> Option<Result<(), String>> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(schema);
    let program = format!(
        "import json,sys,jsonschema\nschema=json.load(open(sys.argv[2]))\nfor d in {load}:\n    jsonschema.validate(d, schema)"
    );
    let out = Command::new("python3")
        .args(["-c", &program])
        .arg(document)
        .arg(&schema)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    if said.contains("No module named 'jsonschema'") {
        assert!(std::env::var_os("CI").is_none(), "CI installs python's jsonschema");
        eprintln!("skipping: python3 jsonschema is not installed");
        return None;
    }
    Some(if out.status.success() { Ok(()) } else { Err(said) })
}

/// `certwipe ledger --ledger LOCATION --sign-key KEY --allowed-signers ALLOWED ARGS…`.
pub fn ledger_at(location: &str, key: &Path, allowed: &Path, args: &[&str]) -> Output {
    let (key, allowed) = (key.to_str().unwrap(), allowed.to_str().unwrap());
    certwipe(
        &[&["ledger", "--ledger", location, "--sign-key", key, "--allowed-signers", allowed][..], args]
            .concat(),
    )
}

/// `certwipe ledger verify` of the ledger at `location` against `allowed`: its
/// exit status and what it said.
pub fn verify_ledger(location: &str, allowed: &Path, extra: &[&str]) -> (i32, String) {
    let allowed = allowed.to_str().unwrap();
    let out = certwipe(
        &[&["ledger", "verify", "--ledger", location, "--allowed-signers", allowed][..], extra].concat(),
    );
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out))
}

/// A records office: a station key, a validator's key, the records office's
/// own key (the clerk, who records approvals), all in the allowed signers, and
/// a ledger initialised with them.
pub struct Office {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub validator: PathBuf,
    pub clerk: PathBuf,
    pub allowed: PathBuf,
    /// The ledger: a file path, or a PostgreSQL URL.
    pub ledger: String,
}

impl Office {
    /// An office with its own SQLite ledger.
    pub fn new() -> Office {
        Self::with_ledger(None)
    }

    /// An office whose ledger is `location` (a PostgreSQL URL), or a new
    /// SQLite file in its directory.
    pub fn with_ledger(location: Option<String>) -> Office {
        let dir = tempfile::tempdir().unwrap();
        let (key, station_line) = station_key(dir.path(), "station", "station-1");
        let (validator, validator_line) = key_for(dir.path(), "validator", "wang.fang", &["validator"]);
        let (clerk, clerk_line) = key_for(dir.path(), "clerk", "records-office", &["office"]);
        let allowed = dir.path().join("allowed_signers");
        std::fs::write(&allowed, [station_line, validator_line, clerk_line].concat()).unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        let ledger = location.unwrap_or_else(|| dir.path().join("ledger.sqlite").display().to_string());
        let office = Office { dir, key, validator, clerk, allowed, ledger };
        office.ok(&["init", "--allowed-signers", office.allowed.to_str().unwrap()]);
        office
    }

    /// `certwipe ledger ARGS --ledger PATH --sign-key KEY`: exit code, stdout, stderr.
    pub fn ledger(&self, args: &[&str]) -> (i32, String, String) {
        let out = ledger_at(&self.ledger, &self.key, &self.allowed, args);
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out))
    }

    /// A copy of this office's SQLite ledger (write-ahead log folded in), changed by `sql`.
    pub fn tampered_copy(&self, name: &str, sql: &str) -> PathBuf {
        rusqlite::Connection::open(&self.ledger)
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let copy = self.dir.path().join(name);
        std::fs::copy(&self.ledger, &copy).unwrap();
        rusqlite::Connection::open(&copy).unwrap().execute_batch(sql).unwrap();
        copy
    }

    /// `args` as the records office's clerk (who records approvals), which must succeed.
    pub fn ok_as_clerk(&self, args: &[&str]) -> String {
        let out = ledger_at(&self.ledger, &self.clerk, &self.allowed, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.ledger(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    }

    pub fn refused(&self, args: &[&str], expected: &str) {
        let (code, _, stderr) = self.ledger(args);
        assert_ne!(code, 0, "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    }

    /// The validator (Wang Fang) countersigns `cert`.
    pub fn countersign(&self, cert: &Path) {
        let out = countersign(cert, &self.validator, "validator", "Wang Fang", &self.allowed, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// `certwipe ledger import CERTS...` started in the background.
    pub fn spawn_import(&self, certs: &[PathBuf]) -> std::process::Child {
        certwipe_command()
            .args(["ledger", "import", "--ledger", &self.ledger, "--sign-key", self.key.to_str().unwrap()])
            .args(["--allowed-signers", self.allowed.to_str().unwrap()])
            .args(certs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Wipes a fresh image with a signed certificate; returns the certificate path.
    pub fn certificate(&self, name: &str, records: &[&str], into_ledger: bool) -> PathBuf {
        let image = self.dir.path().join(format!("{name}.img"));
        make_file(&image, 1 << 20);
        let certs = self.dir.path().join("certs");
        let mut args = vec![
            "wipe",
            "--yes",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--sign-key",
            self.key.to_str().unwrap(),
        ];
        args.extend_from_slice(records);
        if into_ledger {
            args.extend(["--ledger", &self.ledger, "--allowed-signers", self.allowed.to_str().unwrap()]);
        }
        args.push(image.to_str().unwrap());
        let out = certwipe(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        certificate_of(&certs, name)
    }
}

pub fn certificate_of(certs: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(certs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let file = p.file_name().unwrap().to_str().unwrap();
            file.starts_with(&format!("{name}.img-")) && file.ends_with(".json")
        })
        .unwrap()
}

/// A classified medium's whole life in `office`'s ledger: registered, wiped
/// and filed, countersigned, approved, destroyed; shown, exported, verified.
pub fn whole_life(office: &Office) {
    office.ok(&[
        "register",
        "MJ-2026-0042",
        "--type",
        "hdd",
        "--classification",
        "机密",
        "--holder",
        "Dept 3",
    ]);
    // wipe --ledger verifies the new certificate and files it under its asset number.
    let cert = office.certificate(
        "disk42",
        &[
            "--asset",
            "MJ-2026-0042",
            "--classification",
            "secret",
            "--destination",
            "destruction",
            "--operator",
            "Li Wei",
        ],
        true,
    );
    // The validator countersigns later; importing again records just that.
    office.countersign(&cert);
    office.ok(&["import", cert.to_str().unwrap()]);
    office.refused(&["import", cert.to_str().unwrap()], "imported once");
    office.ok_as_clerk(&[
        "approve",
        "MJ-2026-0042",
        "--role",
        "approver",
        "--name",
        "Chen Jie",
        "--title",
        "Director",
    ]);
    office.ok(&[
        "destroy",
        "MJ-2026-0042",
        "--method",
        "shred",
        "--date",
        "2026-11-30",
        "--place",
        "Room 5",
        "--destroyer",
        "Li Wei",
        "--witness",
        "Zhang San",
    ]);
    let history: serde_json::Value =
        serde_json::from_str(&office.ok(&["show", "MJ-2026-0042", "--json"])).unwrap();
    let kinds: Vec<&str> =
        history["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["register", "certificate", "countersignature", "approval", "destruction"]);
    assert_eq!(history["history"][1]["data"]["signer"]["principals"][0], "station-1");
    assert_eq!(history["history"][2]["data"]["signer"]["principals"][0], "wang.fang");
    assert_eq!(history["history"][1]["data"]["status"], "erased");

    let csv = office.ok(&["export", "--csv"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let field = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(field("ledger_number"), "MJ-2026-0042");
    assert_eq!(field("classification_zh"), "机密");
    assert_eq!(field("status"), "erased");
    assert_eq!(field("category"), "clear");
    assert_eq!(field("operator"), "Li Wei");
    assert_eq!(field("destroyed_on"), "2026-11-30");
    assert_eq!(field("witness"), "Zhang San");
    assert_eq!(field("approvals"), "validator Wang Fang; approver Chen Jie");
    let rows: serde_json::Value = serde_json::from_str(&office.ok(&["export", "--json"])).unwrap();
    assert_eq!(rows[0]["destruction_method"], "shred");

    let verified = office.ok(&["verify"]);
    assert!(
        verified.contains("6 entries, 1 certificates, 1 countersignatures") && verified.contains("intact"),
        "{verified}"
    );
    office.refused(
        &[
            "destroy",
            "MJ-2026-0042",
            "--method",
            "shred",
            "--date",
            "2026-12-01",
            "--place",
            "p",
            "--destroyer",
            "a",
            "--witness",
            "b",
        ],
        "already destroyed",
    );
}

/// Three registered media, one certificate filed and one approval: what the
/// tampering tests edit, on either backend.
pub fn tampering_fixture(office: &Office) {
    for number in ["A-1", "A-2", "A-3"] {
        office.ok(&["register", number, "--type", "hdd", "--classification", "secret"]);
    }
    office.certificate(
        "a1",
        &["--asset", "A-1", "--classification", "secret", "--destination", "destruction"],
        true,
    );
    office.ok(&["approve", "A-2", "--role", "witness", "--name", "Zhang San"]);
}

/// What a forged countersignature says about itself.
pub struct Forgery<'a> {
    pub role: &'a str,
    pub name: &'a str,
    /// `RFC 3339`; now when `None`.
    pub signed_at: Option<String>,
    /// The key the statement names; the signing key's own when `None`.
    pub names_key: Option<String>,
    /// The SSHSIG namespace; the role's (`certwipe-ROLE`) when `None`.
    pub namespace: Option<&'a str>,
}

impl<'a> Forgery<'a> {
    pub fn new(role: &'a str, name: &'a str) -> Forgery<'a> {
        Forgery { role, name, signed_at: None, names_key: None, namespace: None }
    }
}

/// Countersigns `cert` by hand (statement and both signatures made with stock
/// ssh-keygen), bypassing certwipe's own refusal, as a forger would.
pub fn forge_countersignature(cert: &Path, key: &Path, forgery: &Forgery<'_>, n: u32) {
    use certwipe::cert::files::{Role, STATEMENT, STATEMENT_FORMAT, Statement};
    let bytes = std::fs::read(cert).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let role = forgery.role;
    let statement = Statement {
        format: STATEMENT_FORMAT.into(),
        certificate_id: parsed["certificate_id"].as_str().unwrap().into(),
        certificate_sha256: certwipe::stream::sha256_hex(&bytes),
        role: Role::from_name(role).unwrap(),
        name: forgery.name.into(),
        title: None,
        organisation: None,
        signed_at: forgery.signed_at.clone().unwrap_or_else(certwipe::report::now),
        key_fingerprint: forgery.names_key.clone().unwrap_or_else(|| fingerprint(key)),
    };
    let stem = format!("{}.{role}-{n}", cert.display());
    let statement_file = format!("{stem}{STATEMENT}");
    std::fs::write(&statement_file, certwipe::cert::canonical::to_bytes(&statement)).unwrap();
    let namespace = forgery.namespace.map_or(format!("certwipe-{role}"), str::to_string);
    for (file, signature) in [
        (statement_file.clone(), format!("{statement_file}.sig")),
        (cert.display().to_string(), format!("{stem}.sig")),
    ] {
        // Signing standard input leaves the file's own .sig alone.
        let out = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", &namespace, "-f"])
            .arg(key)
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(signature, out.stdout).unwrap();
    }
}

pub fn remove_countersignature(cert: &Path, role: &str, n: u32) {
    let stem = format!("{}.{role}-{n}", cert.display());
    std::fs::remove_file(format!("{stem}.sig")).unwrap();
    for statement in [certwipe::cert::files::STATEMENT, ".json"] {
        let _ = std::fs::remove_file(format!("{stem}{statement}"));
        let _ = std::fs::remove_file(format!("{stem}{statement}.sig"));
    }
}

/// Appends `lines` to the allowed-signers file at `allowed`.
pub fn allow(allowed: &Path, lines: &[u8]) {
    let mut text = std::fs::read(allowed).unwrap();
    text.extend_from_slice(lines);
    std::fs::write(allowed, text).unwrap();
}

/// The public key of `key` as an allowed_signers line's `keytype base64`.
pub fn public_of(key: &Path) -> String {
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Rewrites `cert` with `change` applied to its JSON (kept canonical) and re-signs it.
pub fn rewrite(station: &Station, cert: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_slice(&std::fs::read(cert).unwrap()).unwrap();
    change(&mut value);
    // In the certificate's own field order where it still is one (a field
    // added lands where it belongs), else as edited.
    let bytes = match serde_json::from_value::<certwipe::cert::Certificate>(value.clone()) {
        Ok(typed) => typed.to_bytes(),
        Err(_) => certwipe::cert::canonical::to_bytes(&value),
    };
    std::fs::write(cert, bytes).unwrap();
    station.resign(cert);
}

/// Appends an entry to the SQLite ledger at `ledger` as the holder of `key`
/// could: hashed onto the newest entry and signed with stock ssh-keygen in
/// the ledger's namespace, bypassing every rule certwipe applies.
pub fn append_signed_entry(ledger: &Path, key: &Path, number: &str, kind: &str, data: &str) {
    append_signed_entry_at(ledger, key, number, kind, data, &certwipe::report::now());
}

/// [`append_signed_entry`], dated `at` (as its writer chooses).
pub fn append_signed_entry_at(ledger: &Path, key: &Path, number: &str, kind: &str, data: &str, at: &str) {
    let db = rusqlite::Connection::open(ledger).unwrap();
    let (seq, prev): (i64, String) = db
        .query_row("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let ledger_id: String =
        db.query_row("SELECT value FROM config WHERE key = 'ledger_id'", [], |r| r.get(0)).unwrap();
    let seq = seq + 1;
    let hash = certwipe::ledger::chain::entry_hash(&prev, seq, number, kind, at, data);
    let message = certwipe::ledger::chain::entry_message(&ledger_id, seq, &prev, &hash);
    let mut signer = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "certwipe-ledger", "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(signer.stdin.as_mut().unwrap(), &message).unwrap();
    let signature = String::from_utf8(signer.wait_with_output().unwrap().stdout).unwrap();
    db.execute(
        "INSERT INTO entries (seq, number, kind, at, data, prev_hash, hash, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![seq, number, kind, at, data, prev, hash, signature],
    )
    .unwrap();
}

/// Whether `pdftotext` and the CJK font the PDFs use are here (CI installs
/// poppler-utils and fonts-noto-cjk; elsewhere the caller skips, saying so).
pub fn pdf_tools_present() -> bool {
    let present = Command::new("pdftotext").arg("-v").output().is_ok()
        && Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists();
    if !present {
        assert!(std::env::var_os("CI").is_none(), "CI installs poppler-utils and fonts-noto-cjk");
        eprintln!("skipping: pdftotext or the CJK font is missing");
    }
    present
}

/// The text `pdftotext` reads from `pdf` (`args` before the file, e.g. `-bbox`).
pub fn pdf_text(pdf: &Path, args: &[&str]) -> String {
    let out = Command::new("pdftotext").args(args).arg(pdf).arg("-").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
