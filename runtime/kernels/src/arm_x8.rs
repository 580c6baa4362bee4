//! aarch64 kernels for the row-interleaved q8x8 / q4x8 blocks (layout in `interleaved.rs`): plain NEON and
//! NEON + dotprod.
//!
//! A 16-byte weight vector holds 4 consecutive values (one chunk) of each of 4 rows: bytes `32c..32c+16` are
//! chunk `c` of rows 0..4, bytes `32c+16..32c+32` of rows 4..8. An activation block is two registers; chunk `c`
//! is 32-bit lane `c % 4` of register `c / 4`.
//! - dotprod: `sdot v.4s, w.16b, a.4b[lane]` leaves row `r`'s partial dot in lane `r`: 16 `sdot`s per q8x8 block,
//!   8 pairs for q4x8 (low nibbles = chunk `k`, high nibbles = chunk `k + 4`, unsigned 0..15, offset removed as
//!   `8 * s` by starting the accumulator at `-8 * s`).
//! - NEON: the chunk's 4 activation bytes are broadcast to all lanes; `smull`/`smlal` (i8 x i8 -> i16) then
//!   pairwise adds (`sadalp`, `addp`) bring each row's sum to lane `r`.
//!
//! Per block the 8 row scales are one `fcvtl`/`fcvtl2` (base Armv8 NEON, no fp16 extension needed), and scaling is
//! one multiply-add per 4 rows. No per-row scalar work, no horizontal sums. `C` activation rows share each weight
//! load.
//!
//! Exactness (integer sums equal the scalar reference's): `sdot` is exact for any i8. NEON q8x8: an i16 lane holds
//! two products of at most 128 * 127 = 16256, so at most 32512. NEON q4x8: an i16 lane holds the 8 chunks' products
//! of a nibble (0..15) and an activation (|a| <= 127): at most 8 * 1905 = 15240. Both are widened to i32 before
//! any larger sum.
//!
//! The weight stream is prefetched [`PREFETCH`] bytes ahead (`prfm pldl1keep`): see `x86_avx2_x8.rs` for why.

use crate::blocks::BlockQ8A;
use crate::driver::GroupKernel;
use crate::interleaved::{BlockQ4x8, BlockQ8x8};
use core::arch::aarch64::*;
use core::arch::asm;
use core::marker::PhantomData;

/// How far ahead of the current block the weight stream is prefetched, in bytes.
const PREFETCH: usize = 1024;

/// Runs `$body` once per listed value with `$k` bound to it as a `const`: lane indices must be immediates, and
/// LLVM does not always unroll the chunk loops by itself (it kept a run-time lane `match` when tried).
macro_rules! unroll {
    ($k:ident in [$($v:literal),*] $body:block) => {
        $({
            const $k: usize = $v;
            $body
        })*
    };
}

/// Prefetches the cache lines of `bytes` bytes starting [`PREFETCH`] bytes after `p`.
#[inline(always)]
fn prefetch<T>(p: *const T, bytes: usize) {
    let p = p.cast::<u8>().wrapping_add(PREFETCH);
    let mut off = 0;
    while off < bytes {
        // SAFETY: PRFM is a hint: it never faults and changes no architectural state, whatever the address.
        unsafe {
            asm!(
                "prfm pldl1keep, [{p}]",
                p = in(reg) p.wrapping_add(off),
                options(nostack, preserves_flags, readonly)
            );
        }
        off += 64;
    }
}

/// The 8 f16 row scales as f32: (rows 0..4, rows 4..8).
#[inline]
#[target_feature(enable = "neon")]
fn scales(d: &[half::f16; 8]) -> (float32x4_t, float32x4_t) {
    let h: uint16x8_t = bytemuck::cast(*d);
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: FCVTL/FCVTL2 (half to single) are base Armv8 Advanced SIMD; they only touch the named registers.
    // `h` holds f16 bit patterns, which is what they read. `lo` is `out`, not `lateout`: it is written before
    // `fcvtl2` reads `h`, so it must not share `h`'s register.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = lateout(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (lo, hi)
}

/// Weight vector `i` (bytes `16i..16i+16`) of a block's values.
#[inline(always)]
fn vec16<const N: usize>(qs: &[u8; N], i: usize) -> uint8x16_t {
    let v: [u8; 16] = qs[16 * i..16 * i + 16].try_into().expect("16 bytes");
    bytemuck::cast(v)
}

/// An activation block's values as two registers (columns 0..16, 16..32).
#[inline(always)]
fn acts(a: &BlockQ8A) -> [int8x16_t; 2] {
    let v: [[i8; 16]; 2] = bytemuck::cast(a.qs);
    [bytemuck::cast(v[0]), bytemuck::cast(v[1])]
}

