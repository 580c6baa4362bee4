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
const _: () = assert!(core::mem::size_of::<BlockQ8A>() == 40);
const _: () = assert!(core::mem::align_of::<BlockQ8>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ4>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ4M>() == 2);

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
        let max = xb
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let mut best = (f32::INFINITY, 0f32, [0i8; QK]);
        if max != 0.0 {
            let mut q = [0i8; QK];
            for k in -6..=6 {
                let id = -(8.0 + 0.125 * k as f32) / max;
                let (mut xq, mut qq) = (0f32, 0f32);
                for (qi, &v) in q.iter_mut().zip(xb) {
                    *qi = ((v * id).round() as i32).clamp(-8, 7) as i8;
                    xq += v * *qi as f32;
                    qq += (*qi as f32) * (*qi as f32);
                }
                // k = 0 is also tried with ggml's own scale, so the search can only improve on it.
                let fits = if k == 0 {
                    vec![max / -8.0, xq / qq]
                } else {
                    vec![xq / qq]
                };
                for d in fits {
                    if qq == 0.0 || !d.is_finite() {
                        continue;
                    }
                    let d16 = f16::from_f32(d).to_f32();
                    let err: f32 = xb
                        .iter()
                        .zip(&q)
                        .map(|(&v, &qi)| (v - d16 * qi as f32).powi(2))
                        .sum();
                    if err < best.0 {
                        best = (err, d, q);
                    }
                }
            }
        }
        let (_, d, q) = best;
        b.d = f16::from_f32(d);
        for j in 0..QK / 2 {
            let lo = (q[j] + 8) as u8;
            let hi = (q[j + QK / 2] + 8) as u8;
            b.qs[j] = lo | (hi << 4);
        }
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

/// Quantizes activations for the integer kernels: `d = max|x| / 127`, `q = round_ties_even(x * (127 / max|x|))`,
/// clamped to -127..=127, `s = sum(q)`. Every ISA quantizes through this one function, so activation blocks are
/// identical on all paths.
///
/// # Panics
/// If `x.len() != out.len() * 32`.
pub fn quantize_acts(x: &[f32], out: &mut [BlockQ8A]) {
    check_len(x.len(), out.len(), "quantize_acts");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        quantize_act_block(xb.try_into().expect("chunks_exact yields QK"), b);
    }
}

#[inline]
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
        let r = ((v * id + MAGIC) - MAGIC).clamp(-127.0, 127.0) as i8;
        *q = r;
        s += r as i32;
    }
    b.s = s;
}

/// Converts a row of f16 to f32 (uses hardware conversion where `half` finds it).
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    src.convert_to_f32_slice(dst);
}
