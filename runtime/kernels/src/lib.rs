//! Flint's compute kernels: quant block types, dot / matvec / matmul for f32, f16, bf16, q8, q4, q4m and q2m weights,
//! with a scalar reference and SIMD paths (x86_64 AVX2+FMA+F16C; aarch64 NEON, NEON+dotprod, NEON+i8mm) chosen
//! once at run time.
//!
//! Contract (see docs/KERNELS.md):
//! - Weights are row-major `[rows, cols]`; quant types store `cols / 32` blocks per row, so `cols % 32 == 0`.
//! - `matvec`: `out[r] = sum_c w[r, c] * x[c]`, `cols = x.len()`, `rows = out.len()`.
//! - `matmul`: `x` is `[n, cols]`, `out` is `[n, rows]`, both row-major.
//! - Lengths are an internal contract: a mismatch panics with a message (files are validated upstream).
//! - Quant weights are dotted with activations quantized on the fly to [`BlockQ8A`] (int8, per-32 f32 scale),
//!   once per call, not once per row.
//! - Integer block sums are exact on every path; float results differ from the scalar reference only by
//!   summation order.

mod attention;
mod blocks;
mod dispatch;
mod driver;
mod exec;
mod interleaved;
pub mod ops;
mod pool;
pub mod scalar;
mod tap;

#[cfg(target_arch = "aarch64")]
mod arm_dotprod;
#[cfg(target_arch = "aarch64")]
mod arm_i8mm;
#[cfg(target_arch = "aarch64")]
mod arm_neon;
#[cfg(target_arch = "aarch64")]
mod arm_x8;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx2_x8;

pub use attention::{
    attention, causal_attention, quantize_kv_q8, AttnShape, KvChunk, KvRows, Mask, KV_Q8_BLOCK,
    QUERY_BLOCK,
};
pub use blocks::{
    dequantize_row_q2m, dequantize_row_q4, dequantize_row_q4m, dequantize_row_q8, f16_to_f32,
    quantize_acts, quantize_row_q2m, quantize_row_q4, quantize_row_q4_weighted, quantize_row_q4m,
    quantize_row_q8, quantize_row_q8_weighted, BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A, QK,
};
pub use dispatch::{active_isa, cpu_report, select_from_env, Isa, SelectError};
pub use exec::{matmul, matmul_quantized, matvec, matvec_quantized, set_threads, threads, Exec};
pub use interleaved::{
    dequantize_row_q4x8, dequantize_row_q8x8, dot_q4x8, dot_q8x8, interleave_q4, interleave_q8,
    q4x8_value, q8x8_value, BlockQ4x8, BlockQ8x8, ROWS_X8,
};
pub use tap::{set_tap, tap_active, Tap};

use half::{bf16, f16};

/// The most worker threads Flint starts, whatever is asked: a thread per core is the most that helps, and a
/// board profile or a `--threads` value of 10^4 must not spawn 10^4 threads.
pub const MAX_THREADS: usize = 256;

/// The thread cap on this machine: 4 × the available CPUs, at most [`MAX_THREADS`]. Asking for more is an error
/// at the command line; asking for more than the available CPUs is allowed (with a warning there).
pub fn max_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.saturating_mul(4).min(MAX_THREADS)
}

/// Weight element types: the one table of tensor types, with their on-disk ids, names and block sizes, is the
/// format's [`flint_format::DType`]; the kernels' block structs are checked against it at compile time below.
pub use flint_format::DType as WeightType;

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<BlockQ8>() == WeightType::Q8.block_bytes());
    assert!(size_of::<BlockQ4>() == WeightType::Q4.block_bytes());
    assert!(size_of::<BlockQ4M>() == WeightType::Q4M.block_bytes());
    assert!(size_of::<BlockQ2M>() == WeightType::Q2M.block_bytes());
    assert!(size_of::<BlockQ8x8>() == WeightType::Q8X8.block_bytes());
    assert!(size_of::<BlockQ4x8>() == WeightType::Q4X8.block_bytes());
    assert!(QK == WeightType::Q8.block_elems() && ROWS_X8 == WeightType::Q8X8.block_rows());
    assert!(size_of::<f32>() == WeightType::F32.block_bytes());
    assert!(size_of::<f16>() == WeightType::F16.block_bytes());
    assert!(size_of::<bf16>() == WeightType::BF16.block_bytes());
};

