//! Test data: a tiny deterministic PRNG and helpers that build weight blocks directly.

#![allow(dead_code)]

use flint_kernels::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ8, BlockQ8A, Isa, QK};
use half::f16;

/// xorshift64*: enough randomness for test data, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi] inclusive.
    pub fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f() * scale).collect()
    }
    /// A power of two in {base, 2 * base}, random sign if `signed`.
    pub fn pow2(&mut self, base: f32, signed: bool) -> f32 {
        let v = if self.int(0, 1) == 0 {
            base
        } else {
            2.0 * base
        };
        if signed && self.int(0, 1) == 0 {
            -v
        } else {
            v
        }
    }
}

/// A weight block scale: a signed power of two in {1/16, 1/8} when `exact` (every block term and partial sum is then
/// exactly representable, so all paths must agree bit for bit), else uniform in [-0.1, 0.1).
pub fn weight_scale(r: &mut Rng, exact: bool) -> f32 {
    if exact {
        r.pow2(1.0 / 16.0, true)
    } else {
        r.f() * 0.1
    }
}

/// An activation block scale: a power of two in {1/32, 1/16} when `exact`, else uniform in [0, 0.05].
pub fn act_scale(r: &mut Rng, exact: bool) -> f32 {
    if exact {
        r.pow2(1.0 / 32.0, false)
    } else {
        r.f().abs() * 0.05
    }
}

/// How extreme the integer parts of generated blocks are.
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    Random,
    Zero,
    /// Weights at their most negative, activations at +/-127: the saturation corner.
    Extreme,
}

pub fn q8_blocks(
    rng: &mut Rng,
    nb: usize,
    fill: Fill,
    d: &mut dyn FnMut(&mut Rng) -> f32,
) -> Vec<BlockQ8> {
    (0..nb)
        .map(|_| {
            let mut b = BlockQ8 {
                d: f16::from_f32(d(rng)),
                qs: [0; QK],
            };
            for q in &mut b.qs {
                *q = match fill {
                    Fill::Random => rng.int(-128, 127) as i8,
                    Fill::Zero => 0,
                    Fill::Extreme => {
                        if rng.int(0, 3) == 0 {
                            127
                        } else {
                            -128
                        }
                    }
                };
            }
            b
        })
        .collect()
}

pub fn nib(rng: &mut Rng, fill: Fill) -> u8 {
    match fill {
        Fill::Random => rng.int(0, 15) as u8,
        Fill::Zero => 0,
        Fill::Extreme => {
            if rng.int(0, 3) == 0 {
                15
            } else {
                0
            }
        }
    }
}

pub fn q4_blocks(
    rng: &mut Rng,
    nb: usize,
    fill: Fill,
    d: &mut dyn FnMut(&mut Rng) -> f32,
) -> Vec<BlockQ4> {
    (0..nb)
        .map(|_| {
            let mut b = BlockQ4 {
                d: f16::from_f32(d(rng)),
                qs: [0; QK / 2],
            };
            for q in &mut b.qs {
                *q = nib(rng, fill) | (nib(rng, fill) << 4);
            }
            b
        })
        .collect()
}

pub fn q4m_blocks(
    rng: &mut Rng,
    nb: usize,
    fill: Fill,
    d: &mut dyn FnMut(&mut Rng) -> f32,
) -> Vec<BlockQ4M> {
    (0..nb)
        .map(|_| {
            let mut b = BlockQ4M {
                d: f16::from_f32(d(rng)),
                m: f16::from_f32(d(rng)),
                qs: [0; QK / 2],
            };
            for q in &mut b.qs {
                *q = nib(rng, fill) | (nib(rng, fill) << 4);
            }
            b
        })
        .collect()
}

pub fn q2m_blocks(
    rng: &mut Rng,
    nb: usize,
    fill: Fill,
    d: &mut dyn FnMut(&mut Rng) -> f32,
) -> Vec<BlockQ2M> {
    (0..nb)
        .map(|_| {
            let mut b = BlockQ2M {
                d: f16::from_f32(d(rng)),
                m: f16::from_f32(d(rng)),
                qs: [0; QK / 4],
            };
            for q in &mut b.qs {
                *q = (0..4).fold(0, |acc, k| acc | ((nib(rng, fill) & 3) << (2 * k)));
            }
            b
        })
        .collect()
}

/// Activation blocks with `qs` in -127..=127 (the kernels' contract) and a consistent `s`.
pub fn act_blocks(
    rng: &mut Rng,
    nb: usize,
    fill: Fill,
    d: &mut dyn FnMut(&mut Rng) -> f32,
) -> Vec<BlockQ8A> {
    (0..nb)
        .map(|_| {
            let mut b = BlockQ8A {
                d: d(rng),
                s: 0,
                qs: [0; QK],
            };
            for q in &mut b.qs {
                *q = match fill {
                    Fill::Random => rng.int(-127, 127) as i8,
                    Fill::Zero => 0,
                    Fill::Extreme => {
                        if rng.int(0, 1) == 0 {
                            127
                        } else {
                            -127
                        }
                    }
                };
            }
            b.s = b.qs.iter().map(|&q| q as i32).sum();
            b
        })
        .collect()
}

/// SIMD families this CPU runs (the scalar reference excluded). Prints the ones skipped.
pub fn simd_isas() -> Vec<Isa> {
    let mut v = Vec::new();
    for isa in Isa::ALL.into_iter().filter(|&i| i != Isa::Scalar) {
        if isa.available() {
            v.push(isa);
        } else {
            eprintln!("skipping {isa}: not available on this CPU/target");
        }
    }
    v
}
