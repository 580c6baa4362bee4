//! Hugging Face checkpoints: `config.json` of a supported architecture, tensors under transformers' names.
//!
//! Experts are read in both layouts found in real checkpoints: one 2-D tensor per expert
//! (`mlp.experts.{e}.{gate,up,down}_proj.weight`, Mixtral's `block_sparse_moe.experts.{e}.w1/w3/w2`) and fused
//! 3-D tensors (`mlp.experts.gate_up_proj` `[E, 2I, H]` gate rows first, `mlp.experts.down_proj` `[E, H, I]`).

use super::plan::{Fetch, Plan, Transform};
use super::source::TensorSource;
use crate::ImportError;
use flint_model::config::names::{blk, expert, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use flint_model::{ModelConfig, MoeConfig, QkNorm};
use serde_json::Value;
use std::path::Path;

pub const SUPPORTED: &str =
    "llama, qwen2, qwen3, gemma3_text, qwen2_moe, qwen3_moe, olmoe, mixtral, muse_spark, muse_glimmer, qwen3_vl_moe, qwen3_omni_moe_thinker, qwen2_5_omni_thinker";

pub(super) struct Cfg<'a> {
    pub(super) v: &'a Value,
    pub(super) path: &'a Path,
}

impl Cfg<'_> {
    pub(super) fn err(&self, key: &str, msg: &str) -> ImportError {
        ImportError::Config {
            path: self.path.display().to_string(),
            key: key.into(),
            msg: msg.into(),
        }
    }
    pub(super) fn usize(&self, key: &str) -> Result<usize, ImportError> {
        self.opt_usize(key)?.ok_or_else(|| self.err(key, "missing"))
    }
    pub(super) fn opt_usize(&self, key: &str) -> Result<Option<usize>, ImportError> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| self.err(key, "not a non-negative integer")),
        }
    }
    pub(super) fn f32(&self, key: &str) -> Option<f32> {
        self.v.get(key).and_then(Value::as_f64).map(|x| x as f32)
    }
    pub(super) fn bool(&self, key: &str, default: bool) -> bool {
        self.v.get(key).and_then(Value::as_bool).unwrap_or(default)
    }
    pub(super) fn ids(&self, key: &str) -> Vec<u32> {
        match self.v.get(key) {
            Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_u64().map(|x| x as u32))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Translates a transformers `config.json` into Flint's config.
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let c = Cfg { v, path };
    let arch = v
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| c.err("model_type", "missing"))?;
    if super::muse_spark::MODEL_TYPES.contains(&arch) {
        return super::muse_spark::config_from_json(v, path);
    }
    if arch == super::qwen3_vl::ARCH {
        return super::qwen3_vl::config_from_json(v, path);
    }
    if arch == super::qwen3_omni::ARCH {
        return super::qwen3_omni::config_from_json(v, path);
    }
    if arch == super::qwen2_5_omni::ARCH {
        return super::qwen2_5_omni::config_from_json(v, path);
    }
    if !SUPPORTED.split(", ").any(|a| a == arch) {
        return Err(ImportError::UnknownArch {
            path: path.display().to_string(),
            arch: arch.into(),
            supported: SUPPORTED,
        });
    }
    let hidden = c.usize("hidden_size")?;
    let heads = c.usize("num_attention_heads")?;
    let kv_heads = c.opt_usize("num_key_value_heads")?.unwrap_or(heads);
    if heads == 0 {
        return Err(c.err("num_attention_heads", "must be positive"));
    }
    let head_dim = c.opt_usize("head_dim")?.unwrap_or(hidden / heads);
    let layers = c.usize("num_hidden_layers")?;
    let rope_theta = v
        .get("rope_parameters")
        .and_then(|r| r.get("rope_theta"))
        .and_then(Value::as_f64)
        .map(|x| x as f32)
        .or_else(|| c.f32("rope_theta"))
        .unwrap_or(10000.0);
    if let Some(rs) = v.get("rope_scaling").filter(|r| !r.is_null()) {
        let t = rs
            .get("rope_type")
            .or_else(|| rs.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        if t != "default" {
            return Err(c.err(
                "rope_scaling",
                &format!("rope type `{t}` is not supported yet"),
            ));
        }
    }
    let attention_bias = c.bool("attention_bias", false);
    let (qkv_bias, o_bias) = match arch {
        "qwen2" => (true, false),
        "qwen2_moe" => (c.bool("qkv_bias", true), false),
        "mixtral" => (false, false),
        _ => (attention_bias, attention_bias),
    };
    let qk_norm = match arch {
        "qwen3" | "qwen3_moe" => QkNorm::PerHead,
        "olmoe" => QkNorm::Full,
        _ => QkNorm::None,
    };
    let intermediate = c.usize("intermediate_size")?;
    let moe = match arch {
        "qwen2_moe" | "qwen3_moe" | "olmoe" | "mixtral" => {
            let num_experts = match c.opt_usize("num_experts")? {
                Some(n) => n,
                None => c.usize("num_local_experts")?,
            };
            let top_k = c.usize("num_experts_per_tok")?;
            let (expert_width, norm) = match arch {
                "mixtral" => (intermediate, true),
                "olmoe" => (intermediate, c.bool("norm_topk_prob", false)),
                _ => (
                    c.usize("moe_intermediate_size")?,
                    c.bool("norm_topk_prob", false),
                ),
            };
            let only: Vec<usize> = v
                .get("mlp_only_layers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64().map(|x| x as usize))
                        .collect()
                })
                .unwrap_or_default();
            let step = c.opt_usize("decoder_sparse_step")?.unwrap_or(1).max(1);
            let moe_layers = (0..layers)
                .map(|l| !only.contains(&l) && (l + 1) % step == 0)
                .collect();
            let shared = if arch == "qwen2_moe" {
                c.opt_usize("shared_expert_intermediate_size")?
                    .filter(|&w| w > 0)
            } else {
                None
            };
            Some(MoeConfig {
                num_experts,
                top_k,
                expert_width,
                norm_topk_prob: norm,
                shared_expert_gate: shared.is_some(),
                shared_expert_width: shared,
                moe_layers,
                ..Default::default()
            })
        }
        _ => None,
    };
    let mut cfg = ModelConfig {
        arch: arch.to_string(),
        vocab_size: c.usize("vocab_size")?,
        hidden_size: hidden,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim,
        intermediate_size: intermediate,
        rope_theta,
        rms_norm_eps: c.f32("rms_norm_eps").unwrap_or(1e-6),
        max_position_embeddings: c.opt_usize("max_position_embeddings")?.unwrap_or(4096),
        tie_word_embeddings: c.bool("tie_word_embeddings", false),
        qkv_bias,
        o_bias,
        qk_norm,
        moe,
        bos_token_id: c.ids("bos_token_id").first().copied(),
        eos_token_ids: c.ids("eos_token_id"),
        ..Default::default()
    };
    if arch == super::gemma3::MODEL_TYPE {
        super::gemma3::extend(&c, &mut cfg)?;
    }
    cfg.validate().map_err(|m| c.err("(config)", &m))?;
    Ok(cfg)
}

