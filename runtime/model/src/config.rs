//! The architecture-neutral model description stored in a `.flint` file's `model.config` metadata key.
//!
//! Importers translate each checkpoint's own config (config.json, GGUF keys) into this; the runtime reads only this.

use serde::{Deserialize, Serialize};

/// How q and k are normalised before RoPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QkNorm {
    /// No normalisation (Llama, Qwen2, Mixtral).
    #[default]
    None,
    /// RMSNorm over each head's `head_dim` values, one weight shared by all heads (Qwen3, Qwen3-MoE).
    PerHead,
    /// RMSNorm over the whole q (or k) projection before it is split into heads (OLMoE).
    Full,
    /// RMSNorm over each head with no weight (Muse Spark).
    PerHeadScaleless,
}

/// How a layer attends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AttnKind {
    /// Every earlier position (causal).
    #[default]
    Full,
    /// The last `sliding_window` positions.
    Sliding,
}

/// How router logits become expert scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Router {
    /// Softmax over all experts (Qwen-MoE, OLMoE, Mixtral).
    #[default]
    Softmax,
    /// Sigmoid of each logit (Muse Spark).
    Sigmoid,
}

/// Muse-style blocks: sandwich norms and residual gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandwichConfig {
    /// eps of the post-attention and post-feed-forward norms (MuseSpark `post_norm_eps`).
    pub post_norm_eps: f32,
    /// A scaleless RMSNorm (eps = rms_norm_eps) after the token embedding.
    pub embed_norm: bool,
}

/// Mixture-of-Experts settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    pub num_experts: usize,
    pub top_k: usize,
    /// Width of each routed expert's SwiGLU.
    pub expert_width: usize,
    /// Renormalise the top-k softmax weights to sum to one.
    pub norm_topk_prob: bool,
    /// Width of the always-on shared expert, if any (Qwen2-MoE).
    #[serde(default)]
    pub shared_expert_width: Option<usize>,
    /// Whether the shared expert's output is scaled by sigmoid(x · w) (Qwen2-MoE).
    #[serde(default)]
    pub shared_expert_gate: bool,
    /// Which layers are MoE (the others use a dense SwiGLU of `intermediate_size`).
    pub moe_layers: Vec<bool>,
    /// How router logits become scores.
    #[serde(default)]
    pub router: Router,
    /// A per-expert bias added to the scores for the choice only (`e_score_correction_bias`).
    #[serde(default)]
    pub router_bias: bool,
    /// Router logits are multiplied by this before scoring (MuseSpark `output_multiplier`).
    #[serde(default)]
    pub router_scale: Option<f32>,
    /// The chosen weights are multiplied by this after renormalisation (`routed_scaling_factor`). MuseSpark
    /// renormalises with `sum + 1e-15`.
    #[serde(default)]
    pub routed_scale: Option<f32>,
    /// Experts run at this width between `ffn_pre_proj` and `ffn_post_proj` (MuseSpark `moe_hidden_size`).
    #[serde(default)]
    pub pooled_width: Option<usize>,
}

/// Everything the decoder needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The source architecture (`llama`, `qwen2`, `qwen3`, `qwen2_moe`, `qwen3_moe`, `olmoe`, `mixtral`).
    pub arch: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// Width of dense SwiGLU layers.
    pub intermediate_size: usize,
    pub rope_theta: f32,
    pub rms_norm_eps: f32,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias.
    pub qkv_bias: bool,
    /// The output projection carries a bias.
    pub o_bias: bool,
    pub qk_norm: QkNorm,
    pub moe: Option<MoeConfig>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    /// Attention kind of each layer; empty means all `Full`.
    #[serde(default)]
    pub layer_types: Vec<AttnKind>,
    /// Window of `Sliding` layers: a query at position p sees keys at p - window + 1 ..= p.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Layers without RoPE (NoPE); empty means RoPE everywhere.
    #[serde(default)]
    pub nope_layers: Vec<bool>,
    /// Muse-style blocks: sandwich norms and residual gates (None: Llama-style pre-norm blocks).
    #[serde(default)]
    pub sandwich: Option<SandwichConfig>,
    /// Multiply q by this after the q/k norm (on top of 1/sqrt(head_dim)).
    #[serde(default)]
    pub qk_scale: Option<f32>,
    /// Scaleless RMSNorm over each head of the attention output, before the gate.
    #[serde(default)]
    pub attn_out_norm: bool,
    /// The attention output is multiplied by sigmoid(attn_gate · x) (x: the layer's normed input) before o_proj.
    #[serde(default)]
    pub attn_gate: bool,
    /// Logits are multiplied by this (MuseSpark `output_multiplier`), then soft-capped.
    #[serde(default)]
    pub logit_scale: Option<f32>,
    /// Logits become cap * tanh(logits / cap).
    #[serde(default)]
    pub logit_softcap: Option<f32>,
}

impl ModelConfig {
    /// Whether layer `l` uses experts.
    pub fn is_moe_layer(&self, l: usize) -> bool {
        self.moe
            .as_ref()
            .is_some_and(|m| m.moe_layers.get(l).copied().unwrap_or(false))
    }

    /// The sliding window of layer `l`, if it is a sliding-window layer.
    pub fn window(&self, l: usize) -> Option<usize> {
        match self.layer_types.get(l) {
            Some(AttnKind::Sliding) => self.sliding_window,
            _ => None,
        }
    }

    /// Whether layer `l` applies RoPE.
    pub fn has_rope(&self, l: usize) -> bool {
        !self.nope_layers.get(l).copied().unwrap_or(false)
    }

    /// Checks the internal consistency of the numbers (a config comes from a file, so this is input validation).
    pub fn validate(&self) -> Result<(), String> {
        let nz = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ];
        for (k, v) in nz {
            if v == 0 {
                return Err(format!("`{k}` must be positive"));
            }
        }
        let caps = [
            ("vocab_size", self.vocab_size, 1 << 22),
            ("hidden_size", self.hidden_size, 1 << 16),
        ];
        for (k, v, cap) in caps {
            if v > cap {
                return Err(format!("`{k}` = {v} exceeds {cap}"));
            }
        }
        if self.num_heads % self.num_kv_heads != 0 {
            return Err(format!(
                "`num_heads` ({}) is not a multiple of `num_kv_heads` ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim % 2 != 0 {
            return Err(format!(
                "`head_dim` ({}) must be even for RoPE",
                self.head_dim
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "`rope_theta` ({}) must be positive",
                self.rope_theta
            ));
        }
        if let Some(m) = &self.moe {
            if m.top_k == 0 || m.top_k > m.num_experts {
                return Err(format!(
                    "moe `top_k` ({}) must be in 1..={}",
                    m.top_k, m.num_experts
                ));
            }
            if m.moe_layers.len() != self.num_layers {
                return Err(format!(
                    "moe `moe_layers` has {} entries for {} layers",
                    m.moe_layers.len(),
                    self.num_layers
                ));
            }
        }
        Ok(())
    }
}

/// Canonical tensor names inside a `.flint` file, shared by importers and the runtime.
pub mod names {
    pub const TOK_EMBD: &str = "tok_embd";
    pub const OUTPUT_NORM: &str = "output_norm";
    pub const OUTPUT: &str = "output";
    pub fn blk(l: usize, what: &str) -> String {
        format!("blk.{l}.{what}")
    }
    pub fn expert(l: usize, e: usize, what: &str) -> String {
        format!("blk.{l}.expert.{e}.{what}")
    }
}