/// `acc += scale(d, a.d) * float(isum)` for rows 0..4 and 4..8.
#[inline(always)]
fn scale_add(
    acc: &mut [float32x4_t; 2],
    d: (float32x4_t, float32x4_t),
    i: [int32x4_t; 2],
    ad: f32,
) {
    // SAFETY: plain NEON arithmetic; every aarch64 CPU has NEON (and the callers require it).
    unsafe {
        acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(i[0]), vmulq_n_f32(d.0, ad));
        acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(i[1]), vmulq_n_f32(d.1, ad));
    }
}

#[inline(always)]
fn finish<const C: usize>(acc: [[float32x4_t; 2]; C]) -> [[f32; 8]; C] {
    acc.map(bytemuck::cast)
}

/// `acc.4s += dot4(w.16b, a.4b[L])` (SDOT by element).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot_lane<const L: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SDOT only reads and writes the named vector registers; the enclosing fn requires dotprod.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

#[target_feature(enable = "neon,dotprod")]
fn dot_q8x8<const C: usize>(w: &[BlockQ8x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    // Re-sliced to exactly `nb` so the per-block indexing below needs no bounds checks.
    let a = a.map(|s| &s[..nb]);
    let mut acc = [[vdupq_n_f32(0.0); 2]; C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ8x8>());
        let qs: &[u8; 256] = bytemuck::cast_ref(&blk.qs);
        let av: [[int8x16_t; 2]; C] = core::array::from_fn(|c| acts(&a[c][b]));
        let mut s32 = [[vdupq_n_s32(0); 2]; C];
        unroll!(K in [0, 1, 2, 3, 4, 5, 6, 7] {
            let w0 = vreinterpretq_s8_u8(vec16(qs, 2 * K));
            let w1 = vreinterpretq_s8_u8(vec16(qs, 2 * K + 1));
            for c in 0..C {
                let ak = av[c][K / 4];
                s32[c][0] = sdot_lane::<{ (K % 4) as i32 }>(s32[c][0], w0, ak);
                s32[c][1] = sdot_lane::<{ (K % 4) as i32 }>(s32[c][1], w1, ak);
            }
        });
        let d = scales(&blk.d);
        for c in 0..C {
            scale_add(&mut acc[c], d, s32[c], a[c][b].d);
        }
    }
    finish(acc)
}

#[target_feature(enable = "neon,dotprod")]
fn dot_q4x8<const C: usize>(w: &[BlockQ4x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    // Re-sliced to exactly `nb` so the per-block indexing below needs no bounds checks.
    let a = a.map(|s| &s[..nb]);
    let m4 = vdupq_n_u8(15);
    let mut acc = [[vdupq_n_f32(0.0); 2]; C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ4x8>());
        let av: [[int8x16_t; 2]; C] = core::array::from_fn(|c| acts(&a[c][b]));
        // Nibbles are stored + 8: start at -8 * sum(a) so the sums come out as sum((nibble - 8) * a).
        let mut s32: [[int32x4_t; 2]; C] =
            core::array::from_fn(|c| [vdupq_n_s32(-8 * a[c][b].s); 2]);
        unroll!(K in [0, 1, 2, 3] {
            for h in 0..2 {
                let q = vec16(&blk.qs, 2 * K + h);
                let lo = vreinterpretq_s8_u8(vandq_u8(q, m4));
                let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
                for c in 0..C {
                    s32[c][h] = sdot_lane::<{ K as i32 }>(s32[c][h], lo, av[c][0]);
                    s32[c][h] = sdot_lane::<{ K as i32 }>(s32[c][h], hi, av[c][1]);
                }
            }
        });
        let d = scales(&blk.d);
        for c in 0..C {
            scale_add(&mut acc[c], d, s32[c], a[c][b].d);
        }
    }
    finish(acc)
}

/// Chunk `K`'s 4 activation bytes (lane `K % 4` of `av[K / 4]`) broadcast to all lanes.
#[inline]
#[target_feature(enable = "neon")]
fn bcast<const K: usize>(av: &[int8x16_t; 2]) -> int8x16_t {
    let v = vreinterpretq_s32_s8(av[K / 4]);
    vreinterpretq_s8_s32(match K % 4 {
        0 => vdupq_laneq_s32::<0>(v),
        1 => vdupq_laneq_s32::<1>(v),
        2 => vdupq_laneq_s32::<2>(v),
        _ => vdupq_laneq_s32::<3>(v),
    })
}

