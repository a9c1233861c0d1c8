//! An open target: positioned reads and writes that bypass the page cache, so what
//! is verified is the medium, not memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{FlockArg, PosixFadviseAdvice, posix_fadvise};
use serde::{Deserialize, Serialize};

use super::{DeviceError, Inspected, TargetKind, ioctl};
use crate::buffer::AlignedBuf;

/// Image files report this logical sector size, like a 512e disk.
pub const IMAGE_SECTOR: u32 = 512;
/// O_DIRECT on a file system needs transfers aligned to its block size; a page
/// covers every common one.
pub const IMAGE_IO_ALIGN: usize = 4096;

/// How verification reads avoid the page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheBypass {
    /// Every transfer uses O_DIRECT.
    ODirect,
    /// O_DIRECT for the aligned bulk; the unaligned tail of an image file is
    /// written through the cache, flushed, and dropped from the cache before reading.
    ODirectWithBufferedTail,
    /// The file system refuses O_DIRECT: everything is flushed and dropped from the
    /// cache before reading.
    DropCache,
}

/// How a target is opened: for wiping, or only for reading (an audit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

pub struct Medium {
    /// O_DIRECT where supported.
    main: File,
    /// Buffered descriptor for bytes at and past `main_end`.
    tail: Option<File>,
    main_end: u64,
    size: u64,
    logical_sector: u32,
    bypass: CacheBypass,
    is_image: bool,
    _lock: Option<nix::fcntl::Flock<File>>,
}

impl Medium {
    /// Opens an inspected target for writing and re-checks that it is still the
    /// same object with the same safety properties. Updates the identity with the
    /// kernel's exact geometry.
    pub fn open(target: &mut Inspected, access: Access) -> Result<Medium, DeviceError> {
        let path = Path::new(&target.identity.path).to_path_buf();
        match target.identity.kind {
            TargetKind::BlockDevice => Self::open_block(&path, target, access),
            TargetKind::ImageFile => Self::open_image(&path, target, access),
        }
    }

    fn open_block(path: &Path, target: &mut Inspected, access: Access) -> Result<Medium, DeviceError> {
        let shown = path.display().to_string();
        let writing = access == Access::ReadWrite;
        // O_EXCL on a block device fails with EBUSY while anything has it mounted,
        // in a RAID/LVM, or open exclusively: the kernel's own in-use check.
        let file = OpenOptions::new()
            .read(true)
            .write(writing)
            .custom_flags(libc::O_DIRECT | if writing { libc::O_EXCL } else { 0 })
            .open(path)
            .map_err(|e| DeviceError::io(path, e))?;
        let meta = file.metadata().map_err(|e| DeviceError::io(path, e))?;
        if meta.rdev() != target.key.0 {
            return Err(DeviceError::Changed {
                path: shown,
                what: "a different device now answers to this path".into(),
            });
        }
        let geometry = ioctl::geometry(file.as_fd()).map_err(|e| DeviceError::io(path, e.into()))?;
        if geometry.read_only && writing {
            return Err(DeviceError::ReadOnly {
                path: shown,
                why: "the kernel reports the device read-only".into(),
            });
        }
        if geometry.size_bytes == 0 {
            return Err(DeviceError::Empty { path: shown });
        }
        // sysfs counts 512-byte units; anything else means it changed since inspection.
        if geometry.size_bytes / 512 != target.identity.size_bytes / 512 {
            return Err(DeviceError::Changed {
                path: shown,
                what: format!(
                    "its size is now {} bytes, not {}",
                    geometry.size_bytes, target.identity.size_bytes
                ),
            });
        }
        let identity = &mut target.identity;
        identity.size_bytes = geometry.size_bytes;
        identity.logical_sector_size = geometry.logical_sector;
        identity.physical_sector_size = geometry.physical_sector;
        Ok(Medium {
            main: file,
            tail: None,
            main_end: geometry.size_bytes,
            size: geometry.size_bytes,
            logical_sector: geometry.logical_sector,
            bypass: CacheBypass::ODirect,
            is_image: false,
            _lock: None,
        })
    }

