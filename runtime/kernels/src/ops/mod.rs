//! Encoder ops for vision and audio towers: norms, activations, softmax, RoPE, convolutions, pooling and patch
//! embedding. Tensors are row-major f32 slices; a `[n, d]` tensor is `n` rows of `d` values. Contracts:
//! docs/KERNELS.md ("Encoder ops").
//!
//! Element- and row-wise ops (norms, activations, softmax, the RoPE rotation) have a scalar reference and one SIMD
//! body (`simd.rs`) expanded per ISA: AVX2+FMA on x86_64, NEON on aarch64 (the dotprod/i8mm families use the NEON
//! body; they add nothing for f32). Free functions run the active family ([`crate::active_isa`]); [`Ops`] picks
//! one explicitly (tests, A/B runs). Convolutions and patch embedding are im2col + [`crate::matmul`], so they use
//! the matmul kernels' SIMD paths.
//!
//! Lengths are an internal contract: a mismatch panics with a message, as in the matmul kernels.

mod act;
mod conv;
mod im2col;
mod norm;
mod pool;
mod rope;
mod simd;
mod softmax;

#[cfg(target_arch = "aarch64")]
mod arm_neon;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "aarch64")]
use arm_neon as vec;
#[cfg(target_arch = "x86_64")]
use x86_avx2 as vec;

pub use act::{erf, gelu_erf, gelu_tanh, quick_gelu, sigmoid, silu};
pub use conv::{conv1d, conv1d_reference, conv2d, conv2d_reference, Conv1d, Conv2d};
pub use im2col::{patch_embed, patchify, Patchify};
pub use norm::{layer_norm, layer_norm_inplace, rms_norm, rms_norm_inplace};
pub use pool::avg_pool1d;
pub use rope::{rope_rotate, Rope, RopeKind};
pub use softmax::softmax;

use crate::dispatch::{active_isa, Isa, SelectError};

/// Which implementation of the element- and row-wise ops to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ops {
    isa: Isa,
}

impl Ops {
    /// The active family ([`active_isa`]); what the free functions use.
    pub fn global() -> Ops {
        Ops { isa: active_isa() }
    }

    /// The given family; an error if this CPU lacks it.
    pub fn single(isa: Isa) -> Result<Ops, SelectError> {
        if isa.available() {
            Ok(Ops { isa })
        } else {
            Err(SelectError::Unavailable(isa))
        }
    }

    /// The family this runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether this runs the SIMD body (`vec`) rather than the scalar reference.
    fn simd(&self) -> bool {
        match self.isa {
            Isa::Scalar => false,
            Isa::Avx2 | Isa::Avx512Vnni => cfg!(target_arch = "x86_64"),
            Isa::Neon | Isa::Dotprod | Isa::I8mm => cfg!(target_arch = "aarch64"),
        }
    }
}

/// `vec::$f(args)` when `$ops` selects SIMD, else `$scalar`.
macro_rules! dispatch {
    ($ops:expr, $scalar:expr, $f:ident($($arg:expr),*)) => {
        if $ops.simd() {
            $crate::ops::simd_call!($f($($arg),*))
        } else {
            $scalar
        }
    };
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! simd_call {
    ($f:ident($($arg:expr),*)) => {
        // SAFETY: `Ops::simd()` is true only for a family that `Ops::single` / `active_isa` found available:
        // AVX2 implies AVX2 + FMA (`Isa::available`), the aarch64 families imply NEON, and `vec` is compiled for
        // exactly those features.
        unsafe { $crate::ops::vec::$f($($arg),*) }
    };
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
macro_rules! simd_call {
    ($f:ident($($arg:expr),*)) => {
        unreachable!("no SIMD ops on this target")
    };
}
use {dispatch, simd_call};

/// The scale of [`rms_norm`]: `y = x / rms(x) * s`, per row.
#[derive(Clone, Copy, Debug)]
pub enum RmsWeight<'a> {
    /// `s = w` (Llama / Qwen style).
    Plain(&'a [f32]),
    /// `s = 1`: no weight.
    None,
    /// `s = 1 + w` (Gemma-style weights stored as offsets from 1).
    Centered(&'a [f32]),
    /// Scale the input first, then normalise without weight: `y = rms_norm(x * (1 + w))`.
    InputScaled(&'a [f32]),
}
