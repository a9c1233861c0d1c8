//! The data a pass writes: a repeating byte pattern or a seekable random stream.
//!
//! Both are pure functions of the byte offset on the medium. That is what lets
//! generation run on several threads, lets verification regenerate exactly what was
//! written (for a full read or a sampled one) and lets anyone holding the report
//! re-verify a random pass years later.

pub mod aes_ctr;

use std::ops::Range;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

crate::named! {
    /// The random generators a pass can use. Either is a pure function of the offset,
    /// and its key is published in the report anyway: what matters is that the stream
    /// is incompressible and unpredictable to the drive, and fast.
    pub enum Prng: "random generator" {
        /// AES-128 in counter mode: the fastest where the CPU has AES instructions, and
        /// regenerable with stock `openssl enc -aes-128-ctr`.
        AesCtr = "aes-ctr",
        /// ChaCha with 8 rounds: portable and fast without AES instructions.
        Chacha8 = "chacha8",
    }
}

impl Prng {
    /// AES-CTR where the CPU has AES instructions, ChaCha8 elsewhere.
    pub fn for_this_cpu() -> Prng {
        if aes_ctr::hardware_aes() { Prng::AesCtr } else { Prng::Chacha8 }
    }

    /// The generator of journals written before the choice existed.
    pub fn legacy() -> Prng {
        Prng::Chacha8
    }

    /// A new stream with a fresh key from the operating system.
    pub fn fresh(self) -> RandomStream {
        match self {
            Prng::Chacha8 => RandomStream::ChaCha8 { seed: Seed::from_os() },
            Prng::AesCtr => {
                let Seed(bytes) = Seed::from_os();
                let (key, iv) = bytes.split_at(16);
                RandomStream::Aes128Ctr {
                    key: key.try_into().expect("16 bytes"),
                    iv: iv.try_into().expect("16 bytes"),
                }
            }
        }
    }
}

/// A random pass's stream: its generator and key, which is all anyone needs to
/// regenerate the pass.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "generator")]
pub enum RandomStream {
    #[serde(rename = "chacha8")]
    ChaCha8 { seed: Seed },
    /// Byte `o` is byte `o` of `openssl enc -aes-128-ctr -K key -iv iv -nosalt < /dev/zero`.
    #[serde(rename = "aes-128-ctr")]
    Aes128Ctr {
        #[serde(with = "hex_16")]
        key: [u8; 16],
        #[serde(with = "hex_16")]
        iv: [u8; 16],
    },
}

impl std::fmt::Debug for RandomStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for RandomStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RandomStream::ChaCha8 { seed } => write!(f, "chacha8 seed {}", String::from(*seed)),
            RandomStream::Aes128Ctr { key, iv } => {
                write!(f, "aes-128-ctr key {} iv {}", hex::encode(key), hex::encode(iv))
            }
        }
    }
}

/// 16 bytes as 32 lowercase hex digits.
mod hex_16 {
    use hex::FromHex;

    pub use super::hex_bytes::serialize;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        <[u8; 16]>::from_hex(&text)
            .map_err(|_| serde::de::Error::custom(format!("expected 32 hex digits, not {text:?}")))
    }
}

/// A 256-bit seed, hex-encoded in reports.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Seed(pub [u8; 32]);

impl Seed {
    /// A fresh seed from the operating system's CSPRNG.
    pub fn from_os() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the kernel's getrandom() cannot fail on Linux >= 3.17");
        Seed(bytes)
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

impl From<Seed> for String {
    fn from(seed: Seed) -> String {
        hex::encode(seed.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a seed is 32 bytes written as 64 hex digits, not {0:?}")]
pub struct BadSeed(String);

impl TryFrom<String> for Seed {
    type Error = BadSeed;
    fn try_from(text: String) -> Result<Self, BadSeed> {
        use hex::FromHex;
        <[u8; 32]>::from_hex(&text).map(Seed).map_err(|_| BadSeed(text))
    }
}

/// SHA-256 as lowercase hex: how certificates, statements and the ledger name bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Serde helpers for byte strings written as lowercase hex.
pub mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hex::decode(&text).map_err(|_| serde::de::Error::custom(format!("not hex: {text:?}")))
    }
}

/// What one pass writes, as a function of the offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassData {
    /// A pattern of one or more bytes, repeated from offset 0 of the medium, so a
    /// three-byte pattern stays in phase across chunk boundaries.
    Pattern(Vec<u8>),
    Random(RandomStream),
}

/// Bytes compared per step of verification: small enough that the expected data
/// stays in L2 cache between being generated and being compared.
const COMPARE_STEP: usize = 64 * 1024;

impl PassData {
    /// Writes the bytes that belong at `offset..offset + buf.len()`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        match self {
            PassData::Pattern(pattern) => fill_pattern(pattern, offset, buf),
            PassData::Random(RandomStream::ChaCha8 { seed }) => fill_chacha8(seed, offset, buf),
            PassData::Random(RandomStream::Aes128Ctr { key, iv }) => aes_ctr::fill(key, iv, offset, buf),
        }
    }

    /// Compares `data`, read from `offset`, with what this pass wrote there, and
    /// returns the byte ranges (absolute, whole `sector`s) that differ, merged.
    pub fn mismatches(&self, offset: u64, data: &[u8], sector: usize) -> Vec<Range<u64>> {
        let mut expected = vec![0u8; COMPARE_STEP.min(data.len())];
        let mut found = Vec::new();
        for (index, actual) in data.chunks(COMPARE_STEP).enumerate() {
            let at = offset + (index * COMPARE_STEP) as u64;
            let expected = &mut expected[..actual.len()];
            self.fill(at, expected);
            if expected != actual {
                collect_sector_mismatches(at, expected, actual, sector, &mut found);
            }
        }
        found
    }
}

