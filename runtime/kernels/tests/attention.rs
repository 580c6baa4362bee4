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
    for (heads, kv_heads, head_dim) in [
        (4, 4, 64),
        (9, 3, 64),
        (16, 4, 64),
        (2, 1, 13),
        (6, 2, 40),
        (4, 2, 72),
        (2, 2, 200),
    ] {
        let s = AttnShape {
            heads,
            kv_heads,
            head_dim,
        };
        // (150, 2) and (70, 16): one contiguous chunk longer than the kernel's pieces.
        for (p0, n) in [(0, 1), (0, 7), (5, 1), (3, 4), (40, 1), (150, 2), (70, 16)] {
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

/// Every mask kind, keys and values split into uneven chunks given out of order, in f32, f16 and q8, on every kernel
/// family this CPU has and on a two-thread pool (big enough to split), against the definition (for q8, of the
/// values its blocks hold; a row width that is no multiple of 32 ends in a short block).
#[test]
fn masks_chunks_and_f16_match_the_definition() {
    use flint_kernels::{attention, quantize_kv_q8, Exec, Isa, KvChunk, KvRows, Mask, KV_Q8_BLOCK};
    use half::f16;
    let mut rng = Rng(0x5eed);
    let spans = [0..5, 5..12, 12..13, 13..40, 40..97];
    let mut execs: Vec<Exec> = Isa::ALL
        .iter()
        .filter_map(|&i| Exec::single(i).ok())
        .collect();
    execs.push(Exec::with_threads(2));
    for (heads, kv_heads, head_dim) in [(4, 2, 16), (9, 3, 64), (2, 1, 13), (2, 2, 72)] {
        let s = AttnShape {
            heads,
            kv_heads,
            head_dim,
        };
        let (qd, kvd) = (heads * head_dim, kv_heads * head_dim);
        // Up to 150 slots: several pieces of the tiled path, and rows past every span.
        for (q0, n) in [(0, 40), (39, 1), (20, 20), (3, 17), (50, 100)] {
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
            // q8 rows, and the values they stand for.
            let rb = kvd.div_ceil(KV_Q8_BLOCK);
            let q8 = |x: &[f32]| -> (Vec<i8>, Vec<f16>, Vec<f32>) {
                let (mut q, mut d) = (vec![0i8; x.len()], vec![f16::ZERO; x.len() / kvd * rb]);
                for ((xr, qr), dr) in x.chunks(kvd).zip(q.chunks_mut(kvd)).zip(d.chunks_mut(rb)) {
                    quantize_kv_q8(xr, qr, dr);
                }
                let deq = (0..x.len())
                    .map(|i| q[i] as f32 * d[i / kvd * rb + i % kvd / KV_Q8_BLOCK].to_f32())
                    .collect();
                (q, d, deq)
            };
            let ((kq, kd, k8), (vq, vd, v8)) = (q8(&k), q8(&v));
            for (a, b) in k.iter().zip(&k8) {
                assert!(
                    (a - b).abs() <= 1.0 / 127.0 * 4.0 + 1e-3,
                    "q8 round trip {a} vs {b}"
                );
            }
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
                let want8 = reference_masked(s, &q, &k8, &v8, q0, |p| mask.visible(p, keys), scale);
                for kind in ["f32", "f16", "q8"] {
                    let chunks: Vec<KvChunk> = bounds
                        .iter()
                        .map(|&(a, b)| {
                            let r = a * kvd..b * kvd;
                            let (k, v) = match kind {
                                "f32" => (KvRows::F32(&k[r.clone()]), KvRows::F32(&v[r])),
                                "f16" => (KvRows::F16(&k16[r.clone()]), KvRows::F16(&v16[r])),
                                _ => {
                                    let ds = a * rb..b * rb;
                                    (
                                        KvRows::Q8 {
                                            q: &kq[r.clone()],
                                            d: &kd[ds.clone()],
                                        },
                                        KvRows::Q8 {
                                            q: &vq[r],
                                            d: &vd[ds],
                                        },
                                    )
                                }
                            };
                            KvChunk { start: a, k, v }
                        })
                        .collect();
                    let want = if kind == "q8" { &want8 } else { &want };
                    for ex in &execs {
                        let mut out = vec![f32::NAN; n * qd];
                        attention(ex, s, &q, q0, keys, &chunks, mask, scale, &mut out);
                        for (i, (a, b)) in out.iter().zip(want).enumerate() {
                            assert!(
                                (a - b).abs() <= 2e-5,
                                "{s:?} q0={q0} n={n} {mask:?} {kind} {ex:?} out[{i}]: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
