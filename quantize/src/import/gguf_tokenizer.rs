//! A `tokenizers` tokenizer.json from a GGUF file's vocabulary, as llama.cpp tokenizes with it:
//! - `gpt2` (byte-level BPE): the vocabulary and merges, the pre-tokenizer `tokenizer.ggml.pre` names (Qwen2's
//!   splits digits one by one);
//! - `llama` (SentencePiece, Gemma's): llama.cpp merges the adjacent pair whose joined text is the vocabulary entry
//!   of highest score, and falls back to byte tokens (`<0xNN>`) for a character not in the vocabulary. That is a
//!   BPE whose merges are every split of every entry into two entries, ranked by the joined entry's score (the
//!   order transformers' SentencePiece converter gives them), with byte fallback; spaces become `▁` (with a `▁`
//!   in front when `tokenizer.ggml.add_space_prefix`), and nothing splits the text first.
//!
//! Control tokens (type 3) become special added tokens, user-defined ones (type 4) added tokens (special too for
//! gpt2); for SentencePiece `<bos>` goes in front when `tokenizer.ggml.add_bos_token` says.

use super::gguf_file::{GValue, GgufFile};
use crate::ImportError;
use serde_json::{json, Value};

/// Qwen2's pre-tokenizer split pattern, as its tokenizer.json writes it.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The tokenizer.json of `g`'s vocabulary `tokens` (module doc).
pub(super) fn tokenizer_json(g: &GgufFile, tokens: &[String]) -> Result<String, ImportError> {
    let model =
        g.kv.get("tokenizer.ggml.model")
            .and_then(GValue::as_str)
            .unwrap_or("");
    let types: Vec<u64> =
        g.kv.get("tokenizer.ggml.token_type")
            .and_then(GValue::as_array)
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
            .unwrap_or_default();
    match model {
        "gpt2" => gpt2(g, tokens, &types),
        "llama" => spm(g, tokens, &types),
        _ => Err(ImportError::Config {
            path: g.path.display().to_string(),
            key: "tokenizer.ggml.model".into(),
            msg: format!(
                "tokenizer model `{model}` is not supported (gpt2 BPE and llama SentencePiece are)"
            ),
        }),
    }
}

/// Control (3) and user-defined (4) tokens as added tokens: control ones special, user-defined ones too with
/// `all_special` (else their text is the model's output, as Gemma's newline runs are).
fn added_tokens(tokens: &[String], types: &[u64], all_special: bool) -> Vec<Value> {
    tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": all_special || types.get(i) == Some(&3)})
        })
        .collect()
}

/// `<bos>` in front of every text when the file asks for it.
fn bos_processor(g: &GgufFile, tokens: &[String]) -> Value {
    let add = matches!(
        g.kv.get("tokenizer.ggml.add_bos_token"),
        Some(GValue::Bool(true))
    );
    let bos =
        g.kv.get("tokenizer.ggml.bos_token_id")
            .and_then(GValue::as_u64)
            .and_then(|i| tokens.get(i as usize).map(|t| (i, t.clone())));
    match bos.filter(|_| add) {
        None => Value::Null,
        Some((id, t)) => json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {t.clone(): {"id": t, "ids": [id], "tokens": [t]}}}),
    }
}

/// SentencePiece as llama.cpp runs it (module doc).
fn spm(g: &GgufFile, tokens: &[String], types: &[u64]) -> Result<String, ImportError> {
    let scores: Vec<f64> =
        g.kv.get("tokenizer.ggml.scores")
            .and_then(GValue::as_array)
            .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
            .ok_or_else(|| ImportError::Config {
                path: g.path.display().to_string(),
                key: "tokenizer.ggml.scores".into(),
                msg: "missing or not an array of numbers (a SentencePiece vocabulary has scores)"
                    .into(),
            })?;
    if scores.len() != tokens.len() {
        return Err(ImportError::Config {
            path: g.path.display().to_string(),
            key: "tokenizer.ggml.scores".into(),
            msg: format!("has {} entries for {} tokens", scores.len(), tokens.len()),
        });
    }
    // Normal tokens (type 1, or untyped) take part in merges; control, user-defined, unknown and byte ones do not.
    let normal = |i: usize| matches!(types.get(i), None | Some(1));
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        if normal(i) {
            index.entry(t.as_str()).or_insert(i);
        }
    }
    let mut merges: Vec<(f64, usize, usize, &str, &str)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !normal(i) {
            continue;
        }
        for (k, _) in t.char_indices().skip(1) {
            let (a, b) = t.split_at(k);
            if let (Some(&ia), Some(_)) = (index.get(a), index.get(b)) {
                merges.push((scores[i], i, ia, a, b));
            }
        }
    }
    // Best score first; then the joined entry's id, then the left part's (transformers' converter's order).
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<Value> = merges.iter().map(|m| json!([m.3, m.4])).collect();
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let prefix = matches!(
        g.kv.get("tokenizer.ggml.add_space_prefix"),
        Some(GValue::Bool(true))
    );
    let mut norm =
        vec![json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"})];
    let mut dec = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        norm.insert(0, json!({"type": "Prepend", "prepend": "\u{2581}"}));
        dec.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let unk =
        g.kv.get("tokenizer.ggml.unknown_token_id")
            .and_then(GValue::as_u64)
            .and_then(|i| tokens.get(i as usize).cloned());
    let j = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types, false),
        "normalizer": {"type": "Sequence", "normalizers": norm},
        "pre_tokenizer": null,
        "post_processor": bos_processor(g, tokens),
        "decoder": {"type": "Sequence", "decoders": dec},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    });
    Ok(j.to_string())
}

/// Byte-level BPE (`gpt2`): the vocabulary and merges as they are.
fn gpt2(g: &GgufFile, tokens: &[String], types: &[u64]) -> Result<String, ImportError> {
    let merges: Vec<Value> =
        g.kv.get("tokenizer.ggml.merges")
            .and_then(GValue::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str())
                    .filter_map(|m| m.split_once(' ').map(|(x, y)| json!([x, y])))
                    .collect()
            })
            .unwrap_or_default();
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added = added_tokens(tokens, types, true);
    let byte_level = |prefix: bool| json!({"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": true});
    // Qwen2's pre-tokenizer (its tokenizer.json): its own split, digits one by one, then bytes without GPT-2's.
    let pre = match g.kv.get("tokenizer.ggml.pre").and_then(GValue::as_str) {
        Some("qwen2") => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}),
        _ => byte_level(false),
    };
    let j = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": byte_level(false),
        "decoder": byte_level(true),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    });
    Ok(j.to_string())
}
