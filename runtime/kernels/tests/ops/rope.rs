//! RoPE: tables vs transcriptions of transformers' rotary embeddings, rotation vs the f64 definition.

use crate::common::Rng;
use crate::{assert_close, scalar, simd_ops};
use flint_kernels::ops::*;

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
        (RopeKind::MropeInterleaved([3, 3, 2]), 16),
        (RopeKind::MropeInterleaved([4, 3, 1]), 16),
        (RopeKind::MropeSectioned([1, 5, 2]), 16),
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
