//! Public entry points: length checks, activation quantization, ISA dispatch and the split over threads.

use crate::blocks::{quantize_acts, BlockQ8A, QK};
use crate::dispatch::{active_isa, Isa, SelectError};
use crate::driver::{run_groups, run_rows, GroupKernel, Kernel, OutPtr};
use crate::pool::Pool;
use crate::scalar::*;
use crate::WeightRef;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, RwLock};

static POOL: RwLock<Option<Arc<Pool>>> = RwLock::new(None);

/// Below this many weight values a call runs on one thread: waking workers would cost more than it saves.
const MIN_PARALLEL_ELEMS: usize = 1 << 16;

/// Parts per pool thread a split matmul is cut into: a thread that loses its core holds back one small part,
/// and the others take the rest.
const SLICES: usize = 2;

thread_local! {
    static ACTS: RefCell<Vec<BlockQ8A>> = const { RefCell::new(Vec::new()) };
}

/// Sets the number of threads (caller included) used by [`matvec`], [`matmul`] and [`Exec::global`].
/// `0` means one per available core. The default is 1. Rebuilds the worker pool when the count changes (a no-op
/// otherwise); not meant for per-token use.
pub fn set_threads(n: usize) {
    let n = resolve_threads(n);
    // Callers that switch counts per stage (the glasses loop: encoder, then decoder) keep the pool when the
    // count does not change.
    if threads() == n {
        return;
    }
    let new = (n > 1).then(|| Arc::new(Pool::new(n)));
    let mut g = POOL.write().unwrap_or_else(|e| e.into_inner());
    *g = new;
}

/// `0` means one per available core; never more than [`crate::max_threads`], whatever a library caller asks.
fn resolve_threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        n.min(crate::max_threads())
    }
}

/// The number of threads matvec/matmul use.
pub fn threads() -> usize {
    pool().map_or(1, |p| p.threads())
}

