//! AES-128 in counter mode as a seekable random stream: byte `o` of a pass is byte
//! `o` of the keystream for the pass's key and initial counter block (IV), the
//! counter being the IV plus `o / 16`, a 128-bit big-endian number — exactly what
//! `openssl enc -aes-128-ctr -K KEY -iv IV -nosalt < /dev/zero` writes, so anyone
//! can regenerate a pass with stock tools.
//!
//! Why hand-written intrinsics beside the `aes`/`ctr` crates: on x86-64 the crates
//! choose their AES instructions at run time through a closure-based backend that
//! the compiler does not inline, which ran at 3.5–4 GiB/s per core here, while the
//! same crates built for the exact CPU run at 9–11 GiB/s. certwipe must run on any
//! x86-64 machine, so it keeps its own two keystream loops (VAES with AVX-512:
//! 16 blocks per step; AES-NI: 8 blocks per step), each compiled for its
//! instructions and chosen at run time, and uses the crates everywhere else (and
//! as the reference the tests compare both loops with, byte for byte).

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

type Reference = ctr::Ctr128BE<Aes128>;

/// Whether this CPU has AES instructions, so that AES-CTR is the fast generator.
pub fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::path() != x86::Path::None
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Writes the keystream bytes `offset..offset + buf.len()` for `key` and `iv`.
pub fn fill(key: &[u8; 16], iv: &[u8; 16], offset: u64, buf: &mut [u8]) {
    let head = ((16 - offset % 16) % 16).min(buf.len() as u64) as usize;
    let (first, rest) = buf.split_at_mut(head);
    reference(key, iv, offset, first);
    let block = u128::from_be_bytes(*iv).wrapping_add(u128::from((offset + head as u64) / 16));
    let done = fast(key, block, rest);
    let (_, tail) = rest.split_at_mut(done);
    reference(key, iv, offset + (head + done) as u64, tail);
}

/// The crates' keystream: the reference, and the path for odd heads and tails.
pub fn reference(key: &[u8; 16], iv: &[u8; 16], offset: u64, buf: &mut [u8]) {
    if buf.is_empty() {
        return;
    }
    let mut cipher = Reference::new(key.into(), iv.into());
    cipher.seek(offset);
    cipher.write_keystream(buf);
}

