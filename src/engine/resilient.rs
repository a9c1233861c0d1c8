//! I/O that survives bad sectors. The kernel (and the loop driver) fail a whole
//! request when one sector in it is bad, so a failed chunk is split in halves until
//! the failing sectors are pinned down; each failing sector is retried a few times.
//! A device that stops answering altogether is recognised quickly instead of being
//! retried sector by sector for hours.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::buffer::AlignedBuf;
use crate::device::BlockIo;

/// Attempts per sector before it is declared bad.
pub const SECTOR_ATTEMPTS: usize = 3;
/// Consecutive bad sectors after which the device is probed to see if it is still there.
const PROBE_AFTER_BAD_SECTORS: u64 = 64;
/// Consecutive bad sectors after which the target is given up (8 MiB of 512-byte sectors).
const GIVE_UP_AFTER_BAD_SECTORS: u64 = 16_384;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGone(pub String);

/// What a transfer achieved beyond success.
#[derive(Debug, Default)]
pub struct Transfer {
    /// Absolute byte ranges (whole sectors) that failed every attempt.
    pub bad: Vec<Range<u64>>,
    /// The first error seen, for the report.
    pub first_error: Option<io::Error>,
}

pub struct Resilient<'a> {
    medium: &'a dyn BlockIo,
    sector: usize,
    /// Transient errors: failed attempts whose range turned out to contain no bad sector.
    retried: AtomicU64,
    consecutive_bad: AtomicU64,
    /// One past the last offset known to work, so a liveness probe reads a good spot.
    last_good_end: AtomicU64,
}

impl<'a> Resilient<'a> {
    /// `retried` carries the count over from before an interruption.
    pub fn new(medium: &'a dyn BlockIo, retried: u64) -> Self {
        Resilient {
            medium,
            sector: medium.smallest_transfer(),
            retried: AtomicU64::new(retried),
            consecutive_bad: AtomicU64::new(0),
            last_good_end: AtomicU64::new(0),
        }
    }

    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    pub fn write(&self, buf: &[u8], offset: u64) -> Result<Transfer, DeviceGone> {
        self.transfer(buf.len(), offset, &mut |range, at| self.medium.write_at(&buf[range], at))
    }

    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<Transfer, DeviceGone> {
        self.transfer(buf.len(), offset, &mut |range, at| self.medium.read_at(&mut buf[range], at))
    }

    fn transfer(
        &self,
        len: usize,
        offset: u64,
        op: &mut dyn FnMut(Range<usize>, u64) -> io::Result<()>,
    ) -> Result<Transfer, DeviceGone> {
        let error = match op(0..len, offset) {
            Ok(()) => {
                self.succeeded(offset + len as u64);
                return Ok(Transfer::default());
            }
            Err(error) => error,
        };
        if is_gone(&error) || !self.alive() {
            return Err(DeviceGone(error.to_string()));
        }
        let mut transfer = Transfer { bad: Vec::new(), first_error: Some(error) };
        let retried_before = self.retried();
        self.narrow(0..len, offset, op, &mut transfer.bad)?;
        // The failure went away without any sector needing a retry: one transient error.
        if transfer.bad.is_empty() && self.retried() == retried_before {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        Ok(transfer)
    }

    /// Finds the failing sectors of `range` (relative to the buffer at `offset`).
    fn narrow(
        &self,
        range: Range<usize>,
        offset: u64,
        op: &mut dyn FnMut(Range<usize>, u64) -> io::Result<()>,
        bad: &mut Vec<Range<u64>>,
    ) -> Result<(), DeviceGone> {
        let at = offset + range.start as u64;
        if range.len() <= self.sector {
            return self.retry_sector(range, at, op, bad);
        }
        match op(range.clone(), at) {
            Ok(()) => {
                self.succeeded(at + range.len() as u64);
                Ok(())
            }
            Err(error) if is_gone(&error) => Err(DeviceGone(error.to_string())),
            Err(_) => {
                let sectors = range.len().div_ceil(self.sector);
                let middle = range.start + (sectors / 2) * self.sector;
                self.narrow(range.start..middle, offset, op, bad)?;
                self.narrow(middle..range.end, offset, op, bad)
            }
        }
    }

    fn retry_sector(
        &self,
        range: Range<usize>,
        at: u64,
        op: &mut dyn FnMut(Range<usize>, u64) -> io::Result<()>,
        bad: &mut Vec<Range<u64>>,
    ) -> Result<(), DeviceGone> {
        let end = at + range.len() as u64;
        for attempt in 0..SECTOR_ATTEMPTS {
            match op(range.clone(), at) {
                Ok(()) => {
                    if attempt > 0 {
                        self.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    self.succeeded(end);
                    return Ok(());
                }
                Err(error) if is_gone(&error) => return Err(DeviceGone(error.to_string())),
                Err(_) => {}
            }
        }
        crate::stream::push_merged(bad, at..end);
        let run = self.consecutive_bad.fetch_add(1, Ordering::Relaxed) + 1;
        // A device that still reads but no longer writes (worn-out flash goes read-only)
        // passes every read probe; an unbroken run this long is not a bad area any more.
        if run >= GIVE_UP_AFTER_BAD_SECTORS {
            return Err(DeviceGone(format!(
                "{run} consecutive sectors failed every attempt; the device no longer accepts this operation"
            )));
        }
        if run.is_multiple_of(PROBE_AFTER_BAD_SECTORS) && !self.alive() {
            return Err(DeviceGone(format!(
                "{run} consecutive sectors failed and the device no longer answers"
            )));
        }
        Ok(())
    }

    fn succeeded(&self, end: u64) {
        self.consecutive_bad.store(0, Ordering::Relaxed);
        self.last_good_end.store(end, Ordering::Relaxed);
    }

    /// Reads a spot that worked before (or the start): a pulled or dead device
    /// fails even there, a device with a bad area does not.
    /// A bad sector can sit at either spot, so the device counts as gone only when
    /// both fail.
    pub fn alive(&self) -> bool {
        let size = self.medium.size();
        let probe_len = 4096.min(size) as usize;
        let good_end = self.last_good_end.load(Ordering::Relaxed);
        let last_good = good_end.saturating_sub(probe_len as u64) / 4096 * 4096;
        let far_end = (size - probe_len as u64) / 4096 * 4096;
        let mut probe = AlignedBuf::new(probe_len);
        (0..3).any(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            [last_good, far_end].iter().any(|at| self.medium.read_at(&mut probe[..probe_len], *at).is_ok())
        })
    }
}

/// Errors that mean the device itself is gone, not a sector.
fn is_gone(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENODEV | libc::ENXIO | libc::ENOMEDIUM | libc::ESHUTDOWN))
}
