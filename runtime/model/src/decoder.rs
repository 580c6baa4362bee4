//! The text decoder: pre-norm Llama-style blocks (RMSNorm, RoPE, grouped-query attention with a KV cache) whose
//! feed-forward is either a dense SwiGLU or a routed Mixture of Experts (see `moe.rs`).
//!
//! Variants covered by [`ModelConfig`]: q/k/v bias (Qwen2), per-head q/k RMSNorm (Qwen3), whole-projection q/k
//! RMSNorm (OLMoE), shared experts with a sigmoid gate (Qwen2-MoE), top-k renormalisation (Qwen3-MoE, Mixtral).

use crate::config::names::{blk, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use crate::config::{ModelConfig, QkNorm};
use crate::moe::{Ffn, Mlp, Moe};
use crate::ops::{self, Rope};
use crate::weights::{Loader, Vector, Weight};
use crate::ModelError;
use flint_format::FlintFile;

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
}

struct Block {
    attn_norm: Vector,
    attn: Attention,
    ffn_norm: Vector,
    ffn: Ffn,
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
    /// `layers + 1` entries of `[tokens, hidden]`: the embeddings, the output of each block but the last, and the
    /// final-normed output of the last block (transformers' `hidden_states` convention).
    pub hidden_states: Vec<Vec<f32>>,
    /// One `[tokens, experts]` entry per MoE layer: router logits before softmax.
    pub router_logits: Vec<Vec<f32>>,
}

/// The keys and values of every position seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Forgets everything after the first `len` positions.
    pub fn truncate(&mut self, len: usize, kv_dim: usize) {
        self.len = self.len.min(len);
        for c in self.k.iter_mut().chain(self.v.iter_mut()) {
            c.truncate(self.len * kv_dim);
        }
    }
}

