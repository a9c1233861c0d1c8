//! A medium in memory for unit tests: scripted sectors fail every write, and
//! the medium can be pulled (after a number of writes, or at once), after
//! which every access fails as a vanished device does.

use std::collections::BTreeSet;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{BlockIo, CacheBypass};

pub const SECTOR: usize = 512;

pub struct FakeDisk {
    pub data: Mutex<Vec<u8>>,
    pub bad: BTreeSet<u64>,
    pub pulled_after_writes: Option<usize>,
    pub writes: AtomicUsize,
    pulled: AtomicBool,
}

impl FakeDisk {
    /// `size` bytes of ABh, with the given sectors failing every write.
    pub fn new(size: usize, bad: impl IntoIterator<Item = u64>) -> FakeDisk {
        FakeDisk {
            data: Mutex::new(vec![0xAB; size]),
            bad: bad.into_iter().collect(),
            pulled_after_writes: None,
            writes: 0.into(),
            pulled: false.into(),
        }
    }

    pub fn contents(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pull(&self) {
        self.pulled.store(true, Ordering::SeqCst);
    }

    fn touches_bad(&self, offset: u64, len: usize) -> bool {
        let sectors = offset / SECTOR as u64..(offset + len as u64).div_ceil(SECTOR as u64);
        self.bad.range(sectors).next().is_some()
    }

    pub fn gone(&self) -> bool {
        self.pulled.load(Ordering::SeqCst)
            || self.pulled_after_writes.is_some_and(|n| self.writes.load(Ordering::Relaxed) >= n)
    }

    fn check(&self) -> io::Result<()> {
        match self.gone() {
            true => Err(io::Error::from_raw_os_error(libc::ENODEV)),
            false => Ok(()),
        }
    }
}

impl BlockIo for FakeDisk {
    fn size(&self) -> u64 {
        self.contents().len() as u64
    }
    fn sector_size(&self) -> usize {
        SECTOR
    }
    fn smallest_transfer(&self) -> usize {
        SECTOR
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        if self.touches_bad(offset, buf.len()) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.contents()[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.check()?;
        buf.copy_from_slice(&self.contents()[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.check()
    }
    fn cache_bypass(&self) -> CacheBypass {
        CacheBypass::ODirect
    }
}
