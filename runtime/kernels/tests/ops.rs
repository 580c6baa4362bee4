//! The encoder ops (`flint_kernels::ops`): every scalar reference against a direct f64 transcription of its
//! definition (for RoPE and patchify: of transformers' Python), and every SIMD path against the scalar reference,
//! over odd lengths (vector tails), zeros, extremes and random inputs.

mod common;

use common::{simd_isas, Rng};
use flint_kernels::ops::*;
use flint_kernels::{Isa, WeightRef};
use std::f64::consts::PI;

/// Lengths around the 4- and 8-lane tails, plus real widths.
const LENS: [usize; 16] = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 1152];

fn scalar() -> Ops {
    Ops::single(Isa::Scalar).unwrap()
}

/// Every SIMD family's `Ops` (skipped ones printed).
fn simd_ops() -> Vec<Ops> {
    simd_isas()
        .into_iter()
        .map(|i| Ops::single(i).unwrap())
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize, f32) -> f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_finite() {
            (g - w).abs() <= bound(i, w)
        } else {
            g == w
        };
        assert!(ok, "{what}[{i}]: {g:e} vs {w:e} (bound {:e})", bound(i, w));
    }
}

// ---- f64 definitions ----

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
                    2e-6 * w.abs().max(1.0)
                });
            }
        }
    }
}

// ---- softmax ----

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

// ---- norms ----

/// `(name, ops path, reference in f64)` for each norm over one row, with weight `w` and bias `b`.
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

// ---- RoPE ----

/// transformers' full `cos`/`sin` row (`head_dim` values) for one row's positions, transcribed from the Python:
/// `inv_freq` in f32 as torch computes it, angles as f32 products, cos/sin in f64.
fn hf_rope_row(kind: RopeKind, head_dim: usize, theta: f32, pos: &[i32]) -> (Vec<f32>, Vec<f32>) {
    let inv = |dim: usize| -> Vec<f32> {
        (0..dim)
            .step_by(2)
            .map(|k| 1.0 / theta.powf(k as f32 / dim as f32))
            .collect()
    };
    let freqs = |p: i32, inv: &[f32]| -> Vec<f32> { inv.iter().map(|f| p as f32 * f).collect() };
    let half: Vec<f32> = match kind {
        RopeKind::Plain => freqs(pos[0], &inv(head_dim)),
        // MuseSparkVisionRotaryEmbedding.recomposition_frequencies: cat([freq_h, freq_w]).
        RopeKind::Axial2d => {
            let i = inv(head_dim / 2);
            [freqs(pos[0], &i), freqs(pos[1], &i)].concat()
        }
        // Qwen2VLRotaryEmbedding: cat([m[i % 3] for i, m in enumerate(freq.split(mrope_section))]).
        RopeKind::MropeSectioned(s) => {
            let f: Vec<Vec<f32>> = (0..3).map(|c| freqs(pos[c], &inv(head_dim))).collect();
            let mut out = Vec::new();
            let mut start = 0;
            for (i, len) in s.iter().enumerate() {
                out.extend_from_slice(&f[i % 3][start..start + len]);
                start += len;
            }
            out
        }
        // Qwen3VLTextRotaryEmbedding: freqs_t, then freqs_t[..., offset:length:3] = freq[dim] for H, W.
        RopeKind::MropeInterleaved(s) => {
            let f: Vec<Vec<f32>> = (0..3).map(|c| freqs(pos[c], &inv(head_dim))).collect();
            let mut out = f[0].clone();
            for (dim, offset) in [(1, 1), (2, 2)] {
                // A Python slice stops at the end of the tensor.
                for j in (offset..(s[dim] * 3).min(out.len())).step_by(3) {
                    out[j] = f[dim][j];
                }
            }
            out
        }
    };
    let emb = [half.clone(), half].concat();
    let c = emb.iter().map(|&a| (a as f64).cos() as f32).collect();
    let s = emb.iter().map(|&a| (a as f64).sin() as f32).collect();
    (c, s)
}

