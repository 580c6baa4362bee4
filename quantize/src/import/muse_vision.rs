//! The Muse vision tower, adapter and projection (transformers' `muse_spark` / `muse_glimmer` `vision_config`,
//! `model.vision_tower.*`, `model.vision_adapter.*`, `model.vision_projection.*`): config and import plan. The
//! architecture is stated in `flint_model::config::vision`; tensor names in docs/FORMAT.md.
//!
//! Nothing is folded: every tensor is written as it is (LayerNorm weights and biases as vectors, matrices in the
//! import dtype, the position table as f32). The tower goes in paging groups of its own (the stem, each layer, the
//! head) so a text-only prompt never touches its pages.

use super::plan::{Fetch, Plan};
use crate::ImportError;
use flint_model::config::limits;
use flint_model::config::vision::names::{self, bias, blk};
use flint_model::{ModelConfig, VisionConfig};
use serde_json::Value;
use std::path::Path;

/// Source prefixes this plan reads; with a vision config, every tensor under them must be read.
const PREFIXES: [&str; 3] = [
    "model.vision_tower.",
    "model.vision_adapter.",
    "model.vision_projection.",
];
const TOWER: &str = "model.vision_tower";

/// Reads one config object's keys, naming `{section}.{key}` in errors.
pub(super) struct Keys<'a> {
    pub(super) v: &'a Value,
    pub(super) section: &'a str,
    pub(super) path: &'a Path,
}

impl<'a> Keys<'a> {
    pub(super) fn err(&self, key: &str, msg: impl Into<String>) -> ImportError {
        let key = if self.section.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.section)
        };
        ImportError::Config {
            path: self.path.display().to_string(),
            key,
            msg: msg.into(),
        }
    }
    /// The top level of config.json `v` (read from `path`).
    pub(super) fn top(v: &'a Value, path: &'a Path) -> Keys<'a> {
        Keys {
            v,
            section: "",
            path,
        }
    }

    /// The object under `key` of the top level (`vision_config`, `audio_config`), its keys named `{key}.…`.
    pub(super) fn section(&self, key: &'a str) -> Result<Keys<'a>, ImportError> {
        let v = self
            .v
            .get(key)
            .filter(|x| x.is_object())
            .ok_or_else(|| self.err(key, "missing or not an object"))?;
        Ok(Keys {
            v,
            section: key,
            path: self.path,
        })
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|x| !x.is_null())
    }
    /// A count within `1..=cap`, `default` when absent.
    pub(super) fn count(
        &self,
        key: &str,
        default: usize,
        cap: usize,
    ) -> Result<usize, ImportError> {
        let n = match self.get(key) {
            None => default,
            Some(x) => x
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| self.err(key, format!("{x} is not a non-negative integer")))?,
        };
        limits::count("", n, cap).map_err(|e| self.err(key, e.msg))
    }
    pub(super) fn num(&self, key: &str, default: f64) -> Result<f64, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(x) => x
                .as_f64()
                .ok_or_else(|| self.err(key, format!("{x} is not a number"))),
        }
    }
    pub(super) fn id(&self, key: &str, default: u32) -> Result<u32, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(x) => x
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.err(key, format!("{x} is not a token id"))),
        }
    }
    /// A string that must be one of `allowed` (`default` when absent).
    pub(super) fn choice(
        &self,
        key: &str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, ImportError> {
        let s = match self.get(key) {
            None => default,
            Some(x) => x
                .as_str()
                .ok_or_else(|| self.err(key, format!("{x} is not a string")))?,
        };
        if !allowed.contains(&s) {
            return Err(self.err(
                key,
                format!("`{s}` is not supported (only {})", allowed.join(", ")),
            ));
        }
        Ok(s.to_string())
    }
}

