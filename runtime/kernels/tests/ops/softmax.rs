//! Softmax: scalar vs the f64 definition, SIMD vs scalar, masked and extreme rows.

use crate::common::Rng;
use crate::{assert_close, scalar, simd_ops, LENS};

fn softmax_rows(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut v = Vec::new();
    for n in LENS {
        for scale in [1.0, 10.0, 60.0] {
            v.push(rng.vec(n, scale));
        }
        let mut masked = rng.vec(n, 5.0);
        for (i, m) in masked.iter_mut().enumerate() {
            if i % 3 == 1 {
                *m = f32::NEG_INFINITY;
            }
        }
        v.push(masked);
        v.push(vec![0.0; n]);
    }
    v.push(vec![f32::MAX, -f32::MAX, 1e30, -1e30, 0.0, 3.0, f32::MAX]);
    v.push(vec![-1e30, -1e30 + 1e24, -1e30]);
    v
}

#[test]
fn softmax_scalar_matches_f64() {
    let mut rng = Rng(0x50f);
    for x in softmax_rows(&mut rng) {
        let mut got = x.clone();
        scalar().softmax(&mut got, x.len());
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m as f64).exp()).collect();
        let z: f64 = e.iter().sum();
        let want: Vec<f32> = e.iter().map(|v| (v / z) as f32).collect();
        // f32's rounding of x - max shifts e^(x - max) by up to 6e-8 * |x - max| relative; the f32 sum of n
        // terms is off by up to n * 6e-8 relative.
        let n = x.len() as f32;
        assert_close("softmax", &got, &want, |i, w| {
            w * (1e-6 + 6e-8 * n + 1.2e-7 * (x[i] - m).abs().min(1e3)) + 1e-37
        });
    }
}

#[test]
fn softmax_simd_matches_scalar() {
    let mut rng = Rng(0x50e);
    for ops in simd_ops() {
        for x in softmax_rows(&mut rng) {
            // Several rows at once, to check the row split too.
            let x: Vec<f32> = x.iter().chain(&x).copied().collect();
            let (mut want, mut got) = (x.clone(), x.clone());
            scalar().softmax(&mut want, x.len() / 2);
            ops.softmax(&mut got, x.len() / 2);
            // Vector exp (<= 2 ulp) plus the two sums' orders (each off by up to n * 6e-8 relative).
            let n = x.len() as f32 / 2.0;
            assert_close(&format!("{} softmax", ops.isa()), &got, &want, |_, w| {
                w * (1e-6 + 1.2e-7 * n) + 1e-37
            });
        }
    }
}