impl Model {
    /// Reads the config from the file's metadata and binds every tensor, checking each shape.
    pub fn load(file: FlintFile) -> Result<Model, ModelError> {
        let path = file.path().display().to_string();
        let meta_err = |msg: String| ModelError::Metadata {
            path: path.clone(),
            key: "model.config",
            msg,
        };
        let raw = file
            .meta("model.config")
            .ok_or_else(|| meta_err("missing".into()))?;
        let config: ModelConfig =
            serde_json::from_value(raw.clone()).map_err(|e| meta_err(e.to_string()))?;
        config.validate().map_err(meta_err)?;
        let c = &config;
        let ld = Loader::new(&file);
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
            };
            let ffn = if c.is_moe_layer(l) {
                Ffn::Moe(Moe::load(&ld, c, l)?)
            } else {
                Ffn::Dense(Mlp::load(&ld, &blk(l, "ffn"), h, c.intermediate_size)?)
            };
            blocks.push(Block {
                attn_norm: ld.vector(&blk(l, "attn_norm"), h)?,
                attn,
                ffn_norm: ld.vector(&blk(l, "ffn_norm"), h)?,
                ffn,
            });
        }
        let norm = ld.vector(OUTPUT_NORM, h)?;
        let rope = Rope::new(hd, c.rope_theta);
        Ok(Model {
            embd,
            blocks,
            norm,
            output,
            rope,
            file,
            config,
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

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        let n = self.config.num_layers;
        KvCache {
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            len: 0,
        }
    }

    /// Runs `tokens` at the positions after those in `cache`, appends them to the cache, and returns logits: of
    /// every token (`[tokens, vocab]`) if `all_logits`, else of the last one only.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_logits: bool,
        mut trace: Option<&mut Trace>,
    ) -> Result<Vec<f32>, ModelError> {
        let c = &self.config;
        let (n, h) = (tokens.len(), c.hidden_size);
        if n == 0 {
            return Err(ModelError::Invalid("no tokens to run".into()));
        }
        if cache.len + n > c.max_position_embeddings {
            return Err(ModelError::ContextFull {
                pos: cache.len,
                asked: n,
                limit: c.max_position_embeddings,
            });
        }
        let mut x = vec![0f32; n * h];
        for (t, &id) in tokens.iter().enumerate() {
            if id as usize >= c.vocab_size {
                return Err(ModelError::TokenOutOfRange {
                    id,
                    vocab: c.vocab_size,
                });
            }
            self.embd
                .row_to_f32(id as usize, &mut x[t * h..(t + 1) * h]);
        }
        if let Some(tr) = trace.as_deref_mut() {
            tr.hidden_states.push(x.clone());
        }
        let mut hn = vec![0f32; n * h];
        for (l, b) in self.blocks.iter().enumerate() {
            ops::rms_norm(&x, b.attn_norm.get(), c.rms_norm_eps, &mut hn);
            let a = self.attention(l, &b.attn, &hn, n, cache);
            x.iter_mut().zip(&a).for_each(|(v, d)| *v += d);
            ops::rms_norm(&x, b.ffn_norm.get(), c.rms_norm_eps, &mut hn);
            let router = trace.as_deref_mut().map(|t| &mut t.router_logits);
            let f = b.ffn.forward(&hn, n, router);
            x.iter_mut().zip(&f).for_each(|(v, d)| *v += d);
            if l + 1 < self.blocks.len() {
                if let Some(tr) = trace.as_deref_mut() {
                    tr.hidden_states.push(x.clone());
                }
            }
        }
        cache.len += n;
        ops::rms_norm_inplace(&mut x, self.norm.get(), c.rms_norm_eps);
        if let Some(tr) = trace {
            tr.hidden_states.push(x.clone());
        }
        let rows = if all_logits {
            &x[..]
        } else {
            &x[(n - 1) * h..]
        };
        let m = rows.len() / h;
        let mut logits = vec![0f32; m * c.vocab_size];
        flint_kernels::matmul(self.output.view(), rows, m, &mut logits);
        Ok(logits)
    }

    fn attention(
        &self,
        l: usize,
        a: &Attention,
        x: &[f32],
        n: usize,
        cache: &mut KvCache,
    ) -> Vec<f32> {
        let c = &self.config;
        let hd = c.head_dim;
        let (qd, kvd) = (c.num_heads * hd, c.num_kv_heads * hd);
        let mut q = vec![0f32; n * qd];
        let mut k = vec![0f32; n * kvd];
        let mut v = vec![0f32; n * kvd];
        ops::project(x, n, &mut [(&a.q, &mut q), (&a.k, &mut k), (&a.v, &mut v)]);
        for (buf, bias) in [
            (&mut q, &a.q_bias),
            (&mut k, &a.k_bias),
            (&mut v, &a.v_bias),
        ] {
            if let Some(b) = bias {
                ops::add_bias(buf, b.get());
            }
        }
        // q/k norm comes before RoPE in every architecture that has one.
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            ops::rms_norm_inplace(&mut q, qn.get(), c.rms_norm_eps);
            ops::rms_norm_inplace(&mut k, kn.get(), c.rms_norm_eps);
        }
        let p0 = cache.len;
        for t in 0..n {
            let (qt, kt) = (&mut q[t * qd..(t + 1) * qd], &mut k[t * kvd..(t + 1) * kvd]);
            self.rope.apply(qt, kt, p0 + t);
        }
        cache.k[l].extend_from_slice(&k);
        cache.v[l].extend_from_slice(&v);
        let shape = flint_kernels::AttnShape {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: hd,
        };
        let mut out = vec![0f32; n * qd];
        let scale = 1.0 / (hd as f32).sqrt();
        flint_kernels::causal_attention(
            shape,
            &q,
            &cache.k[l],
            &cache.v[l],
            p0,
            n,
            scale,
            &mut out,
        );
        let mut o = vec![0f32; n * c.hidden_size];
        flint_kernels::matmul(a.o.view(), &out, n, &mut o);
        if let Some(b) = &a.o_bias {
            ops::add_bias(&mut o, b.get());
        }
        o
    }
}
