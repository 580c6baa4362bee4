//! The architecture-neutral model description stored in a `.flint` file's `model.config` metadata key.
//!
//! Importers translate each checkpoint's own config (config.json, GGUF keys) into this; the runtime reads only this.

pub mod audio;
pub mod limits;
pub mod mel_audio;
pub mod vision;

pub use audio::AudioConfig;

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
    /// RMSNorm over each head's `head_dim` values with no weight, eps `rms_norm_eps` (MuseSpark's `qk_norm`).
    PerHeadScaleless,
}

/// The attention span of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AttnKind {
    /// Causal attention over every earlier position.
    #[default]
    Full,
    /// Causal attention over the last `sliding_window` positions (the query's own included).
    Sliding,
}

/// How a MoE layer turns router logits into expert scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Router {
    /// Softmax over all experts (Mixtral, Qwen-MoE, OLMoE).
    #[default]
    Softmax,
    /// An independent sigmoid per expert (MuseSpark, DeepSeek-V3 style).
    Sigmoid,
}

/// The activation of a dense feed-forward layer's gate branch: `down(act(gate(x)) * up(x))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FfnAct {
    /// SwiGLU (Llama, Qwen, Muse).
    #[default]
    Silu,
    /// GeGLU with tanh GELU (Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
}

/// Muse-style blocks: `x = alpha * x + beta * post_norm(sublayer(pre_norm(x)))` around attention and feed-forward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandwichConfig {
    /// eps of the post-attention and post-feed-forward norms (MuseSpark `post_norm_eps`).
    pub post_norm_eps: f32,
    /// A scaleless RMSNorm (eps = rms_norm_eps) after the token embedding.
    pub embed_norm: bool,
    /// Which norms follow attention and the feed-forward, and how the residual adds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: SandwichKind,
}

/// The two sandwich designs of the Muse family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandwichKind {
    /// Muse Spark: a scaleless norm after attention, an input-scaled one (`post_ffn_norm`) after the
    /// feed-forward, and gated residuals `alpha * x + beta * y` (`*_res_alpha`, `*_res_beta`).
    #[default]
    Spark,
    /// Muse Glimmer: weighted norms after both (`post_attn_norm`, `post_ffn_norm`, their `1 + w` folded) and plain
    /// residual adds.
    Glimmer,
}

/// Mixture-of-Experts settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "is_default")]
    pub router: Router,
    /// A per-expert bias (`blk.{l}.ffn_router_bias`) added to the scores for choosing the top-k only; the weights
    /// are the unbiased scores (DeepSeek-V3's / MuseSpark's `e_score_correction_bias`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub router_bias: bool,
    /// Router logits are multiplied by this before scoring (MuseSpark `output_multiplier`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub router_scale: Option<f32>,
    /// The top-k weights are multiplied by this after renormalisation (`routed_scaling_factor`). MuseSpark
    /// renormalises with `w / (sum + 1e-15)`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub routed_scale: Option<f32>,
    /// Experts run at this width between `ffn_pre_proj` [width, hidden] and `ffn_post_proj` [hidden, width]
    /// (MuseSpark `moe_hidden_size`); `None`: experts read and write the hidden state directly.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pooled_width: Option<usize>,
}

/// Multimodal RoPE: each row has temporal, height and width positions (`Pos::Mrope`), and each of the
/// `head_dim / 2` frequencies reads one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MropeConfig {
    /// Frequencies given to t, h and w (`mrope_section`); the sum is `head_dim / 2`.
    pub sections: [usize; 3],
    /// Interleaved (Qwen3-VL, Qwen3-Omni: frequency j reads h when j % 3 == 1, w when j % 3 == 2, within
    /// their sections) rather than contiguous sections (Qwen2-VL, Qwen2.5-Omni).
    pub interleaved: bool,
    /// The Omni thinkers: a video is one run of placeholders whose temporal grid `tt` sits
    /// `tt · video_second_per_grid · per_second` after its start (None: Qwen3-VL, each frame its own run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<VideoSeconds>,
}

/// How an Omni thinker times a video on the M-RoPE temporal axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSeconds {
    /// `position_id_per_seconds`.
    pub per_second: u32,
    /// Fractional time positions are truncated (Qwen2.5-Omni's `.long()`); otherwise they are kept as floats
    /// by transformers (Qwen3-Omni), which Flint's integer positions cannot hold, so a prompt that needs one
    /// is refused.
    #[serde(default, skip_serializing_if = "is_default")]
    pub truncate: bool,
}

