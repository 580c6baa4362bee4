//! Causal grouped-query attention over a KV cache, in f32.
//!
//! One call covers a whole layer: every query token and every head. The body is plain Rust written in 8-lane
//! chunks so the compiler vectorizes it; on x86_64 it is compiled a second time with AVX2+FMA enabled and that copy
//! is used when the active kernel family is AVX2 (NEON is part of the aarch64 baseline, so one copy serves there).
//! Each query head of a group shares the group's key and value rows: keys and values are read once per group.

#[cfg(target_arch = "x86_64")]
use crate::dispatch::{active_isa, Isa};

/// Head counts and sizes of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads; `heads` is a multiple of it.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
}

/// `out[t, h] = softmax_p(scale * q[t, h] · k[p, h / g]) · v[p, h / g]` over positions `p` in `0..=p0 + t`, for the
/// `n` query tokens `t` (at positions `p0 + t`), where `g = heads / kv_heads`.
///
/// - `q`, `out`: `[n, heads * head_dim]`.
/// - `k`, `v`: the cache, `[p0 + n, kv_heads * head_dim]` or longer (later rows are not read).
///
/// # Panics
/// If a length does not match the shape, or `heads` is not a multiple of `kv_heads`.
#[allow(clippy::too_many_arguments)] // the public signature names every operand; internally they travel as `Args`
pub fn causal_attention(
    s: AttnShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    p0: usize,
    n: usize,
    scale: f32,
    out: &mut [f32],
) {
    let (qd, kvd) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    assert!(s.kv_heads > 0 && s.heads % s.kv_heads == 0, "{s:?}");
    assert!(
        q.len() == n * qd && out.len() == n * qd,
        "q/out for {n} tokens of {s:?}"
    );
    assert!(
        k.len() >= (p0 + n) * kvd && v.len() >= (p0 + n) * kvd,
        "cache shorter than {} positions",
        p0 + n
    );
    let args = Args {
        s,
        q,
        k,
        v,
        p0,
        n,
        scale,
    };
    #[cfg(target_arch = "x86_64")]
    if active_isa() == Isa::Avx2 {
        // SAFETY: the active family is AVX2 only if the CPU has AVX2, FMA and F16C (Isa::available).
        return unsafe { attention_avx2(&args, out) };
    }
    #[cfg(target_arch = "aarch64")]
    attention_body(&args, out, arm::dot);
    #[cfg(not(target_arch = "aarch64"))]
    attention_body(&args, out, dot_portable);
}

/// The operands of [`causal_attention`], checked.
struct Args<'a> {
    s: AttnShape,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    p0: usize,
    n: usize,
    scale: f32,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attention_avx2(a: &Args<'_>, out: &mut [f32]) {
    // SAFETY: this function runs only with AVX2 and FMA enabled (its target features), which `x86::dot` needs.
    attention_body(a, out, |x, y| unsafe { x86::dot(x, y) })
}

#[inline(always)]
fn attention_body(a: &Args<'_>, out: &mut [f32], dot: impl Fn(&[f32], &[f32]) -> f32) {
    let Args {
        s,
        q,
        k,
        v,
        p0,
        n,
        scale,
    } = *a;
    let hd = s.head_dim;
    let (qd, kvd) = (s.heads * hd, s.kv_heads * hd);
    let g = s.heads / s.kv_heads;
    let mut scores = vec![0f32; g * (p0 + n)];
    for t in 0..n {
        let len = p0 + t + 1;
        for kvh in 0..s.kv_heads {
            let heads = kvh * g..(kvh + 1) * g;
            let qrow = &q[t * qd..(t + 1) * qd];
            // Scores of the group's heads, key row by key row.
            for p in 0..len {
                let kp = &k[p * kvd + kvh * hd..p * kvd + (kvh + 1) * hd];
                for (i, h) in heads.clone().enumerate() {
                    scores[i * len + p] = dot(&qrow[h * hd..(h + 1) * hd], kp) * scale;
                }
            }
            for i in 0..g {
                softmax(&mut scores[i * len..(i + 1) * len]);
            }
            let orow = &mut out[t * qd..(t + 1) * qd];
            orow[heads.start * hd..heads.end * hd].fill(0.0);
            for p in 0..len {
                let vp = &v[p * kvd + kvh * hd..p * kvd + (kvh + 1) * hd];
                for (i, h) in heads.clone().enumerate() {
                    axpy(&mut orow[h * hd..(h + 1) * hd], scores[i * len + p], vp);
                }
            }
        }
    }
}

/// Portable dot product in 8 independent lanes (x86_64 without AVX2, or `FLINT_KERNELS=scalar`).
#[cfg(not(target_arch = "aarch64"))]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let n8 = a.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        for j in 0..8 {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    let tail: f32 = (n8..a.len()).map(|i| a[i] * b[i]).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// # Safety
    /// The CPU has AVX2 and FMA; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let n16 = n / 16 * 16;
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < n16 {
            // SAFETY: i + 16 <= n, within both slices.
            unsafe {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    s1,
                );
            }
            i += 16;
        }
        let s = _mm256_add_ps(s0, s1);
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_movehdup_ps(h));
        let tail: f32 = (n16..n).map(|i| a[i] * b[i]).sum();
        _mm_cvtss_f32(h) + tail
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use core::arch::aarch64::*;

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let n8 = n / 8 * 8;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: NEON is baseline on aarch64; every load reads i..i + 8 <= n of both slices.
        unsafe {
            let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
            let mut i = 0;
            while i < n8 {
                s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                s1 = vfmaq_f32(s1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
                i += 8;
            }
            let tail: f32 = (n8..n).map(|i| a[i] * b[i]).sum();
            vaddvq_f32(vaddq_f32(s0, s1)) + tail
        }
    }
}

/// `y += a * x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// In-place softmax.
#[inline(always)]
fn softmax(x: &mut [f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
