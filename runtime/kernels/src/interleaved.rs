//! Row-interleaved quant blocks: the same q8 / q4 values as [`BlockQ8`] / [`BlockQ4`], stored 8 rows at a time so
//! that one SIMD register holds 4 consecutive values of each of 8 rows.
//!
//! Why: a plain block is one row's 32 values, so a matvec ends every block with a per-row scalar scale multiply and
//! every row with a horizontal sum. With 8 rows interleaved, a 256-bit (or two 128-bit) integer dot leaves row `r`'s
//! partial sum in lane `r`, the 8 scales load as one vector, and scaling is one vector multiply-add per block for 8
//! rows (the idea behind ggml's repacked `q4_0_8x8`; the layout here is Flint's own and lives in the file, so it is
//! mapped, not repacked at load time).
//!
//! Layout of one block, covering rows `8g..8g+8`, columns `32b..32b+32`:
//! - `d[r]`: the f16 scale of row `8g + r`.
//! - Values are split in 8 chunks of 4 columns: chunk `c` holds columns `32b + 4c .. 32b + 4c + 4`.
//! - [`BlockQ8x8`]: `qs[32c + 4r + t]` is column `4c + t` of row `r` (int8).
//! - [`BlockQ4x8`]: byte `32k + 4r + t` (`k` in 0..4) holds column `4k + t` of row `r` in its low nibble and column
//!   `16 + 4k + t` in its high nibble, each stored `+ 8` as in q4. So the low nibbles of bytes `32k..32k+32` are
//!   chunk `k` and the high nibbles are chunk `k + 4`.
//!
//! A matrix `[rows, cols]` (`rows % 8 == 0`, `cols % 32 == 0`) is `rows / 8` groups of `cols / 32` blocks, group
//! after group. Values, scales and bits per weight equal the plain types': [`interleave_q8`] and [`interleave_q4`]
//! are lossless.

use crate::blocks::{BlockQ4, BlockQ8, BlockQ8A, QK};
use bytemuck::{Pod, Zeroable};
use half::f16;

/// Rows per interleaved block.
pub const ROWS_X8: usize = 8;

/// 8 rows x 32 int8 values and 8 f16 scales: 272 bytes, 8.5 bits per weight. See the module docs for the order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8x8 {
    pub d: [f16; 8],
    pub qs: [i8; 256],
}

/// 8 rows x 32 4-bit values and 8 f16 scales: 144 bytes, 4.5 bits per weight. See the module docs for the order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4x8 {
    pub d: [f16; 8],
    pub qs: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<BlockQ8x8>() == 8 * 34);
const _: () = assert!(core::mem::size_of::<BlockQ4x8>() == 8 * 18);
const _: () = assert!(core::mem::align_of::<BlockQ8x8>() == 2);
const _: () = assert!(core::mem::align_of::<BlockQ4x8>() == 2);

/// Column `j` (0..32) of row lane `r` of a q8x8 block.
#[inline]
pub fn q8x8_value(b: &BlockQ8x8, r: usize, j: usize) -> i8 {
    b.qs[32 * (j / 4) + 4 * r + j % 4]
}

/// Column `j` (0..32) of row lane `r` of a q4x8 block, as the signed value `nibble - 8`.
#[inline]
pub fn q4x8_value(b: &BlockQ4x8, r: usize, j: usize) -> i8 {
    let c = j / 4;
    let byte = b.qs[32 * (c % 4) + 4 * r + j % 4];
    let nib = if c < 4 { byte & 15 } else { byte >> 4 };
    nib as i8 - 8
}

fn check(plain: usize, k: usize, out: usize, what: &str) {
    assert!(
        k > 0 && plain.is_multiple_of(ROWS_X8 * k) && out * ROWS_X8 == plain,
        "{what}: {plain} plain blocks of {k} per row do not make {out} blocks of 8 rows"
    );
}

