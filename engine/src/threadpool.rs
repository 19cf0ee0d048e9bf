//! A persistent worker pool for data-parallel kernels.
//!
//! Spawning threads per matrix product would cost more than a small model's whole layer, so workers
//! live as long as the pool: they spin briefly on a generation counter (jobs come back to back during
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

/// `state` layout: job generation in the high 32 bits, CLOSED, then the count of workers that joined.
const CLOSED: u64 = 1 << 31;
const COUNT_MASK: u64 = CLOSED - 1;

struct Shared {
    /// Incremented once per job; workers look at a job when they see a new value.
    generation: AtomicUsize,
    /// (generation << 32) | CLOSED? | joined workers, for the current job.
    state: AtomicU64,
    /// Workers that joined the current job and finished it.
    done: AtomicUsize,
    shutdown: AtomicBool,
    /// Valid while the current job is open or joined workers are still running it; see `run`.
    job: UnsafeCell<Option<Job<'static>>>,
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
}

/// How long a worker spins waiting for the next job before it sleeps.
const SPIN_ITERS: usize = 1 << 16;

impl ThreadPool {
    /// A pool that runs jobs on up to `n_threads` threads: the caller plus `n_threads - 1` workers.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            state: AtomicU64::new(CLOSED),
            done: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            job: UnsafeCell::new(None),
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
        ThreadPool { shared, workers, run_lock: Mutex::new(()) }
    }

    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0)` on the caller and `f(i)` on each worker `i` that joins before the caller's
    /// `f(0)` returns; returns when every participant is done. `f` must therefore share its work
    /// dynamically (a counter of tiles), never assume that every index runs. A panic in any
    /// participant is re-raised here.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        let generation = shared.generation.load(Ordering::Relaxed).wrapping_add(1);
        // SAFETY: the 'static lifetime is a lie told only to workers that join this job; we do not
        // return (or unwind) before every one of them has finished, so `f` outlives every use. No
        // worker reads `job` now: the previous job is closed and its participants are done.
        unsafe {
            *shared.job.get() = Some(std::mem::transmute::<Job<'_>, Job<'static>>(f));
        }
        shared.done.store(0, Ordering::Relaxed);
        shared.state.store(((generation as u64) & 0xffff_ffff) << 32, Ordering::Relaxed);
        shared.generation.store(generation, Ordering::Release);
        {
            let _lock = shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let joined = (shared.state.fetch_or(CLOSED, Ordering::AcqRel) & COUNT_MASK) as usize;
        let mut spins = 0usize;
        while shared.done.load(Ordering::Acquire) != joined {
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the job is closed and every worker that joined it is done.
        unsafe {
            *shared.job.get() = None;
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

/// Joins the job of `generation` if it is still open.
fn try_join(shared: &Shared, generation: usize) -> bool {
    let tag = ((generation as u64) & 0xffff_ffff) << 32;
    let mut s = shared.state.load(Ordering::Acquire);
    loop {
        if s & !COUNT_MASK & !CLOSED != tag || s & CLOSED != 0 {
            return false;
        }
        match shared.state.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => s = now,
        }
    }
}

fn worker_loop(shared: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        let mut spins = 0usize;
        let generation = loop {
            let g = shared.generation.load(Ordering::Acquire);
            if g != seen || shared.shutdown.load(Ordering::Acquire) {
                break g;
            }
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
                continue;
            }
            let lock = shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            let _lock = shared
                .wake
                .wait_while(lock, |_| {
                    shared.generation.load(Ordering::Acquire) == seen
                        && !shared.shutdown.load(Ordering::Acquire)
                })
                .unwrap_or_else(|e| e.into_inner());
            spins = 0;
        };
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = generation;
        if !try_join(shared, generation) {
            continue; // the caller already finished this job without us
        }
        // SAFETY: we joined the open job of this generation, so its pointer stays valid until we
        // increment `done` below.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                *shared.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
            }
        }
        shared.done.fetch_add(1, Ordering::Release);
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
