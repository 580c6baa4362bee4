//! x86_64 AVX2 + FMA vocabulary for the shared op bodies in `simd.rs` (8 lanes).

use core::arch::x86_64::*;

type V = __m256;
type M = __m256;
const L: usize = 8;

/// `[-0.0; 8]`: the sign bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn signs() -> V {
    _mm256_set1_ps(-0.0)
}

/// Folds the two 128-bit halves, then the four lanes, with `f`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn horizontal(v: V, f: impl Fn(__m128, __m128) -> __m128) -> f32 {
    let s = f(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = f(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(f(s, _mm_movehdup_ps(s)))
}

super::simd::vocab! { "avx2,fma";
    fn splat(v: f32) -> V = _mm256_set1_ps(v);
    // Plain unaligned loads and stores of the first 8 values through `bytemuck` (no `unsafe`).
    fn load(s: &[f32]) -> V = bytemuck::cast::<[f32; L], V>(s[..L].try_into().unwrap());
    fn store(s: &mut [f32], v: V) -> () = s[..L].copy_from_slice(&bytemuck::cast::<V, [f32; L]>(v));
    fn add(a: V, b: V) -> V = _mm256_add_ps(a, b);
    fn sub(a: V, b: V) -> V = _mm256_sub_ps(a, b);
    fn mul(a: V, b: V) -> V = _mm256_mul_ps(a, b);
    fn div(a: V, b: V) -> V = _mm256_div_ps(a, b);
    fn fma(a: V, b: V, c: V) -> V = _mm256_fmadd_ps(a, b, c);
    fn max(a: V, b: V) -> V = _mm256_max_ps(a, b);
    fn min(a: V, b: V) -> V = _mm256_min_ps(a, b);
    fn lt(a: V, b: V) -> M = _mm256_cmp_ps::<_CMP_LT_OQ>(a, b);
    fn gt(a: V, b: V) -> M = _mm256_cmp_ps::<_CMP_GT_OQ>(a, b);
    fn select(m: M, a: V, b: V) -> V = _mm256_blendv_ps(b, a, m);
    fn hsum(v: V) -> f32 = horizontal(v, |a, b| _mm_add_ps(a, b));
    fn hmax(v: V) -> f32 = horizontal(v, |a, b| _mm_max_ps(a, b));
    fn round(v: V) -> V = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
    // 2^n for integral n in -126..=127: the biased exponent shifted into place.
    fn pow2i(n: V) -> V = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    fn abs(v: V) -> V = _mm256_andnot_ps(signs(), v);
    fn copysign(mag: V, sign: V) -> V = _mm256_or_ps(_mm256_andnot_ps(signs(), mag), _mm256_and_ps(signs(), sign));
}

super::simd::simd_ops!("avx2,fma");