/// Interleaves a row-major plain q8 matrix (`k` blocks per row, rows a multiple of 8) into q8x8 blocks.
///
/// # Panics
/// If the lengths do not match (`plain.len() == out.len() * 8`, a multiple of `8 * k`).
pub fn interleave_q8(plain: &[BlockQ8], k: usize, out: &mut [BlockQ8x8]) {
    check(plain.len(), k, out.len(), "interleave_q8");
    for (i, o) in out.iter_mut().enumerate() {
        let (g, b) = (i / k, i % k);
        for r in 0..ROWS_X8 {
            let src = &plain[(g * ROWS_X8 + r) * k + b];
            o.d[r] = src.d;
            for j in 0..QK {
                o.qs[32 * (j / 4) + 4 * r + j % 4] = src.qs[j];
            }
        }
    }
}

/// Interleaves a row-major plain q4 matrix (`k` blocks per row, rows a multiple of 8) into q4x8 blocks.
///
/// # Panics
/// As [`interleave_q8`].
pub fn interleave_q4(plain: &[BlockQ4], k: usize, out: &mut [BlockQ4x8]) {
    check(plain.len(), k, out.len(), "interleave_q4");
    for (i, o) in out.iter_mut().enumerate() {
        let (g, b) = (i / k, i % k);
        o.qs = [0; 128];
        for r in 0..ROWS_X8 {
            let src = &plain[(g * ROWS_X8 + r) * k + b];
            o.d[r] = src.d;
            for j in 0..QK {
                // Plain q4: byte j holds column j (low) and j + 16 (high).
                let nib = if j < 16 {
                    src.qs[j] & 15
                } else {
                    src.qs[j - 16] >> 4
                };
                let c = j / 4;
                let at = 32 * (c % 4) + 4 * r + j % 4;
                o.qs[at] |= if c < 4 { nib } else { nib << 4 };
            }
        }
    }
}

/// Dequantizes row lane `r` (0..8) of a group's blocks (`blocks` = one group, `cols / 32` blocks) into `out`.
///
/// # Panics
/// If `r >= 8` or `out.len() != blocks.len() * 32`.
pub fn dequantize_row_q8x8(blocks: &[BlockQ8x8], r: usize, out: &mut [f32]) {
    assert!(r < ROWS_X8 && out.len() == blocks.len() * QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d[r].to_f32();
        for (j, o) in o.iter_mut().enumerate() {
            *o = d * q8x8_value(b, r, j) as f32;
        }
    }
}

/// Dequantizes row lane `r` (0..8) of a group's q4x8 blocks into `out`. # Panics: as [`dequantize_row_q8x8`].
pub fn dequantize_row_q4x8(blocks: &[BlockQ4x8], r: usize, out: &mut [f32]) {
    assert!(r < ROWS_X8 && out.len() == blocks.len() * QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d[r].to_f32();
        for (j, o) in o.iter_mut().enumerate() {
            *o = d * q4x8_value(b, r, j) as f32;
        }
    }
}

/// Reference: the 8 row dots of one group (`w`: its blocks) with one activation row, per row in block order
/// exactly as [`crate::scalar::dot_q8_q8`] does for a plain row.
pub fn dot_q8x8(w: &[BlockQ8x8], a: &[BlockQ8A]) -> [f32; 8] {
    assert_eq!(w.len(), a.len());
    core::array::from_fn(|r| {
        let mut acc = 0f32;
        for (b, ab) in w.iter().zip(a) {
            let isum: i32 = (0..QK)
                .map(|j| q8x8_value(b, r, j) as i32 * ab.qs[j] as i32)
                .sum();
            acc += isum as f32 * (b.d[r].to_f32() * ab.d);
        }
        acc
    })
}

/// Reference: as [`dot_q8x8`] for q4x8.
pub fn dot_q4x8(w: &[BlockQ4x8], a: &[BlockQ8A]) -> [f32; 8] {
    assert_eq!(w.len(), a.len());
    core::array::from_fn(|r| {
        let mut acc = 0f32;
        for (b, ab) in w.iter().zip(a) {
            let isum: i32 = (0..QK)
                .map(|j| q4x8_value(b, r, j) as i32 * ab.qs[j] as i32)
                .sum();
            acc += isum as f32 * (b.d[r].to_f32() * ab.d);
        }
        acc
    })
}
