//! Small element-wise operations of the decoder, in f32, in transformers' conventions.

use flint_kernels::ops::{self as k, RmsWeight};

/// RMSNorm of each `w.len()`-wide row of `x` into `out`: `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    k::rms_norm(x, w.len(), RmsWeight::Plain(w), eps, out)
}

/// In-place RMSNorm without a weight over each `d`-wide row: `x / sqrt(mean(x²) + eps)`.
pub fn rms_norm_scaleless(x: &mut [f32], d: usize, eps: f32) {
    k::rms_norm_inplace(x, d, RmsWeight::None, eps)
}

/// In-place input-scaled RMSNorm (Muse Spark) with the weight already folded (`1 + w` stored): each row is first
/// multiplied by `w`, then normalised without a weight.
pub fn rms_norm_input_scaled(x: &mut [f32], w: &[f32], eps: f32) {
    for xr in x.chunks_exact_mut(w.len()) {
        xr.iter_mut().zip(w).for_each(|(v, g)| *v *= g);
    }
    rms_norm_scaleless(x, w.len(), eps);
}

/// In-place RMSNorm of each `w.len()`-wide row.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    k::rms_norm_inplace(x, w.len(), RmsWeight::Plain(w), eps)
}

/// In-place softmax of one row.
pub fn softmax(x: &mut [f32]) {
    k::softmax(x, x.len())
}

/// `a = silu(a) * b`, elementwise (SwiGLU).
pub fn swiglu(a: &mut [f32], b: &[f32]) {
    glu(a, b, crate::config::FfnAct::Silu)
}

/// `a = act(a) * b`, elementwise (SwiGLU, GeGLU).
pub fn glu(a: &mut [f32], b: &[f32], act: crate::config::FfnAct) {
    match act {
        crate::config::FfnAct::Silu => k::silu(a),
        crate::config::FfnAct::GeluTanh => k::gelu_tanh(a),
    }
    a.iter_mut().zip(b).for_each(|(x, y)| *x *= y);
}

/// In-place sigmoid.
pub fn sigmoid(x: &mut [f32]) {
    k::sigmoid(x)
}

/// Adds `b` to every `b.len()`-wide row of `x`.
pub fn add_bias(x: &mut [f32], b: &[f32]) {
    for r in x.chunks_exact_mut(b.len()) {
        r.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
    }
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first (as torch.topk does on CPU
/// for these sizes).
pub fn top_k(x: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Runs several matrices over the same input rows `x` (`[n, cols]`): `out_i = x · W_iᵀ`. When every matrix is
/// quantized, the activations are quantized once and shared (q/k/v, gate/up), instead of once per matrix.
pub fn project(
    ex: &flint_kernels::Exec,
    x: &[f32],
    n: usize,
    outs: &mut [(&crate::weights::Weight, &mut Vec<f32>)],
) {
    let all_quant = outs.iter().all(|(w, _)| w.is_quantized());
    if !all_quant || x.is_empty() {
        for (w, o) in outs.iter_mut() {
            ex.matmul(w.view(), x, n, o);
        }
        return;
    }
    let mut xq = vec![bytemuck::Zeroable::zeroed(); x.len() / flint_kernels::QK];
    flint_kernels::quantize_acts(x, &mut xq);
    for (w, o) in outs.iter_mut() {
        ex.matmul_quantized(w.view(), &xq, n, o);
    }
}

/// `x = alpha * x + beta * y`, per column (Muse Spark's residual gates).
pub fn gated_residual(x: &mut [f32], y: &[f32], alpha: &[f32], beta: &[f32]) {
    let d = alpha.len();
    for (xr, yr) in x.chunks_exact_mut(d).zip(y.chunks_exact(d)) {
        for i in 0..d {
            xr[i] = alpha[i] * xr[i] + beta[i] * yr[i];
        }
    }
}
