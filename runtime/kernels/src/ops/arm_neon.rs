//! aarch64 NEON vocabulary for the shared op bodies in `simd.rs` (4 lanes).

use core::arch::aarch64::*;

type V = float32x4_t;
type M = uint32x4_t;
const L: usize = 4;

super::simd::vocab! { "neon";
    fn splat(v: f32) -> V = vdupq_n_f32(v);
    // Plain loads and stores of the first 4 values through `bytemuck` (no `unsafe`).
    fn load(s: &[f32]) -> V = bytemuck::cast::<[f32; L], V>(s[..L].try_into().unwrap());
    fn store(s: &mut [f32], v: V) -> () = s[..L].copy_from_slice(&bytemuck::cast::<V, [f32; L]>(v));
    fn add(a: V, b: V) -> V = vaddq_f32(a, b);
    fn sub(a: V, b: V) -> V = vsubq_f32(a, b);
    fn mul(a: V, b: V) -> V = vmulq_f32(a, b);
    fn div(a: V, b: V) -> V = vdivq_f32(a, b);
    fn fma(a: V, b: V, c: V) -> V = vfmaq_f32(c, a, b);
    fn max(a: V, b: V) -> V = vmaxq_f32(a, b);
    fn min(a: V, b: V) -> V = vminq_f32(a, b);
    fn lt(a: V, b: V) -> M = vcltq_f32(a, b);
    fn gt(a: V, b: V) -> M = vcgtq_f32(a, b);
    fn select(m: M, a: V, b: V) -> V = vbslq_f32(m, a, b);
    fn hsum(v: V) -> f32 = vaddvq_f32(v);
    fn hmax(v: V) -> f32 = vmaxvq_f32(v);
    fn round(v: V) -> V = vrndnq_f32(v);
    // 2^n for integral n in -126..=127: the biased exponent shifted into place.
    fn pow2i(n: V) -> V = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127))));
    fn abs(v: V) -> V = vabsq_f32(v);
    fn copysign(mag: V, sign: V) -> V = vbslq_f32(vdupq_n_u32(0x8000_0000), sign, mag);
}

super::simd::simd_ops!("neon");
