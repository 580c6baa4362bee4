//! aarch64 Advanced SIMD (NEON) kernels, plus the block-tile template shared with the dotprod and i8mm files.
//!
//! Integer block sums use `smull`/`smlal` (i8 x i8 -> i16, two products per lane) and `sadalp` (-> i32). A lane
//! holds at most 2 * 128 * 127 = 32512, so weights of -128 are exact; activations stay in -127..=127.
//! q4 unpacks nibbles to `nibble - 8`; q4m and q2m keep their levels (0..15, 0..3) and add `m * da * s` per block.
//! Loads are `bytemuck::cast`s of fixed-size arrays (no `unsafe`).

use crate::blocks::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A};
use crate::driver::Kernel;
use core::arch::aarch64::*;
use half::{bf16, f16};

/// f16 bits to f32 without the `fp16` extension: shift into an f32 and rescale the exponent by 2^112
/// (exact for normals and subnormals), with inf/NaN patched.
#[inline(always)]
pub(crate) fn f16_f32(h: f16) -> f32 {
    let h = h.to_bits() as u32;
    let o = (h & 0x7fff) << 13;
    let mag = if h & 0x7c00 == 0x7c00 {
        f32::from_bits(o | 0x7f80_0000)
    } else {
        f32::from_bits(o) * f32::from_bits(0x7780_0000) // 2^112
    };
    f32::from_bits(mag.to_bits() | ((h & 0x8000) << 16))
}

#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn halves_i8(q: &[i8; 32]) -> (int8x16_t, int8x16_t) {
    let v: [[i8; 16]; 2] = bytemuck::cast(*q);
    (bytemuck::cast(v[0]), bytemuck::cast(v[1]))
}

/// q4 nibbles as signed bytes in element order: (elements 0..16, elements 16..32), minus `off`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn nibbles_i8(q: &[u8; 16], off: i8) -> (int8x16_t, int8x16_t) {
    let v: uint8x16_t = bytemuck::cast(*q);
    let lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
    let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
    let o = vdupq_n_s8(off);
    (vsubq_s8(lo, o), vsubq_s8(hi, o))
}

/// q2m levels (0..=3) as signed bytes in element order: (elements 0..16, elements 16..32). Byte `j` holds
/// elements `j`, `j + 8`, `j + 16`, `j + 24` in its bit pairs.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn crumbs_i8(q: &[u8; 8]) -> (int8x16_t, int8x16_t) {
    let v: uint8x8_t = bytemuck::cast(*q);
    let three = vdup_n_u8(3);
    let lo = vcombine_u8(vand_u8(v, three), vand_u8(vshr_n_u8::<2>(v), three));
    let hi = vcombine_u8(vand_u8(vshr_n_u8::<4>(v), three), vshr_n_u8::<6>(v));
    (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
}

/// Exact i32x4 partial sums of a 32-element block product (NEON baseline).
#[inline]
#[target_feature(enable = "neon")]
fn dot32(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
    let p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w.0), vget_low_s8(a.0)), w.0, a.0);
    let p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w.1), vget_low_s8(a.1)), w.1, a.1);
    vpadalq_s16(vpaddlq_s16(p0), p1)
}

