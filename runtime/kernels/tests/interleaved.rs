//! The row-interleaved q8x8 / q4x8 types: lossless interleaving, the scalar reference against the plain types'
//! reference, and every SIMD path against the scalar reference (bit for bit with power-of-two scales, see
//! kernels.rs for why that is exact; within rounding otherwise).

mod common;

use common::*;
use flint_kernels::*;

fn run(isa: Isa, w: WeightRef<'_>, a: &[BlockQ8A], n: usize, rows: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; n * rows];
    Exec::single(isa)
        .unwrap()
        .matmul_quantized(w, a, n, &mut out);
    out
}

fn interleaved(q8: &[BlockQ8], q4: &[BlockQ4], nb: usize) -> (Vec<BlockQ8x8>, Vec<BlockQ4x8>) {
    let mut x8 = vec![bytemuck::Zeroable::zeroed(); q8.len() / 8];
    let mut x4 = vec![bytemuck::Zeroable::zeroed(); q4.len() / 8];
    interleave_q8(q8, nb, &mut x8);
    interleave_q4(q4, nb, &mut x4);
    (x8, x4)
}

fn cases(exact: bool, fill: Fill) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let isas = simd_isas();
    for nb in [1, 2, 3, 5, 8] {
        for rows in [8, 16, 24, 40] {
            for n in [1, 2, 3, 4, 5, 9] {
                let mut dw = |r: &mut Rng| weight_scale(r, exact);
                let mut da = |r: &mut Rng| act_scale(r, exact);
                let a = act_blocks(&mut rng, n * nb, fill, &mut da);
                let q8 = q8_blocks(&mut rng, rows * nb, fill, &mut dw);
                let q4 = q4_blocks(&mut rng, rows * nb, fill, &mut dw);
                let (x8, x4) = interleaved(&q8, &q4, nb);
                for (plain, x) in [
                    (WeightRef::Q8(&q8), WeightRef::Q8x8(&x8)),
                    (WeightRef::Q4(&q4), WeightRef::Q4x8(&x4)),
                ] {
                    let want = run(Isa::Scalar, plain, &a, n, rows);
                    let got = run(Isa::Scalar, x, &a, n, rows);
                    assert_eq!(
                        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "scalar {:?} vs plain, nb={nb} rows={rows} n={n}",
                        x.weight_type()
                    );
                    for &isa in &isas {
                        let got = run(isa, x, &a, n, rows);
                        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                            // Inexact case: 8 rounding steps per block at most, relative to the block terms' size.
                            let ok = if exact {
                                g.to_bits() == e.to_bits()
                            } else {
                                (g - e).abs() <= 1e-5 * (nb as f32) * (1.0 + e.abs()) * 8.0
                            };
                            assert!(
                                ok,
                                "{isa} {:?} {fill:?} nb={nb} rows={rows} n={n} out[{i}]: got {g}, scalar {e}",
                                x.weight_type()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn integer_sums_exact_on_every_path() {
    for fill in [Fill::Random, Fill::Extreme, Fill::Zero] {
        cases(true, fill);
    }
}

#[test]
fn general_scales_within_rounding() {
    cases(false, Fill::Random);
}

#[test]
fn largest_sums_do_not_saturate() {
    // Every q4 nibble 15 (value 7) or every q8 value -128, against activations all +127 or all -127: the largest
    // intermediate sums any path forms. The exact answer is known in closed form.
    let nb = 4;
    for act in [127i8, -127] {
        let a: Vec<BlockQ8A> = (0..nb)
            .map(|_| BlockQ8A {
                d: 1.0,
                s: act as i32 * 32,
                qs: [act; QK],
            })
            .collect();
        let q8 = vec![
            BlockQ8 {
                d: half::f16::from_f32(1.0),
                qs: [-128; QK]
            };
            8 * nb
        ];
        let q4 = vec![
            BlockQ4 {
                d: half::f16::from_f32(1.0),
                qs: [0xff; QK / 2]
            };
            8 * nb
        ];
        let (x8, x4) = interleaved(&q8, &q4, nb);
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let o8 = run(isa, WeightRef::Q8x8(&x8), &a, 1, 8);
            let o4 = run(isa, WeightRef::Q4x8(&x4), &a, 1, 8);
            let per = (nb * QK) as f32 * act as f32;
            assert!(o8.iter().all(|&v| v == -128.0 * per), "{isa} q8x8 {o8:?}");
            assert!(o4.iter().all(|&v| v == 7.0 * per), "{isa} q4x8 {o4:?}");
        }
    }
}

#[test]
fn rows_read_back_as_the_plain_rows() {
    let mut rng = Rng(99);
    let (rows, cols) = (24, 96);
    let wf = rng.vec(rows * cols, 0.5);
    let mut q8 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
    let mut q4 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
    quantize_row_q8(&wf, &mut q8);
    quantize_row_q4(&wf, &mut q4);
    let (x8, x4) = interleaved(&q8, &q4, cols / QK);
    for (plain, x) in [
        (WeightRef::Q8(&q8), WeightRef::Q8x8(&x8)),
        (WeightRef::Q4(&q4), WeightRef::Q4x8(&x4)),
    ] {
        assert_eq!(x.elems(), rows * cols);
        assert_eq!(x.bytes(), plain.bytes());
        for r in 0..rows {
            let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
            plain.row_to_f32(cols, r, &mut a);
            x.row_to_f32(cols, r, &mut b);
            assert_eq!(a, b, "{:?} row {r}", x.weight_type());
        }
        // An 8-row slice is the matching group.
        let s = x.slice_rows(cols, 8..16);
        let mut c = vec![0f32; cols];
        s.row_to_f32(cols, 3, &mut c);
        let mut d = vec![0f32; cols];
        plain.row_to_f32(cols, 11, &mut d);
        assert_eq!(c, d);
    }
}

#[test]
fn big_shapes_through_the_f32_entry_point() {
    let mut rng = Rng(7);
    for (rows, cols, n) in [(48, 576, 1), (16, 1536, 3), (64, 1024, 5)] {
        let x = rng.vec(n * cols, 3.0);
        let wf = rng.vec(rows * cols, 0.2);
        let mut q8 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        let mut q4 = vec![bytemuck::Zeroable::zeroed(); rows * cols / QK];
        quantize_row_q8(&wf, &mut q8);
        quantize_row_q4(&wf, &mut q4);
        let (x8, x4) = interleaved(&q8, &q4, cols / QK);
        for w in [WeightRef::Q8x8(&x8), WeightRef::Q4x8(&x4)] {
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
