//! The text decoder: pre-norm Llama-style blocks (RMSNorm, RoPE, grouped-query attention over the paged KV cache)
//! whose feed-forward is either a dense SwiGLU or a routed Mixture of Experts (see `moe.rs`), run over a [`Batch`]
//! of rows from any number of sequences.
//!
//! Variants covered by [`ModelConfig`]: q/k/v bias (Qwen2), per-head q/k RMSNorm (Qwen3), whole-projection q/k
//! RMSNorm (OLMoE), shared experts with a sigmoid gate (Qwen2-MoE), top-k renormalisation (Qwen3-MoE, Mixtral);
//! and Muse Spark: a scaleless RMSNorm after the embedding, sandwich norms (centered `1 + w` before, scaleless after
//! attention, input-scaled after the feed-forward) with residual gates `alpha * x + beta * y`, scaleless per-head
//! q/k norms with q scaled by `qk_scale`, a scaleless per-head norm of the attention output and a sigmoid gate of
//! the layer input before `o_proj`, sliding-window and NoPE layers, sigmoid routing at a pooled expert width, and
//! logits scaled then tanh-capped. Importers fold `1 + w` and the residual gates' alpha and beta into the stored
//! tensors (docs/FORMAT.md), so the runtime multiplies by them as they are.

use crate::batch::{Batch, Input, LayerHook, Pos};
use crate::config::names::{blk, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use crate::config::{ModelConfig, QkNorm, SandwichKind};
use crate::kv::{KvOptions, KvStore, SeqId};
use crate::moe::{Ffn, Mlp, Moe};
use crate::ops;
use crate::weights::{Loader, Vector, Weight};
use crate::ModelError;
use flint_format::FlintFile;
use flint_kernels::ops::{Rope, RopeKind};
use flint_kernels::{AttnShape, Exec, Mask};

struct Attention {
    q: Weight,
    k: Weight,
    v: Weight,
    o: Weight,
    q_bias: Option<Vector>,
    k_bias: Option<Vector>,
    v_bias: Option<Vector>,
    o_bias: Option<Vector>,
    q_norm: Option<Vector>,
    k_norm: Option<Vector>,
    /// Muse Spark's sigmoid output gate.
    gate: Option<Weight>,
}

/// A Muse sandwich: the norms after attention and feed-forward, and the residual gates (Spark) or none (Glimmer).
struct Sandwich {
    kind: SandwichKind,
    /// eps of the post-attention and post-feed-forward norms.
    post_eps: f32,
    /// Glimmer's weighted post-attention norm; None: Spark's scaleless one.
    post_attn_norm: Option<Vector>,
    post_ffn_norm: Vector,
    /// Spark's `alpha`/`beta` for attention and feed-forward; None: plain adds.
    gates: Option<[Vector; 4]>,
}

impl Sandwich {
    fn gate(&self, ffn: bool) -> Option<(&Vector, &Vector)> {
        let g = self.gates.as_ref()?;
        Some(if ffn { (&g[2], &g[3]) } else { (&g[0], &g[1]) })
    }
}

struct Block {
    attn_norm: Vector,
    attn: Attention,
    ffn_norm: Vector,
    ffn: Ffn,
    sandwich: Option<Sandwich>,
    window: Option<usize>,
    rope: bool,
}

/// A loaded model: the config and zero-copy handles into the mapped file.
pub struct Model {
    pub config: ModelConfig,
    file: FlintFile,
    embd: Weight,
    blocks: Vec<Block>,
    norm: Vector,
    output: Weight,
    rope: Rope,
    /// The sliding layers' own RoPE, when their theta differs (Gemma 3).
    rope_sliding: Option<Rope>,
    exec: Exec,
    /// The expert pager, when experts are paged under a budget.
    pager: Option<std::sync::Arc<crate::paging::Pager>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("file", &self.file.path())
            .finish()
    }
}

/// Per-layer intermediate values, recorded when asked (conformance tests compare them with transformers).
#[derive(Debug, Default, Clone)]
pub struct Trace {
    /// `layers + 1` entries of `[rows, hidden]`: the embeddings, the output of each block but the last, and the
    /// final-normed output of the last block (transformers' `hidden_states` convention).
    pub hidden_states: Vec<Vec<f32>>,
    /// One `[rows, experts]` entry per MoE layer: router logits before softmax (or sigmoid).
    pub router_logits: Vec<Vec<f32>>,
    /// One entry per MoE layer: for each row, the experts it was routed to with their weights.
    pub routes: Vec<Vec<Vec<(usize, f32)>>>,
}