/// Everything the decoder needs to know about a model's shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The source architecture (`llama`, `qwen2`, `qwen3`, `qwen2_moe`, `qwen3_moe`, `olmoe`, `mixtral`, `muse_spark`).
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
    #[serde(default, skip_serializing_if = "is_default")]
    pub layer_types: Vec<AttnKind>,
    /// Window of `Sliding` layers: a query at position p sees keys at p - window + 1 ..= p (transformers'
    /// convention).
    #[serde(default, skip_serializing_if = "is_default")]
    pub sliding_window: Option<usize>,
    /// Layers without RoPE (NoPE); empty means RoPE everywhere.
    #[serde(default, skip_serializing_if = "is_default")]
    pub nope_layers: Vec<bool>,
    /// Muse-style blocks: sandwich norms and residual gates (None: Llama-style pre-norm blocks).
    #[serde(default, skip_serializing_if = "is_default")]
    pub sandwich: Option<SandwichConfig>,
    /// Multiply q by this after the q/k norm (on top of 1/sqrt(head_dim)).
    #[serde(default, skip_serializing_if = "is_default")]
    pub qk_scale: Option<f32>,
    /// Scaleless RMSNorm (eps `rms_norm_eps`) over each head of the attention output, before the gate.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attn_out_norm: bool,
    /// The attention output is multiplied by sigmoid(attn_gate · x) (x: the layer's normed input) before o_proj.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attn_gate: bool,
    /// Logits are multiplied by this (MuseSpark `output_multiplier`), then soft-capped.
    #[serde(default, skip_serializing_if = "is_default")]
    pub logit_scale: Option<f32>,
    /// Logits become cap * tanh(logits / cap).
    #[serde(default, skip_serializing_if = "is_default")]
    pub logit_softcap: Option<f32>,
    /// Token embeddings are multiplied by this (Gemma: sqrt(hidden_size)).
    #[serde(default, skip_serializing_if = "is_default")]
    pub embed_scale: Option<f32>,
    /// The activation of the dense feed-forward layers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub ffn_act: FfnAct,
    /// RoPE theta of the `Sliding` layers when it differs from `rope_theta` (Gemma 3: 1e4 local, 1e6 global).
    #[serde(default, skip_serializing_if = "is_default")]
    pub rope_theta_sliding: Option<f32>,
    /// M-RoPE over (t, h, w) positions instead of 1-D RoPE (Qwen3-VL); a text row's one position is used for
    /// all three.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mrope: Option<MropeConfig>,
    /// The vision tower, adapter and projection whose output rows replace image/video placeholders
    /// (`config/vision.rs`); None: a text-only model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<vision::VisionConfig>,
    /// The raw-waveform audio tower (Muse Spark), stored under `audio.*` in its own paging group; None: no audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioConfig>,
    /// A log-mel audio encoder (Qwen3-Omni, `config/mel_audio.rs`) under `a.*`; None: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mel_audio: Option<mel_audio::MelAudioConfig>,
}

impl ModelConfig {
    /// Whether layer `l` uses experts.
    pub fn is_moe_layer(&self, l: usize) -> bool {
        self.moe
            .as_ref()
            .is_some_and(|m| m.moe_layers.get(l).copied().unwrap_or(false))
    }

    /// Attention kind of layer `l` (`Full` when `layer_types` is empty).
    pub fn attn_kind(&self, l: usize) -> AttnKind {
        self.layer_types.get(l).copied().unwrap_or_default()
    }

    /// The sliding window of layer `l`, if it is a sliding-window layer.
    pub fn window(&self, l: usize) -> Option<usize> {
        match self.attn_kind(l) {
            AttnKind::Sliding => self.sliding_window,
            AttnKind::Full => None,
        }
    }

    /// Whether layer `l` applies RoPE.
    pub fn uses_rope(&self, l: usize) -> bool {
        !self.nope_layers.get(l).copied().unwrap_or(false)
    }

