//! The thinker of Qwen3-Omni-MoE (transformers' `qwen3_omni_moe_thinker`, `Qwen3OmniMoeThinkerForConditionalGeneration`):
//! the Qwen3-VL decoder and tower of `qwen3_vl.rs` (the router honours `norm_topk_prob`; the mergers are named
//! `ln_q` / `mlp.0` / `mlp.2`, the deepstack ones `merger_list.{i}`) and the log-mel audio encoder under
//! `model.audio_tower.*` (`flint_model::config::mel_audio`). Every source tensor must be read.

use super::muse_vision::Keys;
use super::plan::{Fetch, Plan};
use super::qwen3_vl;
use super::source::TensorSource;
use crate::ImportError;
use flint_model::config::limits;
use flint_model::config::mel_audio::{names, MelAudioConfig};
use flint_model::ModelConfig;
use serde_json::Value;
use std::path::Path;

/// `model_type` of the checkpoints read here, and `ModelConfig::arch` of the files written.
pub const ARCH: &str = "qwen3_omni_moe_thinker";

/// Translates a `qwen3_omni_moe_thinker` config.json (`v`, read from `path`).
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let mut c = qwen3_vl::text_config(v, path, false)?;
    c.arch = ARCH.into();
    c.vision = Some(qwen3_vl::vision_config(v, path, c.hidden_size)?);
    c.mel_audio = Some(audio_config(v, path, c.hidden_size)?);
    qwen3_vl::validated(c, path)
}

fn audio_config(v: &Value, path: &Path, hidden: usize) -> Result<MelAudioConfig, ImportError> {
    let top = Keys::top(v, path);
    let k = top.section("audio_config")?;
    k.choice("activation_function", "gelu", &["gelu"])?;
    if k.get("scale_embedding").and_then(Value::as_bool) == Some(true) {
        return Err(k.err("scale_embedding", "true is not supported"));
    }
    let out = k.count("output_dim", 3584, limits::MAX_HIDDEN)?;
    if out != hidden {
        return Err(k.err(
            "output_dim",
            format!("({out}) must be the decoder's hidden_size ({hidden})"),
        ));
    }
    Ok(MelAudioConfig {
        num_mel_bins: k.count("num_mel_bins", 128, limits::MAX_MEL_BINS)?,
        downsample: k.count("downsample_hidden_size", 480, limits::MAX_HIDDEN)?,
        d_model: k.count("d_model", 1280, limits::MAX_HIDDEN)?,
        num_layers: k.count("encoder_layers", 32, limits::MAX_LAYERS)?,
        num_heads: k.count("encoder_attention_heads", 20, limits::MAX_HEADS)?,
        ffn_dim: k.count("encoder_ffn_dim", 5120, limits::MAX_INTERMEDIATE)?,
        n_window: k.count("n_window", 50, limits::MAX_MEL_WINDOW / 2)?,
        n_window_infer: k.count("n_window_infer", 800, limits::MAX_MEL_WINDOW)?,
        max_source_positions: k.count("max_source_positions", 1500, limits::MAX_POSITIONS)?,
        output_dim: out,
        token_id: top.id("audio_token_id", 151_646)?,
    })
}

/// Qwen3-Omni's merger names.
fn omni_mergers(tower: &str, i: Option<usize>) -> [String; 3] {
    let m = match i {
        None => format!("{tower}.merger"),
        Some(i) => format!("{tower}.merger_list.{i}"),
    };
    ["ln_q", "mlp.0", "mlp.2"].map(|w| format!("{m}.{w}"))
}

/// The decoder's, the vision tower's and the audio encoder's tensors.
pub fn plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let at = qwen3_vl::Prefixes::of(src);
    let mut p = qwen3_vl::decoder_plan(c, src);
    if let Some(v) = &c.vision {
        qwen3_vl::vision_plan(&mut p, v, c.hidden_size, (at.visual, omni_mergers));
    }
    if let Some(a) = &c.mel_audio {
        audio_plan(&mut p, a, at.audio);
    }
    p
}

/// The encoder's tensors, read under `audio` (`model.audio_tower` or `audio_tower`).
fn audio_plan(p: &mut Plan, a: &MelAudioConfig, audio: &str) {
    let (d, ds) = (a.d_model, a.downsample);
    let w = |s: String| Fetch::Whole(s);
    let linear = |p: &mut Plan, ours: &str, rows, cols, theirs: &str| {
        p.matrix(ours.into(), [rows, cols], w(format!("{theirs}.weight")));
        p.vector(format!("{ours}.bias"), rows, w(format!("{theirs}.bias")));
    };
    let norm = |p: &mut Plan, ours: &str, theirs: &str| {
        p.vector(ours.into(), d, w(format!("{theirs}.weight")));
        p.vector(format!("{ours}.bias"), d, w(format!("{theirs}.bias")));
    };
    p.group(|p| {
        for (i, c_in) in [(1, 1), (2, ds), (3, ds)] {
            let n = names::conv(i);
            p.f32_tensor(
                n.clone(),
                &[ds, c_in, 3, 3],
                w(format!("{audio}.conv2d{i}.weight")),
            );
            p.vector(
                format!("{n}.bias"),
                ds,
                w(format!("{audio}.conv2d{i}.bias")),
            );
        }
        p.matrix(
            names::CONV_OUT.into(),
            [d, a.conv_out_in()],
            w(format!("{audio}.conv_out.weight")),
        );
        for l in 0..a.num_layers {
            let pre = format!("{audio}.layers.{l}");
            let b = |what: &str| names::blk(l, what);
            norm(p, &b("attn_norm"), &format!("{pre}.self_attn_layer_norm"));
            for (ours, theirs) in [
                ("attn_q", "q_proj"),
                ("attn_k", "k_proj"),
                ("attn_v", "v_proj"),
                ("attn_o", "out_proj"),
            ] {
                linear(p, &b(ours), d, d, &format!("{pre}.self_attn.{theirs}"));
            }
            norm(p, &b("ffn_norm"), &format!("{pre}.final_layer_norm"));
            linear(p, &b("ffn_up"), a.ffn_dim, d, &format!("{pre}.fc1"));
            linear(p, &b("ffn_down"), d, a.ffn_dim, &format!("{pre}.fc2"));
        }
        norm(p, names::LN_POST, &format!("{audio}.ln_post"));
        linear(p, names::PROJ1, d, d, &format!("{audio}.proj1"));
        linear(p, names::PROJ2, a.output_dim, d, &format!("{audio}.proj2"));
    });
}
