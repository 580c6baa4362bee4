//! Feed-forward layers: a dense SwiGLU, or a Mixture of Experts.
//!
//! MoE routing, as transformers does it for Qwen2-MoE, Qwen3-MoE, OLMoE and Mixtral: router logits `x · Wr`,
//! softmax over all experts (in f32), the top-k, optionally renormalised to sum to one, then the weighted sum of the
//! chosen experts' SwiGLU outputs. Qwen2-MoE adds a shared expert scaled by `sigmoid(x · w)`.
//! For a batch of tokens each expert runs once on the rows routed to it. Experts the file prunes
//! (`moe.pruned_experts`) are absent and never chosen: the top-k skips them, the weights of the others are
//! unchanged.
//!
//! Muse Spark routes differently: sigmoid scores of the router logits (scaled by `router_scale`), the choice made
//! on scores plus a per-expert correction bias, the chosen scores renormalised (`sum + 1e-15`) and multiplied by
//! `routed_scale`; and its experts run at a pooled width: `ffn_pre_proj`, a centered RMSNorm, the experts each
//! followed by the shared input-scaled `ffn_post_expert_norm`, then `ffn_post_proj` of the weighted sum.

use crate::config::names::{blk, expert};
use crate::config::{ModelConfig, Router};
use crate::ops;
use crate::paging::{Pager, Resident};
use crate::weights::{Loader, Vector, Weight};
use crate::ModelError;
use flint_kernels::Exec;
use std::sync::Arc;

/// A gated feed-forward: `down(act(gate(x)) * up(x))`, SwiGLU unless [`Mlp::with_act`] says otherwise.
#[derive(Debug)]
pub struct Mlp {
    gate: Weight,
    up: Weight,
    down: Weight,
    act: crate::config::FfnAct,
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
            act: Default::default(),
        })
    }

    /// The same layer with another gate activation (GeGLU for Gemma).
    pub fn with_act(self, act: crate::config::FfnAct) -> Mlp {
        Mlp { act, ..self }
    }

    /// Runs `n` rows of `x`.
    pub fn forward(&self, ex: &Exec, x: &[f32], n: usize) -> Vec<f32> {
        let w = self.gate.rows;
        let mut g = vec![0f32; n * w];
        let mut u = vec![0f32; n * w];
        ops::project(ex, x, n, &mut [(&self.gate, &mut g), (&self.up, &mut u)]);
        self.finish(ex, g, &u, n, None)
    }

    /// As [`Mlp::forward`], with the weights read from `r` (the expert pager's copy) instead of the map.
    fn forward_in(&self, ex: &Exec, x: &[f32], n: usize, r: &Resident) -> Vec<f32> {
        let w = self.gate.rows;
        let mut g = vec![0f32; n * w];
        let mut u = vec![0f32; n * w];
        ex.matmul(self.gate.view_in(r), x, n, &mut g);
        ex.matmul(self.up.view_in(r), x, n, &mut u);
        self.finish(ex, g, &u, n, Some(r))
    }

    /// The file span of the three matrices (an expert's paging group): offset and length.
    fn span(&self) -> (u64, u64) {
        let rs = [self.gate.range(), self.up.range(), self.down.range()];
        let start = rs.iter().map(|r| r.0).min().unwrap_or(0);
        let end = rs.iter().map(|r| r.0 + r.1 as u64).max().unwrap_or(0);
        (start, end - start)
    }

    /// As [`Mlp::forward`] with the rows already quantized by `flint_kernels::quantize_acts` (quant weights only):
    /// the experts of a token share one quantization of its input.
    pub fn forward_quantized(
        &self,
        ex: &Exec,
        xq: &[flint_kernels::BlockQ8A],
        n: usize,
    ) -> Vec<f32> {
        self.forward_quantized_in(ex, xq, n, None)
    }

    /// As [`Mlp::forward_quantized`], with the weights from `r` (the expert pager's copy) when given.
    fn forward_quantized_in(
        &self,
        ex: &Exec,
        xq: &[flint_kernels::BlockQ8A],
        n: usize,
        r: Option<&Resident>,
    ) -> Vec<f32> {
        let w = self.gate.rows;
        let mut g = vec![0f32; n * w];
        let mut u = vec![0f32; n * w];
        let (gw, uw) = match r {
            Some(r) => (self.gate.view_in(r), self.up.view_in(r)),
            None => (self.gate.view(), self.up.view()),
        };
        ex.matmul_quantized(gw, xq, n, &mut g);
        ex.matmul_quantized(uw, xq, n, &mut u);
        self.finish(ex, g, &u, n, r)
    }

    /// Whether gate and up are quantized (so [`Mlp::forward_quantized`] applies).
    pub fn takes_quantized(&self) -> bool {
        self.gate.is_quantized() && self.up.is_quantized()
    }

    fn finish(
        &self,
        ex: &Exec,
        mut g: Vec<f32>,
        u: &[f32],
        n: usize,
        r: Option<&Resident>,
    ) -> Vec<f32> {
        ops::glu(&mut g, u, self.act);
        let mut out = vec![0f32; n * self.down.rows];
        let dw = match r {
            Some(r) => self.down.view_in(r),
            None => self.down.view(),
        };
        ex.matmul(dw, &g, n, &mut out);
        out
    }

    /// Bytes of weights one pass reads.
    pub fn bytes(&self) -> usize {
        self.gate.bytes() + self.up.bytes() + self.down.bytes()
    }
}

