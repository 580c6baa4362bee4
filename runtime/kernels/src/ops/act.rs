//! Activations, in place over a slice: GELU (erf and tanh forms), quick GELU, SiLU, sigmoid.
//!
//! Scalar reference: the textbook formulas with the standard library's `exp` / `tanh` and [`erf`] below.
//! SIMD paths (`simd.rs`): a Cephes-style vector `exp` (<= 2 ulp), the fdlibm erf approximations blended by range,
//! `tanh` through `0.5 (1 + tanh(u)) = sigmoid(2u)`. Bound, asserted in tests/ops over random, odd-length and
//! extreme inputs: `|simd - scalar| <= 5e-7 * max(1, |scalar|)` (measured: under 1.5e-7). NaN inputs give
//! unspecified results.

use super::{dispatch, Ops};

/// `sqrt(2 / pi)`, the GELU tanh-approximation constant.
pub(crate) const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of the GELU tanh approximation.
pub(crate) const GELU_C: f32 = 0.044_715;

/// fdlibm / musl `erff` coefficients (s_erff.c), shared by [`erf`] and the SIMD body. Each array is a polynomial
/// `c[0] + z c[1] + z^2 c[2] + ...`; the `Q`/`S` denominators include their leading 1.
#[allow(clippy::excessive_precision)] // the digits as published in fdlibm
pub(crate) mod erf_coef {
    pub const ERX: f32 = 8.450_629_115_1e-01;
    /// erf on |x| < 0.84375: `x + x * PP(z) / QQ(z)`, z = x^2.
    pub const PP: [f32; 5] = [
        1.283_791_661_3e-01,
        -3.250_420_987_6e-01,
        -2.848_174_981_8e-02,
        -5.770_270_247_0e-03,
        -2.376_301_745_2e-05,
    ];
    pub const QQ: [f32; 6] = [
        1.0,
        3.979_172_110_6e-01,
        6.502_225_250_0e-02,
        5.081_306_211_7e-03,
        1.324_947_370_4e-04,
        -3.960_228_241_3e-06,
    ];
    /// erf on 0.84375 <= |x| < 1.25: `erx + PA(s) / QA(s)`, s = |x| - 1.
    pub const PA: [f32; 7] = [
        -2.362_118_568_3e-03,
        4.148_561_060_4e-01,
        -3.722_078_800_2e-01,
        3.183_466_196_1e-01,
        -1.108_946_949_2e-01,
        3.547_830_507_2e-02,
        -2.166_375_517_8e-03,
    ];
    pub const QA: [f32; 7] = [
        1.0,
        1.064_208_820_5e-01,
        5.403_979_420_7e-01,
        7.182_865_589_9e-02,
        1.261_712_163_7e-01,
        1.363_708_358_3e-02,
        1.198_450_010_3e-02,
    ];
    /// erfc on 1.25 <= |x| < 1/0.35: `exp(-x^2 - 0.5625 + RA(s) / SA(s)) / |x|`, s = 1 / x^2.
    pub const RA: [f32; 8] = [
        -9.864_944_033_3e-03,
        -6.938_585_639_0e-01,
        -1.055_862_617_5e01,
        -6.237_533_187_9e01,
        -1.623_966_674_8e02,
        -1.846_050_872_8e02,
        -8.128_743_743_9e01,
        -9.814_329_147_3e00,
    ];
    pub const SA: [f32; 9] = [
        1.0,
        1.965_127_182_0e01,
        1.376_577_606_2e02,
        4.345_658_874_5e02,
        6.453_872_680_7e02,
        4.290_081_481_9e02,
        1.086_350_021_4e02,
        6.570_249_557_5e00,
        -6.042_441_353_2e-02,
    ];
    /// erfc on 1/0.35 <= |x| < 6, as RA/SA.
    pub const RB: [f32; 7] = [
        -9.864_943_102_0e-03,
        -7.992_832_660_7e-01,
        -1.775_795_555_1e01,
        -1.606_363_830_6e02,
        -6.375_664_672_9e02,
        -1.025_095_092_8e03,
        -4.835_191_955_6e02,
    ];
    pub const SB: [f32; 8] = [
        1.0,
        3.033_806_037_9e01,
        3.257_925_109_9e02,
        1.536_729_614_3e03,
        3.199_858_154_3e03,
        2.553_050_293_0e03,
        4.745_285_339_4e02,
        -2.244_095_230_1e01,
    ];
}

