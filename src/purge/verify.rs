//! Checking a drive's erase by reading the medium, as NIST SP 800-88 Rev. 1
//! §4.7 and IEEE 2883-2022 describe for a purge by the drive's own command.
//!
//! Before the command, a representative sample (1,000 subsections, two
//! samples in each, first and last sector; [`crate::engine::sample`]) is read
//! and hashed, then overwritten with a marker: a random stream that only this
//! run knows and that anyone can regenerate from its recorded key. After the
//! command, every sampled sector is read again. A sector that still holds the
//! marker was not erased — whatever the old content was, zeros included, the
//! check cannot be fooled by a medium that happened to read as expected
//! already. Keeping the old content's hashes per sector instead would take
//! gigabytes on a large drive; the marker needs nothing kept.

use std::ops::Range;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::buffer::AlignedBuf;
use crate::device::BlockIo;
use crate::drive::sanitize::Expectation;
use crate::engine::sample;
use crate::report::{FirmwareVerification, SampleRecord, SectorRange, VerificationResult};
use crate::stream::{PassData, RandomStream, Seed, push_merged};

/// Reads and writes go in chunks of this many bytes.
const CHUNK: u64 = 1 << 20;
/// At most this many separate ranges are listed per kind; the rest are counted.
const MAX_LISTED: usize = 1000;

/// The sample, marked: ready for the drive's command.
pub struct Marked {
    ranges: Vec<Range<u64>>,
    sample: Option<SampleRecord>,
    marker: RandomStream,
    before_sha256: String,
    bytes: u64,
}

#[derive(Debug, Error)]
pub enum MarkError {
    #[error("reading the sample before the erase failed at byte {offset}: {source}")]
    Read { offset: u64, source: std::io::Error },
    #[error("writing the verification marker failed at byte {offset}: {source}")]
    Write { offset: u64, source: std::io::Error },
    #[error("flushing the verification marker failed: {0}")]
    Sync(std::io::Error),
    #[error(
        "the verification marker did not read back as written at byte {offset}: the medium does not keep what is written"
    )]
    NotKept { offset: u64 },
}

/// The byte ranges to check: the NIST sample, or the whole medium when it is
/// too small for 1,000 subsections.
fn ranges(io: &dyn BlockIo, positions: Seed) -> (Vec<Range<u64>>, Option<SampleRecord>) {
    let size = io.size();
    match sample::plan(size, sample::unit(io.sector_size() as u64), positions) {
        Some(plan) => {
            let record = plan.record();
            (plan.ranges, Some(record))
        }
        None => (vec![0..size], None),
    }
}

/// Every chunk of every range, in order.
fn chunks(ranges: &[Range<u64>]) -> impl Iterator<Item = Range<u64>> + '_ {
    crate::engine::pipeline::chunks(ranges, CHUNK as usize)
}

/// Reads and hashes the sample, then writes the marker over it and checks it
/// is there.
pub fn mark(io: &dyn BlockIo, positions: Seed, marker: RandomStream) -> Result<Marked, MarkError> {
    let (ranges, sample) = ranges(io, positions);
    let data = PassData::Random(marker.clone());
    let mut hash = Sha256::new();
    let mut buf = AlignedBuf::new(CHUNK as usize);
    for chunk in chunks(&ranges) {
        let len = (chunk.end - chunk.start) as usize;
        let slice = &mut buf[..len];
        io.read_at(slice, chunk.start).map_err(|source| MarkError::Read { offset: chunk.start, source })?;
        hash.update(&*slice);
        data.fill(chunk.start, slice);
        io.write_at(slice, chunk.start).map_err(|source| MarkError::Write { offset: chunk.start, source })?;
    }
    io.sync().map_err(MarkError::Sync)?;
    for chunk in chunks(&ranges) {
        let slice = &mut buf[..(chunk.end - chunk.start) as usize];
        io.read_at(slice, chunk.start).map_err(|source| MarkError::Read { offset: chunk.start, source })?;
        if !data.mismatches(chunk.start, slice, io.sector_size()).is_empty() {
            return Err(MarkError::NotKept { offset: chunk.start });
        }
    }
    let bytes = ranges.iter().map(|r| r.end - r.start).sum();
    Ok(Marked { ranges, sample, marker, before_sha256: hex::encode(hash.finalize()), bytes })
}

impl Expectation {
    /// Whether a sector reads as the command leaves it.
    pub fn accepts(self, sector: &[u8]) -> bool {
        match self {
            Expectation::Zeros => sector.iter().all(|&b| b == 0),
            Expectation::ZerosOrOnes => {
                let first = sector[0];
                (first == 0 || first == 0xFF) && sector.iter().all(|&b| b == first)
            }
            Expectation::Indeterminate => true,
        }
    }
}

