//! x86_64 AVX2 kernels for the row-interleaved q8x8 / q4x8 blocks (layout in `interleaved.rs`), and their
//! AVX-512 VNNI variants (`vpdpbusd` on 256-bit registers) for the `avx512vnni` family.
//!
//! Lane `r` of a 256-bit register holds 4 consecutive values of row `r`; the matching 4 activation bytes are
//! broadcast to all lanes, so `vpmaddubsw` + `vpmaddwd` leave row `r`'s partial dot in lane `r`. Per block the 8 row
//! scales are one `vcvtph2ps`, and scaling is one multiply-add for 8 rows: no per-row scalar work, no horizontal sums.
//!
//! Exactness (integer sums match the scalar reference bit for bit):
//! - q4x8: nibbles 0..15 times activations (|a| <= 127): an i16 pair is at most 2 * 15 * 127 = 3810, and the 8 chunks
//!   of a block add up to at most 30480 < 32767 per i16 lane, so the sums stay in i16 until one `vpmaddwd` per block;
//!   the offset is removed as `8 * s` (`s` = the activation block's sum).
//! - q8x8: `|w|` as u8 times `a * sign(w)`: a pair is at most 2 * 128 * 127 = 32512, widened to i32 every chunk.
//!
//! The weight stream is prefetched [`PREFETCH`] bytes ahead: files are mapped with 4 KiB pages, where the hardware
//! prefetcher stops at each page boundary.

use crate::blocks::BlockQ8A;
use crate::driver::GroupKernel;
use crate::interleaved::{BlockQ4x8, BlockQ8x8};
use core::arch::x86_64::*;

/// How far ahead of the current block the weight stream is prefetched, in bytes.
const PREFETCH: usize = 1024;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch<T>(p: *const T, bytes: usize) {
    let p = p.cast::<i8>().wrapping_add(PREFETCH);
    let mut off = 0;
    while off < bytes {
        // A prefetch is a hint: it never faults, whatever the address (so it is a safe intrinsic).
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off));
        off += 64;
    }
}

/// The 4 activation bytes of chunk `c` (columns 4c..4c+4), broadcast to every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn chunk(a: &BlockQ8A, c: usize) -> __m256i {
    let q = &a.qs[4 * c..4 * c + 4];
    _mm256_set1_epi32(i32::from_le_bytes([
        q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8,
    ]))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load32(b: &[u8]) -> __m256i {
    let arr: [u8; 32] = b[..32].try_into().expect("32 bytes");
    bytemuck::cast(arr)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales(d: &[half::f16; 8]) -> __m256 {
    _mm256_cvtph_ps(bytemuck::cast::<[half::f16; 8], __m128i>(*d))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q4x8<const C: usize>(w: &[BlockQ4x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    let m4 = _mm256_set1_epi8(15);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ4x8>());
        let mut s16 = [_mm256_setzero_si256(); C];
        for k in 0..4 {
            let q = load32(&blk.qs[32 * k..]);
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            for c in 0..C {
                let ab = &a[c][b];
                let p = _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo, chunk(ab, k)),
                    _mm256_maddubs_epi16(hi, chunk(ab, k + 4)),
                );
                s16[c] = _mm256_add_epi16(s16[c], p);
            }
        }
        let d = scales(&blk.d);
        for c in 0..C {
            let ab = &a[c][b];
            let i = _mm256_sub_epi32(_mm256_madd_epi16(s16[c], ones), _mm256_set1_epi32(8 * ab.s));
            let sc = _mm256_mul_ps(d, _mm256_set1_ps(ab.d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), sc, acc[c]);
        }
    }
    acc.map(bytemuck::cast)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q8x8<const C: usize>(w: &[BlockQ8x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ8x8>());
        let qs: &[u8; 256] = bytemuck::cast_ref(&blk.qs);
        let mut s32 = [_mm256_setzero_si256(); C];
        for k in 0..8 {
            let q = load32(&qs[32 * k..]);
            let qa = _mm256_abs_epi8(q);
            for c in 0..C {
                let p = _mm256_maddubs_epi16(qa, _mm256_sign_epi8(chunk(&a[c][b], k), q));
                s32[c] = _mm256_add_epi32(s32[c], _mm256_madd_epi16(p, ones));
            }
        }
        let d = scales(&blk.d);
        for c in 0..C {
            let sc = _mm256_mul_ps(d, _mm256_set1_ps(a[c][b].d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[c]), sc, acc[c]);
        }
    }
    acc.map(bytemuck::cast)
}