const ROPES: [(RopeKind, usize); 9] = [
    (RopeKind::Plain, 2),
    (RopeKind::Plain, 18),
    (RopeKind::Plain, 64),
    (RopeKind::Axial2d, 4),
    (RopeKind::Axial2d, 20),
    (RopeKind::Axial2d, 80),
    (RopeKind::MropeSectioned([2, 3, 3]), 16),
    (RopeKind::MropeSectioned([16, 24, 24]), 128),
    (RopeKind::MropeInterleaved([24, 20, 20]), 128),
];

fn rope_positions(rng: &mut Rng, rope: &Rope, n: usize) -> Vec<i32> {
    (0..n * rope.positions())
        .map(|_| rng.int(0, 4000))
        .collect()
}

#[test]
fn rope_tables_match_transformers() {
    let mut rng = Rng(0x20e);
    let mut cases = ROPES.to_vec();
    cases.extend([
        (RopeKind::MropeInterleaved([4, 2, 2]), 16),
        (RopeKind::MropeInterleaved([2, 3, 3]), 16),
    ]);
    for (kind, hd) in cases {
        for theta in [10000.0, 1e6] {
            let rope = Rope::new(kind, hd, theta);
            let n = 5;
            let pos = rope_positions(&mut rng, &rope, n);
            let (mut c, mut s) = (vec![0.0; n * hd / 2], vec![0.0; n * hd / 2]);
            rope.table(&pos, &mut c, &mut s);
            for r in 0..n {
                let (hc, hs) = hf_rope_row(
                    kind,
                    hd,
                    theta,
                    &pos[r * rope.positions()..(r + 1) * rope.positions()],
                );
                let half = hd / 2;
                for j in 0..hd {
                    let (gc, gs) = (c[r * half + j % half], s[r * half + j % half]);
                    assert!(
                        (gc - hc[j]).abs() <= 1e-6 && (gs - hs[j]).abs() <= 1e-6,
                        "{kind:?} hd={hd} row {r} dim {j}"
                    );
                }
            }
        }
    }
}

/// `q * cos + rotate_half(q) * sin` in f64 with the full tables.
fn rope_f64(x: &[f32], hd: usize, cos: &[f32], sin: &[f32]) -> Vec<f32> {
    let h = hd / 2;
    let mut out = vec![0.0; x.len()];
    for (head, o) in x.chunks(hd).zip(out.chunks_mut(hd)) {
        for j in 0..hd {
            let rot = if j < h {
                -(head[j + h] as f64)
            } else {
                head[j - h] as f64
            };
            o[j] = (head[j] as f64 * cos[j] as f64 + rot * sin[j] as f64) as f32;
        }
    }
    out
}

#[test]
fn rope_rotation_matches_definition_and_simd() {
    let mut rng = Rng(0x20f);
    for (kind, hd) in ROPES {
        let rope = Rope::new(kind, hd, 10000.0);
        for (n, heads) in [(1, 1), (3, 2), (2, 5)] {
            let pos = rope_positions(&mut rng, &rope, n);
            let x = rng.vec(n * heads * hd, 3.0);
            let (mut c, mut s) = (vec![0.0; n * hd / 2], vec![0.0; n * hd / 2]);
            rope.table(&pos, &mut c, &mut s);
            let mut want = Vec::new();
            for r in 0..n {
                let half = |t: &[f32]| [&t[r * hd / 2..(r + 1) * hd / 2]; 2].concat();
                want.extend(rope_f64(
                    &x[r * heads * hd..(r + 1) * heads * hd],
                    hd,
                    &half(&c),
                    &half(&s),
                ));
            }
            let bound = |_, _| 2e-6 * 3.0;
            let mut got = x.clone();
            scalar().rope_rotate(&mut got, heads, hd, &c, &s);
            assert_close(&format!("{kind:?} scalar"), &got, &want, bound);
            for ops in simd_ops() {
                let mut got = x.clone();
                ops.rope_rotate(&mut got, heads, hd, &c, &s);
                assert_close(&format!("{kind:?} {}", ops.isa()), &got, &want, bound);
            }
            // apply = table + rotate on the active family.
            let (mut a, mut b) = (x.clone(), x.clone());
            rope.apply(&mut a, heads, &pos);
            rope_rotate(&mut b, heads, hd, &c, &s);
            assert_eq!(a, b);
        }
    }
}

