//! Activations and erf: scalar vs f64 definitions, SIMD vs scalar.

use crate::common::Rng;
use crate::{assert_close, scalar, simd_ops, LENS};
use flint_kernels::ops::*;
use std::f64::consts::PI;

/// erf in f64: Maclaurin series for |x| <= 3 (terms below 1e3, so ~1e-13 absolute), the asymptotic erfc
/// series beyond (stopped at its smallest term; relative ~1e-4 of erfc(3) = 2e-5, i.e. 2e-9 absolute).
fn erf64(x: f64) -> f64 {
    let a = x.abs();
    let y = if a <= 3.0 {
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / PI.sqrt()
    } else {
        let (mut term, mut sum, mut n) = (1.0f64, 1.0, 0.0);
        loop {
            n += 1.0;
            let next = term * -(2.0 * n - 1.0) / (2.0 * a * a);
            if next.abs() >= term.abs() || next.abs() < 1e-17 {
                break;
            }
            term = next;
            sum += term;
        }
        1.0 - (-a * a).exp() / (a * PI.sqrt()) * sum
    };
    y.copysign(x)
}

fn sig64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

type Act = (&'static str, fn(&Ops, &mut [f32]), fn(f64) -> f64);

const ACTS: [Act; 5] = [
    ("gelu_erf", Ops::gelu_erf, |x| {
        0.5 * x * (1.0 + erf64(x / 2f64.sqrt()))
    }),
    ("gelu_tanh", Ops::gelu_tanh, |x| {
        0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
    }),
    ("quick_gelu", Ops::quick_gelu, |x| x * sig64(1.702 * x)),
    ("silu", Ops::silu, |x| x * sig64(x)),
    ("sigmoid", Ops::sigmoid, sig64),
];

/// Inputs for the element-wise ops: random at several scales, zeros, and extremes (overflow and underflow of
/// e^x, the erf range boundaries, subnormals, f32::MAX).
fn act_inputs(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut v: Vec<Vec<f32>> = Vec::new();
    for n in LENS {
        for scale in [1.0, 4.0, 30.0] {
            v.push(rng.vec(n, scale));
        }
    }
    v.push(vec![0.0; 13]);
    let special = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        1e-40,
        -1e-40,
        0.5,
        -0.84375,
        0.84375,
        1.25,
        -1.25,
        2.857,
        -2.858,
        6.0,
        -6.0,
        8.4853,
        -8.4853,
        10.0,
        -10.0,
        20.0,
        -20.0,
        50.0,
        -50.0,
        87.3,
        -87.4,
        88.7,
        -88.7,
        88.73,
        -88.73,
        89.0,
        -89.0,
        104.0,
        -104.0,
        105.0,
        -105.0,
        1e4,
        -1e4,
        1e30,
        -1e30,
        f32::MAX,
        -f32::MAX,
    ];
    v.push(special.to_vec());
    v.push(special.iter().map(|x| x * 0.7).collect());
    v.push((0..2001).map(|i| (i as f32 - 1000.0) / 100.0).collect());
    v
}

#[test]
fn erf_matches_f64() {
    let mut rng = Rng(0xe7f);
    let mut xs: Vec<f32> = (0..40001).map(|i| (i as f32 - 20000.0) / 2500.0).collect();
    xs.extend(rng.vec(5000, 1.0).iter().map(|x| x * x * x * 4.0));
    xs.extend([
        0.0,
        -0.0,
        1e-38,
        1e-20,
        0.84375,
        1.25,
        1.0 / 0.35,
        6.0,
        30.0,
        f32::MAX,
    ]);
    for x in xs {
        let (got, want) = (erf(x), erf64(x as f64));
        assert!(
            (got as f64 - want).abs() <= 1.5e-7 * want.abs(),
            "erf({x:e}) = {got:e}, want {want:e}"
        );
    }
    assert_eq!(erf(f32::INFINITY), 1.0);
    assert_eq!(erf(f32::NEG_INFINITY), -1.0);
    assert!(erf(f32::NAN).is_nan());
}

#[test]
fn activations_scalar_match_f64() {
    let mut rng = Rng(0xac7);
    for x in act_inputs(&mut rng) {
        for (name, op, def) in ACTS {
            let mut got = x.clone();
            op(&scalar(), &mut got);
            let want: Vec<f32> = x.iter().map(|&v| def(v as f64) as f32).collect();
            assert_close(name, &got, &want, |_, w| 1e-6 * w.abs().max(1.0));
        }
    }
}

#[test]
fn activations_simd_match_scalar() {
    let mut rng = Rng(0x51d);
    for ops in simd_ops() {
        for x in act_inputs(&mut rng) {
            for (name, op, _) in ACTS {
                let (mut want, mut got) = (x.clone(), x.clone());
                op(&scalar(), &mut want);
                op(&ops, &mut got);
                assert_close(&format!("{} {name}", ops.isa()), &got, &want, |_, w| {
                    5e-7 * w.abs().max(1.0)
                });
            }
        }
    }
}
