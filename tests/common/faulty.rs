//! A fault-injection block device: a FUSE file system serving one in-memory disk
//! image whose reads and writes fail with EIO on chosen byte ranges, can fail
//! transiently (the first N attempts), can be slow, and can be "pulled" (every
//! later I/O fails). It is attached with `losetup --direct-io=on`, so certwipe sees
//! a real block device with real I/O errors.

use std::ffi::OsStr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, OpenFlags, ReplyAttr,
    ReplyData, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};

use super::LoopDevice;

/// What goes wrong, and when. Shared with the test, which may change it mid-run.
#[derive(Debug, Default)]
pub struct Faults {
    /// Byte ranges whose writes always fail.
    pub bad_writes: Vec<Range<u64>>,
    /// Byte ranges whose reads always fail.
    pub bad_reads: Vec<Range<u64>>,
    /// Byte ranges whose I/O fails the first `n` times it is touched.
    pub transient: Vec<(Range<u64>, u32)>,
    /// How long each MiB read or written takes, whatever the size of the requests.
    pub delay_per_mib: Duration,
    /// Every I/O fails, as after a pulled cable.
    pub pulled: bool,
    /// Pull the device once this many bytes have been written.
    pub pull_after_written: Option<u64>,
    pub bytes_written: u64,
    /// I/O requests that failed, for the test's curiosity.
    pub failed_requests: u64,
}

impl Faults {
    fn fails(&mut self, range: Range<u64>, writing: bool) -> bool {
        let overlaps = |r: &Range<u64>| r.start < range.end && range.start < r.end;
        if let Some(limit) = self.pull_after_written
            && self.bytes_written >= limit
        {
            self.pulled = true;
        }
        let mut fail = self.pulled
            || (writing && self.bad_writes.iter().any(overlaps))
            || (!writing && self.bad_reads.iter().any(overlaps));
        for (transient, remaining) in &mut self.transient {
            if overlaps(transient) && *remaining > 0 {
                *remaining -= 1;
                fail = true;
            }
        }
        if fail {
            self.failed_requests += 1;
        } else if writing {
            self.bytes_written += range.end - range.start;
        }
        fail
    }
}

struct FaultyFs {
    data: Mutex<Vec<u8>>,
    faults: Arc<Mutex<Faults>>,
}

const ROOT: INodeNo = INodeNo::ROOT;
const DISK: INodeNo = INodeNo(2);
const TTL: Duration = Duration::from_secs(3600);