// ---- convolutions and pooling ----

/// `conv2d` by its definition in f64, and the sum of |w x| terms (for the rounding bound) per output.
#[allow(clippy::type_complexity)]
fn conv_f64(
    s: &Conv2d,
    pads: [[usize; 2]; 2],
    x: &[f32],
    hw: [usize; 2],
    w: &[f32],
    b: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let ([h, wi], [kh, kw]) = (hw, s.kernel);
    let out_dim = |a: usize| {
        let span = s.dilation[a] * (s.kernel[a] - 1) + 1;
        (hw[a] + pads[a][0] + pads[a][1])
            .checked_sub(span)
            .map_or(0, |r| r / s.stride[a] + 1)
    };
    let (oh, ow) = (out_dim(0), out_dim(1));
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (mut out, mut mag) = (vec![0f32; s.c_out * oh * ow], vec![0f32; s.c_out * oh * ow]);
    for o in 0..s.c_out {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut acc, mut m) = (b[o] as f64, b[o].abs() as f64);
                for i in 0..cig {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y =
                                (oy * s.stride[0] + ky * s.dilation[0]) as i64 - pads[0][0] as i64;
                            let xx =
                                (ox * s.stride[1] + kx * s.dilation[1]) as i64 - pads[1][0] as i64;
                            if y >= 0 && (y as usize) < h && xx >= 0 && (xx as usize) < wi {
                                let xv = x
                                    [((o / cog * cig + i) * h + y as usize) * wi + xx as usize]
                                    as f64;
                                let wv = w[((o * cig + i) * kh + ky) * kw + kx] as f64;
                                acc += wv * xv;
                                m += (wv * xv).abs();
                            }
                        }
                    }
                }
                out[(o * oh + oy) * ow + ox] = acc as f32;
                mag[(o * oh + oy) * ow + ox] = m as f32;
            }
        }
    }
    (out, mag)
}