fn pool() -> Option<Arc<Pool>> {
    POOL.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `out[r] = sum_c w[r, c] * x[c]` with the active ISA and the global thread count.
/// See [`Exec::matmul`] for the length contract.
pub fn matvec(w: WeightRef<'_>, x: &[f32], out: &mut [f32]) {
    Exec::global().matmul(w, x, 1, out)
}

/// Prefill: `out[j, r] = sum_c w[r, c] * x[j, c]` for `x` `[n, cols]`, `out` `[n, rows]`. See [`Exec::matmul`].
pub fn matmul(w: WeightRef<'_>, x: &[f32], n: usize, out: &mut [f32]) {
    Exec::global().matmul(w, x, n, out)
}

/// Like [`matvec`] with activations already quantized by [`quantize_acts`] (reuse one quantization for
/// several matrices that read the same input, e.g. q/k/v or gate/up). Quant weights only.
pub fn matvec_quantized(w: WeightRef<'_>, xq: &[BlockQ8A], out: &mut [f32]) {
    Exec::global().matmul_quantized(w, xq, 1, out)
}

/// Like [`matmul`] with pre-quantized activations `[n, cols / 32]`. Quant weights only.
pub fn matmul_quantized(w: WeightRef<'_>, xq: &[BlockQ8A], n: usize, out: &mut [f32]) {
    Exec::global().matmul_quantized(w, xq, n, out)
}

/// An execution choice: which kernel family, and which thread pool (if any) splits the work.
///
/// A pool is a value: two stages (an encoder and the decoder) can each hold an `Exec` with its own pool and run
/// at the same time on their own cores. [`Exec::global`] shares the process-wide pool that [`set_threads`] sets.
#[derive(Clone, Debug)]
pub struct Exec {
    isa: Isa,
    pool: Option<Arc<Pool>>,
}

impl PartialEq for Exec {
    fn eq(&self, o: &Exec) -> bool {
        let same_pool = match (&self.pool, &o.pool) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.isa == o.isa && same_pool
    }
}

impl Exec {
    /// The active ISA ([`active_isa`]) on the global pool ([`set_threads`]) as it is now.
    pub fn global() -> Exec {
        Exec {
            isa: active_isa(),
            pool: pool(),
        }
    }

    /// The active ISA on a pool of its own with `threads` threads in total (the caller included; `0` means one per
    /// available core). The workers live as long as this value and its clones.
    pub fn with_threads(threads: usize) -> Exec {
        let n = resolve_threads(threads);
        Exec {
            isa: active_isa(),
            pool: (n > 1).then(|| Arc::new(Pool::new(n))),
        }
    }

    /// Threads this executor splits work across (the caller included).
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.threads())
    }

    /// Runs `part(i)` for every `i` in `0..parts` across this executor's threads (each part taken by whichever
    /// thread is free), returning when all are done. For work that is not a matmul (attention, encoders).
    pub fn for_each(&self, parts: usize, part: &(dyn Fn(usize) + Sync)) {
        match &self.pool {
            Some(p) if parts > 1 => p.run(parts, part),
            _ => (0..parts).for_each(part),
        }
    }

    /// One thread with the given family; an error if this CPU lacks it.
    pub fn single(isa: Isa) -> Result<Exec, SelectError> {
        if isa.available() {
            Ok(Exec { isa, pool: None })
        } else {
            Err(SelectError::Unavailable(isa))
        }
    }

    /// The family this runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Same as [`matvec`] on this executor.
    pub fn matvec(&self, w: WeightRef<'_>, x: &[f32], out: &mut [f32]) {
        self.matmul(w, x, 1, out)
    }

    /// `out[j * rows + r] = sum_c w[r, c] * x[j * cols + c]`, where `cols = x.len() / n`, `rows = out.len() / n`.
    ///
    /// # Panics
    /// If `n == 0` while `x` or `out` is non-empty, if `x.len()` or `out.len()` is not a multiple of `n`, if the
    /// weight holds other than `rows * cols` values, or if `cols` is not a multiple of 32 for quant weights.
    pub fn matmul(&self, w: WeightRef<'_>, x: &[f32], n: usize, out: &mut [f32]) {
        let (rows, cols) = shape(&w, x.len(), n, out.len());
        if rows == 0 || n == 0 {
            return;
        }
        if cols == 0 {
            out.fill(0.0);
            return;
        }
        crate::tap::observe(w, x, n); // calibration tap: float weights only, off by default (tap.rs)
        match w {
            WeightRef::F32(s) => self.float(FloatW::F32(s), x, cols, n, rows, out),
            WeightRef::F16(s) => self.float(FloatW::F16(s), x, cols, n, rows, out),
            WeightRef::BF16(s) => self.float(FloatW::BF16(s), x, cols, n, rows, out),
            _ => ACTS.with(|buf| {
                // A re-entrant call (impossible today) would get a fresh buffer instead of a borrow panic.
                let mut own = Vec::new();
                let mut guard = buf.try_borrow_mut();
                let acts = match guard.as_mut() {
                    Ok(b) => &mut **b,
                    Err(_) => &mut own,
                };
                acts.clear();
                acts.resize(n * cols / QK, bytemuck::Zeroable::zeroed());
                quantize_acts(x, acts);
                self.quant(w, acts, n, rows, out);
            }),
        }
    }

    /// Same as [`matvec_quantized`] on this executor.
    pub fn matvec_quantized(&self, w: WeightRef<'_>, xq: &[BlockQ8A], out: &mut [f32]) {
        self.matmul_quantized(w, xq, 1, out)
    }

    /// Like [`Exec::matmul`] with activations pre-quantized by [`quantize_acts`]: `xq` is `[n, cols / 32]`.
    ///
    /// # Panics
    /// On float weights, and on the length mismatches listed at [`Exec::matmul`].
    pub fn matmul_quantized(&self, w: WeightRef<'_>, xq: &[BlockQ8A], n: usize, out: &mut [f32]) {
        assert!(
            w.weight_type().block_elems() == QK,
            "matmul_quantized needs quant weights, got {:?}",
            w.weight_type()
        );
        let (rows, _) = shape(&w, xq.len() * QK, n, out.len());
        if rows == 0 || n == 0 {
            return;
        }
        self.quant(w, xq, n, rows, out);
    }

    fn quant(&self, w: WeightRef<'_>, a: &[BlockQ8A], n: usize, rows: usize, out: &mut [f32]) {
        let k = a.len() / n;
        if k == 0 {
            out.fill(0.0);
            return;
        }
        macro_rules! go {
            ($s:expr, $scalar:ty, $avx2:ident, $neon:ident, $dot:ident, $mm:ident) => {
                match self.isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 | Isa::Avx512Vnni => {
                        self.launch::<crate::x86_avx2::$avx2, 4, 2>($s, a, k, n, rows, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon => {
                        self.launch::<crate::arm_neon::$neon, 4, 2>($s, a, k, n, rows, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    Isa::Dotprod => {
                        self.launch::<crate::arm_dotprod::$dot, 4, 2>($s, a, k, n, rows, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    Isa::I8mm => self.launch::<crate::arm_i8mm::$mm, 4, 4>($s, a, k, n, rows, out),
                    _ => self.launch::<$scalar, 4, 2>($s, a, k, n, rows, out),
                }
            };
        }
        macro_rules! group {
            ($s:expr, $scalar:ty, $avx2:ident, $vnni:ident) => {
                match self.isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        self.launch_groups::<crate::x86_avx2_x8::$avx2, 4>($s, a, k, n, rows, out)
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512Vnni => {
                        self.launch_groups::<crate::x86_avx2_x8::$vnni, 4>($s, a, k, n, rows, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon => self
                        .launch_groups::<crate::arm_x8::NeonX8<<$scalar as GroupKernel>::W>, 2>(
                            $s, a, k, n, rows, out,
                        ),
                    #[cfg(target_arch = "aarch64")]
                    Isa::Dotprod | Isa::I8mm => self.launch_groups::<crate::arm_x8::DotX8<
                        <$scalar as GroupKernel>::W,
                    >, 4>($s, a, k, n, rows, out),
                    _ => self.launch_groups::<$scalar, 4>($s, a, k, n, rows, out),
                }
            };
        }
        match w {
            WeightRef::Q8x8(s) => group!(s, ScalarQ8x8, Avx2Q8x8, VnniQ8x8),
            WeightRef::Q4x8(s) => group!(s, ScalarQ4x8, Avx2Q4x8, VnniQ4x8),
            WeightRef::Q8(s) => go!(s, ScalarQ8, Avx2Q8, NeonQ8, DotQ8, MmQ8),
            WeightRef::Q4(s) => go!(s, ScalarQ4, Avx2Q4, NeonQ4, DotQ4, MmQ4),
            WeightRef::Q4M(s) => go!(s, ScalarQ4M, Avx2Q4M, NeonQ4M, DotQ4M, MmQ4M),
            WeightRef::Q2M(s) => go!(s, ScalarQ2M, Avx2Q2M, NeonQ2M, DotQ2M, MmQ2M),
            _ => unreachable!("float weights take the float path"),
        }
    }

    fn float(&self, w: FloatW<'_>, x: &[f32], k: usize, n: usize, rows: usize, out: &mut [f32]) {
        macro_rules! go {
            ($s:expr, $scalar:ty, $avx2:ident, $neon:ident) => {
                match self.isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 | Isa::Avx512Vnni => {
                        self.launch::<crate::x86_avx2::$avx2, 4, 2>($s, x, k, n, rows, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon | Isa::Dotprod | Isa::I8mm => {
                        self.launch::<crate::arm_neon::$neon, 4, 2>($s, x, k, n, rows, out)
                    }
                    _ => self.launch::<$scalar, 4, 2>($s, x, k, n, rows, out),
                }
            };
        }
        match w {
            FloatW::F32(s) => go!(s, ScalarF32, Avx2F32, NeonF32),
            FloatW::F16(s) => go!(s, ScalarF16, Avx2F16, NeonF16),
            FloatW::BF16(s) => go!(s, ScalarBF16, Avx2BF16, NeonBF16),
        }
    }

    /// Runs `K` over all rows, split across the pool when the matrix is big enough.
    fn launch<K: Kernel, const R: usize, const C: usize>(
        &self,
        w: &[K::W],
        a: &[K::A],
        k: usize,
        n: usize,
        rows: usize,
        out: &mut [f32],
    ) {
        assert!(w.len() == rows * k && a.len() == n * k && out.len() == n * rows);
        let op = self.out_ptr(out, rows);
        self.split(rows, R, rows * k * n, &|r| {
            // SAFETY: ISA checked by `out_ptr`, lengths asserted; `split` hands out disjoint row ranges and returns
            // only after every part finished, while `out` is still exclusively borrowed.
            unsafe { run_rows::<K, R, C>(w, a, k, n, r, op) }
        });
    }

    /// Checks this CPU runs the family, and wraps `out` (`[n, rows]`) for the tiles.
    fn out_ptr(&self, out: &mut [f32], rows: usize) -> OutPtr {
        assert!(
            self.isa.available(),
            "{} kernels on a CPU without them",
            self.isa
        );
        OutPtr {
            ptr: out.as_mut_ptr(),
            ldo: rows,
            len: out.len(),
        }
    }

    /// Calls `part` on ranges covering `0..units` (each a multiple of `step` long, but the last): all on this
    /// thread, or [`SLICES`] ranges per pool thread, claimed by whichever thread is free, when the executor is
    /// parallel and the job is worth waking workers for (`elems` weight values at least [`MIN_PARALLEL_ELEMS`], at
    /// least two steps). Returns after every part ran.
    fn split(&self, units: usize, step: usize, elems: usize, part: &(dyn Fn(Range<usize>) + Sync)) {
        let pool = if elems >= MIN_PARALLEL_ELEMS && units >= 2 * step {
            self.pool.as_ref()
        } else {
            None
        };
        match pool {
            None => part(0..units),
            Some(p) => {
                let chunk = units.div_ceil(p.threads() * SLICES).next_multiple_of(step);
                p.run(units.div_ceil(chunk), &|i| {
                    let a = i * chunk;
                    part(a..(a + chunk).min(units))
                });
            }
        }
    }
}

impl Exec {
    /// Runs the group kernel `K` over all `rows / 8` groups, split across the pool when the matrix is big enough.
    fn launch_groups<K: GroupKernel, const C: usize>(
        &self,
        w: &[K::W],
        a: &[BlockQ8A],
        k: usize,
        n: usize,
        rows: usize,
        out: &mut [f32],
    ) {
        let groups = rows / 8;
        assert!(
            rows.is_multiple_of(8)
                && w.len() == groups * k
                && a.len() == n * k
                && out.len() == n * rows
        );
        let op = self.out_ptr(out, rows);
        self.split(groups, 1, rows * k * QK * n, &|g| {
            // SAFETY: as in `launch`: ISA checked, lengths asserted, disjoint group ranges, `split` waits for all.
            unsafe { run_groups::<K, C>(w, a, k, n, g, op) }
        });
    }
}

enum FloatW<'a> {
    F32(&'a [f32]),
    F16(&'a [half::f16]),
    BF16(&'a [half::bf16]),
}

/// Checks lengths and returns `(rows, cols)`.
fn shape(w: &WeightRef<'_>, xlen: usize, n: usize, outlen: usize) -> (usize, usize) {
    if n == 0 {
        assert!(xlen == 0 && outlen == 0, "n = 0 with non-empty x or out");
        return (0, 0);
    }
    assert!(
        xlen.is_multiple_of(n) && outlen.is_multiple_of(n),
        "x ({xlen}) and out ({outlen}) must hold n = {n} rows"
    );
    let (cols, rows) = (xlen / n, outlen / n);
    let be = w.weight_type().block_elems();
    assert!(
        cols % be == 0,
        "cols = {cols} is not a multiple of the block size {be}"
    );
    let br = w.weight_type().block_rows();
    assert!(
        rows % br == 0,
        "rows = {rows} is not a multiple of the block's {br} rows"
    );
    assert!(
        w.elems() == rows * cols,
        "weight holds {} values, expected rows {rows} x cols {cols}",
        w.elems()
    );
    (rows, cols)
}
