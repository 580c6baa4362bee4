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
    let top = Keys {
        v,
        section: "",
        path,
    };
    let text = top
        .get("text_config")
        .filter(|t| t.is_object())
        .ok_or_else(|| top.err("text_config", "missing (the decoder's settings live there)"))?;
    super::precheck::hf_config(text, path)?;
    // The decoder is Qwen3-MoE's: translate it as one, then add what differs.
    let mut as_moe = text.clone();
    as_moe["model_type"] = "qwen3_moe".into();
    let mut c = hf::config_from_json(&as_moe, path)?;
    c.arch = ARCH.into();
    if let Some(m) = &mut c.moe {
        // Qwen3VLMoeTextTopKRouter renormalises the top-k weights whatever the config says.
        m.norm_topk_prob = true;
    }
    c.tie_word_embeddings = top
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(c.tie_word_embeddings);
    let t = Keys {
        v: text,
        section: "text_config",
        path,
    };
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
    let interleaved = match rk.get("mrope_interleaved") {
        None => true,
        Some(x) => x
            .as_bool()
            .ok_or_else(|| rk.err("mrope_interleaved", format!("{x} is not a boolean")))?,
    };
    c.mrope = Some(MropeConfig {
        sections: [sec[0], sec[1], sec[2]],
        interleaved,
    });
    c.vision = Some(vision_config(v, path, c.hidden_size)?);
    c.validate().map_err(|m| top.err("(config)", m))?;
    Ok(c)
}

/// The tower's description from `vision_config` (transformers' defaults for absent keys).
fn vision_config(v: &Value, path: &Path, text_hidden: usize) -> Result<VisionConfig, ImportError> {
    let top = Keys {
        v,
        section: "",
        path,
    };
    let vc = top
        .get("vision_config")
        .filter(|x| x.is_object())
        .ok_or_else(|| top.err("vision_config", "missing or not an object"))?;
    let k = Keys {
        v: vc,
        section: "vision_config",
        path,
    };
    let act = match k
        .choice(
            "hidden_act",
            "gelu_pytorch_tanh",
            &["gelu_pytorch_tanh", "gelu"],
        )?
        .as_str()
    {
        "gelu" => VisionAct::GeluErf,
        _ => VisionAct::GeluTanh,
    };
    if k.count("in_channels", 3, 3)? != 3 {
        return Err(k.err("in_channels", "only RGB (3) is supported"));
    }
    let layers = k.count("depth", 27, limits::MAX_LAYERS)?;
    let hidden = k.count("hidden_size", 1152, limits::MAX_HIDDEN)?;
    let merge = k.count("spatial_merge_size", 2, limits::MAX_MERGE)?;
    let npos = k.count(
        "num_position_embeddings",
        2304,
        limits::MAX_POS_GRID * limits::MAX_POS_GRID,
    )?;
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
    let deepstack = match k.get("deepstack_visual_indexes") {
        None => vec![8, 16, 24],
        Some(a) => a
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| k.err("deepstack_visual_indexes", "is not a list of layer indices"))?,
    };
    Ok(VisionConfig {
        hidden_size: hidden,
        intermediate_size: k.count("intermediate_size", 4304, limits::MAX_INTERMEDIATE)?,
        num_layers: layers,
        num_heads: k.count("num_heads", 16, limits::MAX_HEADS)?,
        patch_size: k.count("patch_size", 16, limits::MAX_PATCH_SIZE)?,
        patch_temporal: k.count("temporal_patch_size", 2, limits::MAX_PATCH_TEMPORAL)?,
        pos_emb_height: side,
        pos_emb_width: side,
        merge_size: merge,
        // The blocks' and mergers' LayerNorms are built with eps 1e-6 (not configurable).
        layer_norm_eps: 1e-6,
        rope_theta: rope_theta as f32,
        full_layers: vec![true; layers],
        pos_table_transposed: false,
        adapter_size: hidden.saturating_mul(merge * merge),
        image_token_id: top.id("image_token_id", 151_655)?,
        video_token_id: top.id("video_token_id", 151_656)?,
        kind: VisionKind::Qwen3Vl,
        act,
        deepstack_layers: deepstack,
    })
}

/// The decoder's and the tower's tensors.
pub fn plan(c: &ModelConfig, src: &dyn TensorSource) -> Plan {
    let mut p = Plan {
        skip_prefixes: Some(Vec::new()),
        ..Plan::default()
    };
    hf::decoder_plan(&mut p, c, src, "model.language_model");
    if !c.tie_word_embeddings {
        p.matrix(
            OUTPUT.into(),
            [c.vocab_size, c.hidden_size],
            Fetch::Whole("lm_head.weight".into()),
        );
    }
    if let Some(v) = &c.vision {
        vision_plan(&mut p, v, c.hidden_size);
    }
    p
}

fn vision_plan(p: &mut Plan, v: &VisionConfig, out: usize) {
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
        let pe = format!("{TOWER}.patch_embed.proj");
        p.matrix(
            names::PATCH_EMBD.into(),
            [d, v.patch_len()],
            Fetch::Flatten(format!("{pe}.weight")),
        );
        p.vector(bias(names::PATCH_EMBD), d, w(format!("{pe}.bias")));
        p.f32_matrix(
            names::POS_EMBD.into(),
            [side * side, d],
            w(format!("{TOWER}.pos_embed.weight")),
        );
    });
    for l in 0..v.num_layers {
        let pre = format!("{TOWER}.blocks.{l}");
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
        let m = format!("{TOWER}.merger");
        norm(p, names::MERGER_NORM, d, &format!("{m}.norm"));
        linear(
            p,
            names::ADAPTER_FC1,
            merged,
            merged,
            &format!("{m}.linear_fc1"),
        );
        linear(
            p,
            names::ADAPTER_FC2,
            out,
            merged,
            &format!("{m}.linear_fc2"),
        );
        for i in 0..v.deepstack_layers.len() {
            let m = format!("{TOWER}.deepstack_merger_list.{i}");
            norm(
                p,
                &names::deepstack(i, "norm"),
                merged,
                &format!("{m}.norm"),
            );
            let fc1 = names::deepstack(i, "fc1");
            linear(p, &fc1, merged, merged, &format!("{m}.linear_fc1"));
            let fc2 = names::deepstack(i, "fc2");
            linear(p, &fc2, out, merged, &format!("{m}.linear_fc2"));
        }
    });
}
