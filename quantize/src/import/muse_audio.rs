//! Muse Spark's raw-waveform audio tower (`model.audio_tower.*`): its config (`audio_config`) and its tensors.
//!
//! The multimodal `muse_spark` config always has a tower (transformers builds one from its defaults when
//! `audio_config` is absent); a bare `muse_spark_text` config has none. The tower's tensors are written as one
//! paging group after the decoder, so a text-only prompt never touches its pages. Nothing is folded: the tower's
//! RMSNorms scale by `w`; the depthwise conv kernels keep PyTorch's `[c, 1, k]` and stay f32 at any dtype.
//! The scaleless embedding norm the features go through before they are scattered into the prompt has no tensor.

use super::plan::{Fetch, Plan};
use crate::ImportError;
use flint_model::config::audio::names;
use flint_model::config::limits::{self, at_most};
use flint_model::AudioConfig;
use serde_json::Value;
use std::path::Path;

/// The checkpoint's prefix of the tower's tensors.
pub const PREFIX: &str = "model.audio_tower.";

/// transformers' `MuseSparkAudioConfig` defaults.
const DEFAULT_PATCH: [usize; 4] = [16, 6, 5, 4];
const DEFAULT_HIDDEN: [usize; 4] = [256, 512, 1024, 2048];
const DEFAULT_DEPTHS: [usize; 4] = [2, 2, 2, 2];

