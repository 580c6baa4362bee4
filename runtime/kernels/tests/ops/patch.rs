//! Patchify vs transformers' Qwen2-VL processor layout; patch embedding vs the f64 definition.

use crate::common::Rng;
use flint_kernels::ops::*;
use flint_kernels::WeightRef;

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
