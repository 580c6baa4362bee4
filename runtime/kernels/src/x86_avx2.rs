//! x86_64 AVX2 + FMA + F16C kernels.
//!
//! Quant dots use `vpmaddubsw` (u8 x i8 -> i16 pairs) then `vpmaddwd` by ones (-> i32). Both are exact here:
//! - q8: `|w| * (a * sign(w))`; `|w| <= 128` read as u8, `|a| <= 127` (activations never hold -128), so a pair
//!   sums to at most 2 * 128 * 127 = 32512 < 32767 and never saturates, including w = -128.
//! - q4: nibbles 0..15 times a, minus 8 * (a pairs) computed once per activation block; |pair| <= 3810.
//! - q4m, q2m: levels (0..15, 0..3) times a, plus `m * da * s` with `s = sum(a)` from the activation block.
//!
//! Loads go through `bytemuck::cast` of fixed-size arrays (plain unaligned loads, no `unsafe`).

use crate::blocks::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A};
use crate::driver::Kernel;
use core::arch::x86_64::*;
use half::{bf16, f16};

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_1(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn i8x32(q: &[i8; 32]) -> __m256i {
    bytemuck::cast(*q)
}

/// Expands 16 bytes of q4 nibbles to 32 bytes in element order (low nibbles, then high nibbles): the 16 bytes
/// go to both 128-bit lanes, the upper lane is shifted right by 4 (one 64-bit variable shift), then masked.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibbles(q: &[u8; 16]) -> __m256i {
    let v: __m128i = bytemuck::cast(*q);
    let both = _mm256_broadcastsi128_si256(v);
    let shifted = _mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0));
    _mm256_and_si256(shifted, _mm256_set1_epi8(15))
}

/// Expands 8 bytes of q2m levels to 32 bytes in element order: the 8 bytes go to all four 64-bit lanes, lane `k`
/// is shifted right by `2k` (one variable shift), then masked, so lane `k` holds elements `8k..8k + 8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn crumbs(q: &[u8; 8]) -> __m256i {
    let all = _mm256_set1_epi64x(i64::from_le_bytes(*q));
    let shifted = _mm256_srlv_epi64(all, _mm256_set_epi64x(6, 4, 2, 0));
    _mm256_and_si256(shifted, _mm256_set1_epi8(3))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q8<const R: usize, const C: usize>(
    w: [&[BlockQ8]; R],
    a: [&[BlockQ8A]; C],
) -> [[f32; R]; C] {
    let nb = a[0].len();
    // Equal lengths, checked once, let the compiler drop per-element bounds checks.
    for s in &w {
        assert!(s.len() == nb);
    }
    for s in &a {
        assert!(s.len() == nb);
    }
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); R]; C];
    for b in 0..nb {
        let av: [__m256i; C] = core::array::from_fn(|c| i8x32(&a[c][b].qs));
        for r in 0..R {
            let blk = &w[r][b];
            let wv = i8x32(&blk.qs);
            let wabs = _mm256_abs_epi8(wv);
            let wd = f16_1(blk.d);
            for c in 0..C {
                let p = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(av[c], wv));
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[c][r] = _mm256_fmadd_ps(p, _mm256_set1_ps(wd * a[c][b].d), acc[c][r]);
            }
        }
    }
    acc.map(|row| row.map(|v| hsum(v)))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q4<const R: usize, const C: usize>(
    w: [&[BlockQ4]; R],
    a: [&[BlockQ8A]; C],
) -> [[f32; R]; C] {
    let nb = a[0].len();
    // Equal lengths, checked once, let the compiler drop per-element bounds checks.
    for s in &w {
        assert!(s.len() == nb);
    }
    for s in &a {
        assert!(s.len() == nb);
    }
    let ones = _mm256_set1_epi16(1);
    let eight = _mm256_set1_epi8(8);
    let mut acc = [[_mm256_setzero_ps(); R]; C];
    for b in 0..nb {
        let av: [__m256i; C] = core::array::from_fn(|c| i8x32(&a[c][b].qs));
        // 8 * (a[2i] + a[2i+1]): subtracting it turns nibble products into (nibble - 8) products.
        let a8: [__m256i; C] = core::array::from_fn(|c| _mm256_maddubs_epi16(eight, av[c]));
        for r in 0..R {
            let blk = &w[r][b];
            let nib = nibbles(&blk.qs);
            let wd = f16_1(blk.d);
            for c in 0..C {
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(nib, av[c]), a8[c]);
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[c][r] = _mm256_fmadd_ps(p, _mm256_set1_ps(wd * a[c][b].d), acc[c][r]);
            }
        }
    }
    acc.map(|row| row.map(|v| hsum(v)))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q4m<const R: usize, const C: usize>(
    w: [&[BlockQ4M]; R],
    a: [&[BlockQ8A]; C],
) -> [[f32; R]; C] {
    tile_offset(w, a, |b| (nibbles(&b.qs), b.d, b.m))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q2m<const R: usize, const C: usize>(
    w: [&[BlockQ2M]; R],
    a: [&[BlockQ8A]; C],
) -> [[f32; R]; C] {
    tile_offset(w, a, |b| (crumbs(&b.qs), b.d, b.m))
}

/// The tile of a block type with an offset: `unpack(block) -> (levels as u8 in element order, d, m)`, value
/// `d * level + m`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_offset<B, const R: usize, const C: usize>(
    w: [&[B]; R],
    a: [&[BlockQ8A]; C],
    unpack: impl Fn(&B) -> (__m256i, f16, f16),
) -> [[f32; R]; C] {
    let nb = a[0].len();
    // Equal lengths, checked once, let the compiler drop per-element bounds checks.
    for s in &w {
        assert!(s.len() == nb);
    }
    for s in &a {
        assert!(s.len() == nb);
    }
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); R]; C];
    let mut macc = [[0f32; R]; C];
    for b in 0..nb {
        let av: [__m256i; C] = core::array::from_fn(|c| i8x32(&a[c][b].qs));
        let ds: [f32; C] = core::array::from_fn(|c| a[c][b].d * a[c][b].s as f32);
        for r in 0..R {
            let (lv, d, m) = unpack(&w[r][b]);
            let (wd, wm) = (f16_1(d), f16_1(m));
            for c in 0..C {
                let p = _mm256_maddubs_epi16(lv, av[c]);
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[c][r] = _mm256_fmadd_ps(p, _mm256_set1_ps(wd * a[c][b].d), acc[c][r]);
                macc[c][r] += wm * ds[c];
            }
        }
    }
    core::array::from_fn(|c| core::array::from_fn(|r| hsum(acc[c][r]) + macc[c][r]))
}

