//! Quant block types and their row quantizers / dequantizers.
//!
//! All weight blocks hold [`QK`] = 32 consecutive values of one row. They are `#[repr(C)]`, `Pod`, 2-byte aligned
//! and have no padding, so a file's bytes can be viewed as `&[BlockQ8]` etc. with `bytemuck::try_cast_slice` once
//! the reader has checked length and alignment. Their layout never changes once released.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Values per quant block (weights and activations).
pub const QK: usize = 32;

/// 32 int8 weights and an f16 scale: 34 bytes, 8.5 bits per weight. Value `i` is `d * qs[i]`.
/// Same layout as ggml `block_q8_0`. `qs` may hold -128 (kernels are exact for it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8 {
    pub d: f16,
    pub qs: [i8; QK],
}

/// 32 4-bit weights and an f16 scale: 18 bytes, 4.5 bits per weight. Value `i` is `d * (nibble_i - 8)`; byte `j`
/// holds element `j` in its low nibble and element `j + 16` in its high nibble (ggml `block_q4_0`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

/// 32 4-bit weights with a scale and an offset: 20 bytes, 5.0 bits per weight. Value `i` is `d * nibble_i + m`;
/// nibble order as [`BlockQ4`] (ggml `block_q4_1`, so GGUF Q4_1 maps to it directly).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4M {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 2],
}

/// 32 2-bit weights with a scale and an offset: 12 bytes, 3.0 bits per weight. Value `i` is `d * q_i + m` with
/// `q_i` in 0..=3; byte `j` (0..8) holds elements `j`, `j + 8`, `j + 16` and `j + 24` in bits 0-1, 2-3, 4-5 and 6-7.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2M {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 4],
}

/// A quantized activation block for the integer dot kernels: value `i` is `d * qs[i]`, `s = sum(qs)`.
/// Produced by [`quantize_acts`], which keeps `qs` in -127..=127; the kernels rely on that (never -128) for the
/// AVX2 sign trick, so build these only through [`quantize_acts`] or keep to that range.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8A {
    pub d: f32,
    pub s: i32,
    pub qs: [i8; QK],
}

const _: () = assert!(core::mem::size_of::<BlockQ8>() == 34);
const _: () = assert!(core::mem::size_of::<BlockQ4>() == 18);
const _: () = assert!(core::mem::size_of::<BlockQ4M>() == 20);
const _: () = assert!(core::mem::size_of::<BlockQ2M>() == 12);
const _: () = assert!(core::mem::size_of::<BlockQ8A>() == 40);
const _: () = assert!(core::mem::align_of::<BlockQ8>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ4>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ4M>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ2M>() == 2);

fn check_len(x: usize, blocks: usize, what: &str) {
    assert!(
        x == blocks * QK,
        "{what}: {x} values do not fill {blocks} blocks of {QK}"
    );
}

/// Quantizes `x` into q8 blocks, round to nearest, `d = max|x| / 127`.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize_row_q8(x: &[f32], out: &mut [BlockQ8]) {
    check_len(x.len(), out.len(), "quantize_row_q8");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        b.d = f16::from_f32(d);
        for (q, v) in b.qs.iter_mut().zip(xb) {
            *q = (v * id).round().clamp(-127.0, 127.0) as i8;
        }
    }
}

