//! A small persistent worker pool for splitting matvec/matmul rows across threads.
//!
//! Decode issues hundreds of small matvecs per token, so waking workers must cost far less than a matvec:
//! workers spin on a generation counter for a short while after each job (about 100 µs) and only then sleep on
//! a condvar.
//!
//! A job is a number of parts, claimed one at a time from a shared counter by the caller and every worker that is
//! running, so a thread that lost its core (another process, an encoder on the same cores) delays only the part
//! it holds, and a worker that wakes after the parts are gone does nothing. The counter carries the job's
//! generation, so a late worker can never claim a part of a newer job with an older job's closure. The caller,
//! once no part is left to claim, spins briefly for the others and then sleeps until the last part is done: a
//! sleeping caller frees its core, so the scheduler can run a preempted worker there instead of leaving it queued
//! behind the other process.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// How long the caller spins for parts other threads still run before it sleeps.
const WAIT_SPIN: Duration = Duration::from_micros(30);

/// Bits of the claim counter that count parts; the rest hold the job's generation.
const PART_BITS: u32 = 32;

/// A job as seen by workers: a borrowed closure with its lifetime erased. Valid while the job has parts that are not
/// done.
#[derive(Clone, Copy)]
struct JobRef(*const (dyn Fn(usize) + Sync));

// SAFETY: the closure is `Sync`, and `run` keeps it alive until every worker has finished with it.
unsafe impl Send for JobRef {}

struct Shared {
    gen: AtomicU64,
    /// The current job, its parts and its generation.
    job: Mutex<Option<(JobRef, usize, u64)>>,
    cv: Condvar,
    sleepers: AtomicUsize,
    /// `generation << PART_BITS | next part to claim`.
    claim: AtomicU64,
    /// Parts finished of the current job.
    done: AtomicUsize,
    /// The caller sleeps on `done_cv` (under `done_lock`) until `done` reaches the job's parts.
    caller_sleeps: AtomicBool,
    done_lock: Mutex<()>,
    done_cv: Condvar,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

impl Shared {
    /// Claims and runs parts of job `gen` (`parts` of them) until none is left; the last part to finish wakes a
    /// sleeping caller.
    fn work(&self, f: &(dyn Fn(usize) + Sync), parts: usize, gen: u64) {
        loop {
            let c = self.claim.load(Ordering::Acquire);
            let i = (c & ((1 << PART_BITS) - 1)) as usize;
            if c >> PART_BITS != gen & ((1 << (64 - PART_BITS)) - 1) || i >= parts {
                return;
            }
            if self
                .claim
                .compare_exchange_weak(c, c + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            if self.done.fetch_add(1, Ordering::SeqCst) + 1 == parts
                && self.caller_sleeps.load(Ordering::SeqCst)
            {
                let _l = self.done_lock.lock().unwrap_or_else(|e| e.into_inner());
                self.done_cv.notify_one();
            }
        }
    }
}

/// A fixed set of `threads - 1` workers plus the caller.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes jobs; a caller that finds the pool busy runs its job alone instead.
    busy: Mutex<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} threads)", self.threads())
    }
}

impl Pool {
    /// A pool running jobs on `threads` threads in total (the caller included). `threads` is at least 1.
    pub(crate) fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            gen: AtomicU64::new(0),
            job: Mutex::new(None),
            cv: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            caller_sleeps: AtomicBool::new(false),
            done_lock: Mutex::new(()),
            done_cv: Condvar::new(),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1))
            .filter_map(|i| {
                let s = shared.clone();
                // A failed spawn just means fewer workers; `threads()` reports what we really have.
                std::thread::Builder::new()
                    .name(format!("flint-kernels-{i}"))
                    .spawn(move || worker(s))
                    .ok()
            })
            .collect();
        Pool {
            shared,
            workers,
            busy: Mutex::new(()),
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0)`, …, `f(parts - 1)`, each once, on the caller and the workers (each part claimed by whichever
    /// thread is free); returns when all are done. A panic in any part is re-raised here after all parts finished.
    pub(crate) fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let nw = self.workers.len();
        let guard = match self.busy.try_lock() {
            Ok(g) if nw > 0 && parts > 1 => g,
            _ => {
                for i in 0..parts {
                    f(i);
                }
                return;
            }
        };
        assert!(parts < 1 << PART_BITS, "{parts} parts");
        let s = &*self.shared;
        // SAFETY: erasing the lifetime is sound because this function does not return (or unwind) before `done`
        // reaches `parts`, i.e. before every part has been run, and no worker calls the closure after that: a
        // worker calls it only for a part it claimed, and there are no parts left to claim.
        let job: JobRef = JobRef(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                f,
            )
        });
        let gen;
        {
            let mut j = s.job.lock().unwrap_or_else(|e| e.into_inner());
            gen = s.gen.load(Ordering::Relaxed) + 1;
            s.done.store(0, Ordering::SeqCst);
            s.claim.store(
                (gen & ((1 << (64 - PART_BITS)) - 1)) << PART_BITS,
                Ordering::Release,
            );
            *j = Some((job, parts, gen));
            s.gen.store(gen, Ordering::Release);
            if s.sleepers.load(Ordering::Relaxed) > 0 {
                s.cv.notify_all();
            }
        }
        s.work(f, parts, gen);
        let start = Instant::now();
        let mut n = 0u32;
        while s.done.load(Ordering::Acquire) != parts {
            n += 1;
            if !n.is_multiple_of(64) || start.elapsed() < WAIT_SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut l = s.done_lock.lock().unwrap_or_else(|e| e.into_inner());
            s.caller_sleeps.store(true, Ordering::SeqCst);
            while s.done.load(Ordering::SeqCst) != parts {
                l = s.done_cv.wait(l).unwrap_or_else(|e| e.into_inner());
            }
            s.caller_sleeps.store(false, Ordering::SeqCst);
        }
        drop(guard);
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a flint-kernels worker panicked");
        }
    }
}

fn worker(s: Arc<Shared>) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut n = 0u32;
        while s.gen.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Relaxed) {
            n += 1;
            if !n.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut j = s.job.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, Ordering::Relaxed);
            while s.gen.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Relaxed) {
                j = s.cv.wait(j).unwrap_or_else(|e| e.into_inner());
            }
            s.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
        if s.shutdown.load(Ordering::Relaxed) {
            return;
        }
        seen = s.gen.load(Ordering::Acquire);
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((JobRef(f), parts, gen)) = job {
            // SAFETY: the closure of job `gen` is alive while it has unclaimed or unfinished parts (see `run`), and
            // `work` calls it only for a part it claimed under that generation.
            s.work(unsafe { &*f }, parts, gen);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let _j = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::Relaxed);
            self.shared.cv.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every part runs exactly once, job after job, however many parts (fewer, as many as or more than threads),
    /// also while another thread keeps the cores busy.
    #[test]
    fn every_part_runs_once() {
        let pool = Pool::new(3);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            for parts in [2, 3, 7, 64, 1000] {
                for _ in 0..200 {
                    let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                    pool.run(parts, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(
                        hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                        "{parts} parts"
                    );
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }

    /// A part that panics is re-raised by `run` after the other parts ran, and the pool keeps working.
    #[test]
    fn a_panicking_part_is_reraised() {
        let pool = Pool::new(2);
        let ran = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(16, &|i| {
                ran.fetch_add(1, Ordering::Relaxed);
                assert!(i != 5, "part 5");
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(Ordering::Relaxed), 16);
        let n = AtomicUsize::new(0);
        pool.run(4, &|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 4);
    }
}
