//! The encoder ops (`flint_kernels::ops`): every scalar reference against a direct f64 transcription of its
//! definition (for RoPE and patchify: of transformers' Python), and every SIMD path against the scalar reference,
//! over odd lengths (vector tails), zeros, extremes and random inputs.
//!
//! One module per op family under tests/ops/; the shared helpers are here.

#[path = "common/mod.rs"]
mod common;

#[path = "ops/act.rs"]
mod act;
#[path = "ops/conv.rs"]
mod conv;
#[path = "ops/norm.rs"]
mod norm;
#[path = "ops/patch.rs"]
mod patch;
#[path = "ops/rope.rs"]
mod rope;
#[path = "ops/softmax.rs"]
mod softmax;

use common::simd_isas;
use flint_kernels::ops::Ops;
use flint_kernels::Isa;

/// Lengths around the 4- and 8-lane tails, plus real widths.
pub const LENS: [usize; 16] = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 1152];

pub fn scalar() -> Ops {
    Ops::single(Isa::Scalar).unwrap()
}

/// Every SIMD family's `Ops` (skipped ones printed).
pub fn simd_ops() -> Vec<Ops> {
    simd_isas()
        .into_iter()
        .map(|i| Ops::single(i).unwrap())
        .collect()
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize, f32) -> f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_finite() {
            (g - w).abs() <= bound(i, w)
        } else {
            g == w
        };
        assert!(ok, "{what}[{i}]: {g:e} vs {w:e} (bound {:e})", bound(i, w));
    }
}
