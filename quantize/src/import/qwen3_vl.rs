//! Qwen3-VL-MoE (transformers' `qwen3_vl_moe`, `Qwen3VLMoeForConditionalGeneration`): the text decoder under
//! `model.language_model.*` is a Qwen3-MoE decoder (per-head q/k norms, top-k weights always renormalised) with
//! interleaved M-RoPE; the vision tower under `model.visual.*` is the `qwen3_vl` design of
//! `flint_model::config::vision` (fused q/k/v split into three matrices here, the Conv3d patch kernel read as a
//! matrix over the processor's `(channel, t, y, x)` rows). Every source tensor must be read.

use super::hf;
use super::muse_vision::Keys;
use super::plan::{Fetch, Plan};
use super::source::TensorSource;
use crate::ImportError;
use flint_model::config::limits;
use flint_model::config::names::OUTPUT;
use flint_model::config::vision::names::{self, bias, blk};
use flint_model::config::vision::{VisionAct, VisionKind};
use flint_model::{ModelConfig, MropeConfig, VisionConfig};
use serde_json::Value;
use std::path::Path;

/// `model_type` of the checkpoints read here, and `ModelConfig::arch` of the files written.
pub const ARCH: &str = "qwen3_vl_moe";
const TOWER: &str = "model.visual";

/// Translates a `qwen3_vl_moe` config.json (`v`, read from `path`).
pub fn config_from_json(v: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
    let mut c = text_config(v, path, VL)?;
    c.vision = Some(vision_config(v, path, c.hidden_size)?);
    validated(c, path)
}

/// `c` once [`ModelConfig::validate`] accepts it (errors name the config.json at `path`).
pub(super) fn validated(c: ModelConfig, path: &Path) -> Result<ModelConfig, ImportError> {
    c.validate().map_err(|m| ImportError::Config {
        path: path.display().to_string(),
        key: "(config)".into(),
        msg: m,
    })?;
    Ok(c)
}

/// How a family's `text_config` reads.
#[derive(Clone, Copy, Debug)]
pub(super) struct TextKind {
    /// The text-only architecture the decoder is (`qwen3_moe`, `qwen2`), translated as such.
    pub like: &'static str,
    /// Renormalise the top-k weights whatever the config says (Qwen3-VL's router does).
    pub force_norm: bool,
    /// M-RoPE is interleaved unless `rope_parameters` says otherwise.
    pub interleaved: bool,
}

/// Qwen3-VL-MoE's decoder.
const VL: TextKind = TextKind {
    like: "qwen3_moe",
    force_norm: true,
    interleaved: true,
};

/// The decoder of a Qwen-VL / Qwen-Omni thinker config (`text_config`): the text-only architecture's translation
/// with M-RoPE from `rope_parameters`.
pub(super) fn text_config(
    v: &Value,
    path: &Path,
    kind: TextKind,
) -> Result<ModelConfig, ImportError> {
    let force_norm = kind.force_norm;
    let top = Keys::top(v, path);
    let t = top.section("text_config")?;
    let text = t.v;
    // Errors of the text-only translation name their keys under `text_config`.
    let in_text = |e: ImportError| e.within("text_config", "");
    super::precheck::hf_config(text, path).map_err(in_text)?;
    // Translate the decoder as the text-only architecture it is, then add what differs.
    let mut as_moe = text.clone();
    as_moe["model_type"] = kind.like.into();
    let mut c = hf::config_from_json(&as_moe, path).map_err(in_text)?;
    c.arch = ARCH.into();
    if let Some(m) = c.moe.as_mut().filter(|_| force_norm) {
        // Qwen3VLMoeTextTopKRouter renormalises the top-k weights whatever the config says.
        m.norm_topk_prob = true;
    }
    c.tie_word_embeddings = top
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(c.tie_word_embeddings);
    let rope = t
        .get("rope_parameters")
        .ok_or_else(|| t.err("rope_parameters", "missing (M-RoPE needs `mrope_section`)"))?;
    let rk = Keys {
        v: rope,
        section: "text_config.rope_parameters",
        path,
    };
    rk.choice("rope_type", "default", &["default"])?;
    let sec = rk
        .get("mrope_section")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 3)
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok()))
                .collect::<Option<Vec<usize>>>()
        })
        .ok_or_else(|| rk.err("mrope_section", "must be a list of three counts"))?;
    // Qwen3-VL names it `mrope_interleaved`, Qwen3-Omni `interleaved`.
    let key = ["mrope_interleaved", "interleaved"]
        .into_iter()
        .find(|k| rk.get(k).is_some())
        .unwrap_or("mrope_interleaved");
    let interleaved = match rk.get(key) {
        None => kind.interleaved,
        Some(x) => x
            .as_bool()
            .ok_or_else(|| rk.err(key, format!("{x} is not a boolean")))?,
    };
    c.mrope = Some(MropeConfig {
        sections: [sec[0], sec[1], sec[2]],
        interleaved,
        video_seconds: None,
    });
    Ok(c)
}

