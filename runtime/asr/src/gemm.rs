//! f32 GEMM for the products over many rows (the encoder's layers and convolutions, the cross-attention keys and
//! values, and attention as two GEMMs per head), on `matrixmultiply`'s cache-blocked kernels (AVX2/FMA or NEON
//! picked at run time). Single-row products (decoder steps) stay on `flint_kernels::matmul`, which streams
//! the stored fp16 matrices.
//!
//! Threads: the rows of the output are cut into blocks run on the [`Exec`]'s pool (so `flint_kernels::set_threads`
//! governs these too); each block is one single-threaded `sgemm`.

use flint_kernels::{ops, Exec};
use std::cell::RefCell;

/// Rows of output per parallel block (a multiple of the kernels' 8-row tile and 64-row panel). Measured on 2
/// threads (encoder): 64 rows 658 ms, 128 rows 643 ms, 256 rows 612 ms (fewer repacks of the weight).
const ROW_BLOCK: usize = 256;
/// Query rows per attention block: the scores of one block are `ATTN_ROWS x keys` floats per thread (1.5 MB for
/// 1500 keys). Measured on 1 thread (encoder): 64 rows 987 ms, 128 969, 256 946, 512 937 (before other changes).
const ATTN_ROWS: usize = 256;

/// A read-only strided view: element `(i, j)` is `s[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    pub s: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with leading dimension `ld`.
    pub fn rows(s: &'a [f32], ld: usize) -> Mat<'a> {
        Mat { s, rs: ld, cs: 1 }
    }

    /// The transpose of row-major `s` with leading dimension `ld` (e.g. a weight `[out, in]` read as `[in, out]`).
    pub fn t(s: &'a [f32], ld: usize) -> Mat<'a> {
        Mat { s, rs: 1, cs: ld }
    }

    /// Panics unless every element of an `r x c` view is inside the slice.
    fn check(&self, r: usize, c: usize, what: &str) {
        if r > 0 && c > 0 {
            let last = (r - 1) * self.rs + (c - 1) * self.cs;
            assert!(
                last < self.s.len(),
                "{what}: a {r}x{c} view (strides {}, {}) needs {} values, has {}",
                self.rs,
                self.cs,
                last + 1,
                self.s.len()
            );
        }
    }
}

/// `c[i * ldc + j] = alpha * sum_p a(i, p) * b(p, j) + beta * c[i * ldc + j]` for `i < m`, `j < n`, one thread.
/// With `beta == 0` the old contents of `c` are ignored (NaN included).
///
/// # Panics
/// If a view does not fit its slice or `ldc < n`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "ldc {ldc} below {n} columns");
    assert!(
        (m - 1) * ldc + n <= c.len(),
        "c of {} for {m}x{n} at stride {ldc}",
        c.len()
    );
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n]
                .iter_mut()
                .for_each(|v| *v = if beta == 0.0 { 0.0 } else { beta * *v });
        }
        return;
    }
    a.check(m, k, "a");
    b.check(k, n, "b");
    // SAFETY: every element read through `a` and `b` and written through `c` was bounds-checked above against its
    // slice; `c` is borrowed mutably, so nothing else aliases it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.s.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.s.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// [`gemm`] with `a` row-major (`[m, k]` at stride `lda`) and the rows of `c` split across `exec`'s threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_rows(
    exec: &Exec,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let rb = ROW_BLOCK;
    let blocks = m.div_ceil(rb);
    if exec.threads() < 2 || blocks < 2 {
        return gemm(m, k, n, alpha, Mat::rows(a, lda), b, beta, c, ldc);
    }
    assert!(
        m == 0 || (m - 1) * ldc + n <= c.len(),
        "c of {} for {m}x{n} at stride {ldc}",
        c.len()
    );
    let out = SharedOut(c.as_mut_ptr(), c.len());
    exec.for_each(blocks, &|i| {
        let r0 = i * rb;
        let rows = rb.min(m - r0);
        // SAFETY: blocks cover disjoint row ranges `r0 .. r0 + rows` of `c`, so the sub-slices never overlap
        // (a block's slice ends before the next block's first row), and `c` outlives `for_each`.
        let c = unsafe { out.rows(r0 * ldc, (rows - 1) * ldc + n) };
        let a = &a[(r0 * lda).min(a.len())..];
        gemm(rows, k, n, alpha, Mat::rows(a, lda), b, beta, c, ldc);
    });
}

