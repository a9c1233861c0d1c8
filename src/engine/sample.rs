//! Representative sampling per NIST SP 800-88 Rev. 1 §4.7: at least 1,000 equal
//! subsections, two non-overlapping pseudo-random samples in each, each sample at
//! least 5 % of its subsection, plus the first and last addressable locations.
//! Positions derive from a recorded seed, so anyone can re-derive them.

use std::ops::Range;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::report::SampleRecord;
use crate::stream::Seed;

pub const SUBSECTIONS: u64 = 1000;
/// Each sample covers at least this share of its subsection (5 %).
const SAMPLE_PERCENT: u64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplePlan {
    pub seed: Seed,
    pub subsections: u64,
    pub samples_per_subsection: u64,
    /// Size of a sample in a standard subsection (the last one may be larger).
    pub sample_bytes: u64,
    /// Sorted, non-overlapping byte ranges to read.
    pub ranges: Vec<Range<u64>>,
}

impl SamplePlan {
    pub fn coverage(&self, size: u64) -> f64 {
        self.bytes() as f64 / size as f64
    }

    /// Bytes the sample reads.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// What a report records of the plan: enough to derive its ranges again.
    pub fn record(&self) -> SampleRecord {
        SampleRecord {
            seed: self.seed,
            subsections: self.subsections,
            samples_per_subsection: self.samples_per_subsection,
            sample_bytes: self.sample_bytes,
        }
    }
}

/// The unit a medium with `sector`-byte sectors is sampled in: a sector, but
/// never less than the direct-I/O alignment, so every sample reads with
/// O_DIRECT. The overwrite, the drive erase and the certificate checks must
/// agree on it, since the checks derive the sample again from its seed.
pub fn unit(sector: u64) -> u64 {
    sector.max(crate::buffer::ALIGN as u64)
}

/// Plans the samples for a medium of `size` bytes read in units of `unit` bytes.
/// `None` when the medium is too small for 1,000 subsections of two units each:
/// then full verification is no dearer than sampling.
pub fn plan(size: u64, unit: u64, seed: Seed) -> Option<SamplePlan> {
    let units = size / unit;
    let per_subsection = units / SUBSECTIONS;
    if per_subsection < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::from_seed(seed.0);
    let mut ranges = vec![0..unit];
    for index in 0..SUBSECTIONS {
        let first = index * per_subsection;
        // The last subsection also takes the remainder, and its samples grow with it.
        let last = if index + 1 == SUBSECTIONS { units } else { first + per_subsection };
        let sample_units = ((last - first) * SAMPLE_PERCENT).div_ceil(100);
        let middle = first + (last - first) / 2;
        for (from, to) in [(first, middle), (middle, last)] {
            let start = from + rng.next_u64() % (to - from - sample_units + 1);
            ranges.push(start * unit..(start + sample_units) * unit);
        }
    }
    // The last addressable location, including a partial final unit.
    ranges.push((units - 1) * unit..size);
    Some(SamplePlan {
        seed,
        subsections: SUBSECTIONS,
        samples_per_subsection: 2,
        sample_bytes: (per_subsection * SAMPLE_PERCENT).div_ceil(100) * unit,
        ranges: crate::stream::merged(ranges),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_meet_nist_requirements() {
        for size in [2_000 * 4096u64, 1 << 30, (1 << 30) + 12_345] {
            let plan = plan(size, 4096, Seed([3; 32])).unwrap();
            assert!(plan.coverage(size) >= 0.10, "coverage {} for {size}", plan.coverage(size));
            assert_eq!(plan.ranges.first().unwrap().start, 0);
            assert_eq!(plan.ranges.last().unwrap().end, size);
            assert!(plan.ranges.windows(2).all(|w| w[0].end <= w[1].start));
            // Every subsection holds two samples of at least 5 % of it.
            let units = size / 4096;
            let per = units / SUBSECTIONS;
            for index in 0..SUBSECTIONS {
                let start = index * per * 4096;
                let end = if index + 1 == SUBSECTIONS { units * 4096 } else { start + per * 4096 };
                let inside: u64 =
                    plan.ranges.iter().map(|r| r.end.min(end).saturating_sub(r.start.max(start))).sum();
                assert!(inside * 10 >= end - start, "subsection {index} has {inside} of {}", end - start);
            }
        }
    }

    #[test]
    fn positions_follow_the_seed() {
        let size = 1 << 30;
        let a = plan(size, 4096, Seed([1; 32])).unwrap();
        assert_eq!(a, plan(size, 4096, Seed([1; 32])).unwrap());
        assert_ne!(a.ranges, plan(size, 4096, Seed([2; 32])).unwrap().ranges);
    }

    #[test]
    fn small_media_get_full_verification() {
        assert!(plan(1_999 * 4096, 4096, Seed([0; 32])).is_none());
    }
}