macro_rules! float_tile {
    ($name:ident, $t:ty, $load:ident) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        fn $name<const R: usize, const C: usize>(w: [&[$t]; R], a: [&[f32]; C]) -> [[f32; R]; C] {
            let k = a[0].len();
            // Equal lengths, checked once, let the compiler drop per-element bounds checks.
            for s in &w {
                assert!(s.len() == k);
            }
            for s in &a {
                assert!(s.len() == k);
            }
            let mut acc = [[_mm256_setzero_ps(); R]; C];
            let body = k / 8 * 8;
            let mut i = 0;
            while i < body {
                let av: [__m256; C] =
                    core::array::from_fn(|c| bytemuck::cast::<[f32; 8], __m256>(arr8(&a[c][i..])));
                for r in 0..R {
                    let wv = $load(arr8(&w[r][i..]));
                    for c in 0..C {
                        acc[c][r] = _mm256_fmadd_ps(wv, av[c], acc[c][r]);
                    }
                }
                i += 8;
            }
            core::array::from_fn(|c| {
                core::array::from_fn(|r| {
                    let tail: f32 = w[r][body..]
                        .iter()
                        .zip(&a[c][body..])
                        .map(|(x, y)| x.to_f32() * y)
                        .sum();
                    hsum(acc[c][r]) + tail
                })
            })
        }
    };
}

#[inline(always)]
fn arr8<T: Copy>(s: &[T]) -> [T; 8] {
    let mut o = [s[0]; 8];
    o.copy_from_slice(&s[..8]);
    o
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
        f16::to_f32(self)
    }
}
impl ToF32 for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f32(v: [f32; 8]) -> __m256 {
    bytemuck::cast(v)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f16(v: [f16; 8]) -> __m256 {
    _mm256_cvtph_ps(bytemuck::cast::<[f16; 8], __m128i>(v))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_bf16(v: [bf16; 8]) -> __m256 {
    // bf16 is the top half of an f32: widen to 32 bits and shift into place.
    let w = _mm256_cvtepu16_epi32(bytemuck::cast::<[bf16; 8], __m128i>(v));
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
}

float_tile!(tile_f32, f32, load_f32);
float_tile!(tile_f16, f16, load_f16);
float_tile!(tile_bf16, bf16, load_bf16);

macro_rules! avx2_kernel {
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
                // SAFETY: the caller checked AVX2, FMA and F16C (Kernel::tile contract).
                unsafe { $tile::<R, C>(w, a) }
            }
        }
    };
}

avx2_kernel!(Avx2Q8, BlockQ8, BlockQ8A, tile_q8);
avx2_kernel!(Avx2Q4, BlockQ4, BlockQ8A, tile_q4);
avx2_kernel!(Avx2Q4M, BlockQ4M, BlockQ8A, tile_q4m);
avx2_kernel!(Avx2Q2M, BlockQ2M, BlockQ8A, tile_q2m);
avx2_kernel!(Avx2F32, f32, f32, tile_f32);
avx2_kernel!(Avx2F16, f16, f32, tile_f16);
avx2_kernel!(Avx2BF16, bf16, f32, tile_bf16);
