//! The two shapes of a pass over the shared workers ([`Workers`]). A write pass
//! fills chunks on the workers and writes them on the target's own thread, in
//! order (sequential writes suit every device); verification reads chunks on the
//! target's thread, in order, and compares them on the workers, in any order.
//! Either way the device never waits on the CPU and the CPU never waits on the
//! device, and a target holds at most a few of the pool's buffers.

use std::collections::BTreeMap;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::workers::Workers;
use crate::buffer::AlignedBuf;

/// Splits `ranges` into pieces of at most `chunk` bytes.
pub fn chunks(ranges: &[Range<u64>], chunk: usize) -> impl Iterator<Item = Range<u64>> + Send + '_ {
    ranges.iter().flat_map(move |range| {
        (range.start..range.end).step_by(chunk).map(move |start| start..(start + chunk as u64).min(range.end))
    })
}

/// A buffer for the next piece: wait for one only when holding none, else take
/// one only if the pool has it to spare.
fn next_buffer(workers: &Workers, in_flight: usize) -> Option<AlignedBuf> {
    if in_flight == 0 {
        Some(workers.buffers.take())
    } else if in_flight < workers.depth() {
        workers.buffers.try_take()
    } else {
        None
    }
}

/// Fills every piece on the workers and hands each to `write`, in order, on this
/// thread. Stops taking new pieces once `stop` is set or `write` breaks.
pub fn fill_then_write<F, W>(
    workers: &Workers,
    pieces: impl Iterator<Item = Range<u64>>,
    stop: &AtomicBool,
    fill: &F,
    mut write: W,
) where
    F: Fn(u64, &mut [u8]) + Sync,
    W: FnMut(u64, &mut [u8]) -> ControlFlow<()>,
{
    let mut pieces = pieces.enumerate().peekable();
    let mut halted = false;
    workers.scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Range<u64>, AlignedBuf)>();
        let mut early: BTreeMap<usize, (Range<u64>, AlignedBuf)> = BTreeMap::new();
        let (mut in_flight, mut next) = (0, 0);
        loop {
            while !halted && !stop.load(Ordering::Relaxed) && pieces.peek().is_some() {
                let Some(mut buf) = next_buffer(workers, in_flight) else { break };
                let (index, piece) = pieces.next().expect("peeked");
                let done_tx = done_tx.clone();
                scope.spawn(move || {
                    fill(piece.start, &mut buf[..(piece.end - piece.start) as usize]);
                    let _ = done_tx.send((index, piece, buf));
                });
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            let (piece, mut buf) = loop {
                if let Some(item) = early.remove(&next) {
                    break item;
                }
                let (index, piece, buf) = done_rx.recv().expect("every spawned fill reports back");
                early.insert(index, (piece, buf));
            };
            in_flight -= 1;
            next += 1;
            // After a halt, keep collecting what is in flight so every buffer returns.
            if !halted && !stop.load(Ordering::Relaxed) {
                halted = write(piece.start, &mut buf[..(piece.end - piece.start) as usize]).is_break();
            }
            workers.buffers.give(buf);
        }
    });
}

/// Reads every piece with `read`, in order, on this thread, and hands each to
/// `check` on the workers, in any order. Stops taking new pieces once `stop` is
/// set or `check` breaks.
pub fn read_then_check<P, R, C>(
    workers: &Workers,
    pieces: impl Iterator<Item = Range<u64>>,
    stop: &AtomicBool,
    mut read: R,
    check: &C,
) where
    P: Send,
    R: FnMut(u64, &mut [u8]) -> P,
    C: Fn(u64, &mut [u8], P) -> ControlFlow<()> + Sync,
{
    let halted = AtomicBool::new(false);
    let halted = &halted;
    workers.scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<AlignedBuf>();
        let mut in_flight = 0;
        for piece in pieces {
            if halted.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                break;
            }
            let mut buf = loop {
                // Buffers of finished checks go back to the pool first.
                while let Ok(buf) = done_rx.try_recv() {
                    in_flight -= 1;
                    workers.buffers.give(buf);
                }
                if let Some(buf) = next_buffer(workers, in_flight) {
                    break buf;
                }
                workers.buffers.give(done_rx.recv().expect("every spawned check reports back"));
                in_flight -= 1;
            };
            let len = (piece.end - piece.start) as usize;
            let product = read(piece.start, &mut buf[..len]);
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                if !halted.load(Ordering::Relaxed) && check(piece.start, &mut buf[..len], product).is_break()
                {
                    halted.store(true, Ordering::Relaxed);
                }
                let _ = done_tx.send(buf);
            });
            in_flight += 1;
        }
        for _ in 0..in_flight {
            workers.buffers.give(done_rx.recv().expect("every spawned check reports back"));
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn workers() -> Workers {
        Workers::with_threads(3, 1, 8 * super::super::workers::MIN_CHUNK)
    }

    #[test]
    fn chunks_cover_ranges_exactly_in_order() {
        let pieces: Vec<_> = chunks(&[0..10, 20..25], 4).collect();
        assert_eq!(pieces, vec![0..4, 4..8, 8..10, 20..24, 24..25]);
    }

    #[test]
    fn writes_come_in_order_with_the_data_filled_for_them() {
        let workers = workers();
        let stop = AtomicBool::new(false);
        let chunk = workers.chunk() as u64;
        let mut seen = Vec::new();
        let fill = |offset: u64, buf: &mut [u8]| buf[0] = (offset / chunk) as u8;
        fill_then_write(&workers, chunks(&[0..40 * chunk], chunk as usize), &stop, &fill, |offset, buf| {
            assert_eq!(buf[0], (offset / chunk) as u8);
            seen.push(offset / chunk);
            ControlFlow::Continue(())
        });
        assert_eq!(seen, (0..40).collect::<Vec<u64>>());
        assert!(workers.buffers.allocated() <= workers.depth());
    }

    #[test]
    fn every_piece_is_checked_once_in_any_order() {
        let workers = workers();
        let stop = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        let check = |offset: u64, buf: &mut [u8], read: u64| {
            assert_eq!((buf[0] as u64, read), (offset % 251, offset));
            seen.lock().unwrap().push(offset);
            ControlFlow::Continue(())
        };
        read_then_check(
            &workers,
            chunks(&[0..1000], 8),
            &stop,
            |offset, buf| {
                buf[0] = (offset % 251) as u8;
                offset
            },
            &check,
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..1000).step_by(8).collect::<Vec<u64>>());
    }

    #[test]
    fn a_break_stops_either_shape_without_hanging() {
        let workers = workers();
        let stop = AtomicBool::new(false);
        let mut written = Vec::new();
        fill_then_write(&workers, chunks(&[0..100_000], 8), &stop, &|_, _| {}, |offset, _| {
            written.push(offset);
            if offset >= 40 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        assert_eq!(written, vec![0, 8, 16, 24, 32, 40]);
        let checked = Mutex::new(0);
        let check = |offset: u64, _: &mut [u8], _: ()| {
            *checked.lock().unwrap() += 1;
            if offset >= 400 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        read_then_check(&workers, chunks(&[0..1_000_000], 8), &stop, |_, _| {}, &check);
        assert!(*checked.lock().unwrap() < 1000, "checking went on after the break");
        stop.store(true, Ordering::Relaxed);
        fill_then_write(&workers, chunks(&[0..100], 8), &stop, &|_, _| {}, |_, _| panic!("stopped"));
    }
}
