//! Feed-forward layers: a dense SwiGLU, or a Mixture of Experts.
//!
//! MoE routing, as transformers does it for Qwen2-MoE, Qwen3-MoE, OLMoE and Mixtral: router logits `x · Wr`,
//! softmax over all experts (in f32), the top-k, optionally renormalised to sum to one, then the weighted sum of the
//! chosen experts' SwiGLU outputs. Qwen2-MoE adds a shared expert scaled by `sigmoid(x · w)`.
//! For a batch of tokens each expert runs once on the rows routed to it.

use crate::config::names::{blk, expert};
use crate::config::ModelConfig;
use crate::ops;
use crate::weights::{Loader, Weight};
use crate::ModelError;

/// A SwiGLU: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
pub struct Mlp {
    gate: Weight,
    up: Weight,
    down: Weight,
}

impl Mlp {
    /// Loads `{prefix}_gate`, `{prefix}_up`, `{prefix}_down` (or `{prefix}.gate` … when `prefix` ends with a dot).
    pub fn load(
        ld: &Loader<'_>,
        prefix: &str,
        hidden: usize,
        width: usize,
    ) -> Result<Mlp, ModelError> {
        let sep = if prefix.ends_with('.') { "" } else { "_" };
        Ok(Mlp {
            gate: ld.matrix(&format!("{prefix}{sep}gate"), width, hidden)?,
            up: ld.matrix(&format!("{prefix}{sep}up"), width, hidden)?,
            down: ld.matrix(&format!("{prefix}{sep}down"), hidden, width)?,
        })
    }

    /// Runs `n` rows of `x`.
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let w = self.gate.rows;
        let mut g = vec![0f32; n * w];
        let mut u = vec![0f32; n * w];
        ops::project(x, n, &mut [(&self.gate, &mut g), (&self.up, &mut u)]);
        self.finish(g, &u, n)
    }

    /// As [`Mlp::forward`] with the rows already quantized by `flint_kernels::quantize_acts` (quant weights only):
    /// the experts of a token share one quantization of its input.
    pub fn forward_quantized(&self, xq: &[flint_kernels::BlockQ8A], n: usize) -> Vec<f32> {
        let w = self.gate.rows;
        let mut g = vec![0f32; n * w];
        let mut u = vec![0f32; n * w];
        flint_kernels::matmul_quantized(self.gate.view(), xq, n, &mut g);
        flint_kernels::matmul_quantized(self.up.view(), xq, n, &mut u);
        self.finish(g, &u, n)
    }

    /// Whether gate and up are quantized (so [`Mlp::forward_quantized`] applies).
    pub fn takes_quantized(&self) -> bool {
        self.gate.is_quantized() && self.up.is_quantized()
    }

    fn finish(&self, mut g: Vec<f32>, u: &[f32], n: usize) -> Vec<f32> {
        g.iter_mut()
            .zip(u)
            .for_each(|(a, b)| *a = ops::silu(*a) * b);
        let mut out = vec![0f32; n * self.down.rows];
        flint_kernels::matmul(self.down.view(), &g, n, &mut out);
        out
    }

    /// Bytes of weights one pass reads.
    pub fn bytes(&self) -> usize {
        self.gate.bytes() + self.up.bytes() + self.down.bytes()
    }
}

/// A routed expert layer.
#[derive(Debug)]
pub struct Moe {
    router: Weight,
    experts: Vec<Mlp>,
    shared: Option<Mlp>,
    shared_gate: Option<Weight>,
    top_k: usize,
    norm_topk: bool,
}

impl Moe {
    pub fn load(ld: &Loader<'_>, c: &ModelConfig, l: usize) -> Result<Moe, ModelError> {
        let m = c
            .moe
            .as_ref()
            .ok_or_else(|| ModelError::Invalid(format!("layer {l} is MoE without a moe config")))?;
        let h = c.hidden_size;
        let experts = (0..m.num_experts)
            .map(|e| Mlp::load(ld, &expert(l, e, ""), h, m.expert_width))
            .collect::<Result<Vec<_>, _>>()?;
        let shared = m
            .shared_expert_width
            .map(|w| Mlp::load(ld, &blk(l, "shexp."), h, w))
            .transpose()?;
        let shared_gate = if m.shared_expert_gate {
            Some(ld.matrix(&blk(l, "shexp_gate"), 1, h)?)
        } else {
            None
        };
        Ok(Moe {
            router: ld.matrix(&blk(l, "ffn_router"), m.num_experts, h)?,
            experts,
            shared,
            shared_gate,
            top_k: m.top_k,
            norm_topk: m.norm_topk_prob,
        })
    }

