//! Targets that must never be written: each is refused with exit 2, a message that
//! says why and what to do, and the target untouched.

mod common;

use std::path::Path;

use common::*;

fn checksum(path: &Path) -> blake3::Hash {
    blake3::hash(&read_all(path))
}

/// Runs a wipe that must be refused; returns its stderr.
fn assert_refused(target: &Path, extra: &[&str]) -> String {
    let mut args = vec!["wipe", "--yes"];
    args.extend_from_slice(extra);
    args.push(target.to_str().unwrap());
    let out = certwipe(&args);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}: {message}", target.display());
    assert!(message.contains(target.to_str().unwrap()), "message names the target: {message}");
    message
}

#[test]
fn a_mounted_loop_device_is_refused_and_untouched() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 32 << 20, 512);
    // Read-only, so the file system itself writes nothing while mounted.
    let mount = Mount::ext4_read_only(&device.path);
    let before = checksum(&device.path);
    let message = assert_refused(&device.path, &[]);
    assert!(message.contains("mounted at") && message.contains("umount"), "{message}");
    assert!(message.contains(mount.dir.path().to_str().unwrap()));
    assert_eq!(checksum(&device.path), before);
}

#[test]
fn a_disk_whose_partition_is_mounted_is_refused() {
    if !have_root() {
        return;
    }
    let dir = scratch_dir(Backing::Tmpfs);
    let file = dir.path().join("partitioned.img");
    make_file(&file, 48 << 20);
    write_mbr_with_one_partition(&file, 2048, (40 << 20) / 512);
    let device = LoopDevice::attach(dir, file, 512, &["--partscan"]);
    let partition = Path::new(&format!("{}p1", device.path.display())).to_path_buf();
    if !appears(&partition) {
        // Some kernels (this project's CI VM among them) are built without
        // CONFIG_MSDOS_PARTITION; the whole-disk mount test covers the same check.
        eprintln!("skipping: the kernel did not scan the partition table");
        return;
    }
    let mount = Mount::ext4(&partition);
    let message = assert_refused(&device.path, &[]);
    assert!(message.contains("mounted at"), "{message}");
    drop(mount);
}

fn write_mbr_with_one_partition(file: &Path, start_lba: u32, sectors: u32) {
    let mut mbr = [0u8; 512];
    let entry = &mut mbr[446..462];
    entry[4] = 0x83; // Linux
    entry[8..12].copy_from_slice(&start_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(file).unwrap(),
        &mbr,
        0,
    )
    .unwrap();
}

fn appears(path: &Path) -> bool {
    (0..20).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        path.exists()
    })
}

#[test]
fn a_read_only_loop_device_is_refused_and_untouched() {
    if !have_root() {
        return;
    }
    let dir = scratch_dir(Backing::Tmpfs);
    let file = dir.path().join("ro.img");
    make_file(&file, 8 << 20);
    plant_markers(&file);
    let before = blake3::hash(&std::fs::read(&file).unwrap());
    let device = LoopDevice::attach(dir, file.clone(), 512, &["--read-only"]);
    let message = assert_refused(&device.path, &[]);
    assert!(message.contains("read-only"), "{message}");
    assert_eq!(blake3::hash(&std::fs::read(&file).unwrap()), before);
}

#[test]
fn a_character_device_a_directory_and_a_missing_path_are_refused() {
    let message = assert_refused(Path::new("/dev/null"), &[]);
    assert!(message.contains("character device"), "{message}");
    let dir = tempfile::tempdir().unwrap();
    let message = assert_refused(dir.path(), &[]);
    assert!(message.contains("is a directory"), "{message}");
    let missing = dir.path().join("no-such-disk");
    let message = assert_refused(&missing, &[]);
    assert!(message.contains("no such file or device") && message.contains("certwipe list"), "{message}");
}

#[test]
fn the_root_disk_is_refused_without_being_opened() {
    let system = certwipe::device::SystemUse::read();
    let root = certwipe::device::list_all(&system)
        .into_iter()
        .find(|d| d.identity.usage.holds_root)
        .expect("list shows the disk holding /");
    assert!(root.refusals.iter().any(|r| r.contains("root file system")));
    let message = assert_refused(Path::new(&root.identity.path), &[]);
    assert!(message.contains("root file system"), "{message}");
}

