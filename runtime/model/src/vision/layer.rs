//! One pre-LayerNorm ViT layer of the Muse vision tower, over all patches of a call in window order:
//! `x += proj(attention(rope(q), rope(k), v))` on `norm1(x)`, then `x += fc2(gelu(fc1(norm2(x))))`; every linear
//! has a bias, GELU is the erf form (transformers' `gelu`; Qwen3-VL's tanh form by `act`). Attention is
//! non-causal multi-head attention (as many
//! key/value heads as query heads, scale `head_dim^-0.5`) within spans: one span per window, or per image / video
//! frame on the full-attention layers.

use super::Linear;
use crate::config::vision::names::bias;
use crate::config::vision::VisionAct;
use crate::weights::{Loader, Vector};
use crate::ModelError;
use flint_kernels::ops::{gelu_erf, gelu_tanh, layer_norm, rope_rotate, silu};
use flint_kernels::{attention, AttnShape, Exec, KvChunk, KvRows, Mask};
use std::ops::Range;

/// A LayerNorm's weight and bias, or an RMSNorm's weight (no bias).
pub(crate) struct Norm {
    w: Vector,
    b: Option<Vector>,
}

impl Norm {
    pub(crate) fn load(ld: &Loader<'_>, name: &str, d: usize) -> Result<Norm, ModelError> {
        Ok(Norm {
            w: ld.vector(name, d)?,
            b: Some(ld.vector(&bias(name), d)?),
        })
    }

    /// An RMSNorm of weight `name`.
    pub(crate) fn load_rms(ld: &Loader<'_>, name: &str, d: usize) -> Result<Norm, ModelError> {
        Ok(Norm {
            w: ld.vector(name, d)?,
            b: None,
        })
    }

    /// `out = layer_norm(x)` (or the RMSNorm) over rows of the weight's width.
    pub(crate) fn run(&self, x: &[f32], eps: f32, out: &mut [f32]) {
        let w = self.w.get();
        match &self.b {
            Some(b) => layer_norm(x, w.len(), w, Some(b.get()), eps, out),
            None => crate::ops::rms_norm(x, w, eps, out),
        }
    }
}

/// The rotary tables of a call: `[patches, head_dim / 2]` each, in window order.
pub(crate) struct RopeTables<'a> {
    pub cos: &'a [f32],
    pub sin: &'a [f32],
}

/// How a layer is built: its norms, its MLP, its attention span and activation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Style {
    /// Full attention over each image / frame (else within windows).
    pub full: bool,
    pub act: VisionAct,
    /// RMSNorms instead of LayerNorms.
    pub rms_norm: bool,
    /// A SwiGLU MLP (`ffn_gate`, `ffn_up`, `ffn_down`).
    pub glu: bool,
    /// The key projection has no bias (Whisper's, Qwen2.5-Omni's audio encoder).
    pub no_k_bias: bool,
}

pub(crate) struct Layer {
    norm1: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm2: Norm,
    /// SwiGLU's gate (Qwen2.5-VL): `fc2(act(gate(x)) * fc1(x))`; without it `fc2(act(fc1(x)))`.
    gate: Option<Linear>,
    fc1: Linear,
    fc2: Linear,
    /// Full attention over each image / frame; otherwise within windows.
    pub full: bool,
    act: VisionAct,
}

impl Layer {
    /// Binds a layer whose tensors `name` gives (`attn_norm`, `attn_q`, … as the vision layers call them).
    pub(crate) fn load_named(
        ld: &Loader<'_>,
        name: &dyn Fn(&str) -> String,
        d: usize,
        inter: usize,
        style: Style,
    ) -> Result<Layer, ModelError> {
        let blk = |what: &str| name(what);
        let lin = |what: &str, rows, cols| Linear::load(ld, &blk(what), rows, cols, true);
        let norm = |what: &str| {
            if style.rms_norm {
                Norm::load_rms(ld, &blk(what), d)
            } else {
                Norm::load(ld, &blk(what), d)
            }
        };
        Ok(Layer {
            norm1: norm("attn_norm")?,
            q: lin("attn_q", d, d)?,
            k: Linear::load(ld, &blk("attn_k"), d, d, !style.no_k_bias)?,
            v: lin("attn_v", d, d)?,
            o: lin("attn_o", d, d)?,
            norm2: norm("ffn_norm")?,
            gate: if style.glu {
                Some(lin("ffn_gate", inter, d)?)
            } else {
                None
            },
            fc1: lin("ffn_up", inter, d)?,
            fc2: lin("ffn_down", d, inter)?,
            full: style.full,
            act: style.act,
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
        let g = self.gate.as_ref().map_or(&self.fc1, |g| g);
        g.run(ex, &h, n, &mut f);
        match self.act {
            VisionAct::GeluErf => gelu_erf(&mut f),
            VisionAct::GeluTanh => gelu_tanh(&mut f),
            VisionAct::Silu => silu(&mut f),
        }
        if self.gate.is_some() {
            let mut u = vec![0f32; f.len()];
            self.fc1.run(ex, &h, n, &mut u);
            f.iter_mut().zip(&u).for_each(|(a, b)| *a *= b);
        }
        self.fc2.run(ex, &f, n, &mut q);
        x.iter_mut().zip(&q).for_each(|(a, b)| *a += b);
    }
}