/// Like [`quantize_row_q8`], but each block minimises the importance-weighted squared error
/// `sum_i importance[i] * (x[i] - d * q[i])^2` (one weight per value of `x`): integer assignments at scales around
/// `max|x| / 127` are each refit by weighted least squares, and the best (after rounding `d` to f16) kept. Plain
/// round-to-nearest is one of the candidates, so under the weighted error the result is never worse than
/// [`quantize_row_q8`]'s. Weights that cannot weigh anything fall back to unit weights, as in
/// [`quantize_row_q4_weighted`]. `qs` stays in -127..=127.
///
/// # Panics
/// If `x.len() != out.len() * 32` or `importance.len() != x.len()`.
pub fn quantize_row_q8_weighted(x: &[f32], importance: &[f32], out: &mut [BlockQ8]) {
    check_len(x.len(), out.len(), "quantize_row_q8_weighted");
    check_len(
        importance.len(),
        out.len(),
        "quantize_row_q8_weighted importance",
    );
    for ((xb, wb), b) in x
        .chunks_exact(QK)
        .zip(importance.chunks_exact(QK))
        .zip(out.iter_mut())
    {
        let w = block_weights(wb);
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut best = (f32::INFINITY, 0f32, [0i8; QK]);
        let mut q = [0i8; QK];
        if amax > 0.0 {
            for k in -8..=8 {
                // k = 0 is exactly quantize_row_q8's assignment.
                let id = if k == 0 {
                    1.0 / (amax / 127.0)
                } else {
                    (127.0 + 0.25 * k as f32) / amax
                };
                let (mut xq, mut qq) = (0f32, 0f32);
                for (qi, &v) in q.iter_mut().zip(xb) {
                    let r = if k == 0 {
                        (v * id).round()
                    } else {
                        round_fast(v * id)
                    };
                    *qi = r.clamp(-127.0, 127.0) as i8;
                }
                for ((&qi, &v), &wi) in q.iter().zip(xb).zip(&w) {
                    xq += wi * v * qi as f32;
                    qq += wi * (qi as f32) * (qi as f32);
                }
                let rtn = if k == 0 { amax / 127.0 } else { f32::NAN };
                let fit = if qq > 0.0 { xq / qq } else { f32::NAN };
                for d in [rtn, fit] {
                    if !d.is_finite() {
                        continue;
                    }
                    let err = weighted_err(xb, &w, d, &q);
                    if err < best.0 {
                        best = (err, d, q);
                    }
                }
            }
        }
        b.d = f16::from_f32(best.1);
        b.qs = best.2;
    }
}

/// Expands q8 blocks to f32. # Panics: if `out.len() != blocks.len() * 32`.
pub fn dequantize_row_q8(blocks: &[BlockQ8], out: &mut [f32]) {
    check_len(out.len(), blocks.len(), "dequantize_row_q8");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (o, q) in o.iter_mut().zip(b.qs) {
            *o = d * q as f32;
        }
    }
}

/// Quantizes `x` into q4 blocks (ggml Q4_0 layout). Starting from round-to-nearest with the value of largest
/// magnitude mapped to -8 (`d = max / -8`, what ggml does), it tries a few nearby scales, refits `d` by least squares
/// for each integer assignment, and keeps the one with the smallest squared error after rounding `d` to f16. The
/// plain round-to-nearest block is one of the candidates, so the error is never worse than ggml's.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize_row_q4(x: &[f32], out: &mut [BlockQ4]) {
    check_len(x.len(), out.len(), "quantize_row_q4");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        // Unit weights make every product and sum below exactly those of the unweighted search.
        let (d, q) = search_q4(xb, &[1.0; QK], 6, false, false);
        pack_q4(d, &q, b);
    }
}

/// Like [`quantize_row_q4`], but each block minimises the importance-weighted squared error
/// `sum_i importance[i] * (x[i] - d * q[i])^2` (`importance` holds one weight per value of `x`, e.g. the mean square
/// of the activation each weight multiplies). It searches more scales than [`quantize_row_q4`] and refines the best
/// by re-rounding at its fitted scale. A block whose weights are all zero, or not all finite and non-negative, is
/// quantized with unit weights. Plain round-to-nearest (`d = max / -8`) is one of the candidates, so under the
/// weighted error the result is never worse than ggml's.
///
/// # Panics
/// If `x.len() != out.len() * 32` or `importance.len() != x.len()`.
pub fn quantize_row_q4_weighted(x: &[f32], importance: &[f32], out: &mut [BlockQ4]) {
    check_len(x.len(), out.len(), "quantize_row_q4_weighted");
    check_len(
        importance.len(),
        out.len(),
        "quantize_row_q4_weighted importance",
    );
    for ((xb, wb), b) in x
        .chunks_exact(QK)
        .zip(importance.chunks_exact(QK))
        .zip(out.iter_mut())
    {
        let (d, q) = search_q4(xb, &block_weights(wb), 12, true, true);
        pack_q4(d, &q, b);
    }
}

