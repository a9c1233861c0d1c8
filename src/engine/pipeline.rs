//! Two-stage chunk pipeline over a fixed set of aligned buffers. A write pass runs
//! several generator threads feeding one writer that writes in order; verification
//! runs one reader feeding several comparers. Either way the device never waits on
//! the CPU and the CPU never waits on the device, and memory stays at a few chunks.

use std::collections::BTreeMap;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use super::lock;
use crate::buffer::AlignedBuf;

/// Splits `ranges` into pieces of at most `chunk` bytes.
pub fn chunks(ranges: &[Range<u64>], chunk: usize) -> impl Iterator<Item = Range<u64>> + Send + '_ {
    ranges.iter().flat_map(move |range| {
        (range.start..range.end).step_by(chunk).map(move |start| start..(start + chunk as u64).min(range.end))
    })
}

/// A stage: how many threads run `work`.
pub struct Stage<F> {
    pub threads: usize,
    pub work: F,
}

struct Item<P> {
    index: usize,
    offset: u64,
    len: usize,
    buf: AlignedBuf,
    product: P,
}

/// Runs `produce` over every piece and hands each product to `consume`. With one
/// consumer thread, pieces are consumed in order (a writer must write in order);
/// with several, in any order. Stops taking new pieces once `stop` is set or a
/// consumer breaks.
pub fn run<P, Produce, Consume>(
    pieces: impl Iterator<Item = Range<u64>> + Send,
    chunk: usize,
    stop: &AtomicBool,
    produce: Stage<Produce>,
    consume: Stage<Consume>,
) where
    P: Send,
    Produce: Fn(u64, &mut [u8]) -> P + Sync,
    Consume: Fn(u64, &mut [u8], P) -> ControlFlow<()> + Sync,
{
    let (producers, consumers) = (produce.threads.max(1), consume.threads.max(1));
    let halted = AtomicBool::new(false);
    let should_stop = || stop.load(Ordering::Relaxed) || halted.load(Ordering::Relaxed);
    let pieces = Mutex::new(pieces.enumerate());
    let (full_tx, full_rx) = mpsc::channel::<Item<P>>();
    let full_rx = Mutex::new(full_rx);
    let (free_tx, free_rx) = mpsc::channel::<AlignedBuf>();
    let free_rx = Mutex::new(free_rx);
    for _ in 0..producers + consumers + 1 {
        free_tx.send(AlignedBuf::new(chunk)).expect("receiver is alive");
    }
    let (produce, consume) = (&produce.work, &consume.work);
    std::thread::scope(|scope| {
        for _ in 0..producers {
            let full_tx = full_tx.clone();
            let (pieces, free_rx, should_stop) = (&pieces, &free_rx, &should_stop);
            scope.spawn(move || {
                loop {
                    let Ok(mut buf) = lock(free_rx).recv() else { break };
                    if should_stop() {
                        break;
                    }
                    let Some((index, piece)) = lock(pieces).next() else { break };
                    let len = (piece.end - piece.start) as usize;
                    let product = produce(piece.start, &mut buf[..len]);
                    let item = Item { index, offset: piece.start, len, buf, product };
                    if full_tx.send(item).is_err() {
                        break;
                    }
                }
            });
        }
        drop(full_tx);
        for _ in 0..consumers {
            let free_tx = free_tx.clone();
            let (full_rx, halted) = (&full_rx, &halted);
            let ordered = consumers == 1;
            scope.spawn(move || {
                // Pieces that arrived before their turn (ordered mode only).
                let mut early: BTreeMap<usize, Item<P>> = BTreeMap::new();
                let mut next = 0;
                loop {
                    let item = match early.remove(&next) {
                        Some(item) => item,
                        None => match lock(full_rx).recv() {
                            Ok(item) if ordered && item.index != next => {
                                early.insert(item.index, item);
                                continue;
                            }
                            Ok(item) => item,
                            Err(_) => break,
                        },
                    };
                    next += 1;
                    let Item { offset, len, mut buf, product, .. } = item;
                    // After a halt, keep draining so producers get their buffers back and exit.
                    if !halted.load(Ordering::Relaxed)
                        && !stop.load(Ordering::Relaxed)
                        && consume(offset, &mut buf[..len], product).is_break()
                    {
                        halted.store(true, Ordering::Relaxed);
                    }
                    let _ = free_tx.send(buf);
                }
            });
        }
        drop(free_tx);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_ranges_exactly_in_order() {
        let pieces: Vec<_> = chunks(&[0..10, 20..25], 4).collect();
        assert_eq!(pieces, vec![0..4, 4..8, 8..10, 20..24, 24..25]);
    }

    fn fill_with_offset(offset: u64, buf: &mut [u8]) -> u64 {
        buf.fill(offset as u8);
        offset
    }

    #[test]
    fn one_consumer_sees_every_chunk_in_order_even_with_many_producers() {
        let stop = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        run(
            chunks(&[0..1000], 8),
            8,
            &stop,
            Stage { threads: 4, work: fill_with_offset },
            Stage {
                threads: 1,
                work: |offset: u64, buf: &mut [u8], product: u64| {
                    assert_eq!(offset, product);
                    assert!(buf.iter().all(|b| *b == offset as u8));
                    seen.lock().unwrap().push(offset);
                    ControlFlow::Continue(())
                },
            },
        );
        assert_eq!(seen.into_inner().unwrap(), (0..1000).step_by(8).collect::<Vec<u64>>());
    }

    #[test]
    fn many_consumers_see_every_chunk_once() {
        let stop = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        run(
            chunks(&[0..1000], 8),
            8,
            &stop,
            Stage { threads: 1, work: fill_with_offset },
            Stage {
                threads: 3,
                work: |offset: u64, _: &mut [u8], _: u64| {
                    seen.lock().unwrap().push(offset);
                    ControlFlow::Continue(())
                },
            },
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..1000).step_by(8).collect::<Vec<u64>>());
    }

    #[test]
    fn a_break_stops_the_pipeline_without_hanging() {
        let stop = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        run(
            chunks(&[0..100_000], 8),
            8,
            &stop,
            Stage { threads: 3, work: fill_with_offset },
            Stage {
                threads: 1,
                work: |offset: u64, _: &mut [u8], _: u64| {
                    seen.lock().unwrap().push(offset);
                    if offset >= 40 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                },
            },
        );
        assert_eq!(seen.into_inner().unwrap(), vec![0, 8, 16, 24, 32, 40]);
    }
}