/// `c`'s pointer shared with the pool for disjoint writes.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32, usize);
// SAFETY: only used to hand disjoint sub-slices to the threads of one `for_each` call.
unsafe impl Sync for SharedOut {}
// SAFETY: as for `Sync`: a raw pointer handed to the pool's threads for disjoint writes only.
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// # Safety
    /// The caller keeps the ranges handed out at the same time disjoint.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.1, "rows {start}+{len} past {}", self.1);
        // SAFETY: in bounds (asserted); disjointness is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// `x [n, cols] · w^T + bias` for a row-major weight `w [rows, cols]` into `out [n, rows]`; with `accumulate` the
/// product is added to `out` (a residual) instead of replacing it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear(
    exec: &Exec,
    x: &[f32],
    n: usize,
    w: &[f32],
    rows: usize,
    cols: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    accumulate: bool,
) {
    assert_eq!(out.len(), n * rows, "out of {} for {n}x{rows}", out.len());
    assert_eq!(
        w.len(),
        rows * cols,
        "weight of {} for {rows}x{cols}",
        w.len()
    );
    let beta = match (bias, accumulate) {
        (Some(b), acc) => {
            for row in out.chunks_exact_mut(rows) {
                if acc {
                    row.iter_mut().zip(b).for_each(|(o, b)| *o += b);
                } else {
                    row.copy_from_slice(b);
                }
            }
            1.0
        }
        (None, true) => 1.0,
        (None, false) => 0.0,
    };
    gemm_rows(
        exec,
        n,
        cols,
        rows,
        1.0,
        x,
        cols,
        Mat::t(w, cols),
        beta,
        out,
        rows,
    );
}

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Full (unmasked) multi-head self-attention over fused rows `qkv [n, 3d]` (q | k | v, heads of `d / heads`
/// consecutive values) into `out [n, d]`: per head and block of query rows, `S = scale · Q K^T` and `O = softmax(S) V`
/// as two GEMMs, with the scores of one block (`ATTN_ROWS x n`) per thread at a time.
pub(crate) fn self_attention(
    exec: &Exec,
    qkv: &[f32],
    n: usize,
    d: usize,
    heads: usize,
    scale: f32,
    out: &mut [f32],
) {
    assert_eq!(qkv.len(), n * 3 * d, "qkv of {} for {n}x3x{d}", qkv.len());
    assert_eq!(out.len(), n * d, "out of {} for {n}x{d}", out.len());
    assert!(heads > 0 && d.is_multiple_of(heads), "{heads} heads of {d}");
    if n == 0 {
        return;
    }
    let hd = d / heads;
    let ar = ATTN_ROWS;
    let blocks = n.div_ceil(ar);
    let shared = SharedOut(out.as_mut_ptr(), out.len());
    let part = |i: usize| {
        let (h, blk) = (i / blocks, i % blocks);
        let r0 = blk * ar;
        let rows = ar.min(n - r0);
        SCORES.with(|buf| {
            let mut own = Vec::new();
            let mut guard = buf.try_borrow_mut();
            let s = match guard.as_mut() {
                Ok(b) => &mut **b,
                Err(_) => &mut own,
            };
            s.resize(ar * n, 0.0);
            let s = &mut s[..rows * n];
            let q = Mat::rows(&qkv[r0 * 3 * d + h * hd..], 3 * d);
            let k = Mat::t(&qkv[d + h * hd..], 3 * d);
            gemm(rows, hd, n, scale, q, k, 0.0, s, n);
            ops::softmax(s, n);
            let v = Mat::rows(&qkv[2 * d + h * hd..], 3 * d);
            // The block's output is computed compactly, then copied into its cells of `out`: a `&mut` view of the
            // strided block in place would span the other heads' columns, which other threads write.
            let mut o = vec![0f32; rows * hd];
            gemm(rows, n, hd, 1.0, Mat::rows(s, n), v, 0.0, &mut o, hd);
            for (r, row) in o.chunks_exact(hd).enumerate() {
                // SAFETY: part (h, blk) owns exactly the `hd` cells of head h in rows r0 .. r0 + rows, and no
                // other part touches them; `out` outlives `for_each`.
                let dst = unsafe { shared.rows((r0 + r) * d + h * hd, hd) };
                dst.copy_from_slice(row);
            }
        });
    };
    exec.for_each(heads * blocks, &part);
}

/// `x [t, c]` (time-major) with a zero row before and after: `[t + 2, c]`. For a kernel-3, padding-1 conv of
/// stride `s`, the im2col row of output time `t'` (input rows `s t' - 1 ..= s t' + 1`, `k`-major then channel)
/// is then the `3 c` values starting at `s t' c`: no copy beyond the padding.
fn pad_time(x: &[f32], t: usize, c: usize) -> Vec<f32> {
    let mut p = vec![0f32; (t + 2) * c];
    p[c..(t + 1) * c].copy_from_slice(&x[..t * c]);
    p
}

/// Conv1d weights `[c_out, c_in, 3]` reordered to `[c_out, 3, c_in]` (matching [`pad_time`]'s window rows).
pub(crate) fn conv_weights_k_major(w: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut o = vec![0f32; w.len()];
    for oc in 0..c_out {
        for i in 0..c_in {
            for k in 0..3 {
                o[oc * 3 * c_in + k * c_in + i] = w[oc * c_in * 3 + i * 3 + k];
            }
        }
    }
    o
}

/// Conv1d, kernel 3, padding 1, stride `stride`, time-major: `x [t, c_in]` → `[t_out, c_out]`, where
/// `t_out = (t - 1) / stride + 1`, with `wk` from [`conv_weights_k_major`]. One GEMM over the padded input.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv3(
    exec: &Exec,
    x: &[f32],
    t: usize,
    c_in: usize,
    wk: &[f32],
    bias: &[f32],
    c_out: usize,
    stride: usize,
) -> Vec<f32> {
    assert!(stride >= 1 && t > 0);
    let t_out = (t - 1) / stride + 1;
    let p = pad_time(x, t, c_in);
    let mut out = vec![0f32; t_out * c_out];
    for row in out.chunks_exact_mut(c_out) {
        row.copy_from_slice(bias);
    }
    // Row t' of the (virtual) im2col starts at stride * t' * c_in and spans 3 * c_in values.
    gemm_rows(
        exec,
        t_out,
        3 * c_in,
        c_out,
        1.0,
        &p,
        stride * c_in,
        Mat::t(wk, 3 * c_in),
        1.0,
        &mut out,
        c_out,
    );
    out
}