/// The tensors of a transformers checkpoint under Flint's names.
pub fn plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let mut p = Plan::default();
    decoder_plan(&mut p, c, src, "model");
    if !c.tie_word_embeddings {
        p.matrix(
            OUTPUT.into(),
            [c.vocab_size, c.hidden_size],
            Fetch::Whole("lm_head.weight".into()),
        );
    }
    p
}

/// The decoder's tensors, read under `model` (`model`, or `model.language_model` for a vision-language
/// checkpoint): embeddings, layers, final norm; the output head is the caller's.
pub(super) fn decoder_plan(p: &mut Plan, c: &ModelConfig, src: &dyn TensorSource, model: &str) {
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qd, kvd) = (c.num_heads * hd, c.num_kv_heads * hd);
    let w = |s: String| Fetch::Whole(s);
    // Gemma's norms are `1 + w` (folded here), and it has two more per layer (the Glimmer sandwich's).
    let gemma = c.arch == super::gemma3::MODEL_TYPE;
    let norm = |p: &mut Plan, ours: String, len: usize, theirs: String| {
        if gemma {
            p.vector_with(ours, len, w(theirs), Transform::OnePlus)
        } else {
            p.vector(ours, len, w(theirs))
        }
    };
    p.matrix(
        TOK_EMBD.into(),
        [c.vocab_size, h],
        w(format!("{model}.embed_tokens.weight")),
    );
    for l in 0..c.num_layers {
        let pre = format!("{model}.layers.{l}");
        norm(
            p,
            blk(l, "attn_norm"),
            h,
            format!("{pre}.input_layernorm.weight"),
        );
        for (ours, theirs, rows) in [
            ("attn_q", "q_proj", qd),
            ("attn_k", "k_proj", kvd),
            ("attn_v", "v_proj", kvd),
        ] {
            p.matrix(
                blk(l, ours),
                [rows, h],
                w(format!("{pre}.self_attn.{theirs}.weight")),
            );
            if c.qkv_bias {
                p.vector(
                    blk(l, &format!("{ours}.bias")),
                    rows,
                    w(format!("{pre}.self_attn.{theirs}.bias")),
                );
            }
        }
        p.matrix(
            blk(l, "attn_o"),
            [h, qd],
            w(format!("{pre}.self_attn.o_proj.weight")),
        );
        if c.o_bias {
            p.vector(
                blk(l, "attn_o.bias"),
                h,
                w(format!("{pre}.self_attn.o_proj.bias")),
            );
        }
        let (qn, kn) = match c.qk_norm {
            QkNorm::None | QkNorm::PerHeadScaleless => (0, 0),
            QkNorm::PerHead => (hd, hd),
            QkNorm::Full => (qd, kvd),
        };
        if qn > 0 {
            norm(
                p,
                blk(l, "attn_q_norm"),
                qn,
                format!("{pre}.self_attn.q_norm.weight"),
            );
            norm(
                p,
                blk(l, "attn_k_norm"),
                kn,
                format!("{pre}.self_attn.k_norm.weight"),
            );
        }
        if gemma {
            for (ours, theirs) in [
                ("post_attn_norm", "post_attention_layernorm"),
                ("ffn_norm", "pre_feedforward_layernorm"),
                ("post_ffn_norm", "post_feedforward_layernorm"),
            ] {
                norm(p, blk(l, ours), h, format!("{pre}.{theirs}.weight"));
            }
        } else {
            p.vector(
                blk(l, "ffn_norm"),
                h,
                w(format!("{pre}.post_attention_layernorm.weight")),
            );
        }
        match &c.moe {
            Some(m) if c.is_moe_layer(l) => moe_plan(p, c, m, (l, &pre), src),
            _ => dense_plan(p, c, l, &pre),
        }
    }
    norm(p, OUTPUT_NORM.into(), h, format!("{model}.norm.weight"));
}

