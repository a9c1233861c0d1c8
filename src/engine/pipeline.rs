//! Two-stage chunk pipeline: one thread produces chunk N+1 while the caller consumes
//! chunk N, so the device never waits on the CPU (write passes) and the CPU never
//! waits on the device (verification).

use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::buffer::AlignedBuf;

/// Buffers in flight: one being produced, one queued, one being consumed.
const DEPTH: usize = 3;

/// Splits `ranges` into pieces of at most `chunk` bytes.
pub fn chunks(ranges: &[Range<u64>], chunk: usize) -> impl Iterator<Item = Range<u64>> + Send + '_ {
    ranges.iter().flat_map(move |range| {
        (range.start..range.end).step_by(chunk).map(move |start| start..(start + chunk as u64).min(range.end))
    })
}

/// Runs `produce` on a helper thread and `consume` on the caller's, in chunk order.
/// Stops early when `stop` is set or `consume` breaks.
pub fn run<P: Send>(
    pieces: impl Iterator<Item = Range<u64>> + Send,
    chunk: usize,
    stop: &AtomicBool,
    produce: impl Fn(u64, &mut [u8]) -> P + Sync,
    mut consume: impl FnMut(u64, &mut [u8], P) -> ControlFlow<()>,
) {
    let (full_tx, full_rx) = mpsc::sync_channel::<(u64, usize, AlignedBuf, P)>(DEPTH - 2);
    let (free_tx, free_rx) = mpsc::channel::<AlignedBuf>();
    for _ in 0..DEPTH {
        free_tx.send(AlignedBuf::new(chunk)).expect("receiver is alive");
    }
    std::thread::scope(|scope| {
        let produce = &produce;
        scope.spawn(move || {
            for piece in pieces {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut buf) = free_rx.recv() else { break };
                let len = (piece.end - piece.start) as usize;
                let product = produce(piece.start, &mut buf[..len]);
                if full_tx.send((piece.start, len, buf, product)).is_err() {
                    break;
                }
            }
        });
        for (offset, len, mut buf, product) in full_rx.iter() {
            if stop.load(Ordering::Relaxed) || consume(offset, &mut buf[..len], product).is_break() {
                break;
            }
            let _ = free_tx.send(buf);
        }
        // Unblock the producer if the consumer stopped early.
        drop(full_rx);
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

    #[test]
    fn consumer_sees_every_produced_chunk_in_order_and_can_stop_early() {
        let stop = AtomicBool::new(false);
        let mut seen = Vec::new();
        run(
            chunks(&[0..100], 8),
            8,
            &stop,
            |offset, buf| {
                buf.fill(offset as u8);
                offset
            },
            |offset, buf, product| {
                assert_eq!(offset, product);
                assert!(buf.iter().all(|b| *b == offset as u8));
                seen.push(offset);
                if offset >= 40 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            },
        );
        assert_eq!(seen, vec![0, 8, 16, 24, 32, 40]);
    }
}