#[test]
fn conv1d_matches_reference_and_definition() {
    let mut rng = Rng(0xc01);
    // (c_in, c_out, kernel, stride, pad_left, pad_right, dilation, groups)
    let shapes = [
        (1, 1, 1, 1, 0, 0, 1, 1),
        (3, 5, 3, 1, 1, 1, 1, 1),  // Whisper conv1
        (8, 8, 3, 2, 1, 1, 1, 1),  // Whisper conv2: stride 2
        (4, 6, 5, 1, 4, 0, 1, 1),  // causal
        (4, 4, 3, 1, 4, 0, 2, 1),  // causal, dilated
        (6, 6, 5, 1, 2, 2, 1, 6),  // depthwise
        (6, 9, 3, 2, 1, 0, 1, 3),  // grouped, strided
        (64, 3, 3, 1, 1, 1, 1, 1), // wide rows: two im2col chunks at t = 5600
    ];
    for (c_in, c_out, kernel, stride, pad_left, pad_right, dilation, groups) in shapes {
        let s = Conv1d {
            c_in,
            c_out,
            kernel,
            stride,
            pad_left,
            pad_right,
            dilation,
            groups,
        };
        let ts: &[usize] = if c_in == 64 {
            &[5600]
        } else {
            &[1, 2, 3, 7, 16, 33]
        };
        for &t in ts {
            let x = rng.vec(c_in * t, 2.0);
            let w = rng.vec(c_out * c_in / groups * kernel, 0.5);
            let b = rng.vec(c_out, 1.0);
            let n = c_out * s.out_len(t);
            let (mut got, mut refr) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            conv1d(&s, &x, t, &w, Some(&b), &mut got);
            conv1d_reference(&s, &x, t, &w, Some(&b), &mut refr);
            let s2 = Conv2d {
                c_in,
                c_out,
                kernel: [1, kernel],
                stride: [1, stride],
                padding: [0, 0],
                dilation: [1, dilation],
                groups,
            };
            let (want, mag) = conv_f64(&s2, [[0, 0], [pad_left, pad_right]], &x, [1, t], &w, &b);
            assert_close(&format!("{s:?} t={t} im2col"), &got, &want, |i, _| {
                1e-5 * mag[i] + 1e-30
            });
            assert_close(&format!("{s:?} t={t} reference"), &refr, &want, |i, _| {
                1e-5 * mag[i] + 1e-30
            });
        }
    }
    // Zero input: the bias alone. Too short an input: an empty output.
    let s = Conv1d {
        c_in: 2,
        c_out: 3,
        kernel: 3,
        stride: 1,
        pad_left: 0,
        pad_right: 0,
        dilation: 2,
        groups: 1,
    };
    let mut out = vec![f32::NAN; 3 * 3];
    conv1d(
        &s,
        &[0.0; 14],
        7,
        &[0.5; 18],
        Some(&[1.0, 2.0, 3.0]),
        &mut out,
    );
    assert_eq!(out, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
    assert_eq!(s.out_len(4), 0);
    conv1d(&s, &[1.0; 8], 4, &[0.5; 18], None, &mut []);
}

#[test]
fn conv2d_matches_reference_and_definition() {
    let mut rng = Rng(0xc02);
    let shapes = [
        // Qwen3-Omni audio stem: 3x3, stride 2, padding 1.
        Conv2d {
            c_in: 1,
            c_out: 4,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Conv2d {
            c_in: 4,
            c_out: 6,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Conv2d {
            c_in: 4,
            c_out: 6,
            kernel: [2, 3],
            stride: [1, 2],
            padding: [0, 1],
            dilation: [2, 1],
            groups: 2,
        },
        Conv2d {
            c_in: 3,
            c_out: 5,
            kernel: [4, 4],
            stride: [4, 4],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
    ];
    for s in shapes {
        for [h, w] in [[1, 1], [4, 4], [9, 13], [16, 7]] {
            let x = rng.vec(s.c_in * h * w, 2.0);
            let wt = rng.vec(s.c_out * s.c_in / s.groups * s.kernel[0] * s.kernel[1], 0.5);
            let b = rng.vec(s.c_out, 1.0);
            let [oh, ow] = s.out_hw(h, w);
            let (mut got, mut refr) = (
                vec![f32::NAN; s.c_out * oh * ow],
                vec![f32::NAN; s.c_out * oh * ow],
            );
            conv2d(&s, &x, h, w, &wt, Some(&b), &mut got);
            conv2d_reference(&s, &x, h, w, &wt, Some(&b), &mut refr);
            let p = s.padding;
            let (want, mag) = conv_f64(&s, [[p[0], p[0]], [p[1], p[1]]], &x, [h, w], &wt, &b);
            assert_close(&format!("{s:?} {h}x{w} im2col"), &got, &want, |i, _| {
                1e-5 * mag[i] + 1e-30
            });
            assert_close(&format!("{s:?} {h}x{w} reference"), &refr, &want, |i, _| {
                1e-5 * mag[i] + 1e-30
            });
        }
    }
}

#[test]
fn avg_pool1d_matches_definition() {
    let mut rng = Rng(0x9001);
    for (c, t, k, stride) in [
        (3, 8, 2, 2),
        (2, 9, 2, 2),
        (4, 10, 3, 1),
        (1, 7, 3, 2),
        (2, 1, 2, 2),
        (5, 2, 2, 2),
    ] {
        let x = rng.vec(c * t, 3.0);
        let to = if t < k { 0 } else { (t - k) / stride + 1 };
        let mut out = vec![f32::NAN; c * to];
        avg_pool1d(&x, c, k, stride, &mut out);
        let want: Vec<f32> = (0..c * to)
            .map(|i| {
                let (ch, j) = (i / to, i % to);
                ((0..k)
                    .map(|q| x[ch * t + j * stride + q] as f64)
                    .sum::<f64>()
                    / k as f64) as f32
            })
            .collect();
        assert_close(
            &format!("pool c={c} t={t} k={k} s={stride}"),
            &out,
            &want,
            |_, w| 1e-6 * w.abs().max(1.0),
        );
    }
}

// ---- patch embedding ----

/// transformers' Qwen2-VL video `patchify`: pad frames with the last one, `view(gt, tp, c, gh/m, m, p, gw/m, m, p)`,
/// `permute(0, 3, 6, 4, 7, 2, 1, 5, 8)` (the batchless form of `permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)`), flatten.
fn hf_patchify(s: &Patchify, video: &[f32], t: usize, h: usize, w: usize) -> Vec<f32> {
    let (c, tp, p, m) = (s.channels, s.temporal_patch, s.patch, s.merge);
    let tpad = t.div_ceil(tp) * tp;
    let shape = [tpad / tp, tp, c, h / p / m, m, p, w / p / m, m, p];
    let perm = [0, 3, 6, 4, 7, 2, 1, 5, 8];
    let total: usize = shape.iter().product();
    (0..total)
        .map(|flat| {
            // Multi-index in the permuted shape, then back to the source index.
            let mut idx = [0usize; 9];
            let mut rem = flat;
            for k in (0..9).rev() {
                idx[perm[k]] = rem % shape[perm[k]];
                rem /= shape[perm[k]];
            }
            let [gt, ft, ch, bh, mh, py, bw, mw, px] = idx;
            let frame = (gt * tp + ft).min(t - 1);
            let (y, x) = ((bh * m + mh) * p + py, (bw * m + mw) * p + px);
            video[((frame * c + ch) * h + y) * w + x]
        })
        .collect()
}

#[test]
fn patchify_matches_transformers_layout() {
    let mut rng = Rng(0x9a7);
    for (s, t, h, w) in [
        (
            Patchify {
                channels: 3,
                temporal_patch: 2,
                patch: 2,
                merge: 2,
            },
            1,
            8,
            12,
        ),
        (
            Patchify {
                channels: 3,
                temporal_patch: 2,
                patch: 2,
                merge: 2,
            },
            3,
            4,
            8,
        ),
        (
            Patchify {
                channels: 2,
                temporal_patch: 1,
                patch: 3,
                merge: 1,
            },
            2,
            6,
            9,
        ),
        (
            Patchify {
                channels: 3,
                temporal_patch: 2,
                patch: 14,
                merge: 2,
            },
            4,
            28,
            56,
        ),
    ] {
        let video = rng.vec(t * s.channels * h * w, 1.0);
        let [gt, gh, gw] = s.grid(t, h, w);
        let mut rows = vec![f32::NAN; gt * gh * gw * s.row_len()];
        patchify(&s, &video, t, h, w, &mut rows);
        assert_eq!(rows, hf_patchify(&s, &video, t, h, w), "{s:?} {t}x{h}x{w}");

        let (n, embed) = (gt * gh * gw, 5);
        let wt = rng.vec(embed * s.row_len(), 0.3);
        let b = rng.vec(embed, 1.0);
        let mut out = vec![f32::NAN; n * embed];
        patch_embed(&rows, n, WeightRef::F32(&wt), Some(&b), &mut out);
        for r in 0..n {
            for e in 0..embed {
                let terms = rows[r * s.row_len()..(r + 1) * s.row_len()]
                    .iter()
                    .zip(&wt[e * s.row_len()..]);
                let (dot, mag) = terms.fold((b[e] as f64, b[e].abs() as f64), |(d, m), (x, w)| {
                    (
                        d + (*x as f64) * (*w as f64),
                        m + (*x as f64 * *w as f64).abs(),
                    )
                });
                let g = out[r * embed + e];
                assert!(
                    (g as f64 - dot).abs() <= 1e-5 * mag,
                    "{s:?} patch {r} out {e}: {g} vs {dot}"
                );
            }
        }
    }
}
