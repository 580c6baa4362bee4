//! Portable reference kernels. Every SIMD kernel is tested against these.
//!
//! Quant dots: per block an exact `i32` sum of products, then `acc += isum as f32 * (dw * da)` in block order
//! (plus `m * (da * s)` for q4m and q2m). Float dots: one `f32` accumulator in element order.

use crate::blocks::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A, QK};
use crate::driver::Kernel;
use half::{bf16, f16};

/// Exact integer dot of a q8 weight block and an activation block.
pub fn isum_q8(w: &BlockQ8, a: &BlockQ8A) -> i32 {
    w.qs.iter()
        .zip(&a.qs)
        .map(|(&x, &y)| x as i32 * y as i32)
        .sum()
}

/// Exact integer dot of a q4 weight block (`nibble - 8`) and an activation block.
pub fn isum_q4(w: &BlockQ4, a: &BlockQ8A) -> i32 {
    let mut s = 0;
    for j in 0..QK / 2 {
        s += ((w.qs[j] & 15) as i32 - 8) * a.qs[j] as i32;
        s += ((w.qs[j] >> 4) as i32 - 8) * a.qs[j + QK / 2] as i32;
    }
    s
}

/// Exact integer dot of q4m nibbles (no offset) and an activation block.
pub fn isum_q4m(w: &BlockQ4M, a: &BlockQ8A) -> i32 {
    let mut s = 0;
    for j in 0..QK / 2 {
        s += (w.qs[j] & 15) as i32 * a.qs[j] as i32;
        s += (w.qs[j] >> 4) as i32 * a.qs[j + QK / 2] as i32;
    }
    s
}

/// Exact integer dot of q2m levels (0..=3, no offset) and an activation block.
pub fn isum_q2m(w: &BlockQ2M, a: &BlockQ8A) -> i32 {
    let mut s = 0;
    for j in 0..QK / 4 {
        for k in 0..4 {
            s += ((w.qs[j] >> (2 * k)) & 3) as i32 * a.qs[j + 8 * k] as i32;
        }
    }
    s
}

/// Reference dot q8 · q8a.
pub fn dot_q8_q8(w: &[BlockQ8], a: &[BlockQ8A]) -> f32 {
    assert_eq!(w.len(), a.len());
    let mut acc = 0f32;
    for (w, a) in w.iter().zip(a) {
        acc += isum_q8(w, a) as f32 * (w.d.to_f32() * a.d);
    }
    acc
}

/// Reference dot q4 · q8a.
pub fn dot_q4_q8(w: &[BlockQ4], a: &[BlockQ8A]) -> f32 {
    assert_eq!(w.len(), a.len());
    let mut acc = 0f32;
    for (w, a) in w.iter().zip(a) {
        acc += isum_q4(w, a) as f32 * (w.d.to_f32() * a.d);
    }
    acc
}

/// Reference dot of a block type with an offset (`value = d * level + m`) and q8a:
/// `sum(d*n + m) * da * q = d*da*sum(n*q) + m*da*s`.
fn dot_offset<B>(
    w: &[B],
    a: &[BlockQ8A],
    isum: fn(&B, &BlockQ8A) -> i32,
    dm: fn(&B) -> (f16, f16),
) -> f32 {
    assert_eq!(w.len(), a.len());
    let mut acc = 0f32;
    for (w, a) in w.iter().zip(a) {
        let (d, m) = dm(w);
        acc += isum(w, a) as f32 * (d.to_f32() * a.d);
        acc += m.to_f32() * (a.d * a.s as f32);
    }
    acc
}

/// Reference dot q4m · q8a.
pub fn dot_q4m_q8(w: &[BlockQ4M], a: &[BlockQ8A]) -> f32 {
    dot_offset(w, a, isum_q4m, |b| (b.d, b.m))
}

/// Reference dot q2m · q8a.
pub fn dot_q2m_q8(w: &[BlockQ2M], a: &[BlockQ8A]) -> f32 {
    dot_offset(w, a, isum_q2m, |b| (b.d, b.m))
}

/// Reference dot f32 · f32.
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len());
    w.iter().zip(x).fold(0f32, |s, (a, b)| s + a * b)
}

/// Reference dot f16 · f32.
pub fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len());
    w.iter().zip(x).fold(0f32, |s, (a, b)| s + a.to_f32() * b)
}

/// Reference dot bf16 · f32.
pub fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len());
    w.iter().zip(x).fold(0f32, |s, (a, b)| s + a.to_f32() * b)
}

macro_rules! scalar_kernel {
    ($name:ident, $w:ty, $a:ty, $dot:ident) => {
        #[derive(Debug)]
        pub(crate) struct $name;
        impl Kernel for $name {
            type W = $w;
            type A = $a;
            unsafe fn tile<const R: usize, const C: usize>(
                w: [&[$w]; R],
                a: [&[$a]; C],
            ) -> [[f32; R]; C] {
                core::array::from_fn(|c| core::array::from_fn(|r| $dot(w[r], a[c])))
            }
        }
    };
}

scalar_kernel!(ScalarF32, f32, f32, dot_f32);
scalar_kernel!(ScalarF16, f16, f32, dot_f16);
scalar_kernel!(ScalarBF16, bf16, f32, dot_bf16);
scalar_kernel!(ScalarQ8, BlockQ8, BlockQ8A, dot_q8_q8);
scalar_kernel!(ScalarQ4, BlockQ4, BlockQ8A, dot_q4_q8);
scalar_kernel!(ScalarQ4M, BlockQ4M, BlockQ8A, dot_q4m_q8);
scalar_kernel!(ScalarQ2M, BlockQ2M, BlockQ8A, dot_q2m_q8);

macro_rules! scalar_group_kernel {
    ($name:ident, $w:ty, $dot:path) => {
        #[derive(Debug)]
        pub(crate) struct $name;
        impl crate::driver::GroupKernel for $name {
            type W = $w;
            unsafe fn tile<const C: usize>(w: &[$w], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
                core::array::from_fn(|c| $dot(w, a[c]))
            }
        }
    };
}

scalar_group_kernel!(
    ScalarQ8x8,
    crate::interleaved::BlockQ8x8,
    crate::interleaved::dot_q8x8
);
scalar_group_kernel!(
    ScalarQ4x8,
    crate::interleaved::BlockQ4x8,
    crate::interleaved::dot_q4x8
);