/// Qwen3-VL's tower description from `vision_config` (transformers' defaults for absent keys).
pub(super) fn vision_config(
    v: &Value,
    path: &Path,
    text_hidden: usize,
) -> Result<VisionConfig, ImportError> {
    tower_config(v, path, text_hidden, VisionKind::Qwen3Vl)
}

/// The `vision_config` of a Qwen3-VL (`kind` `Qwen3Vl`) or Qwen2.5-VL / Qwen2.5-Omni (`Qwen25Vl`) tower.
pub(super) fn tower_config(
    v: &Value,
    path: &Path,
    text_hidden: usize,
    kind: VisionKind,
) -> Result<VisionConfig, ImportError> {
    let top = Keys::top(v, path);
    let k = top.section("vision_config")?;
    let q25 = kind == VisionKind::Qwen25Vl;
    let act = match k
        .choice(
            "hidden_act",
            if q25 { "silu" } else { "gelu_pytorch_tanh" },
            if q25 {
                &["silu"]
            } else {
                &["gelu_pytorch_tanh", "gelu"]
            },
        )?
        .as_str()
    {
        "gelu" => VisionAct::GeluErf,
        "silu" => VisionAct::Silu,
        _ => VisionAct::GeluTanh,
    };
    if k.count("in_channels", 3, 3)? != 3 {
        return Err(k.err("in_channels", "only RGB (3) is supported"));
    }
    let layers = k.count("depth", 27, limits::MAX_LAYERS)?;
    let hidden = k.count("hidden_size", 1152, limits::MAX_HIDDEN)?;
    let merge = k.count("spatial_merge_size", 2, limits::MAX_MERGE)?;
    // Qwen2.5-VL has no position table (a side of 1 keeps the unused fields valid).
    let npos = if q25 {
        1
    } else {
        k.count(
            "num_position_embeddings",
            2304,
            limits::MAX_POS_GRID * limits::MAX_POS_GRID,
        )?
    };
    let side = (npos as f64).sqrt().round() as usize;
    if side * side != npos {
        return Err(k.err(
            "num_position_embeddings",
            format!("({npos}) is not a square: the table is side × side"),
        ));
    }
    let out = k.count("out_hidden_size", 3584, limits::MAX_HIDDEN)?;
    if out != text_hidden {
        return Err(k.err(
            "out_hidden_size",
            format!("({out}) must be the decoder's hidden_size ({text_hidden})"),
        ));
    }
    let rope = k.get("rope_parameters");
    let rope_type = rope
        .and_then(|r| r.get("rope_type"))
        .and_then(Value::as_str);
    if rope_type.is_some_and(|t| t != "axial") {
        return Err(k.err(
            "rope_parameters",
            format!("rope type {rope_type:?} is not supported (only axial)"),
        ));
    }
    let rope_theta = match rope.and_then(|r| r.get("rope_theta")) {
        None => 10000.0,
        Some(x) => x
            .as_f64()
            .ok_or_else(|| k.err("rope_parameters", "`rope_theta` is not a number"))?,
    };
    let indices = |key: &str, default: &[usize]| -> Result<Vec<usize>, ImportError> {
        match k.get(key) {
            None => Ok(default.to_vec()),
            Some(a) => a
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok()))
                        .collect::<Option<Vec<usize>>>()
                })
                .ok_or_else(|| k.err(key, "is not a list of layer indices")),
        }
    };
    let patch = k.count(
        "patch_size",
        if q25 { 14 } else { 16 },
        limits::MAX_PATCH_SIZE,
    )?;
    let (deepstack, full_layers, window) = if q25 {
        let full = indices("fullatt_block_indexes", &[7, 15, 23, 31])?;
        if let Some(&l) = full.iter().find(|&&l| l >= layers) {
            return Err(k.err(
                "fullatt_block_indexes",
                format!("entry {l} is not one of the {layers} layers"),
            ));
        }
        let px = k.count(
            "window_size",
            112,
            limits::MAX_PATCH_SIZE * limits::MAX_POS_GRID,
        )?;
        let window = px / merge / patch;
        if window == 0 {
            return Err(k.err(
                "window_size",
                format!(
                    "({px}) is smaller than one merged token ({} pixels)",
                    merge * patch
                ),
            ));
        }
        (
            Vec::new(),
            (0..layers).map(|l| full.contains(&l)).collect(),
            window,
        )
    } else {
        (
            indices("deepstack_visual_indexes", &[8, 16, 24])?,
            vec![true; layers],
            0,
        )
    };
    // Qwen2.5-Omni names the placeholders `*_token_index`.
    let id = |name: &str, default: u32| {
        let index = name.replace("_id", "_index");
        top.id(
            if top.get(&index).is_some() {
                &index
            } else {
                name
            },
            default,
        )
    };
    Ok(VisionConfig {
        hidden_size: hidden,
        intermediate_size: k.count("intermediate_size", 4304, limits::MAX_INTERMEDIATE)?,
        num_layers: layers,
        num_heads: k.count("num_heads", 16, limits::MAX_HEADS)?,
        patch_size: patch,
        patch_temporal: k.count("temporal_patch_size", 2, limits::MAX_PATCH_TEMPORAL)?,
        pos_emb_height: side,
        pos_emb_width: side,
        merge_size: merge,
        // The blocks' and mergers' LayerNorms are built with eps 1e-6 (not configurable).
        layer_norm_eps: 1e-6,
        rope_theta: rope_theta as f32,
        full_layers,
        pos_table_transposed: false,
        adapter_size: hidden.saturating_mul(merge * merge),
        image_token_id: id("image_token_id", 151_655)?,
        video_token_id: id("video_token_id", 151_656)?,
        kind,
        act,
        deepstack_layers: deepstack,
        window,
    })
}

