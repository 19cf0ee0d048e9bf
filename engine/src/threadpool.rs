//! A persistent worker pool for data-parallel kernels.
//!
//! Spawning threads per matrix product would cost more than a small model's whole layer, so workers
//! live as long as the pool: they spin briefly on the job state word (jobs come back to back during
//! a forward pass) and then sleep on a condition variable.
//!
//! Jobs share their work through counters (each participant grabs the next tile until none is
//! left), so a worker that has not started by the time the caller ran out of work is simply left
//! out: the caller closes the job and waits only for workers that joined. On a loaded machine a
//! descheduled worker then costs nothing instead of a scheduler time slice per job.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// The job a `run` call shares with the workers: `f(thread_index)`.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// `state` layout: the job's generation tag in the high 32 bits, then CLOSED, the count of
/// workers that joined the job (15 bits), and the count of those that finished it (16 bits).
/// One word on one cache line: a job costs a handful of line transfers between cores (publish,
/// join, close, finish), where separate counters would each move their own line.
const CLOSED: u64 = 1 << 31;
const JOINED_SHIFT: u32 = 16;
const JOINED_ONE: u64 = 1 << JOINED_SHIFT;
const FIELD_MASK: u64 = (1 << 15) - 1;
const TAG_MASK: u64 = !((1 << 32) - 1);

fn tag(generation: u64) -> u64 {
    generation << 32
}

fn joined(state: u64) -> u64 {
    (state >> JOINED_SHIFT) & FIELD_MASK
}

fn finished(state: u64) -> u64 {
    state & FIELD_MASK
}

/// What workers poll and write, alone on its cache lines so that nothing else (the caller's
/// stack, the mutex) shares them.
#[repr(align(128))]
struct Hot {
    /// tag(generation) | CLOSED? | joined << 16 | finished, for the current job.
    state: AtomicU64,
    /// Valid while the current job is open or joined workers are still running it; see `run`.
    job: UnsafeCell<Option<Job<'static>>>,
    /// Participants allowed in the current job: workers with an index at or past it stay out.
    limit: AtomicUsize,
}

struct Shared {
    hot: Hot,
    /// Workers sleeping (or about to) on `wake`; `run` skips the futex wake when there are none.
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the thread inside `run`, before publishing a generation and after
// every worker that joined the previous job has finished it; workers read it only after joining the
// job it belongs to (a CAS on `state` that fails once the job is closed).
unsafe impl Sync for Shared {}

pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes `run` calls from different threads sharing one pool.
    run_lock: Mutex<()>,
    /// The generation of the last job (tags in `state` are its low 32 bits).
    generation: AtomicU64,
    /// Participants of `run` jobs (see `set_active_threads`).
    active: AtomicUsize,
}

/// How long a worker spins waiting for the next job before it sleeps: about a millisecond
/// (`pause` takes ~40-140 cycles). Decode publishes a job every few microseconds, so a worker
/// never sleeps inside a forward pass; between requests it stops burning a core.
const SPIN_ITERS: usize = 1 << 14;