fn fill_pattern(pattern: &[u8], offset: u64, buf: &mut [u8]) {
    let len = pattern.len();
    let phase = (offset % len as u64) as usize;
    // Seed one period in phase, then double the filled prefix: memcpy speed.
    let seeded = len.min(buf.len());
    for (i, byte) in buf[..seeded].iter_mut().enumerate() {
        *byte = pattern[(phase + i) % len];
    }
    let mut filled = seeded;
    while filled < buf.len() {
        // Copy a whole number of periods so the phase is preserved.
        let copy = (filled - filled % len).min(buf.len() - filled);
        buf.copy_within(..copy, filled);
        filled += copy;
    }
}

fn fill_chacha8(seed: &Seed, offset: u64, buf: &mut [u8]) {
    let mut rng = ChaCha8Rng::from_seed(seed.0);
    rng.set_word_pos(u128::from(offset / 4));
    let skip = (offset % 4) as usize;
    let mut out = buf;
    if skip != 0 {
        let mut word = [0u8; 4];
        rng.fill_bytes(&mut word);
        let take = (4 - skip).min(out.len());
        out[..take].copy_from_slice(&word[skip..skip + take]);
        out = &mut out[take..];
    }
    rng.fill_bytes(out);
}

fn collect_sector_mismatches(
    at: u64,
    expected: &[u8],
    actual: &[u8],
    sector: usize,
    found: &mut Vec<Range<u64>>,
) {
    for (index, (want, got)) in expected.chunks(sector).zip(actual.chunks(sector)).enumerate() {
        if want != got {
            let start = at + (index * sector) as u64;
            push_merged(found, start..start + got.len() as u64);
        }
    }
}

/// `ranges` sorted, with touching or overlapping ranges joined.
pub fn merged(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut joined = Vec::with_capacity(ranges.len());
    for range in ranges {
        push_merged(&mut joined, range);
    }
    joined
}

/// Appends `range` (sorted input), extending the last range instead when the two
/// touch or overlap.
pub fn push_merged(ranges: &mut Vec<Range<u64>>, range: Range<u64>) {
    match ranges.last_mut() {
        Some(last) if last.end >= range.start => last.end = last.end.max(range.end),
        _ => ranges.push(range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequential(data: &PassData, len: usize) -> Vec<u8> {
        let mut all = vec![0u8; len];
        data.fill(0, &mut all);
        all
    }

    #[test]
    fn random_stream_at_any_offset_equals_the_sequential_stream() {
        let data = PassData::Random(RandomStream::ChaCha8 { seed: Seed([7; 32]) });
        let mut rng = ChaCha8Rng::from_seed([7; 32]);
        let mut reference = vec![0u8; 1 << 20];
        rng.fill_bytes(&mut reference);
        assert_eq!(sequential(&data, reference.len()), reference);
        for (offset, len) in [(0, 1), (1, 3), (3, 70), (63, 129), (4096, 4096), (777_777, 65_537)] {
            let mut piece = vec![0u8; len];
            data.fill(offset as u64, &mut piece);
            assert_eq!(piece, reference[offset..offset + len], "offset {offset} len {len}");
        }
    }

    #[test]
    fn distinct_seeds_give_distinct_streams() {
        let chacha = |n| PassData::Random(RandomStream::ChaCha8 { seed: Seed([n; 32]) });
        assert_ne!(sequential(&chacha(1), 4096), sequential(&chacha(2), 4096));
        let (a, b) = (Prng::AesCtr.fresh(), Prng::AesCtr.fresh());
        assert_ne!(a, b);
        assert_ne!(sequential(&PassData::Random(a), 4096), sequential(&PassData::Random(b), 4096));
    }

    #[test]
    fn three_byte_pattern_stays_in_phase_across_chunk_boundaries() {
        let pattern = vec![0x92, 0x49, 0x24];
        let data = PassData::Pattern(pattern.clone());
        let whole = sequential(&data, 10_000);
        for (i, byte) in whole.iter().enumerate() {
            assert_eq!(*byte, pattern[i % 3], "byte {i}");
        }
        // Chunks of a length that is not a multiple of three, like 4 MiB.
        let mut stitched = Vec::new();
        for start in (0..10_000).step_by(1_024) {
            let mut chunk = vec![0u8; 1_024.min(10_000 - start)];
            data.fill(start as u64, &mut chunk);
            stitched.extend_from_slice(&chunk);
        }
        assert_eq!(stitched, whole);
    }

    #[test]
    fn mismatches_name_exactly_the_changed_sectors() {
        let data = PassData::Random(Prng::AesCtr.fresh());
        let base = 1 << 20;
        let mut buf = vec![0u8; 1 << 20];
        data.fill(base, &mut buf);
        assert!(data.mismatches(base, &buf, 512).is_empty());
        buf[512 * 3 + 17] ^= 1; // sector 3
        buf[512 * 4] ^= 0x80; // sector 4: merges with 3
        buf[(1 << 20) - 1] ^= 1; // last sector, in another compare step
        let found = data.mismatches(base, &buf, 512);
        assert_eq!(found, vec![base + 1536..base + 2560, base + (1 << 20) - 512..base + (1 << 20)]);
    }

    #[test]
    fn seed_round_trips_through_hex() {
        let seed = Seed::from_os();
        let text = String::from(seed);
        assert_eq!(text.len(), 64);
        assert_eq!(Seed::try_from(text).unwrap(), seed);
        assert!(Seed::try_from("abc".to_string()).is_err());
    }
}