/// `w` as block weights, or unit weights if they cannot weigh anything (all zero, negative, NaN or infinite).
fn block_weights(w: &[f32]) -> [f32; QK] {
    let ok = w.iter().all(|v| v.is_finite() && *v >= 0.0) && w.iter().any(|v| *v > 0.0);
    let mut out = [1.0; QK];
    if ok {
        out.copy_from_slice(w);
    }
    out
}

/// The weighted error `sum w (x - d q)^2` of integer assignment `q` at scale `d` rounded to f16.
fn weighted_err(xb: &[f32], w: &[f32; QK], d: f32, q: &[i8; QK]) -> f32 {
    let d16 = f16::from_f32(d).to_f32();
    xb.iter()
        .zip(q)
        .zip(w)
        .map(|((&v, &qi), &wi)| wi * (v - d16 * qi as f32).powi(2))
        .sum()
}

/// The q4 scale search: integer assignments at `id = -(8 + k / 8) / max` for `k` in `-span..=span` (and ggml's own
/// `d = max / -8`), each refit by weighted least squares; with `refine`, the best is then re-rounded at its own scale
/// and refit while that lowers the error. With `fast`, candidates other than ggml's own assignment (`k = 0`) round
/// with [`round_fast`]. Returns `(d, q)`, `q` in -8..=7; an all-zero block gives `(0, 0)`.
fn search_q4(xb: &[f32], w: &[f32; QK], span: i32, refine: bool, fast: bool) -> (f32, [i8; QK]) {
    let max = xb
        .iter()
        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let mut best = (f32::INFINITY, 0f32, [0i8; QK]);
    if max == 0.0 {
        return (0.0, [0; QK]);
    }
    // Rounds `xb * id` into `q` and returns the weighted least-squares scale for it (NaN if `q` weighs nothing).
    fn assign(
        xb: &[f32],
        w: &[f32; QK],
        id: f32,
        q: &mut [i8; QK],
        round: impl Fn(f32) -> f32,
    ) -> f32 {
        let (mut xq, mut qq) = (0f32, 0f32);
        for ((qi, &v), &wi) in q.iter_mut().zip(xb).zip(w) {
            *qi = (round(v * id) as i32).clamp(-8, 7) as i8;
            xq += wi * v * *qi as f32;
            qq += wi * (*qi as f32) * (*qi as f32);
        }
        if qq == 0.0 {
            f32::NAN
        } else {
            xq / qq
        }
    }
    let mut q = [0i8; QK];
    for k in -span..=span {
        let id = -(8.0 + 0.125 * k as f32) / max;
        let fit = if fast && k != 0 {
            assign(xb, w, id, &mut q, round_fast)
        } else {
            assign(xb, w, id, &mut q, f32::round)
        };
        // k = 0 is also tried with ggml's own scale, so the search can only improve on it.
        let ggml = if k == 0 { max / -8.0 } else { f32::NAN };
        for d in [ggml, fit] {
            if !d.is_finite() {
                continue;
            }
            let err = weighted_err(xb, w, d, &q);
            if err < best.0 {
                best = (err, d, q);
            }
        }
    }
    if refine {
        for _ in 0..4 {
            let d16 = f16::from_f32(best.1).to_f32();
            if d16 == 0.0 || !d16.is_finite() {
                break;
            }
            let d = assign(xb, w, 1.0 / d16, &mut q, round_fast);
            if !d.is_finite() {
                break;
            }
            let err = weighted_err(xb, w, d, &q);
            if err >= best.0 {
                break;
            }
            best = (err, d, q);
        }
    }
    (best.1, best.2)
}

