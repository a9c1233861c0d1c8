//! The block-device ioctls certwipe needs: exact size, sector sizes, read-only flag.
//! The kernel is the authority on these; sysfs can lag behind a resize.

use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{c_int, c_uint};

// <linux/fs.h>: _IO(0x12, 94), _IO(0x12, 104), _IO(0x12, 123), _IOR(0x12, 114, size_t)
const BLKROGET: libc::c_ulong = 0x125e;
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKPBSZGET: libc::c_ulong = 0x127b;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

nix::ioctl_read_bad!(blk_ro_get, BLKROGET, c_int);
nix::ioctl_read_bad!(blk_ssz_get, BLKSSZGET, c_int);
nix::ioctl_read_bad!(blk_pbsz_get, BLKPBSZGET, c_uint);
nix::ioctl_read_bad!(blk_get_size64, BLKGETSIZE64, u64);

/// Geometry of an open block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub size_bytes: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
    pub read_only: bool,
}

pub fn geometry(fd: BorrowedFd<'_>) -> nix::Result<Geometry> {
    let raw = fd.as_raw_fd();
    let (mut size, mut logical, mut physical, mut read_only) = (0u64, 0 as c_int, 0 as c_uint, 0 as c_int);
    // SAFETY: `raw` is an open block device for the duration of these calls, and each
    // pointer refers to a live local of exactly the type the kernel writes for that request.
    unsafe {
        blk_get_size64(raw, &mut size)?;
        blk_ssz_get(raw, &mut logical)?;
        blk_pbsz_get(raw, &mut physical)?;
        blk_ro_get(raw, &mut read_only)?;
    }
    Ok(Geometry {
        size_bytes: size,
        logical_sector: logical as u32,
        physical_sector: physical.max(logical as u32),
        read_only: read_only != 0,
    })
}