    /// Routes each of the `n` rows of `x`; returns the router logits `[n, experts]` and the chosen (expert, weight)
    /// pairs per row.
    pub fn route(&self, x: &[f32], n: usize) -> (Vec<f32>, Vec<Vec<(usize, f32)>>) {
        let ne = self.experts.len();
        let mut logits = vec![0f32; n * ne];
        flint_kernels::matmul(self.router.view(), x, n, &mut logits);
        let choices = logits
            .chunks_exact(ne)
            .map(|row| {
                let mut p = row.to_vec();
                ops::softmax(&mut p);
                let idx = ops::top_k(&p, self.top_k);
                let sum: f32 = idx.iter().map(|&e| p[e]).sum();
                let scale = if self.norm_topk { 1.0 / sum } else { 1.0 };
                idx.into_iter().map(|e| (e, p[e] * scale)).collect()
            })
            .collect();
        (logits, choices)
    }

    /// Runs `n` rows of `x`.
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        router_trace: Option<&mut Vec<Vec<f32>>>,
    ) -> Vec<f32> {
        let h = x.len() / n;
        let (logits, choices) = self.route(x, n);
        if let Some(t) = router_trace {
            t.push(logits);
        }
        let mut out = vec![0f32; n * h];
        // Group rows by expert so each expert's weights are read once per batch.
        let mut rows: Vec<Vec<(usize, f32)>> = vec![Vec::new(); self.experts.len()];
        for (t, ch) in choices.iter().enumerate() {
            for &(e, w) in ch {
                rows[e].push((t, w));
            }
        }
        // Quantize each row once for all the experts it is routed to (when the experts take quantized input).
        let kb = h / flint_kernels::QK;
        let shared_q = h % flint_kernels::QK == 0 && self.experts.iter().all(Mlp::takes_quantized);
        let mut xq = Vec::new();
        if shared_q {
            xq.resize(n * kb, bytemuck::Zeroable::zeroed());
            flint_kernels::quantize_acts(x, &mut xq);
        }
        let (mut xe, mut xeq) = (Vec::new(), Vec::new());
        for (e, list) in rows.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let y = if shared_q {
                xeq.clear();
                for &(t, _) in list {
                    xeq.extend_from_slice(&xq[t * kb..(t + 1) * kb]);
                }
                self.experts[e].forward_quantized(&xeq, list.len())
            } else {
                xe.clear();
                for &(t, _) in list {
                    xe.extend_from_slice(&x[t * h..(t + 1) * h]);
                }
                self.experts[e].forward(&xe, list.len())
            };
            for (i, &(t, w)) in list.iter().enumerate() {
                out[t * h..(t + 1) * h]
                    .iter_mut()
                    .zip(&y[i * h..(i + 1) * h])
                    .for_each(|(o, v)| *o += w * v);
            }
        }
        if let Some(sh) = &self.shared {
            let y = sh.forward(x, n);
            let mut g = vec![1f32; n];
            if let Some(sg) = &self.shared_gate {
                flint_kernels::matmul(sg.view(), x, n, &mut g);
                g.iter_mut().for_each(|v| *v = ops::sigmoid(*v));
            }
            for t in 0..n {
                out[t * h..(t + 1) * h]
                    .iter_mut()
                    .zip(&y[t * h..(t + 1) * h])
                    .for_each(|(o, v)| *o += g[t] * v);
            }
        }
        out
    }
}

/// A block's feed-forward.
#[derive(Debug)]
pub enum Ffn {
    Dense(Mlp),
    Moe(Moe),
}

impl Ffn {
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        router_trace: Option<&mut Vec<Vec<f32>>>,
    ) -> Vec<f32> {
        match self {
            Ffn::Dense(m) => m.forward(x, n),
            Ffn::Moe(m) => m.forward(x, n, router_trace),
        }
    }
}
