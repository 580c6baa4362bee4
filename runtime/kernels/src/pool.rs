//! A small persistent worker pool for splitting matvec/matmul rows across threads.
//!
//! Decode issues hundreds of small matvecs per token, so waking workers must cost far less than a matvec:
//! workers spin on a generation counter for a short while after each job (about 100 µs) and only then sleep on
//! a condvar. The calling thread always takes part 0 of the job itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// A job as seen by workers: a borrowed closure with its lifetime erased. Valid while `remaining > 0`.
#[derive(Clone, Copy)]
struct JobRef(*const (dyn Fn(usize) + Sync));

// SAFETY: the closure is `Sync`, and `run` keeps it alive until every worker has finished with it.
unsafe impl Send for JobRef {}

struct Shared {
    gen: AtomicU64,
    job: Mutex<Option<JobRef>>,
    cv: Condvar,
    sleepers: AtomicUsize,
    remaining: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
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
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1))
            .filter_map(|i| {
                let s = shared.clone();
                // A failed spawn just means fewer workers; `threads()` reports what we really have.
                std::thread::Builder::new()
                    .name(format!("flint-kernels-{i}"))
                    .spawn(move || worker(s, i))
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

    /// Runs `f(0)`, …, `f(threads - 1)`, each once, in parallel; returns when all are done.
    /// A panic in any part is re-raised here after all parts finished.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let nw = self.workers.len();
        let guard = match self.busy.try_lock() {
            Ok(g) if nw > 0 => g,
            _ => {
                for i in 0..=nw {
                    f(i);
                }
                return;
            }
        };
        let s = &*self.shared;
        // SAFETY: erasing the lifetime is sound because this function does not return (or unwind) before
        // `remaining` reaches 0, i.e. before every worker is done calling the closure.
        let job: JobRef = JobRef(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                f,
            )
        });
        s.remaining.store(nw, Ordering::Relaxed);
        {
            let mut j = s.job.lock().unwrap_or_else(|e| e.into_inner());
            *j = Some(job);
            s.gen.fetch_add(1, Ordering::Release);
            if s.sleepers.load(Ordering::Relaxed) > 0 {
                s.cv.notify_all();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let mut spins = 0u32;
        while s.remaining.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        drop(guard);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a flint-kernels worker panicked");
        }
    }
}

fn worker(s: Arc<Shared>, index: usize) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut n = 0u32;
        while s.gen.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Relaxed) {
            n += 1;
            if n % 64 != 0 || start.elapsed() < SPIN {
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
        if let Some(JobRef(f)) = job {
            // SAFETY: `run` keeps the closure alive until `remaining` drops to 0, which happens only below.
            let f = unsafe { &*f };
            if catch_unwind(AssertUnwindSafe(|| f(index))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.remaining.fetch_sub(1, Ordering::Release);
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
