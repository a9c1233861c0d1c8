//! One set of workers and one buffer pool for every target of a run.
//!
//! Generating pass data and comparing what was read back is CPU work; writing and
//! reading is device work. Each target keeps its own thread for its device (so
//! writes stay in order and a slow device never blocks a fast one), and all
//! targets share one pool of compute threads sized to the cores and one pool of
//! aligned buffers under a memory budget. A target asks for work as fast as its
//! device takes it, so a fast device naturally gets more of the workers than a
//! slow one, and the number of targets no longer multiplies threads or memory.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::buffer::AlignedBuf;

/// Memory for buffers across all targets of a run.
pub const DEFAULT_BUDGET: usize = 96 << 20;
/// The largest and smallest chunk: large enough that per-request overhead
/// vanishes (1 MiB ran 10-15 % slower than 2 MiB on a fast device), small enough
/// that the chunks in flight stay in the CPU caches and many targets each get
/// several.
pub const MAX_CHUNK: usize = 2 << 20;
pub const MIN_CHUNK: usize = 1 << 20;

pub struct Workers {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
    pub buffers: BufferPool,
}

type Task = Box<dyn FnOnce() + Send + 'static>;

/// The tasks waiting for a worker. Idle workers sleep on the condition variable
/// instead of spinning: on a machine with few cores the kernel's side of the I/O
/// (the loop device's copy, the driver) needs the CPU a spinning pool would burn.
#[derive(Default)]
struct Queue {
    tasks: Mutex<(VecDeque<Task>, bool)>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, task: Task) {
        super::lock(&self.tasks).0.push_back(task);
        self.ready.notify_one();
    }

    /// The next task, or `None` once the pool is shut down and drained.
    fn pop(&self) -> Option<Task> {
        let mut state = super::lock(&self.tasks);
        loop {
            if let Some(task) = state.0.pop_front() {
                return Some(task);
            }
            if state.1 {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Workers {
    /// Workers for `targets` targets at once: one compute thread per core, and
    /// chunks sized so that each target can have three in flight within `budget`.
    pub fn new(targets: usize, budget: usize) -> Workers {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(threads, targets, budget)
    }

    pub fn with_threads(threads: usize, targets: usize, budget: usize) -> Workers {
        let per_target = budget / (3 * targets.max(1));
        let chunk = (per_target / MIN_CHUNK * MIN_CHUNK).clamp(MIN_CHUNK, MAX_CHUNK);
        let queue = Arc::new(Queue::default());
        let threads = (0..threads.max(1))
            .map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("certwipe-worker-{i}"))
                    .spawn(move || {
                        while let Some(task) = queue.pop() {
                            task();
                        }
                    })
                    .expect("the compute threads start")
            })
            .collect();
        Workers { queue, threads, buffers: BufferPool::new(chunk, (budget / chunk).max(2)) }
    }

    /// Bytes per I/O.
    pub fn chunk(&self) -> usize {
        self.buffers.chunk
    }

    /// Chunks one target keeps in flight at most: one at the device while the
    /// next is generated or compared, which keeps up with any device (AES-CTR
    /// generates 20 GiB/s on one core, ChaCha8 5). More only evicts chunks from the
    /// CPU caches before the device takes them: on tmpfs-backed loop devices three
    /// per target ran 2 % slower than two with one device and 15 % slower with four
    /// (benches/vs_dd.py, interleaved A/B runs).
    pub fn depth(&self) -> usize {
        2
    }

    /// Runs `body` on the calling thread with a scope in which it can hand tasks
    /// that borrow from the caller (for `'env`) to the shared workers; returns
    /// only when every one of them has finished, even if `body` panics.
    pub fn scope<'env, R>(&self, body: impl FnOnce(&Scope<'_, 'env>) -> R) -> R {
        let scope = Scope { workers: self, pending: Arc::default(), _env: PhantomData };
        let result = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.pending.wait();
        if scope.pending.panicked.load(Ordering::Relaxed) {
            panic!("a worker task panicked");
        }
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        super::lock(&self.queue.tasks).1 = true;
        self.queue.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Tasks handed to the workers from one [`Workers::scope`].
pub struct Scope<'w, 'env> {
    workers: &'w Workers,
    pending: Arc<Pending>,
    /// Invariant in `'env`, as `std::thread::Scope`: a task may borrow only what
    /// outlives the whole `scope` call.
    _env: PhantomData<&'env mut &'env ()>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    finished: Condvar,
    panicked: AtomicBool,
}

impl Pending {
    fn wait(&self) {
        let mut count = super::lock(&self.count);
        while *count > 0 {
            count = self.finished.wait(count).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl<'env> Scope<'_, 'env> {
    pub fn spawn(&self, task: impl FnOnce() + Send + 'env) {
        *super::lock(&self.pending.count) += 1;
        let pending = Arc::clone(&self.pending);
        let job: Box<dyn FnOnce() + Send + 'env> = Box::new(move || {
            if catch_unwind(AssertUnwindSafe(task)).is_err() {
                pending.panicked.store(true, Ordering::Relaxed);
            }
            *super::lock(&pending.count) -= 1;
            pending.finished.notify_all();
        });
        // SAFETY: `Workers::scope` does not return, nor unwind past its caller,
        // before every task spawned here has run to completion (`Pending::wait`),
        // and everything the task borrows lives for `'env`, which outlives that
        // call; so no borrow is used after its end. Only the lifetime changes.
        let job: Task = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'env>, Task>(job) };
        self.workers.queue.push(job);
    }
}

/// Aligned buffers shared by all targets, at most `limit` of them.
pub struct BufferPool {
    chunk: usize,
    limit: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    free: Vec<AlignedBuf>,
    allocated: usize,
    /// Targets blocked waiting for their first buffer: freed buffers go to them
    /// before anyone who already has work in flight gets another.
    waiting: usize,
}

impl BufferPool {
    fn new(chunk: usize, limit: usize) -> BufferPool {
        BufferPool {
            chunk,
            limit,
            state: Mutex::new(PoolState { free: Vec::new(), allocated: 0, waiting: 0 }),
            freed: Condvar::new(),
        }
    }

    /// A buffer, waiting for one if the budget is spent. Call only while holding
    /// no other buffer, so that waiting can never deadlock.
    pub fn take(&self) -> AlignedBuf {
        let mut state = super::lock(&self.state);
        state.waiting += 1;
        loop {
            if let Some(buf) = self.grab(&mut state) {
                state.waiting -= 1;
                return buf;
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A buffer if one is free and nobody is waiting for a first one.
    pub fn try_take(&self) -> Option<AlignedBuf> {
        let mut state = super::lock(&self.state);
        if state.waiting > 0 {
            return None;
        }
        self.grab(&mut state)
    }

    fn grab(&self, state: &mut PoolState) -> Option<AlignedBuf> {
        if let Some(buf) = state.free.pop() {
            return Some(buf);
        }
        (state.allocated < self.limit).then(|| {
            state.allocated += 1;
            AlignedBuf::new(self.chunk)
        })
    }

    pub fn give(&self, buf: AlignedBuf) {
        super::lock(&self.state).free.push(buf);
        self.freed.notify_one();
    }

    /// Buffers allocated so far (the pool's memory high-water mark, in chunks).
    pub fn allocated(&self) -> usize {
        super::lock(&self.state).allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_shrink_with_many_targets_and_stay_within_the_budget() {
        let one = Workers::with_threads(2, 1, DEFAULT_BUDGET);
        assert_eq!(one.chunk(), MAX_CHUNK);
        let sixteen = Workers::with_threads(2, 16, DEFAULT_BUDGET);
        assert_eq!(sixteen.chunk(), 2 << 20);
        let forty = Workers::with_threads(2, 40, DEFAULT_BUDGET);
        assert_eq!(forty.chunk(), MIN_CHUNK);
        assert!(sixteen.buffers.limit * sixteen.chunk() <= DEFAULT_BUDGET);
        let many = Workers::with_threads(2, 1000, DEFAULT_BUDGET);
        assert_eq!(many.chunk(), MIN_CHUNK);
    }

    #[test]
    fn the_pool_never_exceeds_its_limit_and_serves_waiters_first() {
        let pool = BufferPool::new(4096, 2);
        let (a, b) = (pool.take(), pool.try_take().unwrap());
        assert!(pool.try_take().is_none(), "over the limit");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pool.take());
            while super::super::lock(&pool.state).waiting == 0 {
                std::thread::yield_now();
            }
            pool.give(a);
            assert!(pool.try_take().is_none(), "a freed buffer goes to the waiting target");
            pool.give(waiter.join().unwrap());
        });
        pool.give(b);
        assert_eq!(pool.allocated(), 2);
    }
}
