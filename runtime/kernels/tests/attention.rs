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
    let hd = s.head_dim;
    let (qd, kvd, g) = (s.heads * hd, s.kv_heads * hd, s.heads / s.kv_heads);
    let mut out = vec![0f32; n * qd];
    for t in 0..n {
        for h in 0..s.heads {
            let kvh = h / g;
            let qh = &q[t * qd + h * hd..t * qd + (h + 1) * hd];
            let sc: Vec<f64> = (0..=p0 + t)
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
                    .enumerate()
                    .map(|(p, w)| w / z * v[p * kvd + kvh * hd + d] as f64)
                    .sum();
                out[t * qd + h * hd + d] = o as f32;
            }
        }
    }
    out
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