/// Muse Spark's pooled expert width: the projections and norms around the experts.
#[derive(Debug)]
struct Pooled {
    pre_proj: Weight,
    pre_norm: Vector,
    post_expert_norm: Vector,
    post_proj: Weight,
    eps: f32,
    post_eps: f32,
}

/// A routed expert layer.
#[derive(Debug)]
pub struct Moe {
    router: Weight,
    /// `None`: pruned from the file.
    experts: Vec<Option<Mlp>>,
    shared: Option<Mlp>,
    shared_gate: Option<Weight>,
    top_k: usize,
    norm_topk: bool,
    kind: Router,
    bias: Option<Vector>,
    router_scale: Option<f32>,
    routed_scale: Option<f32>,
    pooled: Option<Pooled>,
    /// The expert pager and this layer's index among the MoE layers, when experts are paged.
    pager: Option<(Arc<Pager>, usize)>,
}

impl Moe {
    pub fn load(ld: &Loader<'_>, c: &ModelConfig, l: usize) -> Result<Moe, ModelError> {
        let m = c
            .moe
            .as_ref()
            .ok_or_else(|| ModelError::Invalid(format!("layer {l} is MoE without a moe config")))?;
        let h = c.hidden_size;
        // Experts read the pooled width where there is one.
        let eh = m.pooled_width.unwrap_or(h);
        let pruned = ld.pruned_experts(l, m.num_experts, m.top_k)?;
        let experts = (0..m.num_experts)
            .map(|e| match pruned[e] {
                true => Ok(None),
                false => Mlp::load(ld, &expert(l, e, ""), eh, m.expert_width).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pooled = match m.pooled_width {
            Some(p) => Some(Pooled {
                pre_proj: ld.matrix(&blk(l, "ffn_pre_proj"), p, h)?,
                pre_norm: ld.vector(&blk(l, "ffn_pre_norm"), p)?,
                post_expert_norm: ld.vector(&blk(l, "ffn_post_expert_norm"), p)?,
                post_proj: ld.matrix(&blk(l, "ffn_post_proj"), h, p)?,
                eps: c.rms_norm_eps,
                post_eps: c
                    .sandwich
                    .as_ref()
                    .map_or(c.rms_norm_eps, |s| s.post_norm_eps),
            }),
            None => None,
        };
        let bias = if m.router_bias {
            Some(ld.vector(&blk(l, "ffn_router_bias"), m.num_experts)?)
        } else {
            None
        };
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
            kind: m.router,
            bias,
            router_scale: m.router_scale,
            routed_scale: m.routed_scale,
            pooled,
            pager: None,
        })
    }