/// Exact (erf) GELU in place, `x = 0.5 x (1 + erf(x / sqrt 2))`, with erf as Eigen's `generic_fast_erf_float`:
/// `erf(z) = z P(z^2) / Q(z^2)` on `z` in (-3.92, 3.92) (a 13-coefficient rational fit, within a few ulp of erf;
/// outside it erf is +-1 to f32 precision). One division and no exp per value, a third of the work of the
/// fdlibm form `flint_kernels::ops::gelu_erf` evaluates, and a loop LLVM vectorises (AVX2+FMA picked at run time).
pub(crate) fn gelu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { gelu_avx2(x) };
    }
    gelu_body(x, |a, b, c| a * b + c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(x: &mut [f32]) {
    gelu_body(x, f32::mul_add)
}

#[inline(always)]
fn gelu_body(x: &mut [f32], fma: impl Fn(f32, f32, f32) -> f32) {
    const P: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    const Q: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_5e-4,
        -1.682_827e-3,
        -7.373_329_3e-3,
        -1.426_474e-2,
    ];
    for v in x.iter_mut() {
        let z = (*v * std::f32::consts::FRAC_1_SQRT_2).clamp(-4.0, 4.0);
        let z2 = z * z;
        let mut p = P[0];
        for c in &P[1..] {
            p = fma(p, z2, *c);
        }
        let mut q = Q[0];
        for c in &Q[1..] {
            q = fma(q, z2, *c);
        }
        // erf(z) rounds to +-1 for |z| >= 3.92; the fit's 1e-7 there would be all of 1 + erf for a negative z.
        let erf = if z.abs() >= 3.92 {
            z.signum()
        } else {
            z * p / q
        };
        *v = 0.5 * *v * (1.0 + erf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += f64::from(a(i, p)) * f64::from(b(p, j));
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn gemm_equals_naive_on_odd_shapes() {
        for exec in [Exec::with_threads(1), Exec::with_threads(2)] {
            for (m, k, n) in [(37, 53, 29), (1, 7, 3), (300, 65, 131), (129, 1, 257)] {
                let a = values(m * k, 1);
                let b = values(k * n, 2);
                // Plain row-major a, b read as the transpose of an [n, k] weight.
                let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                let want = naive(m, k, n, |i, p| a[i * k + p], |p, j| b[p * n + j]);
                let mut got = vec![f32::NAN; m * n];
                gemm_rows(&exec, m, k, n, 1.0, &a, k, Mat::t(&bt, k), 0.0, &mut got, n);
                assert!(rel(&got, &want) < 1e-5, "{m}x{k}x{n}: {}", rel(&got, &want));
                // With bias and accumulation through `linear`.
                let bias = values(n, 3);
                let mut acc = values(m * n, 4);
                let want2: Vec<f32> = (0..m * n).map(|i| acc[i] + bias[i % n] + want[i]).collect();
                linear(&exec, &a, m, &bt, n, k, Some(&bias), &mut acc, true);
                assert!(rel(&acc, &want2) < 1e-5, "{m}x{k}x{n} linear");
                // A strided sub-matrix with alpha and a padded output.
                let mut c = vec![0f32; m * (n + 3)];
                gemm(
                    m,
                    k,
                    n,
                    0.5,
                    Mat::rows(&a, k),
                    Mat::rows(&b, n),
                    0.0,
                    &mut c,
                    n + 3,
                );
                let got3: Vec<f32> = (0..m * n).map(|i| c[(i / n) * (n + 3) + i % n]).collect();
                let half: Vec<f32> = want.iter().map(|v| v * 0.5).collect();
                assert!(rel(&got3, &half) < 1e-5, "{m}x{k}x{n} strided");
            }
        }
    }

    #[test]
    fn attention_equals_naive() {
        let (n, heads, hd) = (70, 3, 5);
        let d = heads * hd;
        let qkv = values(n * 3 * d, 7);
        let scale = 0.4;
        let mut want = vec![0f32; n * d];
        for h in 0..heads {
            for i in 0..n {
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..hd)
                            .map(|c| {
                                f64::from(qkv[i * 3 * d + h * hd + c])
                                    * f64::from(qkv[j * 3 * d + d + h * hd + c])
                            })
                            .sum::<f64>()
                            * f64::from(scale)
                    })
                    .collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - mx).exp()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..hd {
                    let o: f64 = (0..n)
                        .map(|j| e[j] / sum * f64::from(qkv[j * 3 * d + 2 * d + h * hd + c]))
                        .sum();
                    want[i * d + h * hd + c] = o as f32;
                }
            }
        }
        for exec in [Exec::with_threads(1), Exec::with_threads(2)] {
            let mut got = vec![f32::NAN; n * d];
            self_attention(&exec, &qkv, n, d, heads, scale, &mut got);
            assert!(rel(&got, &want) < 1e-5, "{}", rel(&got, &want));
        }
    }

    #[test]
    fn gelu_matches_erf_gelu() {
        let mut x: Vec<f32> = (0..20001).map(|i| (i as f32 - 10000.0) * 1e-3).collect();
        x.extend([-30.0, -9.0, 9.0, 30.0, 0.0, -0.0, 1e-30]);
        let mut want = x.clone();
        flint_kernels::ops::gelu_erf(&mut want);
        let mut got = x.clone();
        gelu(&mut got);
        let mut plain = x.clone();
        gelu_body(&mut plain, |a, b, c| a * b + c);
        for ((g, w), (p, x)) in got.iter().zip(&want).zip(plain.iter().zip(&x)) {
            let tol = 1e-6 * w.abs().max(1.0);
            assert!((g - w).abs() <= tol, "gelu({x}) = {g}, erf form {w}");
            assert!((p - w).abs() <= tol, "plain gelu({x}) = {p}, erf form {w}");
        }
    }

    #[test]
    fn conv3_equals_reference() {
        let (c_in, c_out) = (5, 7);
        for (t, stride) in [(11, 1), (11, 2), (12, 2), (1, 1)] {
            let x = values(c_in * t, 9); // [c_in, t] as flint's conv1d takes it
            let w = values(c_out * c_in * 3, 10);
            let b = values(c_out, 11);
            let s = flint_kernels::ops::Conv1d {
                c_in,
                c_out,
                kernel: 3,
                stride,
                pad_left: 1,
                pad_right: 1,
                dilation: 1,
                groups: 1,
            };
            let want = flint_kernels::ops::conv1d_reference(&s, &x, t, &w, Some(&b)); // [c_out, t_out]
            let xt: Vec<f32> = (0..t * c_in)
                .map(|i| x[(i % c_in) * t + i / c_in])
                .collect();
            let wk = conv_weights_k_major(&w, c_out, c_in);
            let got = conv3(&Exec::with_threads(1), &xt, t, c_in, &wk, &b, c_out, stride);
            let t_out = want.len() / c_out;
            let got_t: Vec<f32> = (0..c_out * t_out)
                .map(|i| got[(i % t_out) * c_out + i / t_out])
                .collect();
            assert!(rel(&got_t, &want) < 1e-5, "t {t} stride {stride}");
        }
    }
}