/// One sequence in a cache of its own: the single-prompt convenience over [`KvStore`].
#[derive(Debug)]
pub struct KvCache {
    pub store: KvStore,
    pub seq: SeqId,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.store.len(self.seq).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The residual add: `x += y`, or Muse's gated `x = alpha * x + beta * y`.
fn residual(x: &mut [f32], y: &[f32], gate: Option<(&Vector, &Vector)>) {
    match gate {
        Some((alpha, beta)) => ops::gated_residual(x, y, alpha.get(), beta.get()),
        None => x.iter_mut().zip(y).for_each(|(v, d)| *v += d),
    }
}

impl Model {
    /// Reads the config from the file's metadata and binds every tensor, checking each shape.
    pub fn load(file: FlintFile) -> Result<Model, ModelError> {
        let ld = Loader::new(&file);
        let config = ld.config()?;
        let c = &config;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let (qd, kvd) = (c.num_heads * hd, c.num_kv_heads * hd);
        let embd = ld.matrix(TOK_EMBD, c.vocab_size, h)?;
        let output = if c.tie_word_embeddings {
            embd.clone()
        } else {
            ld.matrix(OUTPUT, c.vocab_size, h)?
        };
        let mut blocks = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let bias = |what: &str, n: usize, on: bool| -> Result<Option<Vector>, ModelError> {
                if on {
                    ld.vector(&blk(l, what), n).map(Some)
                } else {
                    Ok(None)
                }
            };
            let (qn, kn) = match c.qk_norm {
                QkNorm::None | QkNorm::PerHeadScaleless => (None, None),
                QkNorm::PerHead => (Some(hd), Some(hd)),
                QkNorm::Full => (Some(qd), Some(kvd)),
            };
            let attn = Attention {
                q: ld.matrix(&blk(l, "attn_q"), qd, h)?,
                k: ld.matrix(&blk(l, "attn_k"), kvd, h)?,
                v: ld.matrix(&blk(l, "attn_v"), kvd, h)?,
                o: ld.matrix(&blk(l, "attn_o"), h, qd)?,
                q_bias: bias("attn_q.bias", qd, c.qkv_bias)?,
                k_bias: bias("attn_k.bias", kvd, c.qkv_bias)?,
                v_bias: bias("attn_v.bias", kvd, c.qkv_bias)?,
                o_bias: bias("attn_o.bias", h, c.o_bias)?,
                q_norm: qn
                    .map(|n| ld.vector(&blk(l, "attn_q_norm"), n))
                    .transpose()?,
                k_norm: kn
                    .map(|n| ld.vector(&blk(l, "attn_k_norm"), n))
                    .transpose()?,
                gate: if c.attn_gate {
                    Some(ld.matrix(&blk(l, "attn_gate"), qd, h)?)
                } else {
                    None
                },
            };
            let ffn = if c.is_moe_layer(l) {
                Ffn::Moe(Box::new(Moe::load(&ld, c, l)?))
            } else {
                Ffn::Dense(
                    Mlp::load(&ld, &blk(l, "ffn"), h, c.intermediate_size)?.with_act(c.ffn_act),
                )
            };
            let sandwich = match &c.sandwich {
                Some(sc) => {
                    let glimmer = sc.kind == SandwichKind::Glimmer;
                    let v = |n: &str| ld.vector(&blk(l, n), h);
                    Some(Sandwich {
                        kind: sc.kind,
                        post_eps: sc.post_norm_eps,
                        post_attn_norm: glimmer.then(|| v("post_attn_norm")).transpose()?,
                        post_ffn_norm: v("post_ffn_norm")?,
                        gates: if glimmer {
                            None
                        } else {
                            Some([
                                v("attn_res_alpha")?,
                                v("attn_res_beta")?,
                                v("ffn_res_alpha")?,
                                v("ffn_res_beta")?,
                            ])
                        },
                    })
                }
                None => None,
            };
            blocks.push(Block {
                attn_norm: ld.vector(&blk(l, "attn_norm"), h)?,
                attn,
                ffn_norm: ld.vector(&blk(l, "ffn_norm"), h)?,
                ffn,
                sandwich,
                window: c.window(l),
                rope: c.uses_rope(l),
            });
        }
        let norm = ld.vector(OUTPUT_NORM, h)?;
        let kind = match c.mrope {
            Some(m) if m.interleaved => RopeKind::MropeInterleaved(m.sections),
            Some(m) => RopeKind::MropeSectioned(m.sections),
            None => RopeKind::Plain,
        };
        let rope = Rope::new(kind, hd, c.rope_theta);
        let rope_sliding = c
            .rope_theta_sliding
            .map(|t| Rope::new(RopeKind::Plain, hd, t));
        Ok(Model {
            embd,
            blocks,
            norm,
            output,
            rope,
            rope_sliding,
            file,
            config,
            exec: Exec::global(),
            pager: None,
        })
    }