    /// The one validation step for a model description, wherever it came from (a `.flint` file's `model.config`,
    /// an importer's translation of config.json or GGUF keys), run before anything is sized from it: every count
    /// and dimension within its cap in [`limits`], every product used as a size computed with checked arithmetic,
    /// finite positive `rope_theta` and `rms_norm_eps`, token ids inside the vocabulary, a known `arch`. The
    /// message names the field (`` `num_layers` = 1000000000 exceeds the cap 1024 ``); callers add the file.
    pub fn validate(&self) -> Result<(), String> {
        limits::check_config(self).map_err(|e| e.to_string())?;
        self.validate_extensions()
    }

    /// Checks the per-layer, sandwich, attention-gate, logit and router extensions (all optional).
    fn validate_extensions(&self) -> Result<(), String> {
        let n = self.num_layers;
        for (k, len) in [
            ("layer_types", self.layer_types.len()),
            ("nope_layers", self.nope_layers.len()),
        ] {
            if len != 0 && len != n {
                return Err(format!("`{k}` has {len} entries for {n} layers"));
            }
        }
        let sliding = self.layer_types.contains(&AttnKind::Sliding);
        match self.sliding_window {
            Some(0) => return Err("`sliding_window` must be positive".into()),
            Some(w) if !sliding => {
                return Err(format!(
                    "`sliding_window` ({w}) is set but no layer is `sliding`"
                ))
            }
            None if sliding => return Err("a `sliding` layer needs `sliding_window`".into()),
            _ => {}
        }
        let moe = self.moe.as_ref();
        let scales = [
            ("qk_scale", self.qk_scale),
            ("logit_scale", self.logit_scale),
            ("logit_softcap", self.logit_softcap),
            ("embed_scale", self.embed_scale),
            ("rope_theta_sliding", self.rope_theta_sliding),
            (
                "sandwich.post_norm_eps",
                self.sandwich.as_ref().map(|s| s.post_norm_eps),
            ),
            ("moe.router_scale", moe.and_then(|m| m.router_scale)),
            ("moe.routed_scale", moe.and_then(|m| m.routed_scale)),
        ];
        for (k, v) in scales {
            if let Some(x) = v.filter(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(format!("`{k}` ({x}) must be finite and positive"));
            }
        }
        if let Some(m) = &self.mrope {
            let half = self.head_dim / 2;
            if m.sections.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(half) {
                return Err(format!(
                    "`mrope.sections` {:?} must sum to head_dim / 2 ({half})",
                    m.sections
                ));
            }
            if self.rope_theta_sliding.is_some() {
                return Err("`mrope` with `rope_theta_sliding` is not supported".into());
            }
            if let Some(v) = m.video_seconds {
                if v.per_second == 0 || v.per_second > limits::MAX_POSITION_PER_SECOND {
                    return Err(format!(
                        "`mrope.video_seconds.per_second` ({}) must be in 1..={}",
                        v.per_second,
                        limits::MAX_POSITION_PER_SECOND
                    ));
                }
            }
        }
        match moe.and_then(|m| m.pooled_width) {
            Some(0) => return Err("moe `pooled_width` must be positive".into()),
            Some(w) if w > limits::MAX_HIDDEN => {
                return Err(format!(
                    "moe `pooled_width` = {w} exceeds the cap {}",
                    limits::MAX_HIDDEN
                ))
            }
            _ => {}
        }
        if let Some(w) = self.sliding_window.filter(|&w| w > limits::MAX_POSITIONS) {
            return Err(format!(
                "`sliding_window` = {w} exceeds the cap {}",
                limits::MAX_POSITIONS
            ));
        }
        if let Some(eps) = self
            .sandwich
            .as_ref()
            .map(|s| s.post_norm_eps)
            .filter(|&e| e > limits::MAX_EPS)
        {
            return Err(format!(
                "`sandwich.post_norm_eps` ({eps}) exceeds {}",
                limits::MAX_EPS
            ));
        }
        Ok(())
    }
}

