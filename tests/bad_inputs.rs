//! Misuse: every case in docs/bad-inputs.md gets a clear message and exit 2, never a
//! panic, and nothing is written.

mod common;

use std::path::{Path, PathBuf};

use certwipe::device::{self, Access, DeviceError, Medium, SystemUse};
use common::*;

struct Scratch {
    dir: tempfile::TempDir,
    image: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        make_file(&image, 1 << 20);
        plant_markers(&image);
        Scratch { dir, image }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn image(&self) -> &str {
        self.image.to_str().unwrap()
    }

    /// Runs certwipe and asserts exit 2, a message containing `expected`, no panic,
    /// and an untouched image.
    fn refused(&self, args: &[&str], expected: &str) {
        let out = certwipe(args);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: expected {expected:?} in: {message}");
        assert!(!message.contains("panicked"), "{message}");
        assert!(contains_marker(&std::fs::read(&self.image).unwrap()), "{args:?} wrote to the image");
    }
}

#[test]
fn bad_methods_pass_lists_and_rounds() {
    let s = Scratch::new();
    let image = s.image();
    s.refused(&["wipe", "--yes", "--method", "dod-9000", image], "unknown method");
    s.refused(&["wipe", "--yes", "--passes", "", image], "empty pass list");
    s.refused(&["wipe", "--yes", "--passes", "0x00,,random", image], "bad pass");
    s.refused(&["wipe", "--yes", "--passes", "0xABC", image], "bad pass");
    s.refused(&["wipe", "--yes", "--passes", "zeros", image], "bad pass");
    s.refused(&["wipe", "--yes", "--rounds", "0", image], "--rounds must be between 1 and 100");
    s.refused(&["wipe", "--yes", "--rounds", "101", image], "--rounds must be between 1 and 100");
    s.refused(&["wipe", "--yes", "--rounds", "-3", image], "unexpected argument '-3'");
    s.refused(&["wipe", "--yes", "--rounds", "99999999999999999999999", image], "--rounds");
    s.refused(&["wipe", "--yes", "--verify", "twice", image], "--verify");
    s.refused(&["wipe", "--yes", "--method", "zero", "--passes", "0x00", image], "cannot be used with");
}

#[test]
fn unwritable_report_state_and_certificate_paths() {
    let s = Scratch::new();
    let image = s.image();
    let missing_dir = s.path("no/such/dir/report.json");
    s.refused(&["wipe", "--yes", "--report", &missing_dir, image], "cannot write the report");
    let other = s.path("other.img");
    make_file(Path::new(&other), 1 << 20);
    s.refused(&["wipe", "--yes", "--report", &s.path("r.json"), image, &other], "give an existing directory");
    // A state directory under a regular file cannot be created.
    s.refused(&["wipe", "--yes", "--state-dir", &format!("{image}/state"), image], "state directory");
    s.refused(&["wipe", "--yes", "--unsigned", "--cert-dir", &s.path("nowhere"), image], "not a directory");
    s.refused(&["wipe", "--yes", "--sign-key", &s.path("key"), image], "--cert-dir");
    s.refused(&["wipe", "--yes", "--cert-dir", s.dir.path().to_str().unwrap(), image], "--unsigned");
}

#[test]
fn record_flags_that_break_the_rules_or_do_not_parse() {
    let s = Scratch::new();
    let image = s.image();
    let dir = s.dir.path().to_str().unwrap();
    let base = ["wipe", "--yes", "--unsigned", "--cert-dir", dir];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).chain([image]).collect()
    };
    s.refused(&with(&["--classification", "cosmic"]), "unknown classification");
    s.refused(&with(&["--asset", "A-1", "--asset", "A-2"]), "one per target");
    s.refused(&with(&["--classification", "绝密", "--classification-after", "秘密"]), "never downgraded");
    s.refused(&with(&["--classification", "secret", "--destination", "recycling"]), "destruction");
    s.refused(&with(&["--destination", "landfill"]), "--destination");
    s.refused(&with(&["--profile", "/no/such/profile.toml"]), "profile");
}

