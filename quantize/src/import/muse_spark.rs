//! Meta's Muse Spark (transformers' `muse_spark`): the MoE text decoder; the vision tower, adapter and projection
//! are planned by `muse_vision.rs`, the audio tower by `muse_audio.rs`. Its dense sibling Muse Glimmer
//! (`muse_glimmer`) shares the decoder's design but for the sandwich: weighted `1 + w` norms after attention and
//! the feed-forward, plain residual adds, no attention-output norm, and dense layers only.
//!
//! What is folded at import: the centered and input-scaled norms' `1 + w` (f32, as torch computes it), and each
//! residual gate's `alpha`/`beta` (f64, rounded to f32). Experts come fused (`mlp.experts.gate_up_proj`
//! `[E, 2I, P]` gate rows first, `mlp.experts.down_proj` `[E, P, I]`) and are written one paging group each.

use super::hf::Cfg;
use super::plan::{Fetch, Plan, Transform};
use super::source::TensorSource;
use crate::ImportError;
use flint_model::config::names::{blk, expert, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use flint_model::{AttnKind, ModelConfig, MoeConfig, QkNorm, Router, SandwichConfig, SandwichKind};
use serde_json::Value;
use std::path::Path;

/// `model_type`s read here: the multimodal config (decoder under `text_config`) or a bare text config.
pub const MODEL_TYPES: [&str; 4] = [
    "muse_spark",
    "muse_spark_text",
    "muse_glimmer",
    "muse_glimmer_text",
];
/// `ModelConfig::arch` of the imported files.
pub const ARCH: &str = "muse_spark";
/// `ModelConfig::arch` of an imported Muse Glimmer.
pub const GLIMMER_ARCH: &str = "muse_glimmer";

/// Whether `v` (a whole config.json) is a Muse Glimmer.
fn is_glimmer(v: &Value) -> bool {
    v.get("model_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("muse_glimmer"))
}

/// Parts of the multimodal checkpoint deliberately not imported (a later issue adds them). `muse_audio::plan`
/// takes the audio tower off this list when the config has one, and imports it.
const SKIPPED: [&str; 4] = [
    "model.vision_tower.",
    "model.vision_adapter.",
    "model.vision_projection.",
    "model.audio_tower.",
];
/// Where the decoder's tensors live, tried in order (the multimodal model, then a bare text model).
const PREFIXES: [&str; 3] = ["model.language_model.", "model.", ""];

/// The residual gates' temperature (`residual_gate_temperature`) is not part of `ModelConfig`: it is folded into
/// alpha and beta. `plan` reads it from here.
const TEMPERATURE_KEY: &str = "residual_gate_temperature";

impl Cfg<'_> {
    /// A float with transformers' default when absent; present but not a number is an error.
    pub(super) fn num(&self, key: &str, default: f64) -> Result<f64, ImportError> {
        match self.v.get(key) {
            None => Ok(default),
            Some(x) => x.as_f64().ok_or_else(|| self.err(key, "not a number")),
        }
    }

    /// `layer_types` (`full_attention` / `sliding_attention` per layer); when absent, layer `l` is full where
    /// `full(l)` says so and sliding elsewhere.
    pub(super) fn layer_types(
        &self,
        layers: usize,
        full: impl Fn(usize) -> bool,
    ) -> Result<Vec<AttnKind>, ImportError> {
        self.per_layer(
            "layer_types",
            layers,
            |x| match x.as_str()? {
                "full_attention" => Some(AttnKind::Full),
                "sliding_attention" => Some(AttnKind::Sliding),
                _ => None,
            },
            |l| {
                if full(l) {
                    AttnKind::Full
                } else {
                    AttnKind::Sliding
                }
            },
            "`full_attention` or `sliding_attention`",
        )
    }

    /// A list of one entry per layer, `default(l)` when absent; the length must be `layers`.
    pub(super) fn per_layer<T>(
        &self,
        key: &str,
        layers: usize,
        parse: impl Fn(&Value) -> Option<T>,
        default: impl Fn(usize) -> T,
        what: &str,
    ) -> Result<Vec<T>, ImportError> {
        let Some(a) = self.v.get(key).filter(|x| !x.is_null()) else {
            return Ok((0..layers).map(default).collect());
        };
        let a = a.as_array().ok_or_else(|| self.err(key, "not a list"))?;
        if a.len() != layers {
            return Err(self.err(key, &format!("has {} entries for {layers} layers", a.len())));
        }
        a.iter()
            .map(|x| parse(x).ok_or_else(|| self.err(key, &format!("entry {x} is not {what}"))))
            .collect()
    }
}

/// The decoder's config object: `text_config` of a `muse_spark` config, or a bare `muse_spark_text` config.
fn text_config<'a>(v: &'a Value, path: &Path) -> Result<&'a Value, ImportError> {
    if matches!(
        v.get("model_type").and_then(Value::as_str),
        Some("muse_spark_text" | "muse_glimmer_text")
    ) {
        return Ok(v);
    }
    v.get("text_config")
        .filter(|t| t.is_object())
        .ok_or_else(|| ImportError::Config {
            path: path.display().to_string(),
            key: "text_config".into(),
            msg: "missing (a `muse_spark` config keeps its decoder there)".into(),
        })
}

