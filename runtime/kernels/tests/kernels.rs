//! Every SIMD path against the scalar reference.
//!
//! Exactness of integer dots: with power-of-two scales (weights in {2^-4, 2^-3}, activations in {2^-5, 2^-4},
//! signed) every block term `isum * dw * da` and every partial sum is an exact multiple of 2^-9 below 2^15
//! (for at most 8 blocks a row), so any summation order gives the same float. There the SIMD result must equal
//! the scalar one bit for bit, which fails on any wrong integer sum (saturation, sign, nibble order).
//! With general scales the paths may differ only by rounding, bounded relative to `sum |terms|`.

mod common;

use common::*;
use flint_kernels::{BlockQ8A, Exec, Isa, WeightRef, QK};
use half::{bf16, f16};

const ROWS: [usize; 7] = [1, 2, 3, 4, 5, 7, 9];
const NS: [usize; 4] = [1, 2, 3, 5];

fn run_q(isa: Isa, w: WeightRef<'_>, a: &[BlockQ8A], n: usize, rows: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; n * rows];
    Exec::single(isa)
        .unwrap()
        .matmul_quantized(w, a, n, &mut out);
    out
}

/// Builds weights of every quant type with `make`, runs all paths, compares with `check(ref, got, bound)`.
fn for_quant_cases(exact: bool, fills: &[Fill], max_nb: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let isas = simd_isas();
    for &fill in fills {
        for nb in 1..=max_nb {
            for rows in ROWS {
                for n in NS {
                    let mut dw = |r: &mut Rng| weight_scale(r, exact);
                    let mut da = |r: &mut Rng| act_scale(r, exact);
                    let a = act_blocks(&mut rng, n * nb, fill, &mut da);
                    let q8 = q8_blocks(&mut rng, rows * nb, fill, &mut dw);
                    let q4 = q4_blocks(&mut rng, rows * nb, fill, &mut dw);
                    let q4m = q4m_blocks(&mut rng, rows * nb, fill, &mut dw);
                    let q2m = q2m_blocks(&mut rng, rows * nb, fill, &mut dw);
                    for w in [
                        WeightRef::Q8(&q8),
                        WeightRef::Q4(&q4),
                        WeightRef::Q4M(&q4m),
                        WeightRef::Q2M(&q2m),
                    ] {
                        let want = run_q(Isa::Scalar, w, &a, n, rows);
                        // Bound for the inexact case: sum of |element products| times the block scales, so lane
                        // partial sums that cancel are covered too.
                        let mag = |j: usize, r: usize| -> f32 {
                            let mut s = 0f32;
                            for b in 0..nb {
                                let ab = &a[j * nb + b];
                                let (ints, d, m): ([i32; QK], f32, f32) = match w {
                                    WeightRef::Q8(x) => (
                                        x[r * nb + b].qs.map(|q| q as i32),
                                        x[r * nb + b].d.to_f32(),
                                        0.0,
                                    ),
                                    WeightRef::Q4(x) => (
                                        unpack(&x[r * nb + b].qs, 8),
                                        x[r * nb + b].d.to_f32(),
                                        0.0,
                                    ),
                                    WeightRef::Q4M(x) => (
                                        unpack(&x[r * nb + b].qs, 0),
                                        x[r * nb + b].d.to_f32(),
                                        x[r * nb + b].m.to_f32(),
                                    ),
                                    WeightRef::Q2M(x) => (
                                        unpack2(&x[r * nb + b].qs),
                                        x[r * nb + b].d.to_f32(),
                                        x[r * nb + b].m.to_f32(),
                                    ),
                                    _ => unreachable!(),
                                };
                                let isum: i32 = ints
                                    .iter()
                                    .zip(&ab.qs)
                                    .map(|(w, a)| (w * *a as i32).abs())
                                    .sum();
                                s +=
                                    (d * ab.d).abs() * isum as f32 + (m * ab.d * ab.s as f32).abs();
                            }
                            s
                        };
                        for &isa in &isas {
                            let got = run_q(isa, w, &a, n, rows);
                            for j in 0..n {
                                for r in 0..rows {
                                    let (g, e) = (got[j * rows + r], want[j * rows + r]);
                                    let ok = if exact {
                                        g.to_bits() == e.to_bits()
                                    } else {
                                        (g - e).abs() <= 1e-5 * mag(j, r) + 1e-30
                                    };
                                    assert!(ok, "{isa} {:?} {fill:?} nb={nb} rows={rows} n={n} j={j} r={r}: got {g}, scalar {e}", w.weight_type());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn unpack(qs: &[u8; 16], off: i32) -> [i32; QK] {
    core::array::from_fn(|i| {
        if i < 16 {
            (qs[i] & 15) as i32 - off
        } else {
            (qs[i - 16] >> 4) as i32 - off
        }
    })
}

/// q2m levels in element order: byte `j` holds elements `j`, `j + 8`, `j + 16`, `j + 24`.
fn unpack2(qs: &[u8; 8]) -> [i32; QK] {
    core::array::from_fn(|i| ((qs[i % 8] >> (2 * (i / 8))) & 3) as i32)
}

#[test]
fn quant_integer_sums_exact() {
    for_quant_cases(true, &[Fill::Random, Fill::Extreme, Fill::Zero], 8);
}

#[test]
fn quant_general_scales_within_rounding() {
    for_quant_cases(false, &[Fill::Random, Fill::Extreme], 6);
}

#[test]
fn quant_big_shapes_match() {
    // Lengths of real models (576 = 18 blocks, 1536 = 48 blocks), through the f32 entry point.
    let mut rng = Rng(7);
    for (rows, cols, n) in [(37, 576, 1), (16, 1536, 3), (9, 1024, 4)] {
        let x = rng.vec(n * cols, 3.0);
        let wf = rng.vec(rows * cols, 0.2);
        let mut q8 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        let mut q4 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        let mut q4m = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        let mut q2m = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        flint_kernels::quantize_row_q8(&wf, &mut q8);
        flint_kernels::quantize_row_q4(&wf, &mut q4);
        flint_kernels::quantize_row_q4m(&wf, &mut q4m);
        flint_kernels::quantize_row_q2m(&wf, None, &mut q2m);
        for w in [
            WeightRef::Q8(&q8),
            WeightRef::Q4(&q4),
            WeightRef::Q4M(&q4m),
            WeightRef::Q2M(&q2m),
        ] {
            let mut want = vec![0.0; n * rows];
            Exec::single(Isa::Scalar)
                .unwrap()
                .matmul(w, &x, n, &mut want);
            for isa in simd_isas() {
                let mut got = vec![0.0; n * rows];
                Exec::single(isa).unwrap().matmul(w, &x, n, &mut got);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{isa} {:?} {rows}x{cols} n={n}: {g} vs {e}",
                        w.weight_type()
                    );
                }
            }
        }
    }
}

#[test]
fn float_paths_match_scalar() {
    let mut rng = Rng(42);
    let isas = simd_isas();
    for cols in [1, 7, 8, 9, 31, 64, 100, 576] {
        for rows in ROWS {
            for n in NS {
                let x = rng.vec(n * cols, 2.0);
                let wf = rng.vec(rows * cols, 1.0);
                let wh: Vec<f16> = wf.iter().map(|&v| f16::from_f32(v)).collect();
                let wb: Vec<bf16> = wf.iter().map(|&v| bf16::from_f32(v)).collect();
                for w in [
                    WeightRef::F32(&wf),
                    WeightRef::F16(&wh),
                    WeightRef::BF16(&wb),
                ] {
                    let mut want = vec![0.0; n * rows];
                    Exec::single(Isa::Scalar)
                        .unwrap()
                        .matmul(w, &x, n, &mut want);
                    for &isa in &isas {
                        let mut got = vec![f32::NAN; n * rows];
                        Exec::single(isa).unwrap().matmul(w, &x, n, &mut got);
                        for j in 0..n {
                            for r in 0..rows {
                                // |terms| summed: each w in [-1,1], x in [-2,2].
                                let mag: f32 = (0..cols)
                                    .map(|c| (wf[r * cols + c] * x[j * cols + c]).abs())
                                    .sum();
                                let (g, e) = (got[j * rows + r], want[j * rows + r]);
                                assert!(
                                    (g - e).abs() <= 2e-6 * cols as f32 * mag + 1e-6,
                                    "{isa} {:?} cols={cols} rows={rows} n={n}: {g} vs {e}",
                                    w.weight_type()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn float_values_are_exact_on_small_integers() {
    // Small integers make every product and sum exact: all paths must agree with a hand-computed value.
    let w: Vec<f32> = (0..3 * 40).map(|i| (i % 7) as f32 - 3.0).collect();
    let x: Vec<f32> = (0..40).map(|i| (i % 5) as f32 - 2.0).collect();
    let want: Vec<f32> = (0..3)
        .map(|r| (0..40).map(|c| w[r * 40 + c] * x[c]).sum())
        .collect();
    let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        for wr in [WeightRef::F32(&w), WeightRef::F16(&wh)] {
            let mut out = [0f32; 3];
            Exec::single(isa).unwrap().matvec(wr, &x, &mut out);
            assert_eq!(out.as_slice(), want.as_slice(), "{isa}");
        }
    }
}