/// Round to nearest, ties to even, by adding and removing 1.5 * 2^23: exact for |v| <= 2^22 and, unlike
/// `f32::round` (a libm call on baseline x86_64), it vectorizes. Larger values stay large with their sign and NaN stays
/// NaN, so a following clamp / saturating cast still gives the right extreme (or 0 for NaN).
#[inline]
fn round_fast(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

fn pack_q4(d: f32, q: &[i8; QK], b: &mut BlockQ4) {
    b.d = f16::from_f32(d);
    for j in 0..QK / 2 {
        let lo = (q[j] + 8) as u8;
        let hi = (q[j + QK / 2] + 8) as u8;
        b.qs[j] = lo | (hi << 4);
    }
}

/// Expands q4 blocks to f32. # Panics: if `out.len() != blocks.len() * 32`.
pub fn dequantize_row_q4(blocks: &[BlockQ4], out: &mut [f32]) {
    check_len(out.len(), blocks.len(), "dequantize_row_q4");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for j in 0..QK / 2 {
            o[j] = d * ((b.qs[j] & 15) as i32 - 8) as f32;
            o[j + QK / 2] = d * ((b.qs[j] >> 4) as i32 - 8) as f32;
        }
    }
}

/// Quantizes `x` into q4m blocks: `m = min`, `d = (max - min) / 15`, nibble = round((x - m) / d).
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize_row_q4m(x: &[f32], out: &mut [BlockQ4M]) {
    check_len(x.len(), out.len(), "quantize_row_q4m");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let min = xb.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let max = xb.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let d = (max - min) / 15.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(min);
        // Quantize against the stored (rounded) minimum so the offset error is not doubled.
        let m = b.m.to_f32();
        let nib = |v: f32| (((v - m) * id + 0.5) as i32).clamp(0, 15) as u8;
        for j in 0..QK / 2 {
            b.qs[j] = nib(xb[j]) | (nib(xb[j + QK / 2]) << 4);
        }
    }
}

/// Expands q4m blocks to f32. # Panics: if `out.len() != blocks.len() * 32`.
pub fn dequantize_row_q4m(blocks: &[BlockQ4M], out: &mut [f32]) {
    check_len(out.len(), blocks.len(), "dequantize_row_q4m");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for j in 0..QK / 2 {
            o[j] = d * (b.qs[j] & 15) as f32 + m;
            o[j + QK / 2] = d * (b.qs[j] >> 4) as f32 + m;
        }
    }
}

/// Quantizes `x` into q2m blocks, each minimising the weighted squared error `sum_i w_i (x_i - d q_i - m)^2`
/// (`importance`: one weight per value of `x`; `None`, or a block whose weights cannot weigh anything, means unit
/// weights). With four levels, plain min/max is a poor fit, so the search tries assignments at scales around
/// `(max - min) / 3`, refits `d` and `m` of each by weighted least squares, re-rounds the best at its own fit while
/// that helps, and finally assigns every value its nearest level at the stored (f16) `d` and `m`.
///
/// # Panics
/// If `x.len() != out.len() * 32`, or `importance` is given and `importance.len() != x.len()`.
pub fn quantize_row_q2m(x: &[f32], importance: Option<&[f32]>, out: &mut [BlockQ2M]) {
    check_len(x.len(), out.len(), "quantize_row_q2m");
    if let Some(w) = importance {
        check_len(w.len(), out.len(), "quantize_row_q2m importance");
    }
    for (i, (xb, b)) in x.chunks_exact(QK).zip(out.iter_mut()).enumerate() {
        let w = importance.map_or([1.0; QK], |w| block_weights(&w[i * QK..(i + 1) * QK]));
        let (d, m) = search_q2m(xb, &w);
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(m);
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0u8; QK];
        for (qi, &v) in q.iter_mut().zip(xb) {
            *qi = (round_fast((v - m) * id) as i32).clamp(0, 3) as u8;
        }
        for j in 0..QK / 4 {
            b.qs[j] = q[j] | (q[j + 8] << 2) | (q[j + 16] << 4) | (q[j + 24] << 6);
        }
    }
}