/// The source names of a merger's norm, fc1 and fc2 under the tower's prefix: the main one (`None`) or deepstack
/// merger `i`.
pub(super) type MergerNames = fn(&str, Option<usize>) -> [String; 3];

/// Qwen3-VL's merger names.
fn vl_mergers(tower: &str, i: Option<usize>) -> [String; 3] {
    let m = match i {
        None => format!("{tower}.merger"),
        Some(i) => format!("{tower}.deepstack_merger_list.{i}"),
    };
    ["norm", "linear_fc1", "linear_fc2"].map(|w| format!("{m}.{w}"))
}

/// Where a checkpoint keeps its parts: transformers' layout (`model.language_model`, `model.visual`,
/// `model.audio_tower`), or the original release's (`model`, `visual`, `audio_tower`) that transformers converts
/// at load.
pub(super) struct Prefixes {
    pub text: &'static str,
    pub visual: &'static str,
    pub audio: &'static str,
}

impl Prefixes {
    pub(super) fn of(src: &dyn TensorSource) -> Prefixes {
        if src
            .shape("model.language_model.embed_tokens.weight")
            .is_some()
        {
            Prefixes {
                text: "model.language_model",
                visual: TOWER,
                audio: "model.audio_tower",
            }
        } else {
            Prefixes {
                text: "model",
                visual: "visual",
                audio: "audio_tower",
            }
        }
    }
}

