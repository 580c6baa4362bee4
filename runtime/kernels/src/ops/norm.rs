//! LayerNorm and RMSNorm over each row of `d` values, with f32 accumulation.
//!
//! Scalar reference: sequential sums. SIMD: 8 (AVX2) or 4 (NEON) partial sums, so results differ from the
//! reference only by summation order; bound asserted in tests/ops/: `|simd - scalar| <= 1e-5 * max(1, |scalar|)`
//! for rows whose sum of squares stays well inside the f32 range (|x| up to ~1e18).

use super::{dispatch, Ops, RmsWeight};

fn check(x: usize, d: usize, w: &[&[f32]]) {
    assert!(
        d > 0 && x.is_multiple_of(d),
        "{x} values are not rows of {d}"
    );
    for w in w {
        assert!(w.len() == d, "weight of {} for rows of {d}", w.len());
    }
}

/// Copies `x` into `out` for the out-of-place forms (which then normalise `out` in place).
fn copy_into(x: &[f32], out: &mut [f32]) {
    assert!(
        out.len() == x.len(),
        "out of {} for {} values",
        out.len(),
        x.len()
    );
    out.copy_from_slice(x);
}

fn weights<'a>(s: &RmsWeight<'a>) -> Vec<&'a [f32]> {
    match *s {
        RmsWeight::Plain(w) | RmsWeight::Centered(w) | RmsWeight::InputScaled(w) => vec![w],
        RmsWeight::None => vec![],
    }
}

fn layer_norm_row(x: &mut [f32], w: &[f32], b: Option<&[f32]>, eps: f32) {
    let d = x.len() as f32;
    let mean = x.iter().sum::<f32>() / d;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    let r = 1.0 / (var + eps).sqrt();
    for (i, v) in x.iter_mut().enumerate() {
        *v = (*v - mean) * r * w[i] + b.map_or(0.0, |b| b[i]);
    }
}

fn rms_norm_row(x: &mut [f32], s: RmsWeight<'_>, eps: f32) {
    if let RmsWeight::InputScaled(w) = s {
        x.iter_mut().zip(w).for_each(|(v, w)| *v *= 1.0 + w);
    }
    let r = 1.0 / (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32 + eps).sqrt();
    for (i, v) in x.iter_mut().enumerate() {
        *v = match s {
            RmsWeight::Plain(w) => *v * r * w[i],
            RmsWeight::Centered(w) => *v * r * (1.0 + w[i]),
            RmsWeight::None | RmsWeight::InputScaled(_) => *v * r,
        };
    }
}

impl Ops {
    /// In place over each row of `d` values: `x = (x - mean) / sqrt(var + eps) * w + b` (biased variance,
    /// `torch.nn.LayerNorm`); no bias when `b` is `None`.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `d`, or `w` / `b` are not `d` long.
    pub fn layer_norm_inplace(
        &self,
        x: &mut [f32],
        d: usize,
        w: &[f32],
        b: Option<&[f32]>,
        eps: f32,
    ) {
        check(x.len(), d, &[w, b.unwrap_or(w)]);
        for row in x.chunks_exact_mut(d) {
            dispatch!(
                self,
                layer_norm_row(row, w, b, eps),
                layer_norm_row(row, w, b, eps)
            )
        }
    }

    /// In place over each row of `d` values: `x = x / sqrt(mean(x^2) + eps) * s`, `s` as [`RmsWeight`] says.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `d`, or a weight is not `d` long.
    pub fn rms_norm_inplace(&self, x: &mut [f32], d: usize, scale: RmsWeight<'_>, eps: f32) {
        check(x.len(), d, &weights(&scale));
        for row in x.chunks_exact_mut(d) {
            dispatch!(
                self,
                rms_norm_row(row, scale, eps),
                rms_norm_row(row, scale, eps)
            )
        }
    }

    /// [`Ops::layer_norm_inplace`] from `x` into `out` (same length).
    pub fn layer_norm(
        &self,
        x: &[f32],
        d: usize,
        w: &[f32],
        b: Option<&[f32]>,
        eps: f32,
        out: &mut [f32],
    ) {
        copy_into(x, out);
        self.layer_norm_inplace(out, d, w, b, eps)
    }

    /// [`Ops::rms_norm_inplace`] from `x` into `out` (same length).
    pub fn rms_norm(&self, x: &[f32], d: usize, scale: RmsWeight<'_>, eps: f32, out: &mut [f32]) {
        copy_into(x, out);
        self.rms_norm_inplace(out, d, scale, eps)
    }
}

/// [`Ops::layer_norm`] on the active family.
pub fn layer_norm(x: &[f32], d: usize, w: &[f32], b: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    Ops::global().layer_norm(x, d, w, b, eps, out)
}

/// [`Ops::layer_norm_inplace`] on the active family.
pub fn layer_norm_inplace(x: &mut [f32], d: usize, w: &[f32], b: Option<&[f32]>, eps: f32) {
    Ops::global().layer_norm_inplace(x, d, w, b, eps)
}

/// [`Ops::rms_norm`] on the active family.
pub fn rms_norm(x: &[f32], d: usize, scale: RmsWeight<'_>, eps: f32, out: &mut [f32]) {
    Ops::global().rms_norm(x, d, scale, eps, out)
}

/// [`Ops::rms_norm_inplace`] on the active family.
pub fn rms_norm_inplace(x: &mut [f32], d: usize, scale: RmsWeight<'_>, eps: f32) {
    Ops::global().rms_norm_inplace(x, d, scale, eps)
}
