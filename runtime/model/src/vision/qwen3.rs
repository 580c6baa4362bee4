//! Qwen3-VL's tower after the patch embedding and position table (transformers' `Qwen3VLMoeVisionModel`): the
//! layers over each image or frame in merge-block order with (row, col) axial RoPE, the merger to the decoder's
//! width, and the deepstack mergers on the chosen layers' outputs (`config/vision.rs` states the design).

use super::layer::{Norm, RopeTables};
use super::{grid, Linear, VisionOutput, VisionTower, VisionTrace};
use crate::config::vision::{names, VisionConfig, VisionKind};
use crate::weights::Loader;
use crate::ModelError;
use flint_kernels::ops::gelu_erf;
use flint_kernels::Exec;

/// LayerNorm, then `fc2 · gelu(fc1 · x)` over each `merge²` consecutive rows concatenated. The norm runs per patch
/// (the main merger) or over the concatenated rows (`post_shuffle`, the deepstack mergers): its width says which.
struct Merger {
    norm: Norm,
    fc1: Linear,
    fc2: Linear,
}

impl Merger {
    fn load(
        ld: &Loader<'_>,
        [norm, fc1, fc2]: [&str; 3],
        (norm_width, rms): (usize, bool),
        merged: usize,
        out: usize,
    ) -> Result<Merger, ModelError> {
        Ok(Merger {
            norm: if rms {
                Norm::load_rms(ld, norm, norm_width)?
            } else {
                Norm::load(ld, norm, norm_width)?
            },
            fc1: Linear::load(ld, fc1, merged, merged, true)?,
            fc2: Linear::load(ld, fc2, out, merged, true)?,
        })
    }

    /// `[patches, d]` rows in merge-block order to `[patches / merge², out]`.
    fn run(&self, ex: &Exec, x: &[f32], eps: f32) -> Vec<f32> {
        let merged = self.fc1.rows();
        let tokens = x.len() / merged;
        let mut h = vec![0f32; x.len()];
        self.norm.run(x, eps, &mut h);
        let mut a = vec![0f32; tokens * merged];
        self.fc1.run(ex, &h, tokens, &mut a);
        gelu_erf(&mut a);
        let mut out = vec![0f32; tokens * self.fc2.rows()];
        self.fc2.run(ex, &a, tokens, &mut out);
        out
    }
}

/// The merger and one deepstack merger per `deepstack_layers` entry.
pub(super) struct Head {
    merger: Merger,
    deepstack: Vec<Merger>,
}

impl Head {
    /// Binds the mergers of tower `v`, whose rows feed a decoder of width `out`.
    pub(super) fn load(ld: &Loader<'_>, v: &VisionConfig, out: usize) -> Result<Head, ModelError> {
        let (d, merged) = (v.hidden_size, v.merged_size());
        let rms = v.kind == VisionKind::Qwen25Vl;
        let merger = Merger::load(
            ld,
            [names::MERGER_NORM, names::ADAPTER_FC1, names::ADAPTER_FC2],
            (d, rms),
            merged,
            out,
        )?;
        let deepstack = (0..v.deepstack_layers.len())
            .map(|i| {
                let n = ["norm", "fc1", "fc2"].map(|w| names::deepstack(i, w));
                Merger::load(ld, [&n[0], &n[1], &n[2]], (merged, false), merged, out)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Head { merger, deepstack })
    }

    /// Runs the layers and mergers of `tower` on the positioned patch embeddings `x` (merge-block order).
    pub(super) fn encode(
        &self,
        tower: &VisionTower,
        ex: &Exec,
        mut x: Vec<f32>,
        grids: &[[usize; 3]],
        mut trace: Option<&mut VisionTrace>,
    ) -> VisionOutput {
        let c = &tower.config;
        let (d, m2) = (c.hidden_size, c.merge_size * c.merge_size);
        let mut pos: Vec<i32> = grid::block_coords(grids, c.merge_size)
            .into_iter()
            .flat_map(|((r, col), _)| [r as i32, col as i32])
            .collect();
        // Qwen2.5-VL: merged tokens regrouped window by window (rows and positions alike).
        let windows = (c.kind == VisionKind::Qwen25Vl)
            .then(|| grid::unit_windows(grids, c.merge_size, c.window));
        if let Some((order, _)) = &windows {
            x = permute(&x, order, m2 * d);
            pos = permute(&pos, order, m2 * 2);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.patch_embedder = x.clone();
        }
        let (cos, sin) = tower.rope_tables(&pos);
        let rope = RopeTables {
            cos: &cos,
            sin: &sin,
        };
        let frames = grid::frames(grids);
        let mut deepstack = vec![Vec::new(); self.deepstack.len()];
        for (l, layer) in tower.layers.iter().enumerate() {
            let spans = match &windows {
                Some((_, w)) if !layer.full => w,
                _ => &frames,
            };
            layer.forward(
                ex,
                &mut x,
                c.num_heads,
                c.layer_norm_eps,
                Some(&rope),
                spans,
            );
            if let Some(t) = trace.as_deref_mut() {
                t.layers.push(x.clone());
            }
            if let Some(i) = c.deepstack_layers.iter().position(|&d| d == l) {
                deepstack[i] = self.deepstack[i].run(ex, &x, c.layer_norm_eps);
            }
        }
        let mut rows = self.merger.run(ex, &x, c.layer_norm_eps);
        if let Some((order, _)) = &windows {
            // Back to merge-block order: the token at position i is merged token order[i].
            let w = rows.len() / order.len().max(1);
            let mut back = vec![0f32; rows.len()];
            for (i, &u) in order.iter().enumerate() {
                back[u * w..(u + 1) * w].copy_from_slice(&rows[i * w..(i + 1) * w]);
            }
            rows = back;
        }
        if let Some(t) = trace {
            t.deepstack = deepstack.clone();
        }
        VisionOutput { rows, deepstack }
    }
}

/// `x` in runs of `run` values, run `order[i]` moved to place `i`.
fn permute<T: Copy>(x: &[T], order: &[usize], run: usize) -> Vec<T> {
    order
        .iter()
        .flat_map(|&u| x[u * run..(u + 1) * run].iter().copied())
        .collect()
}
