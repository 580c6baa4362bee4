//! LayerNorm and the RMSNorm variants: scalar vs f64 definitions, SIMD vs scalar, in-place forms.

use crate::common::Rng;
use crate::{assert_close, scalar, simd_ops, LENS};
use flint_kernels::ops::*;

/// Norm `kind` (as in [`norm_ops`]) of one row by its f64 definition, with weight `w` and bias `b`.
fn norm_f64(kind: usize, x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let d = x.len() as f64;
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let w = |i: usize| w[i] as f64;
    let rms = |x: &[f64]| 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / d + eps as f64).sqrt();
    let y: Vec<f64> = match kind {
        0 | 1 => {
            let mean = x.iter().sum::<f64>() / d;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d;
            let r = 1.0 / (var + eps as f64).sqrt();
            (0..x.len())
                .map(|i| (x[i] - mean) * r * w(i) + if kind == 0 { b[i] as f64 } else { 0.0 })
                .collect()
        }
        2 => (0..x.len()).map(|i| x[i] * rms(&x) * w(i)).collect(),
        3 => (0..x.len()).map(|i| x[i] * rms(&x)).collect(),
        4 => (0..x.len())
            .map(|i| x[i] * rms(&x) * (1.0 + w(i)))
            .collect(),
        _ => {
            let s: Vec<f64> = (0..x.len()).map(|i| x[i] * (1.0 + w(i))).collect();
            s.iter().map(|v| v * rms(&s)).collect()
        }
    };
    y.into_iter().map(|v| v as f32).collect()
}

/// Runs norm `kind` (0 LN+bias, 1 LN, 2 RMS plain, 3 scaleless, 4 centered, 5 input-scaled) over rows of `d`.
fn norm_ops(
    ops: &Ops,
    kind: usize,
    x: &[f32],
    d: usize,
    w: &[f32],
    b: &[f32],
    eps: f32,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; x.len()];
    match kind {
        0 | 1 => ops.layer_norm(x, d, w, (kind == 0).then_some(b), eps, &mut out),
        _ => {
            let s = [
                RmsWeight::Plain(w),
                RmsWeight::None,
                RmsWeight::Centered(w),
                RmsWeight::InputScaled(w),
            ];
            ops.rms_norm(x, d, s[kind - 2], eps, &mut out);
            // The in-place form is the same computation.
            let mut inplace = x.to_vec();
            ops.rms_norm_inplace(&mut inplace, d, s[kind - 2], eps);
            assert_eq!(inplace, out);
        }
    }
    out
}

fn norm_cases(rng: &mut Rng) -> Vec<(Vec<f32>, usize, f32)> {
    let mut v = Vec::new();
    for d in LENS {
        v.push((rng.vec(3 * d, 2.0), d, 1e-6));
        v.push((rng.vec(d, 1.0).iter().map(|x| x + 3.0).collect(), d, 1e-5));
        v.push((vec![0.0; d], d, 1e-6));
        v.push((rng.vec(d, 1e15), d, 1e-6));
        v.push((rng.vec(d, 1e-20), d, 1e-6));
    }
    v
}

#[test]
fn norms_scalar_match_f64() {
    let mut rng = Rng(0x40f);
    for (x, d, eps) in norm_cases(&mut rng) {
        let (w, b) = (rng.vec(d, 1.5), rng.vec(d, 0.5));
        for kind in 0..6 {
            let got = norm_ops(&scalar(), kind, &x, d, &w, &b, eps);
            let want: Vec<f32> = x
                .chunks(d)
                .flat_map(|r| norm_f64(kind, r, &w, &b, eps))
                .collect();
            assert_close(&format!("norm {kind} d={d}"), &got, &want, |_, w| {
                1e-5 * w.abs().max(1.0)
            });
        }
    }
}

#[test]
fn norms_simd_match_scalar() {
    let mut rng = Rng(0x40e);
    for ops in simd_ops() {
        for (x, d, eps) in norm_cases(&mut rng) {
            let (w, b) = (rng.vec(d, 1.5), rng.vec(d, 0.5));
            for kind in 0..6 {
                let want = norm_ops(&scalar(), kind, &x, d, &w, &b, eps);
                let got = norm_ops(&ops, kind, &x, d, &w, &b, eps);
                assert_close(
                    &format!("{} norm {kind} d={d}", ops.isa()),
                    &got,
                    &want,
                    |_, w| 1e-5 * w.abs().max(1.0),
                );
            }
        }
    }
}

#[test]
fn layer_norm_inplace_and_free_functions_agree() {
    let mut rng = Rng(0x1a);
    let (x, w, b) = (rng.vec(3 * 37, 2.0), rng.vec(37, 1.0), rng.vec(37, 1.0));
    let mut out = vec![0.0; x.len()];
    layer_norm(&x, 37, &w, Some(&b), 1e-6, &mut out);
    let mut inplace = x.clone();
    layer_norm_inplace(&mut inplace, 37, &w, Some(&b), 1e-6);
    assert_eq!(inplace, out);
    let (mut r1, mut r2) = (vec![0.0; x.len()], x.clone());
    rms_norm(&x, 37, RmsWeight::Plain(&w), 1e-6, &mut r1);
    rms_norm_inplace(&mut r2, 37, RmsWeight::Plain(&w), 1e-6);
    assert_eq!(r1, r2);
}
