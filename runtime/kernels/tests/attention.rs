//! `causal_attention` against a direct transcription of the definition (f64), across GQA group sizes, odd head
//! sizes (tails of the vector loops), prefill (many tokens) and decode (one token after a cache).

mod common;

use common::Rng;
use flint_kernels::{causal_attention, AttnShape};

fn reference(
    s: AttnShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    p0: usize,
    n: usize,
    scale: f32,
) -> Vec<f32> {
    assert_eq!(q.len(), n * s.heads * s.head_dim);
    reference_masked(s, q, k, v, p0, |p| 0..p + 1, scale)
}

#[test]
fn matches_the_definition() {
    let mut rng = Rng(0xa77e);
    for (heads, kv_heads, head_dim) in [(4, 4, 64), (9, 3, 64), (16, 4, 64), (2, 1, 13), (6, 2, 40)]
    {
        let s = AttnShape {
            heads,
            kv_heads,
            head_dim,
        };
        for (p0, n) in [(0, 1), (0, 7), (5, 1), (3, 4), (40, 1)] {
            let (qd, kvd) = (heads * head_dim, kv_heads * head_dim);
            let q = rng.vec(n * qd, 1.0);
            let k = rng.vec((p0 + n) * kvd, 1.0);
            let v = rng.vec((p0 + n) * kvd, 1.0);
            let scale = 1.0 / (head_dim as f32).sqrt();
            let mut out = vec![f32::NAN; n * qd];
            causal_attention(s, &q, &k, &v, p0, n, scale, &mut out);
            let want = reference(s, &q, &k, &v, p0, n, scale);
            for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5,
                    "{s:?} p0={p0} n={n} out[{i}]: {a} vs {b}"
                );
            }
        }
    }
}

/// The definition for any mask: query `t` at slot `q0 + t` sees the slots `vis(q0 + t)` (f64 sums).
fn reference_masked(
    s: AttnShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    q0: usize,
    vis: impl Fn(usize) -> std::ops::Range<usize>,
    scale: f32,
) -> Vec<f32> {
    let hd = s.head_dim;
    let (qd, kvd, g) = (s.heads * hd, s.kv_heads * hd, s.heads / s.kv_heads);
    let n = q.len() / qd;
    let mut out = vec![0f32; n * qd];
    for t in 0..n {
        let r = vis(q0 + t);
        if r.is_empty() {
            continue;
        }
        for h in 0..s.heads {
            let kvh = h / g;
            let qh = &q[t * qd + h * hd..t * qd + (h + 1) * hd];
            let sc: Vec<f64> = r
                .clone()
                .map(|p| {
                    let kp = &k[p * kvd + kvh * hd..p * kvd + (kvh + 1) * hd];
                    qh.iter()
                        .zip(kp)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
                        * scale as f64
                })
                .collect();
            let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let o: f64 = e
                    .iter()
                    .zip(r.clone())
                    .map(|(w, p)| w / z * v[p * kvd + kvh * hd + d] as f64)
                    .sum();
                out[t * qd + h * hd + d] = o as f32;
            }
        }
    }
    out
}

/// Every mask kind, keys and values split into uneven chunks given out of order, in f32 and f16, on every kernel
/// family this CPU has and on a two-thread pool (big enough to split), against the definition.
#[test]
fn masks_chunks_and_f16_match_the_definition() {
    use flint_kernels::{attention, Exec, Isa, KvChunk, KvRows, Mask};
    use half::f16;
    let mut rng = Rng(0x5eed);
    let spans = [0..5, 5..12, 12..13, 13..40];
    let mut execs: Vec<Exec> = Isa::ALL
        .iter()
        .filter_map(|&i| Exec::single(i).ok())
        .collect();
    execs.push(Exec::with_threads(2));
    for (heads, kv_heads, head_dim) in [(4, 2, 16), (9, 3, 64), (2, 1, 13)] {
        let s = AttnShape {
            heads,
            kv_heads,
            head_dim,
        };
        let (qd, kvd) = (heads * head_dim, kv_heads * head_dim);
        for (q0, n) in [(0, 40), (39, 1), (20, 20), (3, 17)] {
            let keys = q0 + n;
            let q = rng.vec(n * qd, 1.0);
            // f16-exact keys and values, so the f16 run has the same definition.
            let round = |x: Vec<f32>| -> Vec<f32> {
                x.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
            };
            let k = round(rng.vec(keys * kvd, 1.0));
            let v = round(rng.vec(keys * kvd, 1.0));
            let (k16, v16): (Vec<f16>, Vec<f16>) = (
                k.iter().map(|&x| f16::from_f32(x)).collect(),
                v.iter().map(|&x| f16::from_f32(x)).collect(),
            );
            // Chunks of 7 slots (the last shorter), listed last first.
            let bounds: Vec<(usize, usize)> = (0..keys)
                .step_by(7)
                .map(|a| (a, (a + 7).min(keys)))
                .rev()
                .collect();
            let scale = 0.3;
            for mask in [
                Mask::Causal,
                Mask::Sliding(6),
                Mask::Sliding(1),
                Mask::Full,
                Mask::BlockDiagonal(&spans),
            ] {
                let want = reference_masked(s, &q, &k, &v, q0, |p| mask.visible(p, keys), scale);
                for f16_kv in [false, true] {
                    let chunks: Vec<KvChunk> = bounds
                        .iter()
                        .map(|&(a, b)| {
                            let r = a * kvd..b * kvd;
                            if f16_kv {
                                KvChunk {
                                    start: a,
                                    k: KvRows::F16(&k16[r.clone()]),
                                    v: KvRows::F16(&v16[r]),
                                }
                            } else {
                                KvChunk {
                                    start: a,
                                    k: KvRows::F32(&k[r.clone()]),
                                    v: KvRows::F32(&v[r]),
                                }
                            }
                        })
                        .collect();
                    for ex in &execs {
                        let mut out = vec![f32::NAN; n * qd];
                        attention(ex, s, &q, q0, keys, &chunks, mask, scale, &mut out);
                        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                            assert!(
                                (a - b).abs() <= 2e-5,
                                "{s:?} q0={q0} n={n} {mask:?} f16={f16_kv} {ex:?} out[{i}]: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