/// The `(d, m)` search of [`quantize_row_q2m`] for one block (before rounding to f16).
fn search_q2m(xb: &[f32], w: &[f32; QK]) -> (f32, f32) {
    let min = xb.iter().fold(f32::INFINITY, |a, &v| a.min(v));
    let max = xb.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    if !(max - min).is_finite() || max <= min {
        return (0.0, if min.is_finite() { min } else { 0.0 });
    }
    // Levels round((x - lo) * id) in 0..=3, then the weighted least-squares (d, m) for them and its error.
    let fit = |lo: f32, id: f32| -> (f32, f32, f32) {
        let (mut sw, mut sq, mut sqq, mut sx, mut sqx) = (0f32, 0f32, 0f32, 0f32, 0f32);
        let mut q = [0f32; QK];
        for ((qi, &v), &wi) in q.iter_mut().zip(xb).zip(w) {
            *qi = round_fast((v - lo) * id).clamp(0.0, 3.0);
            sw += wi;
            sq += wi * *qi;
            sqq += wi * *qi * *qi;
            sx += wi * v;
            sqx += wi * *qi * v;
        }
        let det = sw * sqq - sq * sq;
        let (d, m) = if det > 0.0 {
            ((sw * sqx - sq * sx) / det, (sqq * sx - sq * sqx) / det)
        } else {
            (0.0, sx / sw)
        };
        let (d16, m16) = (f16::from_f32(d).to_f32(), f16::from_f32(m).to_f32());
        let err: f32 = q
            .iter()
            .zip(xb)
            .zip(w)
            .map(|((&qi, &v), &wi)| wi * (v - d16 * qi - m16).powi(2))
            .sum();
        (err, d, m)
    };
    let range = max - min;
    // Plain min/max first: the search can only improve on it.
    let mut best = {
        let (d, m) = (range / 3.0, min);
        let (d16, m16) = (f16::from_f32(d).to_f32(), f16::from_f32(m).to_f32());
        let id = if d16 != 0.0 { 1.0 / d16 } else { 0.0 };
        let err: f32 = xb
            .iter()
            .zip(w)
            .map(|(&v, &wi)| {
                let q = round_fast((v - m16) * id).clamp(0.0, 3.0);
                wi * (v - d16 * q - m16).powi(2)
            })
            .sum();
        (err, d, m)
    };
    for k in 0..=15 {
        let c = fit(min, (2.5 + 0.1 * k as f32) / range);
        if c.0 < best.0 {
            best = c;
        }
    }
    for _ in 0..4 {
        let (_, d, m) = best;
        if d <= 0.0 || !d.is_finite() {
            break;
        }
        let c = fit(m, 1.0 / d);
        if c.0 < best.0 {
            best = c;
        } else {
            break;
        }
    }
    (best.1, best.2)
}

/// Expands q2m blocks to f32. # Panics: if `out.len() != blocks.len() * 32`.
pub fn dequantize_row_q2m(blocks: &[BlockQ2M], out: &mut [f32]) {
    check_len(out.len(), blocks.len(), "dequantize_row_q2m");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for j in 0..QK / 4 {
            for k in 0..4 {
                o[j + 8 * k] = d * ((b.qs[j] >> (2 * k)) & 3) as f32 + m;
            }
        }
    }
}

/// Quantizes activations for the integer kernels: `d = max|x| / 127`, `q = round_ties_even(x * (127 / max|x|))`,
/// clamped to -127..=127, `s = sum(q)`. Every ISA quantizes through this one function, so activation blocks are
/// identical on all paths.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize_acts(x: &[f32], out: &mut [BlockQ8A]) {
    check_len(x.len(), out.len(), "quantize_acts");
    #[cfg(target_arch = "x86_64")]
    if crate::active_isa().has_avx2() {
        // SAFETY: the active family includes AVX2 only on CPUs with AVX2 and FMA (`Isa::available`).
        return unsafe { quantize_acts_avx2(x, out) };
    }
    quantize_acts_body(x, out)
}