/// A dense SwiGLU layer: `{pre}.mlp.{gate,up,down}_proj.weight` as `blk.{l}.ffn_{gate,up,down}`.
pub(super) fn dense_plan(p: &mut Plan, c: &ModelConfig, l: usize, pre: &str) {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    for (ours, theirs, shape) in [
        ("ffn_gate", "gate_proj", [i, h]),
        ("ffn_up", "up_proj", [i, h]),
        ("ffn_down", "down_proj", [h, i]),
    ] {
        p.matrix(
            blk(l, ours),
            shape,
            Fetch::Whole(format!("{pre}.mlp.{theirs}.weight")),
        );
    }
}

/// Layer `l`'s router and experts, read under `pre` (`{model}.layers.{l}`).
fn moe_plan(
    p: &mut Plan,
    c: &ModelConfig,
    m: &MoeConfig,
    (l, pre): (usize, &str),
    src: &dyn TensorSource,
) {
    let (h, iw) = (c.hidden_size, m.expert_width);
    // Mixtral's hub layout keeps its experts under `block_sparse_moe` with w1/w3/w2 names.
    let mixtral_hub = src
        .shape(&format!("{pre}.block_sparse_moe.gate.weight"))
        .is_some();
    let router = if mixtral_hub {
        format!("{pre}.block_sparse_moe.gate.weight")
    } else {
        format!("{pre}.mlp.gate.weight")
    };
    p.matrix(
        blk(l, "ffn_router"),
        [m.num_experts, h],
        Fetch::Whole(router),
    );
    let fused_gu = format!("{pre}.mlp.experts.gate_up_proj");
    let fused = src.shape(&fused_gu).is_some();
    for e in 0..m.num_experts {
        p.group(|p| {
            let (g, u, d) = if fused {
                let down = format!("{pre}.mlp.experts.down_proj");
                (
                    Fetch::Slice {
                        key: fused_gu.clone(),
                        index: e,
                        rows: 0..iw,
                    },
                    Fetch::Slice {
                        key: fused_gu.clone(),
                        index: e,
                        rows: iw..2 * iw,
                    },
                    Fetch::Slice {
                        key: down,
                        index: e,
                        rows: 0..h,
                    },
                )
            } else if mixtral_hub {
                let b = format!("{pre}.block_sparse_moe.experts.{e}");
                (
                    Fetch::Whole(format!("{b}.w1.weight")),
                    Fetch::Whole(format!("{b}.w3.weight")),
                    Fetch::Whole(format!("{b}.w2.weight")),
                )
            } else {
                let b = format!("{pre}.mlp.experts.{e}");
                (
                    Fetch::Whole(format!("{b}.gate_proj.weight")),
                    Fetch::Whole(format!("{b}.up_proj.weight")),
                    Fetch::Whole(format!("{b}.down_proj.weight")),
                )
            };
            p.matrix(expert(l, e, "gate"), [iw, h], g);
            p.matrix(expert(l, e, "up"), [iw, h], u);
            p.matrix(expert(l, e, "down"), [h, iw], d);
        });
    }
    if let Some(sw) = m.shared_expert_width {
        let b = format!("{pre}.mlp.shared_expert");
        p.matrix(
            blk(l, "shexp.gate"),
            [sw, h],
            Fetch::Whole(format!("{b}.gate_proj.weight")),
        );
        p.matrix(
            blk(l, "shexp.up"),
            [sw, h],
            Fetch::Whole(format!("{b}.up_proj.weight")),
        );
        p.matrix(
            blk(l, "shexp.down"),
            [h, sw],
            Fetch::Whole(format!("{b}.down_proj.weight")),
        );
        if m.shared_expert_gate {
            p.matrix(
                blk(l, "shexp_gate"),
                [1, h],
                Fetch::Whole(format!("{pre}.mlp.shared_expert_gate.weight")),
            );
        }
    }
}