#[test]
fn without_a_terminal_a_wipe_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("unconfirmed.img");
    make_file(&image, 1 << 20);
    plant_markers(&image);
    let before = checksum(&image);
    let out = certwipe(&["wipe", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(checksum(&image), before);
}

#[test]
fn one_bad_target_in_a_batch_stops_the_batch_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("good.img");
    make_file(&image, 1 << 20);
    plant_markers(&image);
    let before = checksum(&image);
    let out = certwipe(&["wipe", "--yes", image.to_str().unwrap(), "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(checksum(&image), before);
}

#[test]
fn the_same_target_under_two_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("twice.img");
    make_file(&image, 1 << 20);
    let link = dir.path().join("link.img");
    std::os::unix::fs::symlink(&image, &link).unwrap();
    let out = certwipe(&["wipe", "--yes", image.to_str().unwrap(), link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("are the same medium"), "{}", stderr(&out));
}

#[test]
fn bad_method_passes_and_rounds_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("usage.img");
    make_file(&image, 1 << 20);
    let path = image.to_str().unwrap();
    for (args, expected) in [
        (vec!["--method", "nonsense"], "unknown method"),
        (vec!["--passes", "0x00,banana"], "bad pass"),
        (vec!["--rounds", "0"], "--rounds"),
        (vec!["--rounds", "1000"], "--rounds"),
    ] {
        let mut full = vec!["wipe", "--yes"];
        full.extend(args);
        full.push(path);
        let out = certwipe(&full);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
}

#[test]
fn list_shows_a_loop_device_with_its_geometry_and_whether_wipe_would_refuse_it() {
    if !have_root() {
        return;
    }
    let device = LoopDevice::new(Backing::Tmpfs, 12 << 20, 4096);
    let listed = |path: &Path| -> serde_json::Value {
        let out = certwipe(&["list", "--json"]);
        assert_eq!(out.status.code(), Some(0));
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        all.into_iter().find(|d| d["path"] == path.to_str().unwrap()).expect("the loop device is listed")
    };
    let entry = listed(&device.path);
    assert_eq!(entry["size_bytes"], 12 << 20);
    assert_eq!(entry["logical_sector_size"], 4096);
    assert_eq!(entry["transport"], "loop");
    assert_eq!(entry["media_type"], "virtual");
    assert_eq!(entry["backing_file"], device.backing.to_str().unwrap());
    assert_eq!(entry["wipeable"], true);
    let mount = Mount::ext4_read_only(&device.path);
    let entry = listed(&device.path);
    assert_eq!(entry["wipeable"], false);
    assert_eq!(entry["usage"]["mounted_at"][0], mount.dir.path().to_str().unwrap());
    let root = certwipe(&["list", "--json"]);
    let all: Vec<serde_json::Value> = serde_json::from_slice(&root.stdout).unwrap();
    assert!(all.iter().any(|d| d["usage"]["holds_root"] == true && d["wipeable"] == false));
}

#[test]
fn a_kernel_file_posing_as_an_image_is_refused() {
    // /proc/self/comm is certwipe's own name: harmless even if a regression
    // ever let the write through, and a regular file by stat like any setting
    // under /proc/sys or /sys.
    let message = assert_refused(Path::new("/proc/self/comm"), &[]);
    assert!(message.contains("procfs") && message.contains("not storage"), "{message}");
}

/// A process holding a file open, killed when the test ends however it ends.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_image_file_open_in_another_program_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.img");
    std::fs::write(&file, vec![0x5a_u8; 1 << 20]).unwrap();
    let before = checksum(&file);
    let holder = Holder(
        std::process::Command::new("sh")
            .args(["-c", "exec 3<\"$0\"; exec sleep 60"])
            .arg(&file)
            .spawn()
            .unwrap(),
    );
    let held = Path::new("/proc").join(holder.0.id().to_string()).join("fd/3");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !held.exists() {
        assert!(std::time::Instant::now() < deadline, "the holder never opened the file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let message = assert_refused(&file, &[]);
    assert!(message.contains("is open in another program"), "{message}");
    assert_eq!(checksum(&file), before);
    drop(holder);
    let out = certwipe(&["wipe", "--yes", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(checksum(&file), before);
}

#[test]
fn the_confirmation_shows_the_file_systems_and_labels_it_would_destroy() {
    if !have_root() {
        return;
    }
    let dir = scratch_dir(Backing::Tmpfs);
    let file = dir.path().join("labelled.img");
    make_file(&file, 16 << 20);
    let made =
        std::process::Command::new("mkfs.ext4").args(["-q", "-F", "-L", "BACKUP-2026"]).arg(&file).status();
    assert!(made.unwrap().success());
    let before = checksum(&file);
    let device = LoopDevice::attach(dir, file.clone(), 512, &[]);
    // A terminal for the confirmation: util-linux `script` runs certwipe on a
    // pseudo-terminal and passes our answer, which is not the device's name.
    let command = format!("{} wipe {}", env!("CARGO_BIN_EXE_certwipe"), device.path.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("CERTWIPE_STATE_DIR", state_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"no\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let holds = format!("holds {} 16.00 MiB ext4 \"BACKUP-2026\"", device.name());
    assert!(said.contains(&holds), "{holds:?} not in:\n{said}");
    assert!(said.contains("not confirmed") && said.contains("nothing was written"), "{said}");
    assert_eq!(checksum(&file), before);
}
