//! Softmax over each row, in place: `x = e^(x - max) / sum e^(x - max)`, f32 accumulation.
//!
//! Every row needs a finite maximum (a row of all -inf gives NaN); -inf entries (masks) give exactly 0.
//! SIMD: vector `exp` (<= 2 ulp) and lane-wise partial sums; bound asserted in tests/ops/ for a row of `d`:
//! `|simd - scalar| <= (1e-6 + 1.2e-7 d) * scalar + 1e-37` (the `d` term covers the two summation orders).

use super::{dispatch, Ops};

fn softmax_row(x: &mut [f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

impl Ops {
    /// Softmax over each row of `d` values of `x`, in place.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `d` (or `d == 0`).
    pub fn softmax(&self, x: &mut [f32], d: usize) {
        assert!(
            d > 0 && x.len().is_multiple_of(d),
            "{} values are not rows of {d}",
            x.len()
        );
        for row in x.chunks_exact_mut(d) {
            dispatch!(self, softmax_row(row), softmax_row(row))
        }
    }
}

/// [`Ops::softmax`] on the active family.
pub fn softmax(x: &mut [f32], d: usize) {
    Ops::global().softmax(x, d)
}
