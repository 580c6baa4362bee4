//! One pre-LayerNorm ViT layer of the Muse vision tower, over all patches of a call in window order:
//! `x += proj(attention(rope(q), rope(k), v))` on `norm1(x)`, then `x += fc2(gelu(fc1(norm2(x))))`; every linear
//! has a bias, GELU is the erf form (transformers' `gelu`; Qwen3-VL's tanh form by `act`). Attention is
//! non-causal multi-head attention (as many
//! key/value heads as query heads, scale `head_dim^-0.5`) within spans: one span per window, or per image / video
//! frame on the full-attention layers.

use super::Linear;
use crate::config::vision::names::{bias, blk};
use crate::config::vision::VisionAct;
use crate::weights::{Loader, Vector};
use crate::ModelError;
use flint_kernels::ops::{gelu_erf, gelu_tanh, layer_norm, rope_rotate};
use flint_kernels::{attention, AttnShape, Exec, KvChunk, KvRows, Mask};
use std::ops::Range;

/// A LayerNorm's weight and bias.
pub(crate) struct Norm {
    w: Vector,
    b: Vector,
}

impl Norm {
    pub(crate) fn load(ld: &Loader<'_>, name: &str, d: usize) -> Result<Norm, ModelError> {
        Ok(Norm {
            w: ld.vector(name, d)?,
            b: ld.vector(&bias(name), d)?,
        })
    }

    /// `out = layer_norm(x)` over rows of the weight's width.
    pub(crate) fn run(&self, x: &[f32], eps: f32, out: &mut [f32]) {
        let w = self.w.get();
        layer_norm(x, w.len(), w, Some(self.b.get()), eps, out)
    }
}

/// The rotary tables of a call: `[patches, head_dim / 2]` each, in window order.
pub(crate) struct RopeTables<'a> {
    pub cos: &'a [f32],
    pub sin: &'a [f32],
}

pub(crate) struct Layer {
    norm1: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm2: Norm,
    fc1: Linear,
    fc2: Linear,
    /// Full attention over each image / frame; otherwise within windows.
    pub full: bool,
    act: VisionAct,
}

impl Layer {
    pub(super) fn load(
        ld: &Loader<'_>,
        l: usize,
        d: usize,
        inter: usize,
        full: bool,
        act: VisionAct,
    ) -> Result<Layer, ModelError> {
        Self::load_named(ld, &|what| blk(l, what), d, inter, full, act)
    }

    /// [`Layer::load`] with the tensors named by `name` (`attn_norm`, `attn_q`, … as the vision layers call them).
    pub(crate) fn load_named(
        ld: &Loader<'_>,
        name: &dyn Fn(&str) -> String,
        d: usize,
        inter: usize,
        full: bool,
        act: VisionAct,
    ) -> Result<Layer, ModelError> {
        let blk = |what: &str| name(what);
        let lin = |what: &str, rows, cols| Linear::load(ld, &blk(what), rows, cols, true);
        Ok(Layer {
            norm1: Norm::load(ld, &blk("attn_norm"), d)?,
            q: lin("attn_q", d, d)?,
            k: lin("attn_k", d, d)?,
            v: lin("attn_v", d, d)?,
            o: lin("attn_o", d, d)?,
            norm2: Norm::load(ld, &blk("ffn_norm"), d)?,
            fc1: lin("ffn_up", inter, d)?,
            fc2: lin("ffn_down", d, inter)?,
            full,
            act,
        })
    }

    /// Runs the layer in place on `x` (`[n, d]`), attention restricted to `spans` (RoPE when `rope` is given).
    pub(crate) fn forward(
        &self,
        ex: &Exec,
        x: &mut [f32],
        heads: usize,
        eps: f32,
        rope: Option<&RopeTables<'_>>,
        spans: &[Range<usize>],
    ) {
        let d = self.q.rows();
        let n = x.len() / d;
        let hd = d / heads;
        let mut h = vec![0f32; x.len()];
        self.norm1.run(x, eps, &mut h);
        let (mut q, mut k, mut v) = (vec![0f32; n * d], vec![0f32; n * d], vec![0f32; n * d]);
        self.q.run(ex, &h, n, &mut q);
        self.k.run(ex, &h, n, &mut k);
        self.v.run(ex, &h, n, &mut v);
        if let Some(rope) = rope {
            rope_rotate(&mut q, heads, hd, rope.cos, rope.sin);
            rope_rotate(&mut k, heads, hd, rope.cos, rope.sin);
        }
        let shape = AttnShape {
            heads,
            kv_heads: heads,
            head_dim: hd,
        };
        let chunk = KvChunk {
            start: 0,
            k: KvRows::F32(&k),
            v: KvRows::F32(&v),
        };
        let scale = 1.0 / (hd as f32).sqrt();
        attention(
            ex,
            shape,
            &q,
            0,
            n,
            &[chunk],
            Mask::BlockDiagonal(spans),
            scale,
            &mut h,
        );
        self.o.run(ex, &h, n, &mut q);
        x.iter_mut().zip(&q).for_each(|(a, b)| *a += b);
        self.norm2.run(x, eps, &mut h);
        let mut f = vec![0f32; n * self.fc1.rows()];
        self.fc1.run(ex, &h, n, &mut f);
        match self.act {
            VisionAct::GeluErf => gelu_erf(&mut f),
            VisionAct::GeluTanh => gelu_tanh(&mut f),
        }
        self.fc2.run(ex, &f, n, &mut q);
        x.iter_mut().zip(&q).for_each(|(a, b)| *a += b);
    }
}
