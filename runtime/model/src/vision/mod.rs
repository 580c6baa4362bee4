//! The vision towers: Muse's (transformers' `MuseSparkVisionModel`, `MuseGlimmerVisionModel`) with the model's
//! adapter, projection and perception norm, and Qwen3-VL's with its merger and deepstack mergers (`qwen3.rs`):
//! patchified pixels in, the rows that replace the decoder's image / video placeholders out. The architectures are
//! stated in `config/vision.rs`; the index arithmetic (windows, positions, resampling taps, pixel shuffle) is in
//! `grid.rs`, one layer (shared by both) in `layer.rs`.
//!
//! The tower's tensors live in their own paging groups of the `.flint` file (docs/FORMAT.md), so a text-only
//! prompt never touches their pages.

mod grid;
pub(crate) mod layer;
mod qwen3;

pub use grid::Windows;

use crate::config::vision::{names, VisionConfig, VisionKind};
use crate::weights::{Loader, Vector, Weight};
use crate::{ops, ModelConfig, ModelError};
use flint_format::FlintFile;
use flint_kernels::ops::{gelu_erf, Rope, RopeKind};
use flint_kernels::Exec;
use layer::{Layer, Norm, RopeTables};

/// A matrix with an optional bias: `out = x · Wᵀ (+ b)`.
pub(crate) struct Linear {
    w: Weight,
    /// The last columns, stored apart when the width is not a multiple of a block ([`names::splits_tail`]).
    tail: Option<Weight>,
    b: Option<Vector>,
}

impl Linear {
    /// Matrix `name` `[rows, cols]` (whole, or as its block-aligned columns and [`names::tail`]) and its bias.
    pub(crate) fn load(
        ld: &Loader<'_>,
        name: &str,
        rows: usize,
        cols: usize,
        bias: bool,
    ) -> Result<Linear, ModelError> {
        let tail_name = names::tail(name);
        let (w, tail) = if names::splits_tail(name, cols) && ld.has(&tail_name) {
            let main = cols - cols % names::BLOCK_COLS;
            (
                ld.matrix(name, rows, main)?,
                Some(ld.matrix(&tail_name, rows, cols - main)?),
            )
        } else {
            (ld.matrix(name, rows, cols)?, None)
        };
        Ok(Linear {
            w,
            tail,
            b: if bias {
                Some(ld.vector(&names::bias(name), rows)?)
            } else {
                None
            },
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.w.rows
    }

    /// `n` rows of `x` through the matrix into `out` (`[n, rows]`).
    pub(crate) fn run(&self, ex: &Exec, x: &[f32], n: usize, out: &mut [f32]) {
        match &self.tail {
            None => ex.matmul(self.w.view(), x, n, out),
            Some(t) => {
                // x = [x_main | x_tail] by columns: out = W_main x_main + W_tail x_tail.
                let (main, rest) = (self.w.cols, t.cols);
                let cols = main + rest;
                let (mut xm, mut xt) = (Vec::with_capacity(n * main), Vec::with_capacity(n * rest));
                for row in x.chunks_exact(cols) {
                    xm.extend_from_slice(&row[..main]);
                    xt.extend_from_slice(&row[main..]);
                }
                ex.matmul(self.w.view(), &xm, n, out);
                let mut o2 = vec![0f32; out.len()];
                ex.matmul(t.view(), &xt, n, &mut o2);
                out.iter_mut().zip(&o2).for_each(|(a, b)| *a += b);
            }
        }
        if let Some(b) = &self.b {
            ops::add_bias(out, b.get());
        }
    }
}

/// Intermediate values of one [`VisionTower::encode_traced`] call (conformance tests compare them with
/// transformers' taps).
#[derive(Debug, Default, Clone)]
pub struct VisionTrace {
    /// `[patches, hidden]` in raster order: the patch embedding alone, then with the position table (Qwen towers:
    /// the layers' input, in their order: merge blocks, regrouped by window for Qwen2.5-VL).
    pub patch_embedding: Vec<f32>,
    pub patch_embedder: Vec<f32>,
    pub ln_pre: Vec<f32>,
    /// Each layer's output `[patches, hidden]` in window order.
    pub layers: Vec<Vec<f32>>,
    /// After `ln_post`, raster order, before the pixel shuffle.
    pub ln_post: Vec<f32>,
    /// The tower's output `[tokens, hidden · merge²]` (after the pixel shuffle).
    pub merged: Vec<f32>,
    pub adapter: Vec<f32>,
    /// Before the perception norm.
    pub projection: Vec<f32>,
    pub windows: Windows,
    /// Qwen3-VL: each deepstack merger's rows `[tokens, text hidden]`.
    pub deepstack: Vec<Vec<f32>>,
}

/// What the tower gives the decoder: the placeholder rows, and (Qwen3-VL) the deepstack rows to add into the first
/// decoder layers' hidden states at those placeholders.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VisionOutput {
    /// `[tokens, text hidden]`.
    pub rows: Vec<f32>,
    /// One `[tokens, text hidden]` per deepstack layer, added after decoder layer 0, 1, ….
    pub deepstack: Vec<Vec<f32>>,
}

/// The part after the layers.
enum Head {
    /// `ln_pre` before the layers; `ln_post`, pixel shuffle, adapter, projection, perception norm after.
    Muse {
        ln_pre: Norm,
        ln_post: Norm,
        fc1: Linear,
        fc2: Linear,
        proj: Linear,
    },
    /// The merger and the deepstack mergers.
    Qwen3(qwen3::Head),
}

/// A loaded vision tower: zero-copy handles into the mapped file.
pub struct VisionTower {
    pub config: VisionConfig,
    /// The decoder's width (the projection's rows) and the perception norm's eps.
    text_hidden: usize,
    out_eps: f32,
    patch_embd: Linear,
    /// The learned position table (none for Qwen2.5-VL).
    pos_embd: Option<Weight>,
    layers: Vec<Layer>,
    head: Head,
    rope: Rope,
}

impl std::fmt::Debug for VisionTower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionTower")
            .field("layers", &self.layers.len())
            .field("hidden", &self.config.hidden_size)
            .finish()
    }
}