/// The same arithmetic in AVX2 registers: `v * id` then `+ MAGIC - MAGIC` (not fused), the same clamp, so the
/// same bytes as [`quantize_act_block`] for finite inputs (the test below checks it, ties included).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_acts_avx2(x: &[f32], out: &mut [BlockQ8A]) {
    use core::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let xb: &[f32; QK] = xb.try_into().expect("chunks_exact yields QK");
        let v: [__m256; 4] = core::array::from_fn(|i| {
            let c: &[f32; 8] = xb[8 * i..8 * i + 8].try_into().expect("8 lanes");
            bytemuck::cast(*c)
        });
        let sign = _mm256_set1_ps(-0.0);
        let a = v.map(|x| _mm256_andnot_ps(sign, x));
        let m = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
        let lanes: [f32; 8] = bytemuck::cast(m);
        let amax = lanes.iter().fold(0f32, |m, v| m.max(*v));
        let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        b.d = amax / 127.0;
        let (vid, magic) = (_mm256_set1_ps(id), _mm256_set1_ps(MAGIC));
        let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
        let q = v.map(|x| {
            let r = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, vid), magic), magic);
            _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
        });
        // Pack to bytes; the packs interleave 128-bit lanes, the permute restores element order.
        let p = _mm256_packs_epi16(
            _mm256_packs_epi32(q[0], q[1]),
            _mm256_packs_epi32(q[2], q[3]),
        );
        let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        b.qs = bytemuck::cast::<__m256i, [i8; 32]>(p);
        let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        b.s = bytemuck::cast::<__m256i, [i32; 8]>(sum).iter().sum();
    }
}

#[inline(always)]
fn quantize_acts_body(x: &[f32], out: &mut [BlockQ8A]) {
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        quantize_act_block(xb.try_into().expect("chunks_exact yields QK"), b);
    }
}

#[inline(always)]
fn quantize_act_block(xb: &[f32; QK], b: &mut BlockQ8A) {
    // Written as plain lane-wise loops so the compiler vectorizes them on every target.
    let mut amax = [0f32; 8];
    for c in xb.chunks_exact(8) {
        for i in 0..8 {
            amax[i] = amax[i].max(c[i].abs());
        }
    }
    let amax = amax.iter().fold(0f32, |m, v| m.max(*v));
    let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    b.d = amax / 127.0;
    let mut s = 0i32;
    for (q, v) in b.qs.iter_mut().zip(xb) {
        // Round half to even by adding and removing 1.5 * 2^23 (exact for |v| <= 2^22; here |v| <= 127): the
        // same result as `round_ties_even`, but plain adds vectorize where the libm call does not.
        const MAGIC: f32 = 12_582_912.0;
        // Through i32: the value is integral in -127..=127, so this is the same byte, and f32 -> i32 vectorizes
        // where the saturating f32 -> i8 cast does not.
        let r = ((v * id + MAGIC) - MAGIC).clamp(-127.0, 127.0) as i32;
        *q = r as i8;
        s += r;
    }
    b.s = s;
}