    /// Opens and loads a `.flint` file.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Model, ModelError> {
        Model::load(FlintFile::open(path)?)
    }

    /// The underlying file (metadata, tokenizer).
    pub fn file(&self) -> &FlintFile {
        &self.file
    }

    /// Bytes of the file's expert paging groups (each page-rounded), 0 for a dense model.
    pub fn expert_bytes(&self) -> u64 {
        self.blocks
            .iter()
            .filter_map(|b| match &b.ffn {
                crate::moe::Ffn::Moe(m) => Some(m.spans()),
                _ => None,
            })
            .flatten()
            .map(|s| s.1.div_ceil(crate::paging::PAGE) * crate::paging::PAGE)
            .sum()
    }

    /// Pages the experts under `opts.budget` bytes from now on (see [`crate::paging`]); the other weights stay mapped.
    /// Errors name the file: a dense model, a budget that holds fewer than two experts, a policy it cannot follow.
    pub fn enable_paging(&mut self, opts: &crate::paging::PagingOptions) -> Result<(), ModelError> {
        let spans: Vec<Vec<(u64, u64)>> = self
            .blocks
            .iter()
            .filter_map(|b| match &b.ffn {
                crate::moe::Ffn::Moe(m) => Some(m.spans()),
                _ => None,
            })
            .collect();
        let pager = std::sync::Arc::new(crate::paging::Pager::new(self.file.path(), spans, opts)?);
        let mut i = 0;
        for b in &mut self.blocks {
            if let crate::moe::Ffn::Moe(m) = &mut b.ffn {
                m.set_pager(pager.clone(), i);
                i += 1;
            }
        }
        self.pager = Some(pager);
        Ok(())
    }

    /// The expert pager, when [`Model::enable_paging`] turned it on.
    pub fn pager(&self) -> Option<&crate::paging::Pager> {
        self.pager.as_deref()
    }

    /// Runs the model's kernels on `exec` (its own thread pool) instead of the global pool it was loaded with.
    pub fn set_exec(&mut self, exec: Exec) {
        self.exec = exec;
    }

    /// The executor the model runs on.
    /// The decoder layers whose feed-forward is a mixture of experts, in order (a [`Trace`]'s `router_logits` and
    /// `routes` have one entry per such layer).
    pub fn moe_layers(&self) -> Vec<usize> {
        self.blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.ffn, crate::moe::Ffn::Moe(_)))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn exec(&self) -> &Exec {
        &self.exec
    }

    /// An empty multi-sequence cache laid out for this model's layers.
    pub fn new_kv(&self, opts: KvOptions) -> KvStore {
        let windows: Vec<Option<usize>> = self.blocks.iter().map(|b| b.window).collect();
        KvStore::new(
            &windows,
            self.config.num_kv_heads * self.config.head_dim,
            opts,
        )
    }

    /// A cache holding one empty sequence, with the default options (f16).
    pub fn new_cache(&self) -> KvCache {
        self.new_cache_with(KvOptions::default())
    }

    /// A cache holding one empty sequence.
    pub fn new_cache_with(&self, opts: KvOptions) -> KvCache {
        let mut store = self.new_kv(opts);
        let seq = store.new_seq();
        KvCache { store, seq }
    }

    /// Runs `tokens` of one sequence at the positions after those in `cache`, and returns logits: of every token
    /// (`[tokens, vocab]`) if `all_logits`, else of the last one only.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_logits: bool,
        trace: Option<&mut Trace>,
    ) -> Result<Vec<f32>, ModelError> {
        let mut b = Batch::new();
        let start = cache.len();
        let which = if all_logits {
            crate::batch::Logits::All
        } else {
            crate::batch::Logits::Last
        };
        b.push_text(cache.seq, start, tokens, which);
        self.forward_batch(&b, &mut cache.store, None, trace)
    }

    /// Runs one batch: every row enters its sequence's cache (in the order the rows appear), and the logits of
    /// the rows that ask for them are returned, `[rows asking, vocab]` in batch order.
    pub fn forward_batch(
        &self,
        batch: &Batch<'_>,
        kv: &mut KvStore,
        mut hook: Option<&mut dyn LayerHook>,
        mut trace: Option<&mut Trace>,
    ) -> Result<Vec<f32>, ModelError> {
        let c = &self.config;
        let (n, h) = (batch.len(), c.hidden_size);
        if n == 0 {
            return Err(ModelError::Invalid("no tokens to run".into()));
        }
        let seqs = self.check_batch(batch, kv)?;
        let mut x = vec![0f32; n * h];
        for (r, row) in batch.rows.iter().enumerate() {
            let xr = &mut x[r * h..(r + 1) * h];
            match row.input {
                Input::Token(id) => {
                    self.embd.row_to_f32(id as usize, xr);
                    if let Some(s) = c.embed_scale {
                        xr.iter_mut().for_each(|v| *v *= s);
                    }
                    if c.sandwich.as_ref().is_some_and(|s| s.embed_norm) {
                        ops::rms_norm_scaleless(xr, h, c.rms_norm_eps);
                    }
                }
                Input::Embed(e) => xr.copy_from_slice(e),
            }
        }
        for (s, rows) in &seqs {
            kv.reserve(*s, rows.len())?;
        }
        if let Some(tr) = trace.as_deref_mut() {
            tr.hidden_states.push(x.clone());
        }
        let ex = &self.exec;
        // The rows' angles are computed once per forward for each theta (one, or one for the sliding layers).
        // M-RoPE reads three positions per row (a text row's one repeated); check_batch refused M-RoPE rows for
        // 1-D RoPE.
        let per = self.rope.positions();
        let clamp = |p: u32| p.min(i32::MAX as u32) as i32;
        let pos: Vec<i32> = batch
            .rows
            .iter()
            .flat_map(|r| {
                let thw = match r.pos {
                    Pos::Text(p) => [p; 3],
                    Pos::Mrope(t) => t,
                };
                thw.into_iter().take(per).map(clamp)
            })
            .collect();
        let half = c.head_dim / 2;
        let (mut cos, mut sin) = (vec![0f32; n * half], vec![0f32; n * half]);
        self.rope.table(&pos, &mut cos, &mut sin);
        let sliding = self.rope_sliding.as_ref().map(|r| {
            let (mut cos, mut sin) = (vec![0f32; n * half], vec![0f32; n * half]);
            r.table(&pos, &mut cos, &mut sin);
            (cos, sin)
        });
        let mut hn = vec![0f32; n * h];
        for (l, b) in self.blocks.iter().enumerate() {
            // Pre-gating: the next MoE layer's router on the stream entering this block (and, entering the first,
            // the first's own), so its experts are read while this block computes.
            for t in [l, l + 1] {
                if t == l && l > 0 {
                    continue;
                }
                if let Some(nb) = self.blocks.get(t) {
                    if let crate::moe::Ffn::Moe(m) = &nb.ffn {
                        if m.prefetching() {
                            ops::rms_norm(&x, nb.ffn_norm.get(), c.rms_norm_eps, &mut hn);
                            m.prefetch(ex, &hn, n);
                        }
                    }
                }
            }
            ops::rms_norm(&x, b.attn_norm.get(), c.rms_norm_eps, &mut hn);
            let table = match (&sliding, b.window) {
                (Some((cs, sn)), Some(_)) => (cs.as_slice(), sn.as_slice()),
                _ => (cos.as_slice(), sin.as_slice()),
            };
            let mut a = self.attention(l, b, &hn, batch, &seqs, kv, table)?;
            if let Some(sw) = &b.sandwich {
                match &sw.post_attn_norm {
                    Some(w) => ops::rms_norm_inplace(&mut a, w.get(), sw.post_eps),
                    None => ops::rms_norm_scaleless(&mut a, h, sw.post_eps),
                }
            }
            residual(&mut x, &a, b.sandwich.as_ref().and_then(|s| s.gate(false)));
            ops::rms_norm(&x, b.ffn_norm.get(), c.rms_norm_eps, &mut hn);
            let mut f = b.ffn.forward(ex, &hn, n, trace.as_deref_mut())?;
            if let Some(sw) = &b.sandwich {
                match sw.kind {
                    SandwichKind::Spark => {
                        ops::rms_norm_input_scaled(&mut f, sw.post_ffn_norm.get(), sw.post_eps)
                    }
                    SandwichKind::Glimmer => {
                        ops::rms_norm_inplace(&mut f, sw.post_ffn_norm.get(), sw.post_eps)
                    }
                }
            }
            residual(&mut x, &f, b.sandwich.as_ref().and_then(|s| s.gate(true)));
            // A layer's traced output is the layer's own, before a hook adds to it (transformers records the
            // decoder layer's output; Qwen3-VL's deepstack adds after).
            if l + 1 < self.blocks.len() {
                if let Some(tr) = trace.as_deref_mut() {
                    tr.hidden_states.push(x.clone());
                }
            }
            if let Some(hk) = hook.as_deref_mut() {
                hk.after_layer(l, batch, &mut x);
            }
        }
        for (s, rows) in &seqs {
            kv.advance(*s, rows.len())?;
        }
        let want: Vec<usize> = (0..n).filter(|&r| batch.rows[r].logits).collect();
        let mut rows = Vec::with_capacity(want.len() * h);
        if trace.is_some() {
            ops::rms_norm_inplace(&mut x, self.norm.get(), c.rms_norm_eps);
            for &r in &want {
                rows.extend_from_slice(&x[r * h..(r + 1) * h]);
            }
        } else {
            for &r in &want {
                rows.extend_from_slice(&x[r * h..(r + 1) * h]);
            }
            ops::rms_norm_inplace(&mut rows, self.norm.get(), c.rms_norm_eps);
        }
        if let Some(tr) = trace {
            tr.hidden_states.push(x);
        }
        let m = want.len();
        let mut logits = vec![0f32; m * c.vocab_size];
        ex.matmul(self.output.view(), &rows, m, &mut logits);
        if let Some(sc) = c.logit_scale {
            logits.iter_mut().for_each(|v| *v *= sc);
        }
        if let Some(cap) = c.logit_softcap {
            logits.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }
        Ok(logits)
    }

    /// Checks every row against the model and the cache; returns each sequence's rows, in order of first
    /// appearance.
    fn check_batch(
        &self,
        batch: &Batch<'_>,
        kv: &KvStore,
    ) -> Result<Vec<(SeqId, Vec<usize>)>, ModelError> {
        let c = &self.config;
        let mut seqs: Vec<(SeqId, Vec<usize>)> = Vec::new();
        for (r, row) in batch.rows.iter().enumerate() {
            match row.input {
                Input::Token(id) if id as usize >= c.vocab_size => {
                    return Err(ModelError::TokenOutOfRange {
                        id,
                        vocab: c.vocab_size,
                    })
                }
                Input::Embed(e) if e.len() != c.hidden_size => {
                    return Err(ModelError::Invalid(format!(
                        "row {r}: an embedding of {} values for hidden size {}",
                        e.len(),
                        c.hidden_size
                    )))
                }
                _ => {}
            }
            if matches!(row.pos, Pos::Mrope(_)) && c.mrope.is_none() {
                return Err(ModelError::Invalid(format!(
                    "row {r}: M-RoPE positions for `{}`, which uses 1-D RoPE",
                    c.arch
                )));
            }
            match seqs.iter_mut().find(|(s, _)| *s == row.seq) {
                Some((_, v)) => v.push(r),
                None => seqs.push((row.seq, vec![r])),
            }
        }
        for (s, rows) in &seqs {
            let len = kv.len(*s)?;
            if len + rows.len() > c.max_position_embeddings {
                return Err(ModelError::ContextFull {
                    pos: len,
                    asked: rows.len(),
                    limit: c.max_position_embeddings,
                });
            }
        }
        Ok(seqs)
    }

    /// A block's attention over all rows of the batch: projections for every row at once, then each sequence's
    /// rows attend over its own cache.
    fn attention(
        &self,
        l: usize,
        b: &Block,
        x: &[f32],
        batch: &Batch<'_>,
        seqs: &[(SeqId, Vec<usize>)],
        kv: &mut KvStore,
        rope: (&[f32], &[f32]),
    ) -> Result<Vec<f32>, ModelError> {
        let c = &self.config;
        let a = &b.attn;
        let ex = &self.exec;
        let n = batch.len();
        let hd = c.head_dim;
        let (qd, kvd) = (c.num_heads * hd, c.num_kv_heads * hd);
        let mut q = vec![0f32; n * qd];
        let mut k = vec![0f32; n * kvd];
        let mut v = vec![0f32; n * kvd];
        ops::project(
            ex,
            x,
            n,
            &mut [(&a.q, &mut q), (&a.k, &mut k), (&a.v, &mut v)],
        );
        for (buf, bias) in [
            (&mut q, &a.q_bias),
            (&mut k, &a.k_bias),
            (&mut v, &a.v_bias),
        ] {
            if let Some(bb) = bias {
                ops::add_bias(buf, bb.get());
            }
        }
        // q/k norm comes before RoPE in every architecture that has one.
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            ops::rms_norm_inplace(&mut q, qn.get(), c.rms_norm_eps);
            ops::rms_norm_inplace(&mut k, kn.get(), c.rms_norm_eps);
        }
        if c.qk_norm == QkNorm::PerHeadScaleless {
            ops::rms_norm_scaleless(&mut q, hd, c.rms_norm_eps);
            ops::rms_norm_scaleless(&mut k, hd, c.rms_norm_eps);
        }
        if let Some(s) = c.qk_scale {
            q.iter_mut().for_each(|v| *v *= s);
        }
        if b.rope {
            let (cos, sin) = rope;
            flint_kernels::ops::rope_rotate(&mut q, c.num_heads, hd, cos, sin);
            flint_kernels::ops::rope_rotate(&mut k, c.num_kv_heads, hd, cos, sin);
        }
        let shape = AttnShape {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: hd,
        };
        let mask = match b.window {
            Some(w) => Mask::Sliding(w),
            None => Mask::Causal,
        };
        let scale = 1.0 / (hd as f32).sqrt();
        let mut out = vec![0f32; n * qd];
        let (mut qs, mut ks, mut vs, mut os) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (s, rows) in seqs {
            qs.clear();
            ks.clear();
            vs.clear();
            for &r in rows {
                qs.extend_from_slice(&q[r * qd..(r + 1) * qd]);
                ks.extend_from_slice(&k[r * kvd..(r + 1) * kvd]);
                vs.extend_from_slice(&v[r * kvd..(r + 1) * kvd]);
            }
            kv.write(l, *s, &ks, &vs)?;
            let q0 = kv.len(*s)?;
            let keys = q0 + rows.len();
            let chunks = kv.chunks(l, *s, keys)?;
            os.clear();
            os.resize(qs.len(), 0.0);
            flint_kernels::attention(ex, shape, &qs, q0, keys, &chunks, mask, scale, &mut os);
            for (i, &r) in rows.iter().enumerate() {
                out[r * qd..(r + 1) * qd].copy_from_slice(&os[i * qd..(i + 1) * qd]);
            }
        }
        if c.attn_out_norm {
            ops::rms_norm_scaleless(&mut out, hd, c.rms_norm_eps);
        }
        if let Some(g) = &a.gate {
            let mut gv = vec![0f32; n * qd];
            ex.matmul(g.view(), x, n, &mut gv);
            ops::sigmoid(&mut gv);
            out.iter_mut().zip(&gv).for_each(|(o, g)| *o *= g);
        }
        let mut o = vec![0f32; n * c.hidden_size];
        ex.matmul(a.o.view(), &out, n, &mut o);
        if let Some(bb) = &a.o_bias {
            ops::add_bias(&mut o, bb.get());
        }
        Ok(o)
    }
}
