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
use flint_model::config::mel_audio::{names, MelAudioConfig, MelKind};
use flint_model::{ModelConfig, VideoSeconds};
use serde_json::Value;
use std::path::Path;

/// `model_type` of the checkpoints read here, and `ModelConfig::arch` of the files written.
pub const ARCH: &str = "qwen3_omni_moe_thinker";

/// Translates a `qwen3_omni_moe_thinker` config.json (`v`, read from `path`).
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let kind = qwen3_vl::TextKind {
        like: "qwen3_moe",
        force_norm: false,
        interleaved: true,
    };
    let mut c = qwen3_vl::text_config(v, path, kind)?;
    c.arch = ARCH.into();
    c.vision = Some(qwen3_vl::vision_config(v, path, c.hidden_size)?);
    c.mel_audio = Some(audio_config(v, path, c.hidden_size, MelKind::Qwen3Omni)?);
    time_video_in_seconds(&mut c, v, path, 13, false)?;
    qwen3_vl::validated(c, path)
}

/// An Omni thinker's video time axis: `position_id_per_seconds` (`default` when absent) positions a second;
/// `truncate` for Qwen2.5-Omni, which truncates fractional ones.
pub(super) fn time_video_in_seconds(
    c: &mut ModelConfig,
    v: &Value,
    path: &Path,
    default: usize,
    truncate: bool,
) -> Result<(), ImportError> {
    let key = "position_id_per_seconds";
    let n = Keys::top(v, path).count(key, default, limits::MAX_POSITION_PER_SECOND as usize)?;
    let m = c.mrope.as_mut().expect("the Omni decoders have M-RoPE");
    m.video_seconds = Some(VideoSeconds {
        per_second: n as u32,
        truncate,
    });
    Ok(())
}

/// The log-mel encoder of an Omni thinker's `audio_config`, of design `kind`.
pub(super) fn audio_config(
    v: &Value,
    path: &Path,
    hidden: usize,
    kind: MelKind,
) -> Result<MelAudioConfig, ImportError> {
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
    let d = k.count("d_model", 1280, limits::MAX_HIDDEN)?;
    let n_window = k.count(
        "n_window",
        if kind == MelKind::Qwen25Omni { 100 } else { 50 },
        limits::MAX_MEL_WINDOW / 2,
    )?;
    // Qwen2.5-Omni attends within each chunk; it has no `n_window_infer` or downsampling convolutions.
    let (infer, downsample) = match kind {
        MelKind::Qwen25Omni => (2 * n_window, d),
        MelKind::Qwen3Omni => (
            k.count("n_window_infer", 800, limits::MAX_MEL_WINDOW)?,
            k.count("downsample_hidden_size", 480, limits::MAX_HIDDEN)?,
        ),
    };
    let token = if top.get("audio_token_index").is_some() {
        "audio_token_index"
    } else {
        "audio_token_id"
    };
    Ok(MelAudioConfig {
        num_mel_bins: k.count("num_mel_bins", 128, limits::MAX_MEL_BINS)?,
        downsample,
        d_model: d,
        num_layers: k.count("encoder_layers", 32, limits::MAX_LAYERS)?,
        num_heads: k.count("encoder_attention_heads", 20, limits::MAX_HEADS)?,
        ffn_dim: k.count("encoder_ffn_dim", 5120, limits::MAX_INTERMEDIATE)?,
        n_window,
        n_window_infer: infer,
        max_source_positions: k.count("max_source_positions", 1500, limits::MAX_POSITIONS)?,
        output_dim: out,
        token_id: top.id(token, 151_646)?,
        kind,
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
pub(super) fn audio_plan(p: &mut Plan, a: &MelAudioConfig, audio: &str) {
    let (d, ds) = (a.d_model, a.downsample);
    let q25 = a.kind == MelKind::Qwen25Omni;
    let w = |s: String| Fetch::Whole(s);
    let bias = |p: &mut Plan, ours: &str, rows, theirs: &str| {
        p.vector(format!("{ours}.bias"), rows, w(format!("{theirs}.bias")));
    };
    let linear = |p: &mut Plan, ours: &str, rows, cols, theirs: &str| {
        p.matrix(ours.into(), [rows, cols], w(format!("{theirs}.weight")));
        bias(p, ours, rows, theirs);
    };
    let norm = |p: &mut Plan, ours: &str, theirs: &str| {
        p.vector(ours.into(), d, w(format!("{theirs}.weight")));
        bias(p, ours, d, theirs);
    };
    p.group(|p| {
        if q25 {
            for (i, c_in) in [(1, a.num_mel_bins), (2, d)] {
                let (n, t) = (names::conv(i), format!("{audio}.conv{i}"));
                p.f32_tensor(n.clone(), &[d, c_in, 3], w(format!("{t}.weight")));
                bias(p, &n, d, &t);
            }
        } else {
            for (i, c_in) in [(1, 1), (2, ds), (3, ds)] {
                let (n, t) = (names::conv(i), format!("{audio}.conv2d{i}"));
                p.f32_tensor(n.clone(), &[ds, c_in, 3, 3], w(format!("{t}.weight")));
                bias(p, &n, ds, &t);
            }
            p.matrix(
                names::CONV_OUT.into(),
                [d, a.conv_out_in()],
                w(format!("{audio}.conv_out.weight")),
            );
        }
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
                let t = format!("{pre}.self_attn.{theirs}");
                if q25 && ours == "attn_k" {
                    // Whisper's key projection has no bias.
                    p.matrix(b(ours), [d, d], w(format!("{t}.weight")));
                } else {
                    linear(p, &b(ours), d, d, &t);
                }
            }
            norm(p, &b("ffn_norm"), &format!("{pre}.final_layer_norm"));
            linear(p, &b("ffn_up"), a.ffn_dim, d, &format!("{pre}.fc1"));
            linear(p, &b("ffn_down"), d, a.ffn_dim, &format!("{pre}.fc2"));
        }
        norm(p, names::LN_POST, &format!("{audio}.ln_post"));
        if q25 {
            linear(p, names::PROJ, a.output_dim, d, &format!("{audio}.proj"));
        } else {
            linear(p, names::PROJ1, d, d, &format!("{audio}.proj1"));
            linear(p, names::PROJ2, a.output_dim, d, &format!("{audio}.proj2"));
        }
    });
}