impl VisionTower {
    /// Binds the tower of `file`, described by `config.vision` (`config` is the file's `model.config`, as
    /// [`crate::Model::load`] read it), checking every tensor's shape.
    pub fn load(file: &FlintFile, config: &ModelConfig) -> Result<VisionTower, ModelError> {
        let meta = |msg: String| ModelError::Metadata {
            path: file.path().display().to_string(),
            key: "model.config",
            msg,
        };
        config.validate().map_err(meta)?;
        let v = config
            .vision
            .clone()
            .ok_or_else(|| meta("has no `vision` tower".into()))?;
        let ld = Loader::new(file);
        let (d, side) = (v.hidden_size, v.pos_emb_height);
        let q25 = v.kind == VisionKind::Qwen25Vl;
        let layers = (0..v.num_layers)
            .map(|l| {
                let style = layer::Style {
                    full: v.full_layers[l],
                    act: v.act,
                    rms_norm: q25,
                    glu: q25,
                    no_k_bias: false,
                };
                Layer::load_named(&ld, &|w| names::blk(l, w), d, v.intermediate_size, style)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let head = match v.kind {
            VisionKind::Muse => Head::Muse {
                ln_pre: Norm::load(&ld, names::LN_PRE, d)?,
                ln_post: Norm::load(&ld, names::LN_POST, d)?,
                fc1: Linear::load(
                    &ld,
                    names::ADAPTER_FC1,
                    v.adapter_size,
                    v.merged_size(),
                    false,
                )?,
                fc2: Linear::load(
                    &ld,
                    names::ADAPTER_FC2,
                    v.adapter_size,
                    v.adapter_size,
                    false,
                )?,
                proj: Linear::load(&ld, names::PROJ, config.hidden_size, v.adapter_size, false)?,
            },
            VisionKind::Qwen3Vl | VisionKind::Qwen25Vl => {
                Head::Qwen3(qwen3::Head::load(&ld, &v, config.hidden_size)?)
            }
        };
        let patch_bias = v.kind == VisionKind::Qwen3Vl;
        Ok(VisionTower {
            text_hidden: config.hidden_size,
            out_eps: config.rms_norm_eps,
            patch_embd: Linear::load(&ld, names::PATCH_EMBD, d, v.patch_len(), patch_bias)?,
            pos_embd: if q25 {
                None
            } else {
                Some(ld.matrix(names::POS_EMBD, side * side, d)?)
            },
            layers,
            head,
            rope: Rope::new(RopeKind::Axial2d, v.head_dim(), v.rope_theta),
            config: v,
        })
    }

    /// Merged tokens (placeholder rows) the grids produce.
    pub fn tokens(&self, grids: &[[usize; 3]]) -> usize {
        let m2 = self.config.merge_size * self.config.merge_size;
        grids.iter().map(|g| g[0] * g[1] * g[2] / m2).sum()
    }

    /// Encodes patchified `pixel_values` (`[patches, patch_temporal · 3 · patch_size²]`, images and frames in the
    /// order of `grids`, each `(t, h, w)` in patches) into `[tokens, text hidden]` placeholder rows.
    pub fn encode(
        &self,
        exec: &Exec,
        pixel_values: &[f32],
        grids: &[[usize; 3]],
    ) -> Result<Vec<f32>, ModelError> {
        Ok(self.encode_traced(exec, pixel_values, grids, None)?.rows)
    }

    /// [`VisionTower::encode`] with the deepstack rows (empty for a tower without them), recording the
    /// intermediate values into `trace` when given.
    pub fn encode_traced(
        &self,
        exec: &Exec,
        pixel_values: &[f32],
        grids: &[[usize; 3]],
        mut trace: Option<&mut VisionTrace>,
    ) -> Result<VisionOutput, ModelError> {
        let c = &self.config;
        let n = grid::check(c, pixel_values.len(), grids)?;
        let d = c.hidden_size;
        let mut x = vec![0f32; n * d];
        self.patch_embd.run(exec, pixel_values, n, &mut x);
        if let Some(t) = trace.as_deref_mut() {
            t.patch_embedding = x.clone();
        }
        let (ln_pre, ln_post, fc1, fc2, proj) = match &self.head {
            Head::Qwen3(head) => {
                if self.pos_embd.is_some() {
                    let taps = grid::block_position_taps(grids, c.pos_emb_height, c.merge_size);
                    self.add_positions(&taps, &mut x);
                }
                return Ok(head.encode(self, exec, x, grids, trace));
            }
            Head::Muse {
                ln_pre,
                ln_post,
                fc1,
                fc2,
                proj,
            } => (ln_pre, ln_post, fc1, fc2, proj),
        };
        let mut tap = |f: &mut dyn FnMut(&mut VisionTrace)| {
            if let Some(t) = trace.as_deref_mut() {
                f(t)
            }
        };
        let taps = grid::position_taps(grids, c.pos_emb_height, c.pos_table_transposed);
        self.add_positions(&taps, &mut x);
        tap(&mut |t| t.patch_embedder = x.clone());
        let mut h = vec![0f32; n * d];
        ln_pre.run(&x, c.layer_norm_eps, &mut h);
        tap(&mut |t| t.ln_pre = h.clone());
        // Regroup window by window: every attention span is then a contiguous run of rows.
        let win = grid::windows(grids, c.pos_emb_height);
        for (i, &p) in win.index.iter().enumerate() {
            x[i * d..(i + 1) * d].copy_from_slice(&h[p * d..(p + 1) * d]);
        }
        let raster_pos = grid::rope_positions(grids);
        let pos: Vec<i32> = win
            .index
            .iter()
            .flat_map(|&p| [raster_pos[2 * p], raster_pos[2 * p + 1]])
            .collect();
        let (cos, sin) = self.rope_tables(&pos);
        let rope = RopeTables {
            cos: &cos,
            sin: &sin,
        };
        for layer in &self.layers {
            let spans = if layer.full {
                &win.frames
            } else {
                &win.windows
            };
            layer.forward(
                exec,
                &mut x,
                c.num_heads,
                c.layer_norm_eps,
                Some(&rope),
                spans,
            );
            tap(&mut |t| t.layers.push(x.clone()));
        }
        for (i, &p) in win.index.iter().enumerate() {
            h[p * d..(p + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
        }
        ln_post.run(&h, c.layer_norm_eps, &mut x);
        tap(&mut |t| t.ln_post = x.clone());
        let merged = self.pixel_shuffle(grids, &x);
        tap(&mut |t| t.merged = merged.clone());
        let tokens = merged.len() / c.merged_size();
        let mut a = vec![0f32; tokens * c.adapter_size];
        fc1.run(exec, &merged, tokens, &mut a);
        gelu_erf(&mut a);
        let mut b = vec![0f32; a.len()];
        fc2.run(exec, &a, tokens, &mut b);
        gelu_erf(&mut b);
        tap(&mut |t| t.adapter = b.clone());
        let mut out = vec![0f32; tokens * self.text_hidden];
        proj.run(exec, &b, tokens, &mut out);
        tap(&mut |t| t.projection = out.clone());
        ops::rms_norm_scaleless(&mut out, self.text_hidden, self.out_eps);
        if let Some(t) = trace {
            t.windows = win;
        }
        Ok(VisionOutput {
            rows: out,
            deepstack: Vec::new(),
        })
    }

    /// The half cos / sin tables of the axial RoPE for `[patches, 2]` positions.
    fn rope_tables(&self, pos: &[i32]) -> (Vec<f32>, Vec<f32>) {
        let n = pos.len() / 2 * (self.config.head_dim() / 2);
        let (mut cos, mut sin) = (vec![0f32; n], vec![0f32; n]);
        self.rope.table(pos, &mut cos, &mut sin);
        (cos, sin)
    }

    /// Adds the position table, resampled by `taps` (one set per patch, in the order of `x`'s rows), to the patch
    /// embeddings `x`.
    fn add_positions(&self, taps: &[[(usize, f32); 4]], x: &mut [f32]) {
        let (d, side) = (self.config.hidden_size, self.config.pos_emb_height);
        let Some(pos) = &self.pos_embd else { return };
        let mut table = vec![0f32; side * side * d];
        for (r, row) in table.chunks_exact_mut(d).enumerate() {
            pos.row_to_f32(r, row);
        }
        for (xr, t) in x.chunks_exact_mut(d).zip(taps) {
            let mut acc = vec![0f32; d];
            for &(i, w) in t {
                let row = &table[i * d..(i + 1) * d];
                acc.iter_mut().zip(row).for_each(|(a, v)| *a += v * w);
            }
            xr.iter_mut().zip(&acc).for_each(|(a, p)| *a += p);
        }
    }

    /// Folds each `merge × merge` block of raster-order rows `x` into one token laid out `[channel][dy][dx]`.
    fn pixel_shuffle(&self, grids: &[[usize; 3]], x: &[f32]) -> Vec<f32> {
        let (d, m2) = (self.config.hidden_size, self.config.merge_size.pow(2));
        let idx = grid::shuffle_index(grids, self.config.merge_size);
        let mut out = vec![0f32; idx.len() * d];
        for (tok, rows) in idx.chunks_exact(m2).enumerate() {
            let o = &mut out[tok * d * m2..(tok + 1) * d * m2];
            for (j, &r) in rows.iter().enumerate() {
                for (ch, &v) in x[r * d..(r + 1) * d].iter().enumerate() {
                    o[ch * m2 + j] = v;
                }
            }
        }
        out
    }
}