/// Converts a row of f16 to f32 (uses hardware conversion where `half` finds it).
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    src.convert_to_f32_slice(dst);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched activation quantizer (AVX2 build on x86_64) gives the baseline build's bytes, ties included.
    #[test]
    fn quantize_acts_paths_agree() {
        let mut x = values(32 * 97, 7);
        // Exact halves after scaling: amax 127 makes id 1, so 2.5 and -3.5 are ties.
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        x[32..64].fill(0.0);
        let mut a = vec![bytemuck::Zeroable::zeroed(); 97];
        let mut b = vec![bytemuck::Zeroable::zeroed(); 97];
        quantize_acts(&x, &mut a);
        quantize_acts_body(&x, &mut b);
        let (a, b): (&[BlockQ8A], &[BlockQ8A]) = (&a, &b);
        assert_eq!(
            bytemuck::cast_slice::<_, u8>(a),
            bytemuck::cast_slice::<_, u8>(b)
        );
    }

    /// Deterministic values in [-1, 1) (xorshift), with a few larger outliers as real weight rows have.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let v = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                if i % 29 == 0 {
                    3.0 * v
                } else {
                    v
                }
            })
            .collect()
    }

    fn werr(x: &[f32], w: &[f32], y: &[f32]) -> f64 {
        x.iter()
            .zip(y)
            .zip(w)
            .map(|((a, b), c)| *c as f64 * ((a - b) as f64).powi(2))
            .sum()
    }

    /// Importance spread over four orders of magnitude, as activation mean squares are (a few hot columns).
    fn importance(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match i % 32 {
                3 | 17 => 100.0,
                c if c % 5 == 0 => 0.01,
                _ => 1.0,
            })
            .collect()
    }

    #[test]
    fn weighted_q4_lowers_the_weighted_error_and_never_loses_to_rtn() {
        let blocks = 400;
        let x = values(blocks * QK, 7);
        let w = importance(x.len());
        let (mut plain, mut weighted) = (
            vec![BlockQ4::zeroed(); blocks],
            vec![BlockQ4::zeroed(); blocks],
        );
        quantize_row_q4(&x, &mut plain);
        quantize_row_q4_weighted(&x, &w, &mut weighted);
        let (mut yp, mut yw) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        dequantize_row_q4(&plain, &mut yp);
        dequantize_row_q4(&weighted, &mut yw);
        for (i, ((xb, wb), yb)) in x
            .chunks(QK)
            .zip(w.chunks(QK))
            .zip(yw.chunks(QK))
            .enumerate()
        {
            // ggml's round-to-nearest block, under the same weighted metric.
            let max = xb
                .iter()
                .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let d = f16::from_f32(max / -8.0).to_f32();
            let rtn: Vec<f32> = xb
                .iter()
                .map(|&v| d * (v / d).round().clamp(-8.0, 7.0))
                .collect();
            let (ours, theirs) = (werr(xb, wb, yb), werr(xb, wb, &rtn));
            assert!(
                ours <= theirs * 1.0001 + 1e-12,
                "block {i}: {ours} > rtn {theirs}"
            );
        }
        let (ep, ew) = (werr(&x, &w, &yp), werr(&x, &w, &yw));
        assert!(
            ew < 0.8 * ep,
            "weighted error {ew} vs unweighted search's {ep}"
        );
    }

    #[test]
    fn weighted_q8_never_loses_to_rtn_and_degenerate_weights_fall_back() {
        let blocks = 200;
        let x = values(blocks * QK, 11);
        let w = importance(x.len());
        let (mut plain, mut weighted) = (
            vec![BlockQ8::zeroed(); blocks],
            vec![BlockQ8::zeroed(); blocks],
        );
        quantize_row_q8(&x, &mut plain);
        quantize_row_q8_weighted(&x, &w, &mut weighted);
        let (mut yp, mut yw) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        dequantize_row_q8(&plain, &mut yp);
        dequantize_row_q8(&weighted, &mut yw);
        for (i, (xb, wb)) in x.chunks(QK).zip(w.chunks(QK)).enumerate() {
            let r = i * QK..(i + 1) * QK;
            let (ours, rtn) = (werr(xb, wb, &yw[r.clone()]), werr(xb, wb, &yp[r]));
            assert!(
                ours <= rtn * 1.0001 + 1e-12,
                "block {i}: {ours} > rtn {rtn}"
            );
        }
        assert!(werr(&x, &w, &yw) < werr(&x, &w, &yp));
        // All-zero or NaN importance: unit weights, never NaN scales.
        for bad in [0.0, f32::NAN] {
            let mut b4 = vec![BlockQ4::zeroed(); 1];
            quantize_row_q4_weighted(&x[..QK], &[bad; QK], &mut b4);
            assert!(b4[0].d.to_f32().is_finite() && b4[0].d.to_f32() != 0.0);
            let mut b8 = vec![BlockQ8::zeroed(); 1];
            quantize_row_q8_weighted(&x[..QK], &[bad; QK], &mut b8);
            assert!(b8[0].d.to_f32().is_finite() && b8[0].d.to_f32() != 0.0);
        }
    }
}