/// [`tile_q4x8`] with AVX-512 VNNI on 256-bit registers: `vpdpbusd` multiplies the nibbles (u8) by the
/// activations (i8) and adds each group of 4 products into the i32 lanes in one instruction, so no i16 stage (the
/// sums are exact in i32 either way, so the result is the same bit for bit).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
fn tile_q4x8_vnni<const C: usize>(w: &[BlockQ4x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    let m4 = _mm256_set1_epi8(15);
    let mut acc = [_mm256_setzero_ps(); C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ4x8>());
        let mut s32 = [_mm256_setzero_si256(); C];
        for k in 0..4 {
            let q = load32(&blk.qs[32 * k..]);
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            for c in 0..C {
                let ab = &a[c][b];
                s32[c] = _mm256_dpbusd_epi32(s32[c], lo, chunk(ab, k));
                s32[c] = _mm256_dpbusd_epi32(s32[c], hi, chunk(ab, k + 4));
            }
        }
        let d = scales(&blk.d);
        for c in 0..C {
            let ab = &a[c][b];
            let i = _mm256_sub_epi32(s32[c], _mm256_set1_epi32(8 * ab.s));
            let sc = _mm256_mul_ps(d, _mm256_set1_ps(ab.d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), sc, acc[c]);
        }
    }
    acc.map(bytemuck::cast)
}

/// [`tile_q8x8`] with AVX-512 VNNI on 256-bit registers: `|w|` (u8) times `a * sign(w)` (i8), 4 products added
/// into each i32 lane by one `vpdpbusd` (exact: at most 4 * 128 * 127 per step).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
fn tile_q8x8_vnni<const C: usize>(w: &[BlockQ8x8], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
    let nb = w.len();
    for s in &a {
        assert!(s.len() == nb);
    }
    let mut acc = [_mm256_setzero_ps(); C];
    for (b, blk) in w.iter().enumerate() {
        prefetch(blk, core::mem::size_of::<BlockQ8x8>());
        let qs: &[u8; 256] = bytemuck::cast_ref(&blk.qs);
        let mut s32 = [_mm256_setzero_si256(); C];
        for k in 0..8 {
            let q = load32(&qs[32 * k..]);
            let qa = _mm256_abs_epi8(q);
            for c in 0..C {
                s32[c] = _mm256_dpbusd_epi32(s32[c], qa, _mm256_sign_epi8(chunk(&a[c][b], k), q));
            }
        }
        let d = scales(&blk.d);
        for c in 0..C {
            let sc = _mm256_mul_ps(d, _mm256_set1_ps(a[c][b].d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[c]), sc, acc[c]);
        }
    }
    acc.map(bytemuck::cast)
}

macro_rules! avx2_group_kernel {
    ($name:ident, $w:ty, $tile:ident) => {
        #[derive(Debug)]
        pub(crate) struct $name;
        impl GroupKernel for $name {
            type W = $w;
            #[inline]
            unsafe fn tile<const C: usize>(w: &[$w], a: [&[BlockQ8A]; C]) -> [[f32; 8]; C] {
                // SAFETY: the caller checked the family's features (AVX2, FMA and F16C; for the VNNI tiles also
                // AVX512F, AVX512VL and AVX512VNNI: `Isa::available`), the GroupKernel::tile contract.
                unsafe { $tile::<C>(w, a) }
            }
        }
    };
}

avx2_group_kernel!(Avx2Q8x8, BlockQ8x8, tile_q8x8);
avx2_group_kernel!(Avx2Q4x8, BlockQ4x8, tile_q4x8);
avx2_group_kernel!(VnniQ8x8, BlockQ8x8, tile_q8x8_vnni);
avx2_group_kernel!(VnniQ4x8, BlockQ4x8, tile_q4x8_vnni);
