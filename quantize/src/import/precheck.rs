//! Checks of a raw config.json before it is translated (hf.rs) and before anything is sized from it: the file is an
//! object, every count is within its cap (so no per-layer list is built for 10^9 layers), and every field that is
//! present has the JSON type it must have (a string `rope_theta` is an error, not the default). Errors name the
//! file and the config.json key. [`flint_model::ModelConfig::validate`] then checks the translated description.

// Sizes here come from outside the process: no unchecked arithmetic or indexing.
#![warn(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::ImportError;
use flint_model::config::limits::{self, at_most};
use serde_json::Value;
use std::path::Path;

/// config.json keys that are counts or dimensions, with their caps.
const COUNTS: &[(&str, usize)] = &[
    ("num_hidden_layers", limits::MAX_LAYERS),
    ("num_attention_heads", limits::MAX_HEADS),
    ("num_key_value_heads", limits::MAX_HEADS),
    ("head_dim", limits::MAX_HEAD_DIM),
    ("hidden_size", limits::MAX_HIDDEN),
    ("intermediate_size", limits::MAX_INTERMEDIATE),
    ("moe_intermediate_size", limits::MAX_EXPERT_WIDTH),
    ("shared_expert_intermediate_size", limits::MAX_EXPERT_WIDTH),
    ("num_experts", limits::MAX_EXPERTS),
    ("num_local_experts", limits::MAX_EXPERTS),
    ("num_experts_per_tok", limits::MAX_TOP_K),
    ("vocab_size", limits::MAX_VOCAB),
    ("max_position_embeddings", limits::MAX_POSITIONS),
    ("decoder_sparse_step", limits::MAX_LAYERS),
];
const FLOATS: &[&str] = &["rope_theta", "rms_norm_eps"];
const BOOLS: &[&str] = &[
    "tie_word_embeddings",
    "attention_bias",
    "norm_topk_prob",
    "qkv_bias",
];

/// Checks `v`, the contents of the config.json at `path`.
pub fn hf_config(v: &Value, path: &Path) -> Result<(), ImportError> {
    let err = |key: &str, msg: String| ImportError::Config {
        path: path.display().to_string(),
        key: key.into(),
        msg,
    };
    let Some(o) = v.as_object() else {
        return Err(ImportError::parse(
            path,
            format!("is a JSON {}, not an object", kind(v)),
        ));
    };
    let present = |k: &str| o.get(k).filter(|x| !x.is_null());
    for &(k, cap) in COUNTS {
        if let Some(x) = present(k) {
            let n = x
                .as_u64()
                .ok_or_else(|| err(k, format!("is a {}, not a non-negative integer", kind(x))))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            at_most("", n, cap).map_err(|e| err(k, e.msg))?;
        }
    }
    for &k in FLOATS {
        if let Some(x) = present(k) {
            if !x.is_number() {
                return Err(err(k, format!("is a {}, not a number", kind(x))));
            }
        }
    }
    for &k in BOOLS {
        if let Some(x) = present(k) {
            if !x.is_boolean() {
                return Err(err(k, format!("is a {}, not a boolean", kind(x))));
            }
        }
    }
    if let Some(r) = present("rope_parameters") {
        let t = r.get("rope_theta").filter(|x| !x.is_null());
        if !r.is_object() || t.is_some_and(|t| !t.is_number()) {
            return Err(err(
                "rope_parameters",
                "must be an object with a numeric `rope_theta`".into(),
            ));
        }
    }
    if let Some(r) = present("rope_scaling") {
        let Some(r) = r.as_object() else {
            return Err(err(
                "rope_scaling",
                format!("is a {}, not an object or null", kind(r)),
            ));
        };
        for k in ["rope_type", "type"] {
            if r.get(k).is_some_and(|t| !t.is_string()) {
                return Err(err("rope_scaling", format!("`{k}` is not a string")));
            }
        }
    }
    if let Some(x) = present("mlp_only_layers") {
        let a = x
            .as_array()
            .ok_or_else(|| err("mlp_only_layers", "is not an array".into()))?;
        at_most("", a.len(), limits::MAX_LAYERS).map_err(|e| err("mlp_only_layers", e.msg))?;
        if a.iter().any(|l| !l.is_u64()) {
            return Err(err(
                "mlp_only_layers",
                "holds something other than layer numbers".into(),
            ));
        }
    }
    for k in ["bos_token_id", "eos_token_id"] {
        let ids: Vec<&Value> = match present(k) {
            None => continue,
            Some(Value::Array(a)) => a.iter().collect(),
            Some(x) => vec![x],
        };
        at_most("", ids.len(), limits::MAX_EOS_IDS).map_err(|e| err(k, e.msg))?;
        for id in ids {
            if id.as_u64().is_none_or(|n| u32::try_from(n).is_err()) {
                return Err(err(k, format!("{id} is not a token id (0..2^32)")));
            }
        }
    }
    Ok(())
}

/// GGUF `llama.*` keys that are counts or dimensions, with their caps.
const GGUF_COUNTS: &[(&str, usize)] = &[
    ("block_count", limits::MAX_LAYERS),
    ("attention.head_count", limits::MAX_HEADS),
    ("attention.head_count_kv", limits::MAX_HEADS),
    ("rope.dimension_count", limits::MAX_HEAD_DIM),
    ("embedding_length", limits::MAX_HIDDEN),
    ("feed_forward_length", limits::MAX_INTERMEDIATE),
    ("vocab_size", limits::MAX_VOCAB),
    ("context_length", limits::MAX_POSITIONS),
    ("expert_count", limits::MAX_EXPERTS),
    ("expert_used_count", limits::MAX_TOP_K),
    ("expert_feed_forward_length", limits::MAX_EXPERT_WIDTH),
];

/// Checks the GGUF counts that `get` (an `{arch}.*` key without its prefix to its integer value) finds.
pub fn gguf_counts(
    arch: &str,
    get: impl Fn(&str) -> Option<u64>,
    path: &Path,
) -> Result<(), ImportError> {
    for &(k, cap) in GGUF_COUNTS {
        if let Some(n) = get(k) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            at_most("", n, cap).map_err(|e| ImportError::Config {
                path: path.display().to_string(),
                key: format!("{arch}.{k}"),
                msg: e.msg,
            })?;
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(j: &str) -> String {
        let v: Value = serde_json::from_str(j).unwrap();
        match hf_config(&v, Path::new("m/config.json")) {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_the_file_and_key() {
        assert_eq!(check(r#"{"num_hidden_layers": 2}"#), "ok");
        assert_eq!(
            check("[1]"),
            "m/config.json: is a JSON array, not an object"
        );
        let e = check(r#"{"num_hidden_layers": 1000000000}"#);
        assert!(
            e.contains("`num_hidden_layers`") && e.contains("exceeds the cap 1024"),
            "{e}"
        );
        let e = check(r#"{"rope_theta": "1e6"}"#);
        assert!(e.contains("`rope_theta`: is a string"), "{e}");
        let e = check(r#"{"rope_scaling": "yarn"}"#);
        assert!(e.contains("`rope_scaling`: is a string"), "{e}");
        let e = check(r#"{"eos_token_id": [2, 1099511627776]}"#);
        assert!(
            e.contains("`eos_token_id`: 1099511627776 is not a token id"),
            "{e}"
        );
    }
}