/// Generates `tile_q8`, `tile_q4`, `tile_q4m`, `tile_q2m` and the float tiles for one target-feature set, given an
/// exact block dot `$dot((w_lo, w_hi), (a_lo, a_hi)) -> int32x4_t`.
macro_rules! quant_tiles {
    ($feat:literal, $dot:ident) => {
        #[target_feature(enable = $feat)]
        pub(crate) fn tile_q8<const R: usize, const C: usize>(
            w: [&[BlockQ8]; R],
            a: [&[BlockQ8A]; C],
        ) -> [[f32; R]; C] {
            tile_generic(w, a, |b| (halves_i8(&b.qs), f16_f32(b.d), 0.0))
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn tile_q4<const R: usize, const C: usize>(
            w: [&[BlockQ4]; R],
            a: [&[BlockQ8A]; C],
        ) -> [[f32; R]; C] {
            tile_generic(w, a, |b| (nibbles_i8(&b.qs, 8), f16_f32(b.d), 0.0))
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn tile_q4m<const R: usize, const C: usize>(
            w: [&[BlockQ4M]; R],
            a: [&[BlockQ8A]; C],
        ) -> [[f32; R]; C] {
            tile_generic(w, a, |b| (nibbles_i8(&b.qs, 0), f16_f32(b.d), f16_f32(b.m)))
        }

        #[target_feature(enable = $feat)]
        pub(crate) fn tile_q2m<const R: usize, const C: usize>(
            w: [&[BlockQ2M]; R],
            a: [&[BlockQ8A]; C],
        ) -> [[f32; R]; C] {
            tile_generic(w, a, |b| (crumbs_i8(&b.qs), f16_f32(b.d), f16_f32(b.m)))
        }

        /// `unpack(block) -> ((lo, hi) signed ints, d, m)`; value = d * int + m.
        #[inline]
        #[target_feature(enable = $feat)]
        fn tile_generic<B, const R: usize, const C: usize>(
            w: [&[B]; R],
            a: [&[BlockQ8A]; C],
            unpack: impl Fn(&B) -> ((int8x16_t, int8x16_t), f32, f32),
        ) -> [[f32; R]; C] {
            let nb = a[0].len();
            // Equal lengths, checked once, let the compiler drop per-element bounds checks.
            for s in &w {
                assert!(s.len() == nb);
            }
            for s in &a {
                assert!(s.len() == nb);
            }
            let mut acc = [[vdupq_n_f32(0.0); R]; C];
            let mut macc = [[0f32; R]; C];
            for b in 0..nb {
                let av: [(int8x16_t, int8x16_t); C] =
                    core::array::from_fn(|c| halves_i8(&a[c][b].qs));
                for r in 0..R {
                    let (wv, wd, wm) = unpack(&w[r][b]);
                    for c in 0..C {
                        let p = vcvtq_f32_s32($dot(wv, av[c]));
                        acc[c][r] = vfmaq_n_f32(acc[c][r], p, wd * a[c][b].d);
                        macc[c][r] += wm * (a[c][b].d * a[c][b].s as f32);
                    }
                }
            }
            core::array::from_fn(|c| core::array::from_fn(|r| vaddvq_f32(acc[c][r]) + macc[c][r]))
        }
    };
}
pub(crate) use quant_tiles;

quant_tiles!("neon", dot32);

#[inline]
#[target_feature(enable = "neon")]
fn load_f32(v: [f32; 4]) -> float32x4_t {
    bytemuck::cast(v)
}

/// Vector form of [`f16_f32`].
#[inline]
#[target_feature(enable = "neon")]
fn load_f16(v: [f16; 4]) -> float32x4_t {
    let h = vmovl_u16(bytemuck::cast::<[f16; 4], uint16x4_t>(v));
    let o = vshlq_n_u32::<13>(vandq_u32(h, vdupq_n_u32(0x7fff)));
    let scaled = vmulq_f32(
        vreinterpretq_f32_u32(o),
        vdupq_n_f32(f32::from_bits(0x7780_0000)),
    );
    let special = vceqq_u32(vandq_u32(h, vdupq_n_u32(0x7c00)), vdupq_n_u32(0x7c00));
    let infnan = vorrq_u32(o, vdupq_n_u32(0x7f80_0000));
    let mag = vbslq_u32(special, infnan, vreinterpretq_u32_f32(scaled));
    let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
    vreinterpretq_f32_u32(vorrq_u32(mag, sign))
}

#[inline]
#[target_feature(enable = "neon")]
fn load_bf16(v: [bf16; 4]) -> float32x4_t {
    // bf16 is the top half of an f32.
    vreinterpretq_f32_u32(vshll_n_u16::<16>(bytemuck::cast::<[bf16; 4], uint16x4_t>(
        v,
    )))
}

trait ToF32: Copy {
    fn to_f32(self) -> f32;
}
impl ToF32 for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}
impl ToF32 for f16 {
    fn to_f32(self) -> f32 {
        f16_f32(self)
    }
}
impl ToF32 for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

#[inline(always)]
fn arr4<T: Copy>(s: &[T]) -> [T; 4] {
    [s[0], s[1], s[2], s[3]]
}

macro_rules! float_tile {
    ($name:ident, $t:ty, $load:ident) => {
        #[target_feature(enable = "neon")]
        fn $name<const R: usize, const C: usize>(w: [&[$t]; R], a: [&[f32]; C]) -> [[f32; R]; C] {
            let k = a[0].len();
            // Equal lengths, checked once, let the compiler drop per-element bounds checks.
            for s in &w {
                assert!(s.len() == k);
            }
            for s in &a {
                assert!(s.len() == k);
            }
            let mut acc = [[vdupq_n_f32(0.0); R]; C];
            let body = k / 4 * 4;
            let mut i = 0;
            while i < body {
                let av: [float32x4_t; C] = core::array::from_fn(|c| load_f32(arr4(&a[c][i..])));
                for r in 0..R {
                    let wv = $load(arr4(&w[r][i..]));
                    for c in 0..C {
                        acc[c][r] = vfmaq_f32(acc[c][r], wv, av[c]);
                    }
                }
                i += 4;
            }
            core::array::from_fn(|c| {
                core::array::from_fn(|r| {
                    let tail: f32 = w[r][body..]
                        .iter()
                        .zip(&a[c][body..])
                        .map(|(x, y)| x.to_f32() * y)
                        .sum();
                    vaddvq_f32(acc[c][r]) + tail
                })
            })
        }
    };
}

float_tile!(tile_f32, f32, load_f32);
float_tile!(tile_f16, f16, load_f16);
float_tile!(tile_bf16, bf16, load_bf16);

/// Declares a `Kernel` marker whose tile calls a `#[target_feature]` fn.
macro_rules! arm_kernel {
    ($name:ident, $w:ty, $a:ty, $tile:ident) => {
        #[derive(Debug)]
        pub(crate) struct $name;
        impl Kernel for $name {
            type W = $w;
            type A = $a;
            #[inline]
            unsafe fn tile<const R: usize, const C: usize>(
                w: [&[$w]; R],
                a: [&[$a]; C],
            ) -> [[f32; R]; C] {
                // SAFETY: the caller checked the CPU features (Kernel::tile contract).
                unsafe { $tile::<R, C>(w, a) }
            }
        }
    };
}
pub(crate) use arm_kernel;

arm_kernel!(NeonQ8, BlockQ8, BlockQ8A, tile_q8);
arm_kernel!(NeonQ4, BlockQ4, BlockQ8A, tile_q4);
arm_kernel!(NeonQ4M, BlockQ4M, BlockQ8A, tile_q4m);
arm_kernel!(NeonQ2M, BlockQ2M, BlockQ8A, tile_q2m);
arm_kernel!(NeonF32, f32, f32, tile_f32);
arm_kernel!(NeonF16, f16, f32, tile_f16);
arm_kernel!(NeonBF16, bf16, f32, tile_bf16);