/// Fills a block-aligned prefix of `buf` with keystream blocks starting at counter
/// `block`, on the best instructions this CPU has; returns how many bytes it wrote
/// (0 when it has no fast path, leaving the rest to the reference).
fn fast(key: &[u8; 16], block: u128, buf: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        x86::fill(key, block, buf)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (key, block, buf);
        0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Path {
        Vaes512,
        AesNi,
        None,
    }

    pub fn path() -> Path {
        static PATH: OnceLock<Path> = OnceLock::new();
        *PATH.get_or_init(|| {
            if !(is_x86_feature_detected!("aes") && is_x86_feature_detected!("ssse3")) {
                Path::None
            } else if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("vaes")
            {
                Path::Vaes512
            } else {
                Path::AesNi
            }
        })
    }

    /// Blocks per step of each loop; the counter must not carry out of its low 64
    /// bits inside a step (once in 2^64 blocks), or the reference takes that step.
    const VAES_STEP: usize = 16;
    const NI_STEP: usize = 8;

    pub fn fill(key: &[u8; 16], mut block: u128, buf: &mut [u8]) -> usize {
        let (step, path) = match path() {
            Path::Vaes512 => (VAES_STEP, Path::Vaes512),
            Path::AesNi => (NI_STEP, Path::AesNi),
            Path::None => return 0,
        };
        let bytes = buf.len() / (16 * step) * (16 * step);
        // SAFETY: `path()` found the instructions each function is compiled for.
        let keys = unsafe { expand_key(key) };
        let mut done = 0;
        while done < bytes {
            // The run of steps before the low half of the counter would wrap.
            let until_wrap = (u64::MAX - block as u64) as u128 / step as u128;
            let steps = ((bytes - done) / (16 * step)).min(until_wrap.min(usize::MAX as u128) as usize);
            if steps == 0 {
                return done;
            }
            let part = &mut buf[done..done + steps * 16 * step];
            // SAFETY: as above; `part` is a whole number of steps.
            unsafe {
                match path {
                    Path::Vaes512 => keystream_vaes512(&keys, block, part),
                    _ => keystream_aesni(&keys, block, part),
                }
            }
            done += part.len();
            block = block.wrapping_add((part.len() / 16) as u128);
        }
        done
    }

    /// The AES-128 key schedule (FIPS 197 §5.2) with AESKEYGENASSIST.
    ///
    /// # Safety
    /// The CPU must have the instructions named in `target_feature`; callers
    /// check them at run time (`is_x86_feature_detected!`) before the first call.
    #[target_feature(enable = "aes,sse2")]
    unsafe fn expand_key(key: &[u8; 16]) -> [__m128i; 11] {
        #[inline]
        #[target_feature(enable = "sse2")]
        fn next(previous: __m128i, assist: __m128i) -> __m128i {
            let assist = _mm_shuffle_epi32::<0xff>(assist);
            let mut k = previous;
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            _mm_xor_si128(k, assist)
        }
        let mut keys = [_mm_setzero_si128(); 11];
        // SAFETY: `key` is 16 readable bytes; the load is unaligned.
        keys[0] = unsafe { _mm_loadu_si128(key.as_ptr().cast()) };
        macro_rules! round {
            ($i:literal, $rcon:literal) => {
                keys[$i] = next(keys[$i - 1], _mm_aeskeygenassist_si128::<$rcon>(keys[$i - 1]));
            };
        }
        round!(1, 0x01);
        round!(2, 0x02);
        round!(3, 0x04);
        round!(4, 0x08);
        round!(5, 0x10);
        round!(6, 0x20);
        round!(7, 0x40);
        round!(8, 0x80);
        round!(9, 0x1b);
        round!(10, 0x36);
        keys
    }

    /// Reverses the 16 bytes of each 128-bit lane: a little-endian counter becomes
    /// the big-endian block CTR mode encrypts.
    const LANE_REVERSE_HI: i64 = 0x0001_0203_0405_0607;
    const LANE_REVERSE_LO: i64 = 0x0809_0a0b_0c0d_0e0f;

    /// 16 blocks per step in four 512-bit registers.
    ///
    /// # Safety
    /// The CPU must have the instructions named in `target_feature`; callers
    /// check them at run time (`is_x86_feature_detected!`) before the first call.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes")]
    unsafe fn keystream_vaes512(keys: &[__m128i; 11], first: u128, buf: &mut [u8]) {
        let k: [__m512i; 11] = std::array::from_fn(|i| _mm512_broadcast_i32x4(keys[i]));
        let (h, l) = (LANE_REVERSE_HI, LANE_REVERSE_LO);
        let reverse = _mm512_set_epi64(h, l, h, l, h, l, h, l);
        let four = _mm512_set_epi64(0, 4, 0, 4, 0, 4, 0, 4);
        let mut counter = first;
        for out in buf.chunks_exact_mut(16 * VAES_STEP) {
            let (lo, hi) = (counter as u64 as i64, (counter >> 64) as u64 as i64);
            let c0 = _mm512_set_epi64(
                hi,
                lo.wrapping_add(3),
                hi,
                lo.wrapping_add(2),
                hi,
                lo.wrapping_add(1),
                hi,
                lo,
            );
            let c1 = _mm512_add_epi64(c0, four);
            let c2 = _mm512_add_epi64(c1, four);
            let c3 = _mm512_add_epi64(c2, four);
            let mut b = [c0, c1, c2, c3].map(|c| _mm512_xor_si512(_mm512_shuffle_epi8(c, reverse), k[0]));
            for key in &k[1..10] {
                b = b.map(|x| _mm512_aesenc_epi128(x, *key));
            }
            b = b.map(|x| _mm512_aesenclast_epi128(x, k[10]));
            for (i, x) in b.iter().enumerate() {
                // SAFETY: `out` is 256 bytes; register i goes to bytes 64i..64i+64 (unaligned store).
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(64 * i).cast(), *x) };
            }
            counter = counter.wrapping_add(VAES_STEP as u128);
        }
    }

    /// 8 blocks per step, interleaved so the AES units stay busy.
    ///
    /// # Safety
    /// The CPU must have the instructions named in `target_feature`; callers
    /// check them at run time (`is_x86_feature_detected!`) before the first call.
    #[target_feature(enable = "aes,sse2,ssse3")]
    unsafe fn keystream_aesni(keys: &[__m128i; 11], first: u128, buf: &mut [u8]) {
        let reverse = _mm_set_epi64x(LANE_REVERSE_HI, LANE_REVERSE_LO);
        let one = _mm_set_epi64x(0, 1);
        let mut counter = first;
        for out in buf.chunks_exact_mut(16 * NI_STEP) {
            let mut c = _mm_set_epi64x((counter >> 64) as u64 as i64, counter as u64 as i64);
            let mut b = [_mm_setzero_si128(); NI_STEP];
            for x in &mut b {
                *x = _mm_xor_si128(_mm_shuffle_epi8(c, reverse), keys[0]);
                c = _mm_add_epi64(c, one);
            }
            for key in &keys[1..10] {
                b = b.map(|x| _mm_aesenc_si128(x, *key));
            }
            b = b.map(|x| _mm_aesenclast_si128(x, keys[10]));
            for (i, x) in b.iter().enumerate() {
                // SAFETY: `out` is 128 bytes; block i goes to bytes 16i..16i+16 (unaligned store).
                unsafe { _mm_storeu_si128(out.as_mut_ptr().add(16 * i).cast(), *x) };
            }
            counter = counter.wrapping_add(NI_STEP as u128);
        }
    }

    #[cfg(test)]
    pub fn force(path_wanted: Path, key: &[u8; 16], block: u128, buf: &mut [u8]) -> Option<usize> {
        let available = path();
        if path_wanted == Path::Vaes512 && available != Path::Vaes512 {
            return None;
        }
        if path_wanted == Path::AesNi && available == Path::None {
            return None;
        }
        let step = if path_wanted == Path::Vaes512 { VAES_STEP } else { NI_STEP };
        let bytes = buf.len() / (16 * step) * (16 * step);
        // SAFETY: the instructions were found above; `bytes` is a whole number of steps.
        unsafe {
            let keys = expand_key(key);
            match path_wanted {
                Path::Vaes512 => keystream_vaes512(&keys, block, &mut buf[..bytes]),
                _ => keystream_aesni(&keys, block, &mut buf[..bytes]),
            }
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"certwipe-aes-key";
    const IV: [u8; 16] =
        [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];

    #[test]
    fn fips_197_and_sp_800_38a_vectors() {
        // NIST SP 800-38A F.5.1, CTR-AES128.Encrypt: keystream = ciphertext XOR plaintext.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap().try_into().unwrap();
        let iv = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap().try_into().unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51").unwrap();
        let cipher = hex::decode("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff").unwrap();
        let mut stream = vec![0u8; 32];
        fill(&key, &iv, 0, &mut stream);
        let xored: Vec<u8> = stream.iter().zip(&plain).map(|(k, p)| k ^ p).collect();
        assert_eq!(xored, cipher);
    }

    #[test]
    fn every_path_equals_the_reference_at_any_offset_and_length() {
        let mut reference_stream = vec![0u8; 1 << 16];
        reference(&KEY, &IV, 0, &mut reference_stream);
        for (offset, len) in [(0, 1 << 16), (1, 100), (15, 4096), (16, 4095), (4000, 30_000), (65_000, 536)] {
            let mut piece = vec![0u8; len];
            fill(&KEY, &IV, offset as u64, &mut piece);
            assert_eq!(piece, reference_stream[offset..offset + len], "offset {offset} len {len}");
        }
        #[cfg(target_arch = "x86_64")]
        for path in [x86::Path::Vaes512, x86::Path::AesNi] {
            let mut piece = vec![0u8; 1 << 16];
            if let Some(bytes) = x86::force(path, &KEY, u128::from_be_bytes(IV), &mut piece) {
                assert_eq!(bytes, 1 << 16);
                assert_eq!(piece, reference_stream, "{path:?}");
            }
        }
    }

    #[test]
    fn the_counter_carries_across_64_bits_like_openssl() {
        // A counter just below a carry out of its low half, and one at the top of 2^128.
        for iv in [[0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0], [0xff; 16]] {
            let mut expected = vec![0u8; 8192];
            let mut cipher = Reference::new(&KEY.into(), &iv.into());
            cipher.write_keystream(&mut expected);
            let mut got = vec![0u8; 8192];
            fill(&KEY, &iv, 0, &mut got);
            assert_eq!(got, expected);
        }
    }
}