/// `audio_config` of `v` (the config.json at `path`) translated, or None for a bare text config. Every field is
/// type-checked and capped before a list is built; errors name `audio_config.<key>`.
pub fn config(v: &Value, path: &Path) -> Result<Option<AudioConfig>, ImportError> {
    if v.get("model_type").and_then(Value::as_str) != Some("muse_spark") {
        return Ok(None);
    }
    let err = |key: &str, msg: String| ImportError::Config {
        path: path.display().to_string(),
        key: format!("audio_config.{key}"),
        msg,
    };
    let empty = serde_json::Map::new();
    let a = match v.get("audio_config") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ImportError::Config {
                path: path.display().to_string(),
                key: "audio_config".into(),
                msg: "is not an object".into(),
            })
        }
    };
    let present = |k: &str| a.get(k).filter(|x| !x.is_null());
    let uint = |k: &str, x: &Value, cap: usize| -> Result<usize, ImportError> {
        let n = x
            .as_u64()
            .ok_or_else(|| err(k, format!("{x} is not a non-negative integer")))?;
        at_most("", usize::try_from(n).unwrap_or(usize::MAX), cap).map_err(|e| err(k, e.msg))
    };
    let list = |k: &str, default: &[usize], cap: usize| -> Result<Vec<usize>, ImportError> {
        let Some(x) = present(k) else {
            return Ok(default.to_vec());
        };
        let items = x.as_array().ok_or_else(|| err(k, "is not a list".into()))?;
        at_most("", items.len(), limits::MAX_AUDIO_LAYERS).map_err(|e| err(k, e.msg))?;
        items.iter().map(|i| uint(k, i, cap)).collect()
    };
    let scalar = |k: &str, default: usize, cap: usize| match present(k) {
        None => Ok(default),
        Some(x) => uint(k, x, cap),
    };
    let float = |k: &str, default: f64| match present(k) {
        None => Ok(default),
        Some(x) => x
            .as_f64()
            .filter(|f| f.is_finite() && *f > 0.0)
            .ok_or_else(|| err(k, format!("{x} is not a finite positive number"))),
    };
    let patch_sizes = list("patch_sizes", &DEFAULT_PATCH, limits::MAX_SAMPLES_PER_TOKEN)?;
    let hidden_sizes = list("hidden_sizes", &DEFAULT_HIDDEN, limits::MAX_HIDDEN)?;
    let depths = list("depths", &DEFAULT_DEPTHS, limits::MAX_AUDIO_DEPTH)?;
    let layers = scalar("num_hidden_layers", 4, limits::MAX_AUDIO_LAYERS)?;
    for (k, n) in [
        ("patch_sizes", patch_sizes.len()),
        ("hidden_sizes", hidden_sizes.len()),
        ("depths", depths.len()),
    ] {
        if n != layers {
            return Err(err(
                k,
                format!("has {n} entries for `num_hidden_layers` = {layers}"),
            ));
        }
    }
    match present("hidden_act") {
        None => {}
        Some(x) if x.as_str() == Some("gelu") => {}
        Some(x) => {
            return Err(err(
                "hidden_act",
                format!("{x} is not supported (only gelu)"),
            ))
        }
    }
    let ratio = float("mlp_ratio", 4.0)?;
    // transformers: int(hidden_size * mlp_ratio), in f64, truncated.
    let mlp_sizes = hidden_sizes
        .iter()
        .map(|&h| {
            let m = (h as f64 * ratio).trunc();
            if m >= 1.0 && m <= limits::MAX_INTERMEDIATE as f64 {
                Ok(m as usize)
            } else {
                Err(err(
                    "mlp_ratio",
                    format!(
                        "{ratio} gives an MLP width of {m} for hidden size {h} (1..={})",
                        limits::MAX_INTERMEDIATE
                    ),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let token = match v.get("audio_token_id").filter(|x| !x.is_null()) {
        None => 200_038,
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ImportError::Config {
                path: path.display().to_string(),
                key: "audio_token_id".into(),
                msg: format!("{x} is not a token id (0..2^32)"),
            })?,
    };
    Ok(Some(AudioConfig {
        patch_sizes,
        hidden_sizes,
        depths,
        mlp_sizes,
        conv_kernel: scalar("conv_kernel_size", 7, limits::MAX_AUDIO_KERNEL)?,
        out_size: scalar("out_hidden_size", 8192, limits::MAX_HIDDEN)?,
        rms_norm_eps: float("rms_norm_eps", 1e-6)? as f32,
        token_id: token,
    }))
}

/// Adds the tower's tensors to `p` as one paging group (nothing when `a` is None), and stops skipping the
/// checkpoint's tower: from here on an audio tensor the plan does not read is an error.
pub fn plan(p: &mut Plan, a: Option<&AudioConfig>) {
    let Some(a) = a else { return };
    if let Some(skip) = p.skip_prefixes.as_mut() {
        skip.retain(|s| s != PREFIX);
    }
    let src = |s: String| Fetch::Whole(format!("{PREFIX}{s}"));
    p.group(|p| {
        for i in 0..a.layers() {
            let (w, m) = (a.hidden_sizes[i], a.mlp_sizes[i]);
            let cols = a.input_width(i) * a.patch_sizes[i];
            let pe = format!("layers.{i}.patch_embedder");
            p.matrix(
                names::layer(i, "patch"),
                [w, cols],
                src(format!("{pe}.proj.weight")),
            );
            p.vector(
                names::layer(i, "patch.bias"),
                w,
                src(format!("{pe}.proj.bias")),
            );
            p.vector(
                names::layer(i, "patch_norm"),
                w,
                src(format!("{pe}.norm.weight")),
            );
            for b in 0..a.depths[i] {
                let cb = format!("layers.{i}.conv_blocks.{b}");
                let n = |what: &str| names::block(i, b, what);
                p.f32_tensor(
                    n("conv"),
                    &[w, 1, a.conv_kernel],
                    src(format!("{cb}.conv.weight")),
                );
                p.vector(n("conv.bias"), w, src(format!("{cb}.conv.bias")));
                p.vector(n("norm"), w, src(format!("{cb}.norm.weight")));
                p.matrix(n("fc1"), [m, w], src(format!("{cb}.mlp.fc1.weight")));
                p.vector(n("fc1.bias"), m, src(format!("{cb}.mlp.fc1.bias")));
                p.matrix(n("fc2"), [w, m], src(format!("{cb}.mlp.fc2.weight")));
                p.vector(n("fc2.bias"), w, src(format!("{cb}.mlp.fc2.bias")));
            }
        }
        let last = a.hidden_sizes.last().copied().unwrap_or(0);
        p.vector(names::NORM.into(), last, src("norm.weight".into()));
        p.matrix(
            names::PROJ.into(),
            [a.out_size, last],
            src("proj.weight".into()),
        );
        p.vector(names::PROJ_BIAS.into(), a.out_size, src("proj.bias".into()));
        p.vector(
            names::POST_PROJ_NORM.into(),
            a.out_size,
            src("post_proj_norm.weight".into()),
        );
    });
}
