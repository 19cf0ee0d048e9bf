//! A persistent worker pool for data-parallel kernels.
//!
//! Spawning threads per matrix product would cost more than a small model's whole layer, so workers
//! live as long as the pool: they spin briefly on a generation counter (jobs come back to back during
//! a forward pass) and then sleep on a condition variable.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// The job a `run` call shares with the workers: `f(thread_index)`.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// Incremented once per job; workers run a job when they see a new value.
    generation: AtomicUsize,
    /// Workers still running the current job.
    pending: AtomicUsize,
    shutdown: AtomicBool,
    /// Set between publishing a job and its completion only; see `run`.
    job: UnsafeCell<Option<Job<'static>>>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the thread inside `run` while no worker reads it (all workers
// have finished the previous job: `pending` is 0), and read by workers only after the generation
// bump that publishes it (Release/Acquire), before they decrement `pending`.
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
    /// A pool that runs jobs on `n_threads` threads: the caller plus `n_threads - 1` workers.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
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

    /// Runs `f(i)` for every thread index `i` in `0..n_threads()` and returns when all are done.
    /// A panic in any of them is re-raised here.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the 'static lifetime is a lie told only to the workers, who drop their copy of the
        // reference before decrementing `pending`; we do not return (or unwind) before `pending` is 0,
        // so `f` outlives every use. No worker reads `job` now: the previous job is complete.
        unsafe {
            *self.shared.job.get() = Some(std::mem::transmute::<Job<'_>, Job<'static>>(f));
        }
        self.shared.pending.store(self.workers.len(), Ordering::Relaxed);
        self.shared.generation.fetch_add(1, Ordering::Release);
        {
            let _lock = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let mut spins = 0usize;
        while self.shared.pending.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: all workers are done with the job (pending is 0).
        unsafe {
            *self.shared.job.get() = None;
        }
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        let worker_panic = self.shared.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(payload) = worker_panic {
            resume_unwind(payload);
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
                    shared.generation.load(Ordering::Acquire) == seen && !shared.shutdown.load(Ordering::Acquire)
                })
                .unwrap_or_else(|e| e.into_inner());
            spins = 0;
        };
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = generation;
        // SAFETY: the job was published before the generation bump we just observed (Acquire) and
        // stays valid until we decrement `pending` below.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                *shared.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
            }
        }
        shared.pending.fetch_sub(1, Ordering::Release);
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

    #[test]
    fn every_thread_runs_every_job() {
        for n in [1, 2, 3, 5] {
            let pool = ThreadPool::new(n);
            for round in 0..200u64 {
                let hits = AtomicU64::new(0);
                let mask = AtomicU64::new(0);
                pool.run(&|i| {
                    hits.fetch_add(round, Ordering::Relaxed);
                    mask.fetch_or(1 << i, Ordering::Relaxed);
                });
                assert_eq!(hits.load(Ordering::Relaxed), round * n as u64);
                assert_eq!(mask.load(Ordering::Relaxed), (1u64 << n) - 1);
            }
        }
    }

    #[test]
    fn worker_panic_reaches_the_caller_and_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(&|i| assert!(i == 0, "boom in worker"))));
        assert!(r.is_err());
        let count = AtomicU64::new(0);
        pool.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn shared_mut_disjoint_writes() {
        let pool = ThreadPool::new(2);
        let mut data = vec![0u32; 64];
        let shared = SharedMut::new(&mut data);
        pool.run(&|i| {
            // SAFETY: thread i owns the half [32 i, 32 i + 32).
            let part = unsafe { shared.range(i * 32, 32) };
            part.iter_mut().for_each(|v| *v = i as u32 + 1);
        });
        assert!(data[..32].iter().all(|&v| v == 1) && data[32..].iter().all(|&v| v == 2));
    }

    #[test]
    fn physical_cores_is_positive() {
        assert!(physical_cores() >= 1);
    }
}
