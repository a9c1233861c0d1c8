//! Generation and comparison speed of the pass data on one thread (the engine runs
//! one such thread per spare core, each on whole chunks). A write pass must
//! generate faster than the device writes, and a verify pass must regenerate and
//! compare faster than the device reads.

use std::hint::black_box;

use certwipe::stream::{PassData, Prng, RandomStream, Seed};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CHUNK: usize = 4 << 20;

fn generation(c: &mut Criterion) {
    let chacha8 = PassData::Random(RandomStream::ChaCha8 { seed: Seed([42; 32]) });
    let aes = PassData::Random(Prng::AesCtr.fresh());
    let pattern = PassData::Pattern(vec![0x92, 0x49, 0x24]);
    let mut buf = vec![0u8; CHUNK];
    let mut group = c.benchmark_group("fill");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("chacha8/1-thread", |b| b.iter(|| chacha8.fill(black_box(1 << 30), &mut buf)));
    group.bench_function("aes-128-ctr/1-thread", |b| b.iter(|| aes.fill(black_box(1 << 30), &mut buf)));
    group.bench_function("pattern-3-byte", |b| b.iter(|| pattern.fill(black_box(1 << 30), &mut buf)));
    group.finish();

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    chacha8.fill(1 << 30, &mut buf);
    group
        .bench_function("chacha8/1-thread", |b| b.iter(|| chacha8.mismatches(black_box(1 << 30), &buf, 512)));
    aes.fill(1 << 30, &mut buf);
    group
        .bench_function("aes-128-ctr/1-thread", |b| b.iter(|| aes.mismatches(black_box(1 << 30), &buf, 512)));
    let zero = PassData::Pattern(vec![0]);
    let zeros = vec![0u8; CHUNK];
    group.bench_function("zero/1-thread", |b| b.iter(|| zero.mismatches(black_box(0), &zeros, 512)));
    group.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
