//! Small element-wise operations of the decoder, in f32, in transformers' conventions.

/// RMSNorm of each `w.len()`-wide row of `x` into `out`: `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ss + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * inv * g;
        }
    }
}

/// In-place RMSNorm without a weight over each `d`-wide row: `x / sqrt(mean(x²) + eps)`.
pub fn rms_norm_scaleless(x: &mut [f32], d: usize, eps: f32) {
    for xr in x.chunks_exact_mut(d) {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ss + eps).sqrt();
        xr.iter_mut().for_each(|v| *v *= inv);
    }
}

/// In-place input-scaled RMSNorm (Muse Spark): each row is first multiplied by `w`, then normalised without a
/// weight.
pub fn rms_norm_input_scaled(x: &mut [f32], w: &[f32], eps: f32) {
    for xr in x.chunks_exact_mut(w.len()) {
        xr.iter_mut().zip(w).for_each(|(v, g)| *v *= g);
    }
    rms_norm_scaleless(x, w.len(), eps);
}

/// In-place RMSNorm of each `w.len()`-wide row.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let d = w.len();
    for xr in x.chunks_exact_mut(d) {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ss + eps).sqrt();
        for (v, &g) in xr.iter_mut().zip(w) {
            *v = *v * inv * g;
        }
    }
}

/// Rotary embedding tables for one position: `cos`/`sin` of `head_dim / 2` frequencies.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f32) -> Rope {
        let half = head_dim / 2;
        // transformers computes inv_freq = 1 / theta^(2i/d) in f32 (int64 arange cast to float).
        let inv_freq = (0..half)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Rope { inv_freq }
    }

    /// Rotates every head in `q` and in `k` (heads of `2 * inv_freq.len()` values) at position `pos`,
    /// rotate_half style: the first half pairs with the second half. The angles are computed once for both.
    pub fn apply(&self, q: &mut [f32], k: &mut [f32], pos: usize) {
        let half = self.inv_freq.len();
        let cs: Vec<(f32, f32)> = self
            .inv_freq
            .iter()
            .map(|&f| {
                let a = pos as f32 * f;
                (a.cos(), a.sin())
            })
            .collect();
        for head in q
            .chunks_exact_mut(2 * half)
            .chain(k.chunks_exact_mut(2 * half))
        {
            let (a, b) = head.split_at_mut(half);
            for i in 0..half {
                let (c, s) = cs[i];
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * c - x2 * s;
                b[i] = x2 * c + x1 * s;
            }
        }
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in x.iter_mut() {
        *v /= s;
    }
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