#[target_feature(enable = "neon")]
fn neon_q8x8<const C: usize>(w: &[BlockQ8x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    // Re-sliced to exactly `nb` so the per-block indexing below needs no bounds checks.
    let a = a.map(|s| &s[..nb]);
    let mut acc = [[vdupq_n_f32(0.0); 2]; C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ8x8>());
        let qs: &[u8; 256] = bytemuck::cast_ref(&blk.qs);
        let av: [[int8x16_t; 2]; C] = core::array::from_fn(|c| acts(&a[c][b]));
        // s32[c][h][p]: rows 4h..4h+4, lanes (r, r, r+1, r+1) for p = 0 (rows 4h, 4h+1) and 1 (4h+2, 4h+3).
        let mut s32 = [[[vdupq_n_s32(0); 2]; 2]; C];
        // Chunks k and k + 1 share one i16 lane per (row, column in chunk): two products, at most 32512.
        unroll!(K in [0, 2, 4, 6] {
            let wv: [[int8x16_t; 2]; 2] = core::array::from_fn(|j| {
                core::array::from_fn(|h| vreinterpretq_s8_u8(vec16(qs, 2 * (K + j) + h)))
            });
            for c in 0..C {
                let (a0, a1) = (bcast::<K>(&av[c]), bcast::<{ K + 1 }>(&av[c]));
                for h in 0..2 {
                    let p0 = vmlal_s8(
                        vmull_s8(vget_low_s8(wv[0][h]), vget_low_s8(a0)),
                        vget_low_s8(wv[1][h]),
                        vget_low_s8(a1),
                    );
                    let p1 = vmlal_high_s8(vmull_high_s8(wv[0][h], a0), wv[1][h], a1);
                    s32[c][h][0] = vpadalq_s16(s32[c][h][0], p0);
                    s32[c][h][1] = vpadalq_s16(s32[c][h][1], p1);
                }
            }
        });
        let d = scales(&blk.d);
        for c in 0..C {
            let i = [0, 1].map(|h| vpaddq_s32(s32[c][h][0], s32[c][h][1]));
            scale_add(&mut acc[c], d, i, a[c][b].d);
        }
    }
    finish(acc)
}

#[target_feature(enable = "neon")]
fn neon_q4x8<const C: usize>(w: &[BlockQ4x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    // Re-sliced to exactly `nb` so the per-block indexing below needs no bounds checks.
    let a = a.map(|s| &s[..nb]);
    let m4 = vdupq_n_u8(15);
    let mut acc = [[vdupq_n_f32(0.0); 2]; C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ4x8>());
        let av: [[int8x16_t; 2]; C] = core::array::from_fn(|c| acts(&a[c][b]));
        // s16[c][h][p]: rows 4h..4h+4; p = 0: rows 4h, 4h+1 (lanes 0..4, 4..8), p = 1: rows 4h+2, 4h+3. All 8
        // chunks of the block add into one i16 lane per (row, column in chunk): at most 15240.
        let mut s16 = [[[vdupq_n_s16(0); 2]; 2]; C];
        unroll!(K in [0, 1, 2, 3] {
            for h in 0..2 {
                let q = vec16(&blk.qs, 2 * K + h);
                let lo = vreinterpretq_s8_u8(vandq_u8(q, m4));
                let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
                for c in 0..C {
                    let (al, ah) = (bcast::<K>(&av[c]), bcast::<{ K + 4 }>(&av[c]));
                    let s = &mut s16[c][h];
                    s[0] = vmlal_s8(s[0], vget_low_s8(lo), vget_low_s8(al));
                    s[0] = vmlal_s8(s[0], vget_low_s8(hi), vget_low_s8(ah));
                    s[1] = vmlal_high_s8(s[1], lo, al);
                    s[1] = vmlal_high_s8(s[1], hi, ah);
                }
            }
        });
        let d = scales(&blk.d);
        for c in 0..C {
            let off = vdupq_n_s32(8 * a[c][b].s);
            let i = [0, 1].map(|h| {
                let s = &s16[c][h];
                vsubq_s32(vpaddq_s32(vpaddlq_s16(s[0]), vpaddlq_s16(s[1])), off)
            });
            scale_add(&mut acc[c], d, i, a[c][b].d);
        }
    }
    finish(acc)
}

/// The plain NEON group kernel for block type `W` ([`BlockQ8x8`] or [`BlockQ4x8`]).
#[derive(Debug)]
pub(crate) struct NeonX8<W>(PhantomData<W>);

/// The NEON + dotprod group kernel for block type `W` ([`BlockQ8x8`] or [`BlockQ4x8`]).
#[derive(Debug)]
pub(crate) struct DotX8<W>(PhantomData<W>);

macro_rules! arm_group_kernel {
    ($kernel:ident, $w:ty, $tile:ident) => {
        impl GroupKernel for $kernel<$w> {
            type W = $w;
            #[inline]
            unsafe fn tile<const C: usize>(w: &[$w], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
                // SAFETY: the caller checked the CPU features (GroupKernel::tile contract).
                unsafe { $tile::<C>(w, a) }
            }
        }
    };
}

arm_group_kernel!(NeonX8, BlockQ8x8, neon_q8x8);
arm_group_kernel!(NeonX8, BlockQ4x8, neon_q4x8);
arm_group_kernel!(DotX8, BlockQ8x8, dot_q8x8);
arm_group_kernel!(DotX8, BlockQ4x8, dot_q4x8);
