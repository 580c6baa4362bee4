//! The importance matrix: per input column of every float matrix, the mean square of the activations it multiplied
//! while the reference model ran the calibration text.
//!
//! The q4 and q8 block quantizers then minimise `sum_c imp_c (w_c - d q_c)^2` per block instead of the plain squared
//! error: a matrix's output error is `sum_c (w_c - w'_c) x_c`, whose expected square (columns taken as uncorrelated)
//! is that weighted sum. Statistics come from `flint_kernels`' calibration tap, which sees every float-weight matmul;
//! a weight is named by where its data lies in the input file's map, so the model needs no hooks. What no matmul
//! touched stays without statistics and is quantized with uniform importance: an MoE expert no calibration token was
//! routed to, and an embedding table not tied to the output head (a lookup, not a matmul). A tied table is the
//! output head's matrix, so it gets the head's input statistics.

use flint_format::FlintFile;
use flint_kernels::WeightRef;
use std::sync::{Arc, Mutex};

/// Sums for one tensor: `sum x^2` per column, and the number of input rows.
struct Sums {
    sq: Vec<f64>,
    rows: u64,
}

struct Collector {
    /// `(first byte address, end address, tensor index)` of each 2-D tensor, sorted by address.
    ranges: Vec<(usize, usize, usize)>,
    /// Columns of each tensor (by index).
    cols: Vec<usize>,
    sums: Mutex<Vec<Option<Sums>>>,
}

impl Collector {
    fn new(file: &FlintFile) -> Collector {
        let base = file.bytes().as_ptr() as usize;
        let mut ranges: Vec<_> = file
            .tensors()
            .iter()
            .enumerate()
            .filter(|(_, t)| t.shape.len() == 2 && t.length > 0)
            .map(|(i, t)| (base + t.offset, base + t.offset + t.length, i))
            .collect();
        ranges.sort_unstable();
        let cols = file
            .tensors()
            .iter()
            .map(|t| t.shape.last().copied().unwrap_or(0))
            .collect();
        let mut sums = Vec::new();
        sums.resize_with(file.tensors().len(), || None);
        Collector {
            ranges,
            cols,
            sums: Mutex::new(sums),
        }
    }

    /// The tensor whose bytes hold all of `w`'s, if any.
    fn find(&self, w: &[u8]) -> Option<usize> {
        let (a, b) = (w.as_ptr() as usize, w.as_ptr() as usize + w.len());
        let i = self.ranges.partition_point(|r| r.0 <= a).checked_sub(1)?;
        let (s, e, t) = self.ranges[i];
        (a >= s && b <= e).then_some(t)
    }

    fn observe(&self, w: WeightRef<'_>, x: &[f32], n: usize) {
        let Some(t) = self.find(w.as_bytes()) else {
            return; // not one of this file's matrices (another model in the process)
        };
        let cols = self.cols[t];
        if n == 0 || x.len() != n * cols {
            return;
        }
        let mut sums = self.sums.lock().unwrap_or_else(|e| e.into_inner());
        let s = sums[t].get_or_insert_with(|| Sums {
            sq: vec![0.0; cols],
            rows: 0,
        });
        for row in x.chunks_exact(cols) {
            for (a, &v) in s.sq.iter_mut().zip(row) {
                *a += (v as f64) * (v as f64);
            }
        }
        s.rows += n as u64;
    }
}

/// Per-column importance of each tensor of a file (by directory index); `None` where no statistics were seen.
#[derive(Clone, Debug, Default)]
pub struct Importance {
    per_tensor: Vec<Option<Vec<f32>>>,
    /// Input rows each tensor's matmuls read.
    rows: Vec<u64>,
}

impl Importance {
    /// The mean square input of each column of tensor `i`, if it was seen.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        self.per_tensor.get(i).and_then(|v| v.as_deref())
    }

    /// How many input rows tensor `i`'s matmuls read (for an MoE expert: rows routed to it).
    pub fn rows(&self, i: usize) -> u64 {
        self.rows.get(i).copied().unwrap_or(0)
    }
}

/// Removes the tap when dropped, so an error or panic inside the calibration run never leaves it installed.
struct TapGuard;

impl Drop for TapGuard {
    fn drop(&mut self) {
        flint_kernels::set_tap(None);
    }
}

/// The tap is process-global: two calibrations at once (e.g. library callers on two threads) take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f` (which should run a model loaded from `file`, with float weights) with the calibration tap on, and returns
/// its result with the importance collected for `file`'s tensors.
pub fn collect<R>(file: &FlintFile, f: impl FnOnce() -> R) -> (R, Importance) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = Arc::new(Collector::new(file));
    let tap = c.clone();
    flint_kernels::set_tap(Some(Arc::new(
        move |w: WeightRef<'_>, x: &[f32], n: usize| tap.observe(w, x, n),
    )));
    let guard = TapGuard;
    let r = f();
    drop(guard);
    let sums = std::mem::take(&mut *c.sums.lock().unwrap_or_else(|e| e.into_inner()));
    let rows = sums
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.rows))
        .collect();
    let per_tensor = sums
        .into_iter()
        .map(|s| {
            s.filter(|s| s.rows > 0)
                .map(|s| s.sq.iter().map(|&v| (v / s.rows as f64) as f32).collect())
        })
        .collect();
    (r, Importance { per_tensor, rows })
}