/// Translates a Muse Spark `config.json` into Flint's config, refusing what the runtime would not honour.
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let t = text_config(v, path)?;
    let c = Cfg { v: t, path };
    let glimmer = is_glimmer(v);
    let layers = c.usize("num_hidden_layers")?;
    let heads = c.usize("num_attention_heads")?;
    let hidden = c.usize("hidden_size")?;
    if heads == 0 {
        return Err(c.err("num_attention_heads", "must be positive"));
    }
    if c.bool("attention_bias", false) {
        return Err(c.err(
            "attention_bias",
            "true is not supported (Muse Spark has no attention biases)",
        ));
    }
    for key in ["hidden_act", "hidden_activation"] {
        match t.get(key) {
            None => {}
            Some(a) if a.as_str() == Some("silu") => {}
            Some(a) => return Err(c.err(key, &format!("{a} is not supported (only silu)"))),
        }
    }
    // transformers' default when absent: {"rope_type": "default", "rope_theta": 500000}.
    let rope = t.get("rope_parameters").filter(|r| !r.is_null());
    let rope_type = rope
        .and_then(|r| r.get("rope_type"))
        .map(|x| x.as_str().unwrap_or("(not a string)"))
        .unwrap_or("default");
    if rope_type != "default" {
        return Err(c.err(
            "rope_parameters",
            &format!("rope type `{rope_type}` is not supported (only default)"),
        ));
    }
    let rope_theta = match rope.and_then(|r| r.get("rope_theta")) {
        None => 500_000.0,
        Some(x) => x
            .as_f64()
            .ok_or_else(|| c.err("rope_parameters", "`rope_theta` is not a number"))?,
    };
    // transformers' defaults: the last layer and every 4th before it full attention and NoPE, the rest sliding.
    let every_4th = |l: usize| (layers - 1 - l).is_multiple_of(4);
    let layer_types = c.layer_types(layers, every_4th)?;
    // Only zero matters: it switches RoPE off; other values are ignored by transformers (the global theta is used).
    let nope_layers = c.per_layer(
        "layer_rope_theta",
        layers,
        |x| x.as_f64().map(|th| th == 0.0),
        every_4th,
        "a number",
    )?;
    let moe_layers = c.per_layer(
        "mlp_layer_types",
        layers,
        |x| match x.as_str()? {
            "sparse" => Some(true),
            "dense" => Some(false),
            _ => None,
        },
        |_| !glimmer,
        "`dense` or `sparse`",
    )?;
    let sliding = layer_types.contains(&AttnKind::Sliding);
    let sliding_window = match t.get("sliding_window") {
        None => Some(2048),
        Some(Value::Null) => None,
        Some(_) => c.opt_usize("sliding_window")?,
    }
    .filter(|_| sliding);
    if sliding && sliding_window.unwrap_or(0) == 0 {
        return Err(c.err(
            "sliding_window",
            "must be a positive integer when a layer is `sliding_attention`",
        ));
    }
    let temperature = c.num(TEMPERATURE_KEY, 0.3)?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(c.err(TEMPERATURE_KEY, "must be finite and positive"));
    }
    let output_multiplier = c.num("output_multiplier", 0.176_776_695_296_636_9)? as f32;
    let moe = if moe_layers.contains(&true) {
        Some(MoeConfig {
            num_experts: c.usize("num_local_experts")?,
            top_k: c.usize("num_experts_per_tok")?,
            expert_width: c.usize("moe_intermediate_size")?,
            norm_topk_prob: true,
            shared_expert_width: None,
            shared_expert_gate: false,
            moe_layers: moe_layers.clone(),
            router: Router::Sigmoid,
            router_bias: true,
            router_scale: Some(output_multiplier),
            routed_scale: Some(c.num("routed_scaling_factor", 1.0)? as f32),
            pooled_width: Some(c.usize("moe_hidden_size")?),
        })
    } else {
        None
    };
    let tie = t
        .get("tie_word_embeddings")
        .or_else(|| v.get("tie_word_embeddings"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cfg = ModelConfig {
        arch: if glimmer { GLIMMER_ARCH } else { ARCH }.into(),
        vocab_size: c.usize("vocab_size")?,
        hidden_size: hidden,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: c.opt_usize("num_key_value_heads")?.unwrap_or(heads),
        head_dim: c.opt_usize("head_dim")?.unwrap_or(hidden / heads),
        intermediate_size: c.usize("intermediate_size")?,
        rope_theta: rope_theta as f32,
        rms_norm_eps: c.num("rms_norm_eps", 1e-5)? as f32,
        max_position_embeddings: c.opt_usize("max_position_embeddings")?.unwrap_or(1 << 20),
        tie_word_embeddings: tie,
        qkv_bias: false,
        o_bias: false,
        qk_norm: QkNorm::PerHeadScaleless,
        moe,
        bos_token_id: c.ids("bos_token_id").first().copied(),
        eos_token_ids: c.ids("eos_token_id"),
        layer_types,
        sliding_window,
        nope_layers,
        sandwich: Some(SandwichConfig {
            post_norm_eps: c.num("post_norm_eps", 1e-8)? as f32,
            embed_norm: true,
            kind: if glimmer {
                SandwichKind::Glimmer
            } else {
                SandwichKind::Spark
            },
        }),
        qk_scale: Some(c.num("qk_scale_factor", 5.473_006_486_387_5)? as f32),
        attn_out_norm: !glimmer,
        attn_gate: true,
        logit_scale: Some(output_multiplier),
        logit_softcap: Some(c.num("final_logit_softcapping", 20.0)? as f32),
        vision: super::muse_vision::config(v, path)?,
        audio: super::muse_audio::config(v, path)?,
        ..Default::default()
    };
    cfg.validate().map_err(|m| c.err("(config)", &m))?;
    Ok(cfg)
}

/// The residual gates' temperature, from the config file that `config_from_json` read.
pub fn temperature(v: &Value, path: &Path) -> Result<f64, ImportError> {
    let t = text_config(v, path)?;
    Cfg { v: t, path }.num(TEMPERATURE_KEY, 0.3)
}

/// The decoder's tensors under Flint's names; `temperature` is the residual gates' (`residual_gate_temperature`).
pub fn plan(c: &ModelConfig, src: &dyn TensorSource, temperature: f64) -> Plan {
    let mut p = Plan {
        skip_prefixes: Some(SKIPPED.iter().map(|s| s.to_string()).collect()),
        ..Plan::default()
    };
    let root = PREFIXES
        .iter()
        .find(|r| src.shape(&format!("{r}embed_tokens.weight")).is_some())
        .unwrap_or(&PREFIXES[0]);
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qd, kvd) = (c.num_heads * hd, c.num_kv_heads * hd);
    let glimmer = c.arch == GLIMMER_ARCH;
    let w = |s: String| Fetch::Whole(s);
    let one_plus = |p: &mut Plan, name: String, len: usize, key: String| {
        p.vector_with(name, len, Fetch::Whole(key), Transform::OnePlus)
    };
    let gate = |p: &mut Plan, ours: &str, l: usize, key: String| {
        p.vector_with(
            blk(l, &format!("{ours}_res_alpha")),
            h,
            w(key.clone()),
            Transform::GateAlpha { temperature },
        );
        p.vector_with(
            blk(l, &format!("{ours}_res_beta")),
            h,
            w(key),
            Transform::GateBeta { temperature },
        );
    };
    p.matrix(
        TOK_EMBD.into(),
        [c.vocab_size, h],
        w(format!("{root}embed_tokens.weight")),
    );
    for l in 0..c.num_layers {
        let pre = format!("{root}layers.{l}");
        one_plus(
            &mut p,
            blk(l, "attn_norm"),
            h,
            format!("{pre}.input_layernorm.weight"),
        );
        for (ours, theirs, rows) in [
            ("attn_q", "q_proj", qd),
            ("attn_k", "k_proj", kvd),
            ("attn_v", "v_proj", kvd),
            ("attn_gate", "gate_proj", qd),
        ] {
            p.matrix(
                blk(l, ours),
                [rows, h],
                w(format!("{pre}.self_attn.{theirs}.weight")),
            );
        }
        p.matrix(
            blk(l, "attn_o"),
            [h, qd],
            w(format!("{pre}.self_attn.o_proj.weight")),
        );
        if glimmer {
            one_plus(
                &mut p,
                blk(l, "post_attn_norm"),
                h,
                format!("{pre}.post_attention_layernorm.weight"),
            );
        } else {
            gate(
                &mut p,
                "attn",
                l,
                format!("{pre}.post_attention_residual_gate.gate"),
            );
        }
        one_plus(
            &mut p,
            blk(l, "ffn_norm"),
            h,
            format!("{pre}.pre_feedforward_layernorm.weight"),
        );
        match &c.moe {
            Some(m) if c.is_moe_layer(l) => moe_plan(&mut p, c, m, l, &pre),
            _ => super::hf::dense_plan(&mut p, c, l, &pre),
        }
        one_plus(
            &mut p,
            blk(l, "post_ffn_norm"),
            h,
            format!("{pre}.post_feedforward_layernorm.weight"),
        );
        if !glimmer {
            gate(
                &mut p,
                "ffn",
                l,
                format!("{pre}.post_feedforward_residual_gate.gate"),
            );
        }
    }
    p.vector(OUTPUT_NORM.into(), h, w(format!("{root}norm.weight")));
    if !c.tie_word_embeddings {
        p.matrix(OUTPUT.into(), [c.vocab_size, h], w("lm_head.weight".into()));
    }
    super::muse_vision::plan(&mut p, c);
    super::muse_audio::plan(&mut p, c.audio.as_ref());
    p
}

