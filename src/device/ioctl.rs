//! The block-device ioctls certwipe needs: exact size, sector sizes, read-only
//! flag, and the disk sequence number. The kernel is the authority on these;
//! sysfs can lag behind a resize. `rustix` computes the request numbers for each
//! architecture, so none is written out by hand here.

use std::os::fd::BorrowedFd;

use rustix::ioctl::{Getter, ioctl, opcode};

// <linux/fs.h>: BLKROGET _IO(0x12, 94) (writes an int), BLKGETSIZE64 _IOR(0x12, 114, size_t),
// BLKGETDISKSEQ _IOR(0x12, 128, __u64).
const BLKROGET: rustix::ioctl::Opcode = opcode::none(0x12, 94);
const BLKGETSIZE64: rustix::ioctl::Opcode = opcode::read::<usize>(0x12, 114);
const BLKGETDISKSEQ: rustix::ioctl::Opcode = opcode::read::<u64>(0x12, 128);

/// Geometry of an open block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub size_bytes: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
    pub read_only: bool,
}

pub fn geometry(fd: BorrowedFd<'_>) -> rustix::io::Result<Geometry> {
    // SAFETY: each opcode is a getter of exactly the output type given (BLKGETSIZE64
    // writes a u64, BLKROGET an int), on a descriptor that stays open for the call.
    let (size, read_only) = unsafe {
        (ioctl(fd, Getter::<BLKGETSIZE64, u64>::new())?, ioctl(fd, Getter::<BLKROGET, libc::c_int>::new())?)
    };
    let logical = rustix::fs::ioctl_blksszget(fd)?;
    let physical = rustix::fs::ioctl_blkpbszget(fd)?;
    Ok(Geometry {
        size_bytes: size,
        logical_sector: logical,
        physical_sector: physical.max(logical),
        read_only: read_only != 0,
    })
}

/// The disk sequence number (Linux 5.15+), `None` where the kernel has none.
pub fn disk_sequence(fd: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: BLKGETDISKSEQ writes one u64, on a descriptor open for the call.
    unsafe { ioctl(fd, Getter::<BLKGETDISKSEQ, u64>::new()) }.ok()
}