fn attr(ino: INodeNo, size: u64) -> FileAttr {
    let directory = ino == ROOT;
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: if directory { FileType::Directory } else { FileType::RegularFile },
        perm: if directory { 0o755 } else { 0o600 },
        nlink: if directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

impl FaultyFs {
    fn size(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }

    fn delay(&self, bytes: u64) {
        let per_mib = self.faults.lock().unwrap().delay_per_mib;
        if !per_mib.is_zero() {
            std::thread::sleep(per_mib.mul_f64(bytes as f64 / (1 << 20) as f64));
        }
    }
}

impl Filesystem for FaultyFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == ROOT && name == "disk" {
            reply.entry(&TTL, &attr(DISK, self.size()), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        match ino {
            ROOT => reply.attr(&TTL, &attr(ROOT, 0)),
            DISK => reply.attr(&TTL, &attr(DISK, self.size())),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _: &Request, _: INodeNo, _: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _: &Request,
        _: INodeNo,
        _: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.delay(u64::from(size));
        let data = self.data.lock().unwrap();
        let end = (offset + u64::from(size)).min(data.len() as u64);
        let start = offset.min(end);
        if self.faults.lock().unwrap().fails(start..end, false) {
            return reply.error(Errno::EIO);
        }
        reply.data(&data[start as usize..end as usize]);
    }

    fn write(
        &self,
        _: &Request,
        _: INodeNo,
        _: FileHandle,
        offset: u64,
        bytes: &[u8],
        _: WriteFlags,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.delay(bytes.len() as u64);
        let mut data = self.data.lock().unwrap();
        let end = (offset + bytes.len() as u64).min(data.len() as u64);
        if offset >= end {
            return reply.error(Errno::ENOSPC);
        }
        if self.faults.lock().unwrap().fails(offset..end, true) {
            return reply.error(Errno::EIO);
        }
        data[offset as usize..end as usize].copy_from_slice(&bytes[..(end - offset) as usize]);
        reply.written((end - offset) as u32);
    }

    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, _: &Request, _: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        if self.faults.lock().unwrap().pulled {
            return reply.error(Errno::EIO);
        }
        reply.ok();
    }
}

/// A faulty disk attached as a loop device. Drop detaches the loop device, then
/// unmounts the file system.
pub struct FaultyDisk {
    pub device: Option<LoopDevice>,
    pub faults: Arc<Mutex<Faults>>,
    session: Option<fuser::BackgroundSession>,
    mount_dir: tempfile::TempDir,
}

impl FaultyDisk {
    pub fn new(size: u64, sector: u32, faults: Faults) -> FaultyDisk {
        Self::new_in(&std::env::temp_dir(), size, sector, faults)
    }

    /// With its FUSE mount under `parent` (a station test accepts only loop
    /// devices whose backing file is in its own directory).
    pub fn new_in(parent: &Path, size: u64, sector: u32, faults: Faults) -> FaultyDisk {
        let mount_dir = tempfile::tempdir_in(parent).unwrap();
        let faults = Arc::new(Mutex::new(faults));
        let fs = FaultyFs { data: Mutex::new(vec![0u8; size as usize]), faults: faults.clone() };
        let mut config = fuser::Config::default();
        config.mount_options.push(fuser::MountOption::FSName("certwipe-faulty".into()));
        config.acl = fuser::SessionACL::All;
        config.n_threads = Some(2);
        let session =
            fuser::spawn_mount(fs, mount_dir.path(), &config).expect("FUSE mount (needs /dev/fuse and root)");
        let device = attach_unsplit(mount_dir.path().join("disk"), sector);
        FaultyDisk { device: Some(device), faults, session: Some(session), mount_dir }
    }

    pub fn path(&self) -> &Path {
        &self.device.as_ref().unwrap().path
    }

    pub fn backing(&self) -> PathBuf {
        self.mount_dir.path().join("disk")
    }

    /// Detaches the loop device, as pulling the stick out.
    pub fn unplug(&mut self) {
        drop(self.device.take());
    }

    /// Attaches the same disk to a loop device again, as plugging it back in.
    pub fn replug(&mut self, sector: u32) {
        self.device = Some(attach_unsplit(self.backing(), sector));
    }

    pub fn set(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.faults.lock().unwrap());
    }
}

/// Attaches `file` with requests small enough that FUSE never splits one.
///
/// FUSE (without async direct I/O) sends a large write as several pieces in turn;
/// when a later piece fails it returns a short count, and the loop driver (seen on
/// 6.18) completes a short write as a success. A fault injected there never reached
/// certwipe: about one run in three of this suite, when the block layer merged
/// requests under load. 64 KiB is at most 17 pages, within one FUSE request on
/// any kernel (the default is 32 pages), so every injected error is returned.
fn attach_unsplit(file: PathBuf, sector: u32) -> LoopDevice {
    // The loop device does not own a scratch directory here; the mount does.
    let device = LoopDevice::attach(tempfile::tempdir().unwrap(), file, sector, &[]);
    let limit = format!("/sys/block/{}/queue/max_sectors_kb", device.name());
    std::fs::write(&limit, "64").unwrap_or_else(|e| panic!("{limit}: {e}"));
    device
}

impl Drop for FaultyDisk {
    fn drop(&mut self) {
        // A pulled disk refuses everything, including the loop driver's final flush.
        self.faults.lock().unwrap().pulled = false;
        self.faults.lock().unwrap().pull_after_written = None;
        drop(self.device.take());
        drop(self.session.take());
        // Should the session's own unmount not have happened (seen once under load),
        // nothing may stay mounted after a test.
        let mount_point = self.mount_dir.path().to_string_lossy().into_owned();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&mount_point));
        if mounted {
            let _ = std::process::Command::new("umount").arg("-l").arg(&mount_point).status();
        }
    }
}