fn moe_plan(p: &mut Plan, c: &ModelConfig, m: &MoeConfig, l: usize, pre: &str) {
    let (h, iw) = (c.hidden_size, m.expert_width);
    let pw = m.pooled_width.unwrap_or(h);
    let key = |s: &str| format!("{pre}.mlp.{s}");
    p.f32_matrix(
        blk(l, "ffn_router"),
        [m.num_experts, h],
        Fetch::Whole(key("gate.weight")),
    );
    p.vector(
        blk(l, "ffn_router_bias"),
        m.num_experts,
        Fetch::Whole(key("gate.e_score_correction_bias")),
    );
    p.matrix(
        blk(l, "ffn_pre_proj"),
        [pw, h],
        Fetch::Whole(key("pre_expert_proj.weight")),
    );
    p.vector_with(
        blk(l, "ffn_pre_norm"),
        pw,
        Fetch::Whole(key("pre_expert_norm.weight")),
        Transform::OnePlus,
    );
    let slice = |k: &str, index, rows| Fetch::Slice {
        key: key(k),
        index,
        rows,
    };
    for e in 0..m.num_experts {
        p.group(|p| {
            p.matrix(
                expert(l, e, "gate"),
                [iw, pw],
                slice("experts.gate_up_proj", e, 0..iw),
            );
            p.matrix(
                expert(l, e, "up"),
                [iw, pw],
                slice("experts.gate_up_proj", e, iw..2 * iw),
            );
            p.matrix(
                expert(l, e, "down"),
                [pw, iw],
                slice("experts.down_proj", e, 0..pw),
            );
        });
    }
    p.vector_with(
        blk(l, "ffn_post_expert_norm"),
        pw,
        Fetch::Whole(key("experts.post_expert_norm.weight")),
        Transform::OnePlus,
    );
    p.matrix(
        blk(l, "ffn_post_proj"),
        [h, pw],
        Fetch::Whole(key("post_expert_proj.weight")),
    );
}
