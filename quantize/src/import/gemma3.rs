//! Gemma 3's text decoder (`gemma3_text`, transformers' Gemma3ForCausalLM) in Flint's one decoder: embeddings
//! scaled by sqrt(hidden), four `1 + w` RMSNorms per layer (the two after attention and the feed-forward as Muse
//! Glimmer's sandwich, plain residual adds), `1 + w` per-head q/k norms, attention scaled by
//! `query_pre_attn_scalar^-1/2`, a RoPE theta per layer type (sliding layers their own), GeGLU with tanh GELU, and
//! the final logit soft cap. The tensors are transformers' names as `hf::plan` reads them, with the norms'
//! `1 + w` folded at write time.

use super::hf::Cfg;
use crate::ImportError;
use flint_model::{AttnKind, FfnAct, ModelConfig, QkNorm, SandwichConfig, SandwichKind};
use serde_json::Value;

pub(super) const MODEL_TYPE: &str = "gemma3_text";

/// Fills in what Gemma 3 adds to the fields `hf::config_from_json` read; refuses what the decoder would not honour.
pub(super) fn extend(c: &Cfg<'_>, cfg: &mut ModelConfig) -> Result<(), ImportError> {
    let v = c.v;
    match v.get("hidden_activation").or_else(|| v.get("hidden_act")) {
        None => {}
        Some(a) if matches!(a.as_str(), Some("gelu_pytorch_tanh" | "gelu_tanh")) => {}
        Some(a) => {
            return Err(c.err(
                "hidden_activation",
                &format!("{a} is not supported (gelu_pytorch_tanh)"),
            ))
        }
    }
    if v.get("attn_logit_softcapping")
        .is_some_and(|x| !x.is_null())
    {
        return Err(c.err(
            "attn_logit_softcapping",
            "attention logit soft-capping is not supported",
        ));
    }
    if c.bool("use_bidirectional_attention", false) {
        return Err(c.err(
            "use_bidirectional_attention",
            "true is not supported (a causal decoder)",
        ));
    }
    // transformers 5: rope_parameters per layer type; 4.x: rope_theta and rope_local_base_freq.
    let theta = |kind: &str, old: &str, default: f64| -> Result<f32, ImportError> {
        let r = v
            .get("rope_parameters")
            .and_then(|r| r.get(kind))
            .filter(|r| !r.is_null());
        if let Some(t) = r
            .and_then(|r| r.get("rope_type"))
            .and_then(Value::as_str)
            .filter(|t| *t != "default")
        {
            return Err(c.err(
                "rope_parameters",
                &format!("{kind}: rope type `{t}` is not supported yet"),
            ));
        }
        match r.and_then(|r| r.get("rope_theta")) {
            Some(x) => x.as_f64().map(|x| x as f32).ok_or_else(|| {
                c.err(
                    "rope_parameters",
                    &format!("{kind}: `rope_theta` is not a number"),
                )
            }),
            None => Ok(c.num(old, default)? as f32),
        }
    };
    cfg.rope_theta = theta("full_attention", "rope_theta", 1_000_000.0)?;
    cfg.rope_theta_sliding = Some(theta(
        "sliding_attention",
        "rope_local_base_freq",
        10_000.0,
    )?);
    let layers = cfg.num_layers;
    let pattern = c
        .opt_usize("sliding_window_pattern")?
        .or(c.opt_usize("_sliding_window_pattern")?)
        .unwrap_or(6)
        .max(1);
    cfg.layer_types = c.layer_types(layers, |l| (l + 1) % pattern == 0)?;
    cfg.sliding_window = cfg
        .layer_types
        .contains(&AttnKind::Sliding)
        .then(|| c.opt_usize("sliding_window"))
        .transpose()?
        .flatten();
    let scalar = c.num("query_pre_attn_scalar", cfg.head_dim as f64)?;
    if !(scalar.is_finite() && scalar > 0.0) {
        return Err(c.err("query_pre_attn_scalar", "must be finite and positive"));
    }
    // The kernels scale by 1/sqrt(head_dim); Gemma scales by 1/sqrt(query_pre_attn_scalar).
    cfg.qk_scale = Some((cfg.head_dim as f64 / scalar).sqrt() as f32).filter(|s| *s != 1.0);
    cfg.qk_norm = QkNorm::PerHead;
    cfg.embed_scale = Some((cfg.hidden_size as f64).sqrt() as f32);
    cfg.ffn_act = FfnAct::GeluTanh;
    cfg.logit_softcap = match v.get("final_logit_softcapping") {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_f64()
                .ok_or_else(|| c.err("final_logit_softcapping", "not a number"))?
                as f32,
        ),
    };
    cfg.tie_word_embeddings = c.bool("tie_word_embeddings", true);
    cfg.sandwich = Some(SandwichConfig {
        post_norm_eps: cfg.rms_norm_eps,
        embed_norm: false,
        kind: SandwichKind::Glimmer,
    });
    Ok(())
}