/// The decoder's and the tower's tensors.
pub fn plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let mut p = decoder_plan(c, src);
    if let Some(v) = &c.vision {
        vision_plan(
            &mut p,
            v,
            c.hidden_size,
            (Prefixes::of(src).visual, vl_mergers),
        );
    }
    p
}

/// The decoder (under [`Prefixes::text`]) and the head, every source tensor to be read.
pub(super) fn decoder_plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let mut p = Plan {
        skip_prefixes: Some(Vec::new()),
        ..Plan::default()
    };
    hf::decoder_plan(&mut p, c, src, Prefixes::of(src).text);
    if !c.tie_word_embeddings {
        p.matrix(
            OUTPUT.into(),
            [c.vocab_size, c.hidden_size],
            Fetch::Whole("lm_head.weight".into()),
        );
    }
    p
}

/// The tower under `tower`, its mergers named by `mergers`.
pub(super) fn vision_plan(
    p: &mut Plan,
    v: &VisionConfig,
    out: usize,
    (tower, mergers): (&str, MergerNames),
) {
    let (d, side, merged) = (v.hidden_size, v.pos_emb_height, v.merged_size());
    let w = |s: String| Fetch::Whole(s);
    let norm = |p: &mut Plan, ours: &str, len: usize, theirs: &str| {
        p.vector(ours.into(), len, w(format!("{theirs}.weight")));
        p.vector(bias(ours), len, w(format!("{theirs}.bias")));
    };
    let linear = |p: &mut Plan, ours: &str, rows, cols, theirs: &str| {
        p.matrix(ours.into(), [rows, cols], w(format!("{theirs}.weight")));
        p.vector(bias(ours), rows, w(format!("{theirs}.bias")));
    };
    p.group(|p| {
        let pe = format!("{tower}.patch_embed.proj");
        p.matrix(
            names::PATCH_EMBD.into(),
            [d, v.patch_len()],
            Fetch::Flatten(format!("{pe}.weight")),
        );
        p.vector(bias(names::PATCH_EMBD), d, w(format!("{pe}.bias")));
        p.f32_matrix(
            names::POS_EMBD.into(),
            [side * side, d],
            w(format!("{tower}.pos_embed.weight")),
        );
    });
    for l in 0..v.num_layers {
        let pre = format!("{tower}.blocks.{l}");
        p.group(|p| {
            norm(p, &blk(l, "attn_norm"), d, &format!("{pre}.norm1"));
            let qkv = format!("{pre}.attn.qkv");
            for (i, ours) in ["attn_q", "attn_k", "attn_v"].into_iter().enumerate() {
                let rows = i * d..(i + 1) * d;
                p.matrix(
                    blk(l, ours),
                    [d, d],
                    Fetch::Rows {
                        key: format!("{qkv}.weight"),
                        rows: rows.clone(),
                    },
                );
                p.vector(
                    bias(&blk(l, ours)),
                    d,
                    Fetch::Rows {
                        key: format!("{qkv}.bias"),
                        rows,
                    },
                );
            }
            linear(p, &blk(l, "attn_o"), d, d, &format!("{pre}.attn.proj"));
            norm(p, &blk(l, "ffn_norm"), d, &format!("{pre}.norm2"));
            let inter = v.intermediate_size;
            linear(
                p,
                &blk(l, "ffn_up"),
                inter,
                d,
                &format!("{pre}.mlp.linear_fc1"),
            );
            linear(
                p,
                &blk(l, "ffn_down"),
                d,
                inter,
                &format!("{pre}.mlp.linear_fc2"),
            );
        });
    }
    p.group(|p| {
        let [n, f1, f2] = mergers(tower, None);
        norm(p, names::MERGER_NORM, d, &n);
        linear(p, names::ADAPTER_FC1, merged, merged, &f1);
        linear(p, names::ADAPTER_FC2, out, merged, &f2);
        for i in 0..v.deepstack_layers.len() {
            let [n, f1, f2] = mergers(tower, Some(i));
            norm(p, &names::deepstack(i, "norm"), merged, &n);
            linear(p, &names::deepstack(i, "fc1"), merged, merged, &f1);
            linear(p, &names::deepstack(i, "fc2"), out, merged, &f2);
        }
    });
}