/// The vision description of a Muse config.json (`v`, read from `path`); None when it has no `vision_config`
/// (a bare text config, or a checkpoint imported text-only). transformers' defaults fill absent keys.
pub fn config(v: &Value, path: &Path) -> Result<Option<VisionConfig>, ImportError> {
    let top = Keys::top(v, path);
    if top.get("vision_config").is_none() {
        return Ok(None);
    }
    let k = top.section("vision_config")?;
    // Muse Spark reads its position table transposed, Muse Glimmer does not (transformers' `grid_thw[:, [0, 2, 1]]`).
    let spark = v.get("model_type").and_then(Value::as_str) != Some("muse_glimmer");
    let kind = k.choice(
        "model_type",
        if spark {
            "muse_spark_vision"
        } else {
            "muse_glimmer_vision"
        },
        &["muse_spark_vision", "muse_glimmer_vision"],
    )?;
    k.choice("hidden_act", "gelu", &["gelu"])?;
    top.choice("projector_hidden_act", "gelu", &["gelu"])?;
    let layers = k.count("num_hidden_layers", 50, limits::MAX_LAYERS)?;
    let hidden = k.count("hidden_size", 1536, limits::MAX_HIDDEN)?;
    let merge = k.count("merge_size", 2, limits::MAX_MERGE)?;
    let full_layers = match k.get("layer_types") {
        None => (0..layers)
            .map(|i| (i + 1) % 4 == 0 || i + 1 == layers)
            .collect(),
        Some(a) => {
            let a = a
                .as_array()
                .ok_or_else(|| k.err("layer_types", "is not a list"))?;
            if a.len() != layers {
                return Err(k.err(
                    "layer_types",
                    format!("has {} entries for {layers} layers", a.len()),
                ));
            }
            a.iter()
                .map(|x| match x.as_str() {
                    Some("full_attention") => Ok(true),
                    Some("window_attention") => Ok(false),
                    _ => Err(k.err(
                        "layer_types",
                        format!("entry {x} is not `full_attention` or `window_attention`"),
                    )),
                })
                .collect::<Result<Vec<bool>, _>>()?
        }
    };
    let rope = k.get("rope_parameters");
    if let Some(t) = rope.and_then(|r| r.get("rope_type")) {
        if t.as_str() != Some("axial") {
            return Err(k.err(
                "rope_parameters",
                format!("rope type {t} is not supported (only axial)"),
            ));
        }
    }
    let rope_theta = rope
        .and_then(|r| r.get("rope_theta"))
        .and_then(Value::as_f64)
        .ok_or_else(|| k.err("rope_parameters", "needs a numeric `rope_theta`"))?;
    // The layers' norms use eps 1e-5 whatever the config says; only ln_pre/ln_post read `layer_norm_eps`.
    let eps = k.num("layer_norm_eps", 1e-5)?;
    if eps != 1e-5 {
        return Err(k.err(
            "layer_norm_eps",
            format!("{eps} is not supported (the tower's layers use 1e-5; only 1e-5 keeps them in step)"),
        ));
    }
    let merged = hidden.saturating_mul(merge * merge);
    let out = top.count("out_hidden_size", 6144, limits::MAX_HIDDEN)?;
    if out != merged {
        return Err(top.err(
            "out_hidden_size",
            format!("({out}) must be vision_config.hidden_size × merge_size² ({merged})"),
        ));
    }
    Ok(Some(VisionConfig {
        hidden_size: hidden,
        intermediate_size: k.count("intermediate_size", 8960, limits::MAX_INTERMEDIATE)?,
        num_layers: layers,
        num_heads: k.count("num_attention_heads", 16, limits::MAX_HEADS)?,
        patch_size: k.count("patch_size", 14, limits::MAX_PATCH_SIZE)?,
        patch_temporal: k.count("patch_temporal", 2, limits::MAX_PATCH_TEMPORAL)?,
        pos_emb_height: k.count("pos_emb_height", 32, limits::MAX_POS_GRID)?,
        pos_emb_width: k.count("pos_emb_width", 32, limits::MAX_POS_GRID)?,
        merge_size: merge,
        layer_norm_eps: eps as f32,
        rope_theta: rope_theta as f32,
        full_layers,
        pos_table_transposed: kind == "muse_spark_vision",
        adapter_size: top.count("projector_hidden_size", 4096, limits::MAX_INTERMEDIATE)?,
        image_token_id: top.id("image_token_id", 200_092)?,
        video_token_id: top.id("video_token_id", 200_091)?,
        ..Default::default()
    }))
}

/// Adds the tower's tensors to `p` when `c` has a vision tower, and claims its source prefixes (no longer skipped).
pub fn plan(p: &mut Plan, c: &ModelConfig) {
    let Some(v) = &c.vision else { return };
    if let Some(skip) = &mut p.skip_prefixes {
        skip.retain(|s| !PREFIXES.contains(&s.as_str()));
    }
    let (d, side, a) = (v.hidden_size, v.pos_emb_height, v.adapter_size);
    let w = |s: String| Fetch::Whole(s);
    let norm = |p: &mut Plan, ours: &str, theirs: &str| {
        p.vector(ours.into(), d, w(format!("{theirs}.weight")));
        p.vector(bias(ours), d, w(format!("{theirs}.bias")));
    };
    let linear = |p: &mut Plan, ours: &str, rows, cols, theirs: &str| {
        p.matrix(ours.into(), [rows, cols], w(format!("{theirs}.weight")));
        p.vector(bias(ours), rows, w(format!("{theirs}.bias")));
    };
    p.group(|p| {
        let pe = format!("{TOWER}.patch_embedder");
        p.matrix(
            names::PATCH_EMBD.into(),
            [d, v.patch_len()],
            w(format!("{pe}.patch_embedding.weight")),
        );
        p.f32_matrix(
            names::POS_EMBD.into(),
            [side * side, d],
            w(format!("{pe}.position_embedding_table.weight")),
        );
        norm(p, names::LN_PRE, &format!("{TOWER}.ln_pre"));
    });
    for l in 0..v.num_layers {
        let pre = format!("{TOWER}.layers.{l}");
        p.group(|p| {
            norm(p, &blk(l, "attn_norm"), &format!("{pre}.norm1"));
            for (ours, theirs) in [
                ("attn_q", "q_proj"),
                ("attn_k", "k_proj"),
                ("attn_v", "v_proj"),
                ("attn_o", "proj"),
            ] {
                linear(p, &blk(l, ours), d, d, &format!("{pre}.attn.{theirs}"));
            }
            norm(p, &blk(l, "ffn_norm"), &format!("{pre}.norm2"));
            let inter = v.intermediate_size;
            linear(p, &blk(l, "ffn_up"), inter, d, &format!("{pre}.mlp.fc1"));
            linear(p, &blk(l, "ffn_down"), d, inter, &format!("{pre}.mlp.fc2"));
        });
    }
    p.group(|p| {
        norm(p, names::LN_POST, &format!("{TOWER}.ln_post"));
        p.matrix(
            names::ADAPTER_FC1.into(),
            [a, v.merged_size()],
            w("model.vision_adapter.fc1.weight".into()),
        );
        p.matrix(
            names::ADAPTER_FC2.into(),
            [a, a],
            w("model.vision_adapter.fc2.weight".into()),
        );
        p.matrix(
            names::PROJ.into(),
            [c.hidden_size, a],
            w("model.vision_projection.weight".into()),
        );
    });
}