impl ThreadPool {
    /// A pool that runs jobs on up to `n_threads` threads: the caller plus `n_threads - 1` workers.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.clamp(1, FIELD_MASK as usize);
        let shared = Arc::new(Shared {
            hot: Hot {
                state: AtomicU64::new(CLOSED),
                job: UnsafeCell::new(None),
                limit: AtomicUsize::new(0),
            },
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..n_threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("fovea-worker-{index}"))
                    .spawn(move || worker_loop(&shared, index))
                    .unwrap_or_else(|e| panic!("cannot spawn worker thread: {e}"))
            })
            .collect();
        ThreadPool {
            shared,
            workers,
            run_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
            active: AtomicUsize::new(n_threads),
        }
    }

    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0)` on the caller and `f(i)` on each worker `i` that joins before the caller's
    /// `f(0)` returns; returns when every participant is done. `f` must therefore share its work
    /// dynamically (a counter of tiles), never assume that every index runs. A panic in any
    /// participant is re-raised here.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        self.run_on(self.active_threads(), f);
    }

    /// Limits the jobs of later `run` calls to `n` participants (clamped to 1..=n_threads):
    /// generation and prompt processing use different thread counts on one pool.
    pub fn set_active_threads(&self, n: usize) {
        self.active.store(n.clamp(1, self.n_threads()), Ordering::Relaxed);
    }

    /// Participants of a `run` job: the caller and workers 1..active_threads.
    pub fn active_threads(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// f(i, row i) for every row of `data` (rows of `row_len`), spread over the active threads
    /// `grain` rows per grab. Below `2 * grain` rows it runs on the caller alone: a pool job
    /// costs a few microseconds, more than one row of an element-wise op.
    pub fn for_each_row<T: Send>(
        &self,
        data: &mut [T],
        row_len: usize,
        grain: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let row_len = row_len.max(1);
        let n_rows = data.len() / row_len;
        let grain = grain.max(1);
        if n_rows < 2 * grain || self.active_threads() <= 1 {
            data.chunks_exact_mut(row_len).enumerate().for_each(|(i, row)| f(i, row));
            return;
        }
        let next = WorkCounter::new();
        let shared = SharedMut::new(data);
        self.run(&|_| loop {
            let start = next.grab(grain);
            if start >= n_rows {
                break;
            }
            for i in start..(start + grain).min(n_rows) {
                // SAFETY: row i is handed to this participant alone (the counter).
                f(i, unsafe { shared.range(i * row_len, row_len) });
            }
        });
    }

    /// [`ThreadPool::run`] with at most `n_threads` participants (the caller and workers
    /// 1..n_threads): a pool sized for prompt processing runs generation jobs on fewer threads.
    pub fn run_on(&self, n_threads: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || n_threads <= 1 {
            f(0);
            return;
        }
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        let hot = &shared.hot;
        let generation = self.generation.load(Ordering::Relaxed).wrapping_add(1) & 0xffff_ffff;
        self.generation.store(generation, Ordering::Relaxed);
        // SAFETY: the 'static lifetime is a lie told only to workers that join this job; we do not
        // return (or unwind) before every one of them has finished, so `f` outlives every use. No
        // worker reads `job` now: the previous job is closed and its participants are done.
        unsafe {
            *hot.job.get() = Some(std::mem::transmute::<Job<'_>, Job<'static>>(f));
        }
        // The participant limit travels in the joined count: workers with an index at or past it
        // never join. Publishing (SeqCst) pairs with a sleeping worker's SeqCst `sleepers`
        // increment: either we see the sleeper and wake it, or it sees this job and stays awake.
        hot.limit.store(n_threads, Ordering::Relaxed);
        hot.state.store(tag(generation), Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _lock = shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let closed = hot.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut spins = 0usize;
        while finished(hot.state.load(Ordering::Acquire)) != joined(closed) {
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the job is closed and every worker that joined it is done.
        unsafe {
            *hot.job.get() = None;
        }
        // Take a worker's panic even when re-raising our own, so it cannot leak into the next job.
        let worker_panic = shared.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if let Some(payload) = worker_panic {
            resume_unwind(payload);
        }
    }
}

/// Joins the job tagged `job_tag` if it is still open.
fn try_join(hot: &Hot, job_tag: u64) -> bool {
    let mut s = hot.state.load(Ordering::Acquire);
    loop {
        if s & TAG_MASK != job_tag || s & CLOSED != 0 {
            return false;
        }
        match hot.state.compare_exchange_weak(s, s + JOINED_ONE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => s = now,
        }
    }
}

fn worker_loop(shared: &Shared, index: usize) {
    let hot = &shared.hot;
    let mut seen = tag(0);
    loop {
        // Wait for a job with a new tag: spin on the state word (jobs come back to back during a
        // forward pass), then sleep.
        let mut spins = 0usize;
        let job_tag = loop {
            let t = hot.state.load(Ordering::Acquire) & TAG_MASK;
            if t != seen || shared.shutdown.load(Ordering::Relaxed) {
                break t;
            }
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
                continue;
            }
            let lock = shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst pairs with `run_on`'s publish: see the comment there.
            shared.sleepers.fetch_add(1, Ordering::SeqCst);
            let _lock = shared
                .wake
                .wait_while(lock, |_| {
                    hot.state.load(Ordering::SeqCst) & TAG_MASK == seen
                        && !shared.shutdown.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|e| e.into_inner());
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
            spins = 0;
        };
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = job_tag;
        if index >= hot.limit.load(Ordering::Relaxed) || !try_join(hot, job_tag) {
            continue; // not wanted in this job, or the caller already finished it without us
        }
        // SAFETY: we joined the open job of this tag, so its pointer stays valid until we count
        // ourselves finished below.
        let job = unsafe { *hot.job.get() };
        if let Some(job) = job {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                *shared.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
            }
        }
        hot.state.fetch_add(1, Ordering::Release);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _lock = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A job's work counter, alone on its cache lines: participants `grab` the next index. Every grab
/// moves the line between cores; sharing it with anything else the job reads (the job's captured
/// variables sit next to it on the caller's stack) would move those too, on every grab.
#[repr(align(128))]
#[derive(Default)]
pub struct WorkCounter(AtomicUsize);

impl WorkCounter {
    pub fn new() -> WorkCounter {
        WorkCounter(AtomicUsize::new(0))
    }

    /// The counter's value before adding `n`: the first of the `n` indices taken.
    #[inline]
    pub fn grab(&self, n: usize) -> usize {
        self.0.fetch_add(n, Ordering::Relaxed)
    }
}

/// A mutable slice shared by the threads of one `run` call that write disjoint parts of it.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: callers of `range` guarantee disjoint ranges across threads; T: Send moves across threads.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        SharedMut { ptr: slice.as_mut_ptr(), len: slice.len(), _borrow: std::marker::PhantomData }
    }

    /// The sub-slice `start..start + len`.
    ///
    /// # Safety
    /// No two threads may hold overlapping ranges at the same time.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.len), "SharedMut range out of bounds");
        // SAFETY: in bounds (checked above); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// The number of physical cores, the default thread count (hyper-threads share the FMA units
/// that matrix products saturate, so they rarely help).
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    physical_cores_linux().filter(|&n| n > 0 && n <= logical).unwrap_or(logical)
}

fn physical_cores_linux() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cores = std::collections::HashSet::new();
    let (mut phys, mut core) = (None, None);
    for line in info.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("physical id"), Some(v)) => phys = Some(v.to_string()),
            (Some("core id"), Some(v)) => core = Some(v.to_string()),
            (Some(""), None) | (None, _) => {
                if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                    cores.insert((p, c));
                }
            }
            _ => {}
        }
    }
    if let (Some(p), Some(c)) = (phys, core) {
        cores.insert((p, c));
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A job shaped like the real ones: tiles handed out through a counter.
    fn count_tiles(pool: &ThreadPool, n_tiles: usize) -> (u64, u64) {
        let next = AtomicUsize::new(0);
        let sum = AtomicU64::new(0);
        let mask = AtomicU64::new(0);
        pool.run(&|i| loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= n_tiles {
                break;
            }
            mask.fetch_or(1 << i, Ordering::Relaxed);
            sum.fetch_add(t as u64, Ordering::Relaxed);
            std::hint::black_box(t);
        });
        (sum.load(Ordering::Relaxed), mask.load(Ordering::Relaxed))
    }

    #[test]
    fn for_each_row_visits_every_row_once_with_its_index() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            for n_rows in [0usize, 1, 3, 4, 17, 100] {
                let mut data: Vec<u32> = vec![0; n_rows * 5];
                pool.for_each_row(&mut data, 5, 2, &|i, row| {
                    for x in row.iter_mut() {
                        *x += i as u32 + 1;
                    }
                });
                let want: Vec<u32> = (0..n_rows).flat_map(|i| [i as u32 + 1; 5]).collect();
                assert_eq!(data, want, "threads {threads}, rows {n_rows}");
            }
        }
    }

    #[test]
    fn every_tile_is_done_exactly_once() {
        for n in [1, 2, 3, 5] {
            let pool = ThreadPool::new(n);
            for round in 0..300usize {
                let tiles = round % 50;
                let (sum, _) = count_tiles(&pool, tiles);
                assert_eq!(sum, (0..tiles as u64).sum::<u64>(), "threads {n}, tiles {tiles}");
            }
        }
    }

    #[test]
    fn workers_take_part_in_long_jobs() {
        let pool = ThreadPool::new(2);
        let mut seen = 0;
        for _ in 0..50 {
            let next = AtomicUsize::new(0);
            let mask = AtomicU64::new(0);
            pool.run(&|i| {
                mask.fetch_or(1 << i, Ordering::Relaxed);
                // Keep the caller busy long enough for the worker to wake and join.
                let start = std::time::Instant::now();
                while next.load(Ordering::Relaxed) == 0
                    && start.elapsed() < std::time::Duration::from_millis(200)
                {
                    if i == 1 {
                        next.store(1, Ordering::Relaxed);
                    }
                    std::hint::spin_loop();
                }
            });
            seen |= mask.load(Ordering::Relaxed);
        }
        assert_eq!(seen, 0b11, "the worker never joined a job");
    }

    #[test]
    fn worker_panic_reaches_the_caller_and_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i| {
                if i == 0 {
                    // Wait for the worker so that its panic is the one that happens.
                    std::thread::sleep(std::time::Duration::from_millis(50));
                } else {
                    panic!("boom in worker");
                }
            })
        }));
        let main_panics = catch_unwind(AssertUnwindSafe(|| pool.run(&|_| panic!("boom in caller"))));
        assert!(r.is_err() || main_panics.is_err());
        assert!(main_panics.is_err());
        let (sum, _) = count_tiles(&pool, 10);
        assert_eq!(sum, 45);
    }

    #[test]
    fn physical_cores_is_positive() {
        assert!(physical_cores() >= 1);
    }
}