/// Fields at their default are not written, so files of architectures that do not use them stay readable by
/// runtimes that predate them.
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `model.config` written before the per-layer, sandwich and router fields existed.
    const OLD: &str = r#"{"arch":"qwen3_moe","vocab_size":512,"hidden_size":64,"num_layers":2,"num_heads":4,
        "num_kv_heads":2,"head_dim":16,"intermediate_size":128,"rope_theta":10000.0,"rms_norm_eps":1e-6,
        "max_position_embeddings":256,"tie_word_embeddings":false,"qkv_bias":false,"o_bias":false,
        "qk_norm":"per_head","moe":{"num_experts":8,"top_k":2,"expert_width":32,"norm_topk_prob":true,
        "shared_expert_width":null,"shared_expert_gate":false,"moe_layers":[true,true]},
        "bos_token_id":1,"eos_token_ids":[2]}"#;

    #[test]
    fn old_config_still_loads_with_defaults() {
        let c: ModelConfig = serde_json::from_str(OLD).unwrap();
        c.validate().unwrap();
        assert!(c.layer_types.is_empty() && c.nope_layers.is_empty());
        assert_eq!(c.attn_kind(1), AttnKind::Full);
        assert!(c.uses_rope(1));
        assert_eq!((c.sliding_window, c.sandwich.clone()), (None, None));
        assert_eq!(
            (c.qk_scale, c.logit_scale, c.logit_softcap),
            (None, None, None)
        );
        assert!(!c.attn_out_norm && !c.attn_gate);
        let m = c.moe.unwrap();
        assert_eq!(m.router, Router::Softmax);
        assert!(!m.router_bias);
        assert_eq!(
            (m.router_scale, m.routed_scale, m.pooled_width),
            (None, None, None)
        );
    }

    #[test]
    fn unknown_fields_are_still_refused() {
        let bad = OLD.replacen("\"arch\"", "\"attn_sinks\":true,\"arch\"", 1);
        assert!(serde_json::from_str::<ModelConfig>(&bad).is_err());
    }

    #[test]
    fn extensions_are_validated() {
        let base: ModelConfig = serde_json::from_str(OLD).unwrap();
        let bad = |f: &dyn Fn(&mut ModelConfig), word: &str| {
            let mut c = base.clone();
            f(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.contains(word), "{e:?} does not name {word}");
        };
        bad(&|c| c.layer_types = vec![AttnKind::Full], "layer_types");
        bad(&|c| c.nope_layers = vec![true; 3], "nope_layers");
        bad(
            &|c| c.layer_types = vec![AttnKind::Sliding, AttnKind::Full],
            "sliding_window",
        );
        bad(&|c| c.sliding_window = Some(4), "sliding_window");
        bad(&|c| c.embed_scale = Some(-8.0), "embed_scale");
        bad(
            &|c| c.rope_theta_sliding = Some(f32::NAN),
            "rope_theta_sliding",
        );
        bad(
            &|c| {
                c.layer_types = vec![AttnKind::Sliding; 2];
                c.sliding_window = Some(0)
            },
            "sliding_window",
        );
        bad(&|c| c.qk_scale = Some(f32::NAN), "qk_scale");
        bad(&|c| c.logit_softcap = Some(0.0), "logit_softcap");
        bad(&|c| c.logit_scale = Some(-1.0), "logit_scale");
        bad(
            &|c| {
                c.sandwich = Some(SandwichConfig {
                    post_norm_eps: f32::INFINITY,
                    embed_norm: true,
                    kind: SandwichKind::Spark,
                })
            },
            "post_norm_eps",
        );
        bad(
            &|c| c.moe.as_mut().unwrap().router_scale = Some(0.0),
            "router_scale",
        );
        bad(
            &|c| c.moe.as_mut().unwrap().routed_scale = Some(-2.0),
            "routed_scale",
        );
        bad(
            &|c| c.moe.as_mut().unwrap().pooled_width = Some(0),
            "pooled_width",
        );
        let mut ok = base.clone();
        ok.layer_types = vec![AttnKind::Sliding, AttnKind::Full];
        ok.sliding_window = Some(6);
        ok.nope_layers = vec![false, true];
        ok.validate().unwrap();
        assert!(!ok.uses_rope(1));
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["layer_types"], serde_json::json!(["sliding", "full"]));
    }
}

#[cfg(test)]
mod compat {
    /// A description that uses none of the newer fields serializes without them, so older runtimes read it.
    #[test]
    fn default_fields_are_not_written() {
        let c = super::ModelConfig {
            arch: "llama".into(),
            moe: Some(Default::default()),
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        for k in [
            "layer_types",
            "sandwich",
            "attn_gate",
            "logit_softcap",
            "nope_layers",
        ] {
            assert!(v.get(k).is_none(), "{k} written: {v}");
        }
        assert!(v["moe"].get("router").is_none() && v["moe"].get("pooled_width").is_none());
        assert_eq!(serde_json::from_value::<super::ModelConfig>(v).unwrap(), c);
    }
}