    fn open_image(path: &Path, target: &mut Inspected, access: Access) -> Result<Medium, DeviceError> {
        let shown = path.display().to_string();
        let writing = access == Access::ReadWrite;
        let open = |direct: bool| {
            OpenOptions::new()
                .read(true)
                .write(writing)
                .custom_flags(if direct { libc::O_DIRECT } else { 0 })
                .open(path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => DeviceError::ReadOnly {
                        path: shown.clone(),
                        why: "this user may not write the file (check its permissions)".into(),
                    },
                    _ => DeviceError::io(path, e),
                })
        };
        let buffered = open(false)?;
        let mode = if writing { FlockArg::LockExclusiveNonblock } else { FlockArg::LockSharedNonblock };
        let lock =
            nix::fcntl::Flock::lock(buffered, mode).map_err(|_| DeviceError::Busy { path: shown.clone() })?;
        if writing && open_elsewhere(&lock) {
            return Err(DeviceError::OpenElsewhere { path: shown });
        }
        let meta = lock.metadata().map_err(|e| DeviceError::io(path, e))?;
        let changed_at = Some((meta.ctime(), meta.ctime_nsec()));
        if (meta.dev(), meta.ino()) != target.key || changed_at != target.changed_at {
            return Err(DeviceError::Changed {
                path: shown,
                what: "a different file now has this name".into(),
            });
        }
        let size = meta.len();
        if size == 0 {
            return Err(DeviceError::Empty { path: shown });
        }
        if size != target.identity.size_bytes {
            return Err(DeviceError::Changed {
                path: shown,
                what: format!("its size is now {size} bytes, not {}", target.identity.size_bytes),
            });
        }
        target.identity.size_bytes = size;
        let aligned_end = size - size % IMAGE_IO_ALIGN as u64;
        let direct = if aligned_end > 0 { open(true).ok().filter(accepts_direct_io) } else { None };
        let tail = || open(false);
        let (main, tail, main_end, bypass) = match direct {
            Some(direct) if aligned_end == size => (direct, None, size, CacheBypass::ODirect),
            Some(direct) => (direct, Some(tail()?), aligned_end, CacheBypass::ODirectWithBufferedTail),
            None => (tail()?, None, size, CacheBypass::DropCache),
        };
        Ok(Medium {
            main,
            tail,
            main_end,
            size,
            logical_sector: IMAGE_SECTOR,
            bypass,
            is_image: true,
            _lock: Some(lock),
        })
    }

    /// The kernel's disk sequence number of an opened block device (Linux 5.15+):
    /// unique to the medium, so a swap between inspection and opening shows.
    pub fn disk_sequence(&self) -> Option<u64> {
        if self.is_image { None } else { ioctl::disk_sequence(self.main.as_fd()) }
    }

    /// The open block device, for commands to the drive behind it; `None` for
    /// an image file.
    pub fn block_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (!self.is_image).then(|| self.main.as_fd())
    }

    /// Routes the part of a transfer below `main_end` to the direct descriptor and
    /// the rest to the buffered tail.
    fn split(
        &self,
        len: usize,
        offset: u64,
        mut transfer: impl FnMut(&File, usize, usize, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        let direct_len = self.main_end.saturating_sub(offset).min(len as u64) as usize;
        if direct_len > 0 {
            transfer(&self.main, 0, direct_len, offset)?;
        }
        if direct_len < len {
            let tail = self.tail.as_ref().unwrap_or(&self.main);
            transfer(tail, direct_len, len, offset + direct_len as u64)?;
        }
        Ok(())
    }
}

impl super::BlockIo for Medium {
    fn size(&self) -> u64 {
        self.size
    }

    /// The smallest unit the medium reads or writes: the unit of bad ranges.
    fn sector_size(&self) -> usize {
        self.logical_sector as usize
    }

    /// The smallest transfer that works everywhere on this medium: a logical sector,
    /// or a page for O_DIRECT on a file system. Bad-sector narrowing stops here.
    fn smallest_transfer(&self) -> usize {
        if self.is_image && self.bypass != CacheBypass::DropCache {
            IMAGE_IO_ALIGN.max(self.logical_sector as usize)
        } else {
            self.logical_sector as usize
        }
    }

    /// Writes all of `buf` at `offset`. Offsets and lengths below the aligned end
    /// must be sector-aligned, as O_DIRECT demands; the engine only issues those.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.split(buf.len(), offset, |file, from, to, at| file.write_all_at(&buf[from..to], at))
    }

    /// Fills all of `buf` from `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.split(buf.len(), offset, |file, from, to, at| file.read_exact_at(&mut buf[from..to], at))
    }

    /// Makes everything written durable, and drops any cached copy so the next read
    /// comes from the medium.
    fn sync(&self) -> io::Result<()> {
        nix::unistd::fdatasync(&self.main).map_err(io::Error::from)?;
        if let Some(tail) = &self.tail {
            nix::unistd::fdatasync(tail).map_err(io::Error::from)?;
        }
        if !self.is_image {
            return Ok(());
        }
        // Some file systems accept O_DIRECT yet buffer it (ext4 data=journal, older
        // ZFS): for image files, drop every cached page so reads reach the storage.
        posix_fadvise(&self.main, 0, self.size as i64, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
            .map_err(io::Error::from)?;
        match &self.tail {
            Some(tail) => posix_fadvise(tail, 0, self.size as i64, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                .map_err(io::Error::from),
            None => Ok(()),
        }
    }

    fn cache_bypass(&self) -> CacheBypass {
        self.bypass
    }
}

/// Some file systems accept O_DIRECT at open but refuse the transfers; find out now
/// rather than in the middle of a pass.
fn accepts_direct_io(file: &File) -> bool {
    let mut probe = AlignedBuf::new(IMAGE_IO_ALIGN);
    file.read_exact_at(&mut probe, 0).is_ok()
}

/// Whether another open file description holds the file: the kernel grants a
/// write lease only to the sole opener (fcntl(2), F_SETLEASE), so taking one
/// and giving it straight back asks exactly that. A flock only keeps out
/// programs that flock too. Where leases are not available (another owner
/// without CAP_LEASE, a network file system) the answer is unknown and the
/// wipe goes on, guarded by the flock alone.
fn open_elsewhere(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a descriptor `file` owns and keeps open for both calls;
    // F_SETLEASE takes an int argument and touches no memory.
    let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) };
    if taken == 0 {
        // SAFETY: as above; releasing the lease just taken.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}