#[test]
fn a_target_given_twice_or_under_two_names() {
    let s = Scratch::new();
    let image = s.image();
    s.refused(&["wipe", "--yes", image, image], "are the same medium");
    let link = s.path("alias.img");
    std::os::unix::fs::symlink(image, &link).unwrap();
    s.refused(&["wipe", "--yes", &link, image], "are the same medium");
}

#[test]
fn the_same_device_under_two_names() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 4 << 20, 512);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("by-id-disk");
    std::os::unix::fs::symlink(&device.path, &link).unwrap();
    let out = certwipe(&["wipe", "--yes", device.path.to_str().unwrap(), link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("are the same medium"), "{}", stderr(&out));
}

#[test]
fn a_target_that_changes_between_the_checks_and_opening() {
    let s = Scratch::new();
    let system = SystemUse::read();
    // Replaced by another file under the same name.
    let mut inspected = device::inspect(&s.image, &system).unwrap();
    // Moved aside rather than deleted: a deleted file's inode number could be
    // reused at once, with the same ctime tick, and look like the same file.
    std::fs::rename(&s.image, s.path("old.img")).unwrap();
    make_file(&s.image, 1 << 20);
    let error = Medium::open(&mut inspected, Access::ReadWrite).err().expect("refused");
    assert!(matches!(error, DeviceError::Changed { .. }), "{error}");
    assert!(error.to_string().contains("a different file"), "{error}");
    // Shrunk.
    let mut inspected = device::inspect(&s.image, &system).unwrap();
    std::fs::OpenOptions::new().write(true).open(&s.image).unwrap().set_len(4096).unwrap();
    let error = Medium::open(&mut inspected, Access::ReadWrite).err().expect("refused");
    assert!(matches!(error, DeviceError::Changed { .. }), "{error}");
    // Gone.
    let mut inspected = device::inspect(&s.image, &system).unwrap();
    std::fs::remove_file(&s.image).unwrap();
    let error = Medium::open(&mut inspected, Access::ReadWrite).err().expect("refused");
    assert!(matches!(error, DeviceError::NotFound { .. }), "{error}");
}

#[test]
fn a_loop_device_that_shrinks_between_the_checks_and_opening() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 8 << 20, 512);
    let mut inspected = device::inspect(&device.path, &SystemUse::read()).unwrap();
    std::fs::OpenOptions::new().write(true).open(&device.backing).unwrap().set_len(4 << 20).unwrap();
    let status = std::process::Command::new("losetup").arg("-c").arg(&device.path).status().unwrap();
    assert!(status.success());
    let error = Medium::open(&mut inspected, Access::ReadWrite).err().expect("refused");
    assert!(error.to_string().contains("changed between the safety checks and opening"), "{error}");
}

#[test]
fn resume_misuse() {
    let s = Scratch::new();
    let image = s.image();
    // A resumed plan comes from the command line (and must match the
    // journal's: tests/resume.rs); a bad one is refused before any journal is read.
    s.refused(&["wipe", "--yes", "--resume", "--method", "zeroes", image], "unknown method");
    s.refused(&["wipe", "--yes", "--resume", "--rounds", "0", image], "--rounds");
    s.refused(&["wipe", "--yes", "--resume", image], "no interrupted wipe");
}

#[test]
fn commands_on_missing_or_wrong_files() {
    let s = Scratch::new();
    let missing = s.path("missing.json");
    let dir = s.dir.path().to_str().unwrap();
    for args in [
        vec!["cert", "verify", missing.as_str()],
        vec!["cert", "verify", dir],
        vec!["cert", "show", missing.as_str()],
        vec!["cert", "verify", s.image(), "--allowed-signers", missing.as_str()],
        vec!["audit", s.image(), "--cert", missing.as_str()],
        vec!["keygen", "-f", s.image(), "--no-passphrase"],
    ] {
        let out = certwipe(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("certwipe: ") || stderr(&out).starts_with("error: "),
            "{}",
            stderr(&out)
        );
    }
    // An image that is not a certificate is a clear "not valid", not a crash.
    let out = certwipe(&["cert", "verify", s.image()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not a readable certificate"));
}
