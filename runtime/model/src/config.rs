//! The architecture-neutral model description stored in a `.flint` file's `model.config` metadata key.
//!
//! Importers translate each checkpoint's own config (config.json, GGUF keys) into this; the runtime reads only this.

pub mod limits;

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
}

/// Mixture-of-Experts settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// Everything the decoder needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

impl ModelConfig {
    /// Whether layer `l` uses experts.
    pub fn is_moe_layer(&self, l: usize) -> bool {
        self.moe
            .as_ref()
            .is_some_and(|m| m.moe_layers.get(l).copied().unwrap_or(false))
    }

    /// The one validation step for a model description, wherever it came from (a `.flint` file's `model.config`,
    /// an importer's translation of config.json or GGUF keys), run before anything is sized from it: every count
    /// and dimension within its cap in [`limits`], every product used as a size computed with checked arithmetic,
    /// finite positive `rope_theta` and `rms_norm_eps`, token ids inside the vocabulary, a known `arch`. The
    /// message names the field (`` `num_layers` = 1000000000 exceeds the cap 1024 ``); callers add the file.
    pub fn validate(&self) -> Result<(), String> {
        limits::check_config(self).map_err(|e| e.to_string())
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
