//! The thinker of Qwen2.5-Omni (transformers' `qwen2_5_omni_thinker`, `Qwen2_5OmniThinkerForConditionalGeneration`):
//! a dense Qwen2 decoder (q/k/v biases) with sectioned M-RoPE, the Qwen2.5-VL vision tower (`kind: qwen25_vl`:
//! RMSNorms, SwiGLU, window attention, no position table) and Qwen2.5-Omni's log-mel audio encoder (`kind:
//! qwen25_omni`). Both the original release's names (`model.`, `visual.`, `audio_tower.`) and transformers' are
//! read; every source tensor must be read except `audio_bos_eos_token`, which the thinker's forward never uses.

use super::plan::{Fetch, Plan};
use super::qwen3_omni;
use super::qwen3_vl::{self, Prefixes, TextKind};
use super::source::TensorSource;
use crate::ImportError;
use flint_model::config::mel_audio::MelKind;
use flint_model::config::vision::names::{self, bias, blk};
use flint_model::config::vision::VisionKind;
use flint_model::{ModelConfig, VisionConfig};
use serde_json::Value;
use std::path::Path;

/// `model_type` of the checkpoints read here, and `ModelConfig::arch` of the files written.
pub const ARCH: &str = "qwen2_5_omni_thinker";

/// Translates a `qwen2_5_omni_thinker` config.json (`v`, read from `path`).
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let kind = TextKind {
        like: "qwen2",
        force_norm: false,
        interleaved: false,
    };
    let mut c = qwen3_vl::text_config(v, path, kind)?;
    c.arch = ARCH.into();
    c.vision = Some(qwen3_vl::tower_config(
        v,
        path,
        c.hidden_size,
        VisionKind::Qwen25Vl,
    )?);
    c.mel_audio = Some(qwen3_omni::audio_config(
        v,
        path,
        c.hidden_size,
        MelKind::Qwen25Omni,
    )?);
    qwen3_omni::time_video_in_seconds(&mut c, v, path, 25, true)?;
    qwen3_vl::validated(c, path)
}

/// The decoder's, the vision tower's and the audio encoder's tensors.
pub fn plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let at = Prefixes::of(src);
    let mut p = qwen3_vl::decoder_plan(c, src);
    p.skip_prefixes = Some(vec![format!("{}.audio_bos_eos_token.", at.audio)]);
    if let Some(v) = &c.vision {
        vision_plan(&mut p, v, c.hidden_size, at.visual);
    }
    if let Some(a) = &c.mel_audio {
        qwen3_omni::audio_plan(&mut p, a, at.audio);
    }
    p
}

fn vision_plan(p: &mut Plan, v: &VisionConfig, out: usize, tower: &str) {
    let (d, merged, inter) = (v.hidden_size, v.merged_size(), v.intermediate_size);
    let w = |s: String| Fetch::Whole(s);
    let linear = |p: &mut Plan, ours: &str, rows, cols, theirs: &str| {
        p.matrix(ours.into(), [rows, cols], w(format!("{theirs}.weight")));
        p.vector(bias(ours), rows, w(format!("{theirs}.bias")));
    };
    p.group(|p| {
        p.matrix(
            names::PATCH_EMBD.into(),
            [d, v.patch_len()],
            Fetch::Flatten(format!("{tower}.patch_embed.proj.weight")),
        );
    });
    for l in 0..v.num_layers {
        let pre = format!("{tower}.blocks.{l}");
        p.group(|p| {
            p.vector(blk(l, "attn_norm"), d, w(format!("{pre}.norm1.weight")));
            for (ours, theirs) in [
                ("attn_q", "q"),
                ("attn_k", "k"),
                ("attn_v", "v"),
                ("attn_o", "proj"),
            ] {
                linear(p, &blk(l, ours), d, d, &format!("{pre}.attn.{theirs}"));
            }
            p.vector(blk(l, "ffn_norm"), d, w(format!("{pre}.norm2.weight")));
            for (ours, theirs, rows, cols) in [
                ("ffn_gate", "gate_proj", inter, d),
                ("ffn_up", "up_proj", inter, d),
                ("ffn_down", "down_proj", d, inter),
            ] {
                linear(p, &blk(l, ours), rows, cols, &format!("{pre}.mlp.{theirs}"));
            }
        });
    }
    p.group(|p| {
        let m = format!("{tower}.merger");
        p.vector(names::MERGER_NORM.into(), d, w(format!("{m}.ln_q.weight")));
        linear(p, names::ADAPTER_FC1, merged, merged, &format!("{m}.mlp.0"));
        linear(p, names::ADAPTER_FC2, out, merged, &format!("{m}.mlp.2"));
    });
}
