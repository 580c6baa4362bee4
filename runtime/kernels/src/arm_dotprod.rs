//! aarch64 NEON + dotprod (ARMv8.2 SDOT) quant kernels. Float weights use the NEON kernels.
//!
//! `sdot` adds four i8 x i8 products into each i32 lane: exact for any i8 inputs. `vdotq_s32` is unstable in
//! Rust 1.95, so the instruction is written with `asm!` inside `neon,dotprod` functions.

use crate::arm_neon::{arm_kernel, crumbs_i8, f16_f32, halves_i8, nibbles_i8, quant_tiles};
use crate::blocks::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A};
use crate::driver::Kernel;
use core::arch::aarch64::*;
use core::arch::asm;

/// `acc.4s += dot4(a.16b, b.16b)` (SDOT).
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SDOT only reads and writes the named vector registers; the enclosing fn requires dotprod.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Exact i32x4 partial sums of a 32-element block product.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn dot32(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
    sdot(sdot(vdupq_n_s32(0), w.0, a.0), w.1, a.1)
}

quant_tiles!("neon,dotprod", dot32);

arm_kernel!(DotQ8, BlockQ8, BlockQ8A, tile_q8);
arm_kernel!(DotQ4, BlockQ4, BlockQ8A, tile_q4);
arm_kernel!(DotQ4M, BlockQ4M, BlockQ8A, tile_q4m);
arm_kernel!(DotQ2M, BlockQ2M, BlockQ8A, tile_q2m);