    /// Routes each of the `n` rows of `x`; returns the router logits `[n, experts]` and the chosen (expert, weight)
    /// pairs per row.
    pub fn route(&self, ex: &Exec, x: &[f32], n: usize) -> (Vec<f32>, Vec<Vec<(usize, f32)>>) {
        let ne = self.experts.len();
        let mut logits = vec![0f32; n * ne];
        ex.matmul(self.router.view(), x, n, &mut logits);
        if let Some(s) = self.router_scale {
            logits.iter_mut().for_each(|v| *v *= s);
        }
        // The choice never falls on a pruned expert.
        let pick = |mut score: Vec<f32>| {
            for (s, x) in score.iter_mut().zip(&self.experts) {
                if x.is_none() {
                    *s = f32::NEG_INFINITY;
                }
            }
            ops::top_k(&score, self.top_k)
        };
        let choices = logits
            .chunks_exact(ne)
            .map(|row| {
                let mut p = row.to_vec();
                let idx = match self.kind {
                    Router::Softmax => {
                        ops::softmax(&mut p);
                        pick(p.clone())
                    }
                    Router::Sigmoid => {
                        ops::sigmoid(&mut p);
                        match &self.bias {
                            Some(b) => pick(p.iter().zip(b.get()).map(|(s, b)| s + b).collect()),
                            None => pick(p.clone()),
                        }
                    }
                };
                let sum: f32 = idx.iter().map(|&e| p[e]).sum();
                let mut scale = match (self.norm_topk, self.kind) {
                    (false, _) => 1.0,
                    (true, Router::Softmax) => 1.0 / sum,
                    (true, Router::Sigmoid) => 1.0 / (sum + 1e-15),
                };
                let routed = self.routed_scale.unwrap_or(1.0);
                if self.kind == Router::Softmax {
                    scale *= routed;
                }
                idx.into_iter()
                    .map(|e| {
                        // transformers: (w / (sum + eps)) * routed_scaling_factor, in that order.
                        let w = p[e] * scale;
                        (
                            e,
                            if self.kind == Router::Sigmoid {
                                w * routed
                            } else {
                                w
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        (logits, choices)
    }

    /// Runs `n` rows of `x`. Errors only when a paged expert cannot be read.
    pub fn forward(
        &self,
        ex: &Exec,
        x: &[f32],
        n: usize,
        trace: Option<&mut crate::Trace>,
    ) -> Result<Vec<f32>, ModelError> {
        let (logits, choices) = self.route(ex, x, n);
        if let Some(t) = trace {
            t.router_logits.push(logits);
            t.routes.push(choices.clone());
        }
        let pooled_in;
        let (ein, eh) = match &self.pooled {
            Some(p) => {
                let pw = p.pre_norm.get().len();
                let mut xp = vec![0f32; n * pw];
                ex.matmul(p.pre_proj.view(), x, n, &mut xp);
                ops::rms_norm_inplace(&mut xp, p.pre_norm.get(), p.eps);
                pooled_in = xp;
                (&pooled_in[..], pw)
            }
            None => (x, x.len() / n),
        };
        let mut out = vec![0f32; n * eh];
        // Group rows by expert so each expert's weights are read once per batch.
        let mut rows: Vec<Vec<(usize, f32)>> = vec![Vec::new(); self.experts.len()];
        for (t, ch) in choices.iter().enumerate() {
            for &(e, w) in ch {
                rows[e].push((t, w));
            }
        }
        // Quantize each row once for all the experts it is routed to (when the experts take quantized input).
        let kb = eh / flint_kernels::QK;
        let shared_q =
            eh % flint_kernels::QK == 0 && self.experts.iter().flatten().all(Mlp::takes_quantized);
        let mut xq = Vec::new();
        if shared_q {
            xq.resize(n * kb, bytemuck::Zeroable::zeroed());
            flint_kernels::quantize_acts(ein, &mut xq);
        }
        let (mut xe, mut xeq) = (Vec::new(), Vec::new());
        let experts = &self.experts;
        let pooled = &self.pooled;
        let mut run = |e: usize, r: Option<&Resident>| {
            let list = &rows[e];
            // Routing never picks a pruned expert.
            let Some(expert) = &experts[e] else { return };
            let mut y = if shared_q {
                xeq.clear();
                for &(t, _) in list {
                    xeq.extend_from_slice(&xq[t * kb..(t + 1) * kb]);
                }
                expert.forward_quantized_in(ex, &xeq, list.len(), r)
            } else {
                xe.clear();
                for &(t, _) in list {
                    xe.extend_from_slice(&ein[t * eh..(t + 1) * eh]);
                }
                match r {
                    Some(r) => expert.forward_in(ex, &xe, list.len(), r),
                    None => expert.forward(ex, &xe, list.len()),
                }
            };
            if let Some(p) = pooled {
                ops::rms_norm_input_scaled(&mut y, p.post_expert_norm.get(), p.post_eps);
            }
            for (i, &(t, w)) in list.iter().enumerate() {
                out[t * eh..(t + 1) * eh]
                    .iter_mut()
                    .zip(&y[i * eh..(i + 1) * eh])
                    .for_each(|(o, v)| *o += w * v);
            }
        };
        let used: Vec<usize> = (0..rows.len()).filter(|&e| !rows[e].is_empty()).collect();
        match &self.pager {
            None => used.iter().for_each(|&e| run(e, None)),
            Some((p, li)) => {
                // Resident experts first, while the missing ones are read; then each missing one as it arrives.
                p.want(*li, &used);
                let mut pending = Vec::new();
                for &e in &used {
                    match p.try_take(*li, e) {
                        Some(h) => run(e, Some(&h)),
                        None => pending.push(e),
                    }
                }
                for e in pending {
                    let h = p.take(*li, e)?;
                    run(e, Some(&h));
                }
            }
        }
        if let Some(p) = &self.pooled {
            let hh = p.post_proj.rows;
            let mut o = vec![0f32; n * hh];
            ex.matmul(p.post_proj.view(), &out, n, &mut o);
            out = o;
        }
        if let Some(sh) = &self.shared {
            let h = x.len() / n;
            let y = sh.forward(ex, x, n);
            let mut g = vec![1f32; n];
            if let Some(sg) = &self.shared_gate {
                ex.matmul(sg.view(), x, n, &mut g);
                ops::sigmoid(&mut g);
            }
            for t in 0..n {
                out[t * h..(t + 1) * h]
                    .iter_mut()
                    .zip(&y[t * h..(t + 1) * h])
                    .for_each(|(o, v)| *o += g[t] * v);
            }
        }
        Ok(out)
    }

    /// The file span (offset, length) of each expert's paging group (empty for a pruned expert, which is never
    /// wanted).
    pub(crate) fn spans(&self) -> Vec<(u64, u64)> {
        self.experts
            .iter()
            .map(|x| x.as_ref().map_or((0, 0), Mlp::span))
            .collect()
    }

    /// Pages this layer's experts through `pager`, as MoE layer `index`.
    pub(crate) fn set_pager(&mut self, pager: Arc<Pager>, index: usize) {
        self.pager = Some((pager, index));
    }

    /// Pre-gating: routes `n` rows of `x` (already normed as this layer's input would be) and has the pager
    /// prefetch the experts they pick, the most picked first.
    pub(crate) fn prefetch(&self, ex: &Exec, x: &[f32], n: usize) {
        let Some((p, li)) = &self.pager else { return };
        let (_, choices) = self.route(ex, x, n);
        let mut count = vec![0u32; self.experts.len()];
        for (e, _) in choices.iter().flatten() {
            count[*e] += 1;
        }
        let mut order: Vec<usize> = (0..count.len()).filter(|&e| count[e] > 0).collect();
        order.sort_by_key(|&e| std::cmp::Reverse(count[e]));
        p.prefetch(*li, &order);
    }

    /// Whether this layer pages its experts with pre-gating.
    pub(crate) fn prefetching(&self) -> bool {
        self.pager.as_ref().is_some_and(|(p, _)| p.prefetching())
    }
}

/// A block's feed-forward.
#[derive(Debug)]
pub enum Ffn {
    Dense(Mlp),
    Moe(Box<Moe>),
}

impl Ffn {
    pub fn forward(
        &self,
        ex: &Exec,
        x: &[f32],
        n: usize,
        trace: Option<&mut crate::Trace>,
    ) -> Result<Vec<f32>, ModelError> {
        match self {
            Ffn::Dense(m) => Ok(m.forward(ex, x, n)),
            Ffn::Moe(m) => m.forward(ex, x, n, trace),
        }
    }
}