fn horner(z: f32, c: &[f32]) -> f32 {
    c.iter().rev().fold(0.0, |acc, &k| acc * z + k)
}

/// The error function, a port of fdlibm's `erff` (within about 1 ulp; asserted <= 1.5e-7 relative to an f64 series
/// in tests/ops/act.rs). Odd; `erf(+-inf) = +-1`.
pub fn erf(x: f32) -> f32 {
    use erf_coef as c;
    let a = x.abs();
    let y = if a < 0.84375 {
        let z = a * a;
        a + a * (horner(z, &c::PP) / horner(z, &c::QQ))
    } else if a < 1.25 {
        let s = a - 1.0;
        c::ERX + horner(s, &c::PA) / horner(s, &c::QA)
    } else if a < 6.0 {
        let s = 1.0 / (a * a);
        let rs = if a < 1.0 / 0.35 {
            horner(s, &c::RA) / horner(s, &c::SA)
        } else {
            horner(s, &c::RB) / horner(s, &c::SB)
        };
        // z: |x| with the low 13 mantissa bits cleared, so z * z is exact (fdlibm's split of e^(-x^2)).
        let z = f32::from_bits(a.to_bits() & 0xffff_e000);
        1.0 - (-z * z - 0.5625).exp() * ((z - a) * (z + a) + rs).exp() / a
    } else if a.is_nan() {
        a
    } else {
        1.0
    };
    y.copysign(x)
}

fn each(x: &mut [f32], f: impl Fn(f32) -> f32) {
    x.iter_mut().for_each(|v| *v = f(*v));
}

impl Ops {
    /// Exact GELU: `x = 0.5 x (1 + erf(x / sqrt 2))` (BERT/ViT/SigLIP/Whisper `gelu`).
    pub fn gelu_erf(&self, x: &mut [f32]) {
        dispatch!(
            self,
            each(x, |v| 0.5
                * v
                * (1.0 + erf(v * core::f32::consts::FRAC_1_SQRT_2))),
            gelu_erf(x)
        )
    }

    /// Tanh GELU: `x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (`gelu_pytorch_tanh`).
    pub fn gelu_tanh(&self, x: &mut [f32]) {
        dispatch!(
            self,
            each(x, |v| 0.5
                * v
                * (1.0 + (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh())),
            gelu_tanh(x)
        )
    }

    /// `x = x * sigmoid(1.702 x)` (CLIP's `quick_gelu`).
    pub fn quick_gelu(&self, x: &mut [f32]) {
        dispatch!(
            self,
            each(x, |v| v / (1.0 + (-1.702 * v).exp())),
            quick_gelu(x)
        )
    }

    /// `x = x * sigmoid(x)`.
    pub fn silu(&self, x: &mut [f32]) {
        dispatch!(self, each(x, |v| v / (1.0 + (-v).exp())), silu(x))
    }

    /// `x = 1 / (1 + e^-x)`.
    pub fn sigmoid(&self, x: &mut [f32]) {
        dispatch!(self, each(x, |v| 1.0 / (1.0 + (-v).exp())), sigmoid(x))
    }
}

/// [`Ops::gelu_erf`] on the active family.
pub fn gelu_erf(x: &mut [f32]) {
    Ops::global().gelu_erf(x)
}

/// [`Ops::gelu_tanh`] on the active family.
pub fn gelu_tanh(x: &mut [f32]) {
    Ops::global().gelu_tanh(x)
}

/// [`Ops::quick_gelu`] on the active family.
pub fn quick_gelu(x: &mut [f32]) {
    Ops::global().quick_gelu(x)
}

/// [`Ops::silu`] on the active family.
pub fn silu(x: &mut [f32]) {
    Ops::global().silu(x)
}

/// [`Ops::sigmoid`] on the active family.
pub fn sigmoid(x: &mut [f32]) {
    Ops::global().sigmoid(x)
}
