//! x86_64 AVX2 + FMA vocabulary for the shared op bodies in `simd.rs` (8 lanes).

use core::arch::x86_64::*;

type V = __m256;
type M = __m256;
const L: usize = 8;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn splat(v: f32) -> V {
    _mm256_set1_ps(v)
}

/// The first 8 values of `s` (a plain unaligned load through `bytemuck`, no `unsafe`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(s: &[f32]) -> V {
    let a: [f32; L] = s[..L].try_into().unwrap();
    bytemuck::cast(a)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(s: &mut [f32], v: V) {
    s[..L].copy_from_slice(&bytemuck::cast::<V, [f32; L]>(v));
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn add(a: V, b: V) -> V {
    _mm256_add_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn sub(a: V, b: V) -> V {
    _mm256_sub_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn mul(a: V, b: V) -> V {
    _mm256_mul_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn div(a: V, b: V) -> V {
    _mm256_div_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn fma(a: V, b: V, c: V) -> V {
    _mm256_fmadd_ps(a, b, c)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn max(a: V, b: V) -> V {
    _mm256_max_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn min(a: V, b: V) -> V {
    _mm256_min_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn lt(a: V, b: V) -> M {
    _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn gt(a: V, b: V) -> M {
    _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn select(m: M, a: V, b: V) -> V {
    _mm256_blendv_ps(b, a, m)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: V) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hmax(v: V) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn round(v: V) -> V {
    _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
}

/// 2^n for integral `n` in -126..=127: the biased exponent shifted into place.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pow2i(n: V) -> V {
    let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn abs(v: V) -> V {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn copysign(mag: V, sign: V) -> V {
    let s = _mm256_set1_ps(-0.0);
    _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sign))
}

super::simd::simd_ops!("avx2,fma");
