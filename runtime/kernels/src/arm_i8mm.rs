//! aarch64 NEON + i8mm (ARMv8.6 SMMLA) matmul kernels: 2 weight rows x 2 activation rows per instruction.
//!
//! `smmla vd.4s, vn.16b, vm.16b` adds the 2x2 product of two 2x8 i8 matrices (`vn` rows times `vm` rows) to
//! `vd`; lanes are (r0,c0), (r0,c1), (r1,c0), (r1,c1). A 32-element block is four such steps over interleaved
//! 8-byte chunks. Tiles with an odd side (and all matvecs) use the dotprod kernels, which every i8mm CPU has.
//! `vmmlaq_s32` is unstable in Rust 1.95, hence `asm!`.

use crate::arm_dotprod;
use crate::arm_neon::{arm_kernel, crumbs_i8, f16_f32, halves_i8, nibbles_i8};
use crate::blocks::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A};
use crate::driver::Kernel;
use core::arch::aarch64::*;
use core::arch::asm;

#[inline]
#[target_feature(enable = "neon,dotprod,i8mm")]
fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SMMLA only reads and writes the named vector registers; the enclosing fn requires i8mm.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Interleaves two 32-element rows into the four 2x8 operands of SMMLA.
#[inline]
#[target_feature(enable = "neon,dotprod,i8mm")]
fn interleave(x: (int8x16_t, int8x16_t), y: (int8x16_t, int8x16_t)) -> [int8x16_t; 4] {
    let z = |p: int8x16_t, q: int8x16_t| {
        let (p, q) = (vreinterpretq_s64_s8(p), vreinterpretq_s64_s8(q));
        (
            vreinterpretq_s8_s64(vzip1q_s64(p, q)),
            vreinterpretq_s8_s64(vzip2q_s64(p, q)),
        )
    };
    let (a, b) = z(x.0, y.0);
    let (c, d) = z(x.1, y.1);
    [a, b, c, d]
}

#[inline]
fn f4(v: [f32; 4]) -> float32x4_t {
    bytemuck::cast(v)
}

/// `R x C` tile with `R`, `C` even; `unpack(block) -> ((lo, hi) ints, d, m)`, value = d * int + m.
#[inline]
#[target_feature(enable = "neon,dotprod,i8mm")]
fn mm_generic<B, const R: usize, const C: usize>(
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
    let zero = vdupq_n_f32(0.0);
    // Only the first R/2 x C/2 entries are used (const-generic arithmetic is not stable).
    let mut acc = [[zero; R]; C];
    let mut macc = [[zero; R]; C];
    for b in 0..nb {
        let mut ak = [[vdupq_n_s8(0); 4]; C];
        let mut da = [zero; C];
        let mut ds = [zero; C];
        for cp in 0..C / 2 {
            let (x, y) = (&a[2 * cp][b], &a[2 * cp + 1][b]);
            ak[cp] = interleave(halves_i8(&x.qs), halves_i8(&y.qs));
            da[cp] = f4([x.d, y.d, x.d, y.d]);
            let (sx, sy) = (x.d * x.s as f32, y.d * y.s as f32);
            ds[cp] = f4([sx, sy, sx, sy]);
        }
        for rp in 0..R / 2 {
            let (w0, d0, m0) = unpack(&w[2 * rp][b]);
            let (w1, d1, m1) = unpack(&w[2 * rp + 1][b]);
            let wk = interleave(w0, w1);
            let wd = f4([d0, d0, d1, d1]);
            let wm = f4([m0, m0, m1, m1]);
            for cp in 0..C / 2 {
                let mut s = vdupq_n_s32(0);
                for k in 0..4 {
                    s = smmla(s, wk[k], ak[cp][k]);
                }
                acc[cp][rp] = vfmaq_f32(acc[cp][rp], vcvtq_f32_s32(s), vmulq_f32(wd, da[cp]));
                macc[cp][rp] = vfmaq_f32(macc[cp][rp], wm, ds[cp]);
            }
        }
    }
    let mut t = [[0f32; R]; C];
    for cp in 0..C / 2 {
        for rp in 0..R / 2 {
            let v: [f32; 4] = bytemuck::cast(vaddq_f32(acc[cp][rp], macc[cp][rp]));
            t[2 * cp][2 * rp] = v[0];
            t[2 * cp + 1][2 * rp] = v[1];
            t[2 * cp][2 * rp + 1] = v[2];
            t[2 * cp + 1][2 * rp + 1] = v[3];
        }
    }
    t
}

macro_rules! mm_tile {
    ($name:ident, $b:ty, $fallback:path, $unpack:expr) => {
        #[target_feature(enable = "neon,dotprod,i8mm")]
        fn $name<const R: usize, const C: usize>(
            w: [&[$b]; R],
            a: [&[BlockQ8A]; C],
        ) -> [[f32; R]; C] {
            if R % 2 == 0 && C % 2 == 0 {
                mm_generic(w, a, $unpack)
            } else {
                $fallback(w, a)
            }
        }
    };
}

mm_tile!(tile_q8, BlockQ8, arm_dotprod::tile_q8, |b: &BlockQ8| (
    halves_i8(&b.qs),
    f16_f32(b.d),
    0.0
));
mm_tile!(tile_q4, BlockQ4, arm_dotprod::tile_q4, |b: &BlockQ4| (
    nibbles_i8(&b.qs, 8),
    f16_f32(b.d),
    0.0
));
mm_tile!(tile_q4m, BlockQ4M, arm_dotprod::tile_q4m, |b: &BlockQ4M| (
    nibbles_i8(&b.qs, 0),
    f16_f32(b.d),
    f16_f32(b.m)
));

mm_tile!(tile_q2m, BlockQ2M, arm_dotprod::tile_q2m, |b: &BlockQ2M| (
    crumbs_i8(&b.qs),
    f16_f32(b.d),
    f16_f32(b.m)
));

arm_kernel!(MmQ8, BlockQ8, BlockQ8A, tile_q8);
arm_kernel!(MmQ4, BlockQ4, BlockQ8A, tile_q4);
arm_kernel!(MmQ4M, BlockQ4M, BlockQ8A, tile_q4m);
arm_kernel!(MmQ2M, BlockQ2M, BlockQ8A, tile_q2m);