/// Reads the sample again after the drive's command.
pub fn check(io: &dyn BlockIo, marked: &Marked, expected: Expectation) -> FirmwareVerification {
    let sector = io.sector_size();
    let data = PassData::Random(marked.marker.clone());
    let (mut remaining, mut unexpected, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = AlignedBuf::new(CHUNK as usize);
    let mut marker = vec![0u8; CHUNK as usize];
    for chunk in chunks(&marked.ranges) {
        let len = (chunk.end - chunk.start) as usize;
        let slice = &mut buf[..len];
        if io.read_at(slice, chunk.start).is_err() {
            push_merged(&mut unreadable, chunk.clone());
            continue;
        }
        data.fill(chunk.start, &mut marker[..len]);
        for (i, (got, old)) in slice.chunks(sector).zip(marker[..len].chunks(sector)).enumerate() {
            let at = chunk.start + (i * sector) as u64;
            let range = at..at + got.len() as u64;
            if got == old {
                push_merged(&mut remaining, range);
            } else if !expected.accepts(got) {
                push_merged(&mut unexpected, range);
            }
        }
    }
    let result = match (remaining.is_empty() && unexpected.is_empty(), unreadable.is_empty()) {
        (false, _) => VerificationResult::Failed,
        (true, false) => VerificationResult::Incomplete,
        (true, true) => VerificationResult::Passed,
    };
    let listed = |ranges: Vec<Range<u64>>| {
        let mut list = SectorRange::list(&ranges, sector as u64);
        list.truncate(MAX_LISTED);
        list
    };
    FirmwareVerification {
        marker_remaining: listed(remaining),
        unexpected: listed(unexpected),
        unreadable: listed(unreadable),
        result,
        ..not_run(io, marked, expected)
    }
}

/// The record of a run whose sample could not even be marked: the drive's
/// command was not sent.
pub fn unprepared(marker: RandomStream, expected: Expectation) -> FirmwareVerification {
    FirmwareVerification {
        sample: None,
        bytes: 0,
        coverage: 0.0,
        before_sha256: String::new(),
        marker,
        expected,
        marker_remaining: Vec::new(),
        unexpected: Vec::new(),
        unreadable: Vec::new(),
        result: VerificationResult::NotRun,
    }
}

/// The record of a verification that did not run (the drive did not report
/// success); the marker is recorded all the same, for what was written.
pub fn not_run(io: &dyn BlockIo, marked: &Marked, expected: Expectation) -> FirmwareVerification {
    FirmwareVerification {
        sample: marked.sample.clone(),
        bytes: marked.bytes,
        coverage: marked.bytes as f64 / io.size() as f64,
        before_sha256: marked.before_sha256.clone(),
        ..unprepared(marked.marker.clone(), expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::fake::FakeDisk;
    use crate::stream::Prng;

    #[test]
    fn a_real_erase_passes_and_a_skipped_sector_is_caught() {
        let disk = FakeDisk::new(1 << 20, []);
        let marked = mark(&disk, Seed([1; 32]), Prng::Chacha8.fresh()).unwrap();
        assert_eq!(marked.bytes, 1 << 20, "a small medium is checked in full");
        disk.contents().fill(0);
        assert_eq!(check(&disk, &marked, Expectation::Zeros).result, VerificationResult::Passed);
        // One sector the "drive" did not erase keeps the marker.
        let stale = marker_sector(&marked, 77);
        disk.contents()[77 * 512..78 * 512].copy_from_slice(&stale);
        let verification = check(&disk, &marked, Expectation::Zeros);
        assert_eq!(verification.result, VerificationResult::Failed);
        assert_eq!(verification.marker_remaining, vec![SectorRange { first_lba: 77, sectors: 1 }]);
    }

    fn marker_sector(marked: &Marked, lba: u64) -> Vec<u8> {
        let mut sector = vec![0u8; 512];
        PassData::Random(marked.marker.clone()).fill(lba * 512, &mut sector);
        sector
    }

    #[test]
    fn zeros_before_do_not_pass_for_an_erase_that_did_nothing() {
        // The medium already reads as the command would leave it; only the
        // marker tells that the command did nothing.
        let disk = FakeDisk::new(1 << 20, []);
        disk.contents().fill(0);
        let marked = mark(&disk, Seed([2; 32]), Prng::AesCtr.fresh()).unwrap();
        let verification = check(&disk, &marked, Expectation::Zeros);
        assert_eq!(verification.result, VerificationResult::Failed);
        assert_eq!(verification.marker_remaining.len(), 1);
        assert_eq!(verification.marker_remaining[0].sectors, 2048);
    }

    #[test]
    fn content_other_than_expected_fails_and_unreadable_is_incomplete() {
        let disk = FakeDisk::new(1 << 20, []);
        let marked = mark(&disk, Seed([3; 32]), Prng::Chacha8.fresh()).unwrap();
        disk.contents().fill(0x11);
        let verification = check(&disk, &marked, Expectation::ZerosOrOnes);
        assert_eq!(verification.result, VerificationResult::Failed);
        assert!(verification.marker_remaining.is_empty());
        assert_eq!(check(&disk, &marked, Expectation::Indeterminate).result, VerificationResult::Passed);
        disk.pull();
        assert_eq!(check(&disk, &marked, Expectation::Indeterminate).result, VerificationResult::Incomplete);
    }

    #[test]
    fn a_large_medium_is_sampled_by_the_nist_rule() {
        let disk = FakeDisk::new(64 << 20, []);
        let marked = mark(&disk, Seed([4; 32]), Prng::Chacha8.fresh()).unwrap();
        let sample = marked.sample.clone().expect("64 MiB has room for 1,000 subsections");
        assert_eq!(sample.subsections, 1000);
        let coverage = marked.bytes as f64 / (64 << 20) as f64;
        assert!((0.10..0.2).contains(&coverage), "{coverage}");
        // The first and last sectors are always in the sample.
        assert_eq!(marked.ranges.first().unwrap().start, 0);
        assert_eq!(marked.ranges.last().unwrap().end, 64 << 20);
    }

    #[test]
    fn a_medium_that_drops_writes_is_caught_before_the_command() {
        let disk = FakeDisk::new(1 << 20, [5]);
        assert!(matches!(mark(&disk, Seed([5; 32]), Prng::Chacha8.fresh()), Err(MarkError::Write { .. })));
    }
}