/// A borrowed weight matrix, row-major `[rows, cols]`. Quant variants hold `rows * cols / 32` blocks.
#[derive(Clone, Copy, Debug)]
pub enum WeightRef<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    BF16(&'a [bf16]),
    Q8(&'a [BlockQ8]),
    Q4(&'a [BlockQ4]),
    Q4M(&'a [BlockQ4M]),
    Q2M(&'a [BlockQ2M]),
    /// `rows / 8` groups of `cols / 32` blocks ([`BlockQ8x8`]).
    Q8x8(&'a [BlockQ8x8]),
    /// `rows / 8` groups of `cols / 32` blocks ([`BlockQ4x8`]).
    Q4x8(&'a [BlockQ4x8]),
}

impl<'a> WeightRef<'a> {
    /// The element type.
    pub fn weight_type(&self) -> WeightType {
        match self {
            WeightRef::F32(_) => WeightType::F32,
            WeightRef::F16(_) => WeightType::F16,
            WeightRef::BF16(_) => WeightType::BF16,
            WeightRef::Q8(_) => WeightType::Q8,
            WeightRef::Q4(_) => WeightType::Q4,
            WeightRef::Q4M(_) => WeightType::Q4M,
            WeightRef::Q2M(_) => WeightType::Q2M,
            WeightRef::Q8x8(_) => WeightType::Q8X8,
            WeightRef::Q4x8(_) => WeightType::Q4X8,
        }
    }

    /// Number of weight values (elements, not blocks).
    pub fn elems(&self) -> usize {
        let units = match self {
            WeightRef::F32(s) => s.len(),
            WeightRef::F16(s) => s.len(),
            WeightRef::BF16(s) => s.len(),
            WeightRef::Q8(s) => s.len(),
            WeightRef::Q4(s) => s.len(),
            WeightRef::Q4M(s) => s.len(),
            WeightRef::Q2M(s) => s.len(),
            WeightRef::Q8x8(s) => s.len(),
            WeightRef::Q4x8(s) => s.len(),
        };
        units * self.weight_type().block_values()
    }

    /// Bytes of weight data (what a matvec reads).
    pub fn bytes(&self) -> usize {
        self.elems() / self.weight_type().block_values() * self.weight_type().block_bytes()
    }

    /// Rows `rows` of a matrix with `cols` columns (e.g. one expert of a stacked `[experts * rows, cols]` tensor).
    ///
    /// # Panics
    /// If the range is out of bounds, `cols` is not a multiple of the block size, or (interleaved types) the range
    /// does not start and end on a multiple of 8 rows.
    pub fn slice_rows(&self, cols: usize, rows: std::ops::Range<usize>) -> WeightRef<'a> {
        let (be, br) = (
            self.weight_type().block_elems(),
            self.weight_type().block_rows(),
        );
        assert!(
            cols.is_multiple_of(be),
            "cols {cols} is not a multiple of {be}"
        );
        assert!(
            rows.start.is_multiple_of(br) && rows.end.is_multiple_of(br),
            "rows {rows:?} do not fall on {br}-row blocks"
        );
        let (a, b) = (rows.start * cols / be / br, rows.end * cols / be / br);
        match *self {
            WeightRef::F32(s) => WeightRef::F32(&s[a..b]),
            WeightRef::F16(s) => WeightRef::F16(&s[a..b]),
            WeightRef::BF16(s) => WeightRef::BF16(&s[a..b]),
            WeightRef::Q8(s) => WeightRef::Q8(&s[a..b]),
            WeightRef::Q4(s) => WeightRef::Q4(&s[a..b]),
            WeightRef::Q4M(s) => WeightRef::Q4M(&s[a..b]),
            WeightRef::Q2M(s) => WeightRef::Q2M(&s[a..b]),
            WeightRef::Q8x8(s) => WeightRef::Q8x8(&s[a..b]),
            WeightRef::Q4x8(s) => WeightRef::Q4x8(&s[a..b]),
        }
    }

    /// Dequantizes row `r` of a matrix with `cols` columns into `out` (`cols` values).
    ///
    /// # Panics
    /// If `r` is out of range or `out.len() != cols`.
    pub fn row_to_f32(&self, cols: usize, r: usize, out: &mut [f32]) {
        assert!(out.len() == cols, "row of {cols} values into {}", out.len());
        let br = self.weight_type().block_rows();
        let g = r / br;
        match self.slice_rows(cols, g * br..(g + 1) * br) {
            WeightRef::F32(s) => out.copy_from_slice(s),
            WeightRef::F16(s) => f16_to_f32(s, out),
            WeightRef::BF16(s) => out.iter_mut().zip(s).for_each(|(o, v)| *o = v.to_f32()),
            WeightRef::Q8(s) => dequantize_row_q8(s, out),
            WeightRef::Q4(s) => dequantize_row_q4(s, out),
            WeightRef::Q4M(s) => dequantize_row_q4m(s, out),
            WeightRef::Q2M(s) => dequantize_row_q2m(s, out),
            WeightRef::Q8x8(s) => dequantize_row_q8x8(s, r % br, out),
            WeightRef::Q4x8(s) => dequantize_row_q4x8(s, r % br, out),
        }
    }
}
