//! GGUF checkpoints (llama, qwen2, qwen3): config from the `{arch}.*` keys, tensors under llama.cpp's names (for
//! llama with the q/k row permutation undone: llama.cpp's converter permutes only llama's), qwen2's q/k/v biases
//! and qwen3's per-head q/k norms, and a `tokenizers` tokenizer built from the gpt2 BPE vocabulary and merges with
//! the pre-tokenizer `tokenizer.ggml.pre` names (Qwen2's splits digits one by one).

pub use super::gguf_file::{GValue, GgufFile};
use super::plan::{Fetch, Plan};
use super::precheck;
use super::source::TensorSource;
use super::Checkpoint;
use crate::ImportError;
use flint_model::config::names::{blk, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use flint_model::{ModelConfig, QkNorm};
use std::path::Path;

impl TensorSource for GgufFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        GgufFile::shape(self, key)
    }
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError> {
        GgufFile::load_f32(self, key)
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
}

/// Dequantizes whole blocks of ggml type `ggml_type` (its id in GGUF), as the importer does; `None` for a type it
/// does not read or bytes that are not whole blocks.
pub fn dequantize(ggml_type: u32, bytes: &[u8]) -> Option<Vec<f32>> {
    let &(_, _, elems, block) = super::gguf_quants::TYPES
        .iter()
        .find(|t| t.0 == ggml_type)?;
    if bytes.len() % block != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / block * elems);
    super::gguf_quants::dequantize(ggml_type, bytes, &mut out);
    Some(out)
}

/// Opens a GGUF file as a checkpoint.
pub fn open(path: &Path) -> Result<Checkpoint, ImportError> {
    from_file(GgufFile::open(path)?)
}

/// Turns a parsed GGUF file into a checkpoint (its config validated, its plan built).
pub fn from_file(g: GgufFile) -> Result<Checkpoint, ImportError> {
    let path = g.path.clone();
    let path = path.as_path();
    let arch =
        g.kv.get("general.architecture")
            .and_then(GValue::as_str)
            .unwrap_or("")
            .to_string();
    if !["llama", "qwen2", "qwen3"].contains(&arch.as_str()) {
        return Err(ImportError::UnknownArch {
            path: path.display().to_string(),
            arch,
            supported: "llama, qwen2, qwen3 (GGUF)",
        });
    }
    let key_err = |key: &str, msg: &str| ImportError::Config {
        path: path.display().to_string(),
        key: key.into(),
        msg: msg.into(),
    };
    let num = |k: &str| -> Result<usize, ImportError> {
        let key = format!("{arch}.{k}");
        g.kv.get(&key)
            .and_then(GValue::as_u64)
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
            .ok_or_else(|| key_err(&key, "missing or not an integer"))
    };
    let float = |k: &str, d: f64| -> Result<f32, ImportError> {
        let key = format!("{arch}.{k}");
        match g.kv.get(&key) {
            None => Ok(d as f32),
            Some(v) => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| key_err(&key, "is not a number")),
        }
    };
    precheck::gguf_counts(
        |k| g.kv.get(&format!("{arch}.{k}")).and_then(GValue::as_u64),
        path,
    )?;
    let tokens: Vec<String> = match g.kv.get("tokenizer.ggml.tokens") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|t| t.as_str().map(str::to_string)).collect())
            .ok_or_else(|| key_err("tokenizer.ggml.tokens", "is not an array of strings"))?,
    };
    let hidden = num("embedding_length")?;
    let heads = num("attention.head_count")?;
    if heads == 0 {
        return Err(key_err(
            &format!("{arch}.attention.head_count"),
            "must be positive",
        ));
    }
    let kv_heads = num("attention.head_count_kv").unwrap_or(heads);
    // The vocabulary's size: the key, else the token list, else the embedding's rows.
    let embd_rows = g
        .shape("token_embd.weight")
        .and_then(|s| s.first().copied());
    let vocab = match num("vocab_size") {
        Ok(v) => v,
        Err(_) if !tokens.is_empty() => tokens.len(),
        Err(e) => embd_rows.ok_or(e)?,
    };
    if !tokens.is_empty() && tokens.len() != vocab {
        return Err(key_err(
            "tokenizer.ggml.tokens",
            &format!("has {} entries for a vocabulary of {vocab}", tokens.len()),
        ));
    }
    let id = |k: &str| -> Result<Option<u32>, ImportError> {
        match g.kv.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| key_err(k, "is not a token id (0..2^32)")),
        }
    };
    let config = ModelConfig {
        arch: arch.clone(),
        vocab_size: vocab,
        hidden_size: hidden,
        num_layers: num("block_count")?,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim: num("attention.key_length")
            .or_else(|_| num("rope.dimension_count"))
            .unwrap_or(hidden / heads),
        intermediate_size: num("feed_forward_length")?,
        rope_theta: float("rope.freq_base", 10000.0)?,
        rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
        max_position_embeddings: num("context_length").unwrap_or(4096),
        tie_word_embeddings: !g.tensors.contains_key("output.weight"),
        qkv_bias: arch == "qwen2",
        o_bias: false,
        qk_norm: if arch == "qwen3" {
            QkNorm::PerHead
        } else {
            QkNorm::None
        },
        moe: None,
        bos_token_id: id("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: id("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
        ..Default::default()
    };
    config
        .validate()
        .map_err(|m| key_err(&format!("{arch}.*"), &m))?;
    let plan = plan(&config);
    let tok_name = |i: Option<u32>| i.and_then(|i| tokens.get(i as usize).cloned());
    let tokenizer_json = if tokens.is_empty() {
        None
    } else {
        Some(tokenizer_json(&g, &tokens)?)
    };
    Ok(Checkpoint {
        plan,
        tokenizer_json,
        chat_template: g
            .kv
            .get("tokenizer.chat_template")
            .and_then(GValue::as_str)
            .map(str::to_string),
        bos_token: tok_name(config.bos_token_id),
        eos_token: tok_name(config.eos_token_ids.first().copied()),
        processor: None,
        provenance: serde_json::json!({
            "format": "gguf",
            "path": path.display().to_string(),
            "name": g.kv.get("general.name").and_then(GValue::as_str),
        }),
        config,
        source: Box::new(g),
    })
}

fn plan(c: &ModelConfig) -> Plan {
    let mut p = Plan::default();
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qd, kvd, i) = (c.num_heads * hd, c.num_kv_heads * hd, c.intermediate_size);
    let w = |s: String| Fetch::Whole(s);
    p.matrix(
        TOK_EMBD.into(),
        [c.vocab_size, h],
        w("token_embd.weight".into()),
    );
    // llama.cpp's converter permutes q/k rows for llama's RoPE layout only.
    let qk = |key: String, heads: usize| {
        if c.arch == "llama" {
            Fetch::Unpermute { key, heads }
        } else {
            Fetch::Whole(key)
        }
    };
    for l in 0..c.num_layers {
        let g = |s: &str| format!("blk.{l}.{s}.weight");
        p.vector(blk(l, "attn_norm"), h, w(g("attn_norm")));
        p.matrix(blk(l, "attn_q"), [qd, h], qk(g("attn_q"), c.num_heads));
        p.matrix(blk(l, "attn_k"), [kvd, h], qk(g("attn_k"), c.num_kv_heads));
        p.matrix(blk(l, "attn_v"), [kvd, h], w(g("attn_v")));
        if c.qkv_bias {
            for (t, rows) in [("attn_q", qd), ("attn_k", kvd), ("attn_v", kvd)] {
                p.vector(
                    blk(l, &format!("{t}.bias")),
                    rows,
                    w(format!("blk.{l}.{t}.bias")),
                );
            }
        }
        if c.qk_norm == QkNorm::PerHead {
            p.vector(blk(l, "attn_q_norm"), hd, w(g("attn_q_norm")));
            p.vector(blk(l, "attn_k_norm"), hd, w(g("attn_k_norm")));
        }
        p.matrix(blk(l, "attn_o"), [h, qd], w(g("attn_output")));
        p.vector(blk(l, "ffn_norm"), h, w(g("ffn_norm")));
        p.matrix(blk(l, "ffn_gate"), [i, h], w(g("ffn_gate")));
        p.matrix(blk(l, "ffn_up"), [i, h], w(g("ffn_up")));
        p.matrix(blk(l, "ffn_down"), [h, i], w(g("ffn_down")));
    }
    p.vector(OUTPUT_NORM.into(), h, w("output_norm.weight".into()));
    if !c.tie_word_embeddings {
        p.matrix(OUTPUT.into(), [c.vocab_size, h], w("output.weight".into()));
    }
    p
}

/// Qwen2's pre-tokenizer split pattern, as its tokenizer.json writes it.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Builds a byte-level BPE tokenizer.json (the gpt2 model llama.cpp names `tokenizer.ggml.model = gpt2`) from the
/// vocabulary and merges. Control and user-defined tokens (types 3 and 4) become special added tokens.
fn tokenizer_json(g: &GgufFile, tokens: &[String]) -> Result<String, ImportError> {
    let model =
        g.kv.get("tokenizer.ggml.model")
            .and_then(GValue::as_str)
            .unwrap_or("");
    if model != "gpt2" {
        return Err(ImportError::Config {
            path: g.path.display().to_string(),
            key: "tokenizer.ggml.model".into(),
            msg: format!("tokenizer model `{model}` is not supported (gpt2 BPE is)"),
        });
    }
    let types: Vec<u64> =
        g.kv.get("tokenizer.ggml.token_type")
            .and_then(GValue::as_array)
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
            .unwrap_or_default();
    let merges: Vec<serde_json::Value> =
        g.kv.get("tokenizer.ggml.merges")
            .and_then(GValue::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str())
                    .filter_map(|m| m.split_once(' ').map(|(x, y)| serde_json::json!([x, y])))
                    .collect()
            })
            .unwrap_or_default();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)))
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                               "normalized": false, "special": true})
        })
        .collect();
    let byte_level = |prefix: bool| serde_json::json!({"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": true});
    // Qwen2's pre-tokenizer (its tokenizer.json): its own split, digits one by one, then bytes without GPT-2's.
    let pre = match g.kv.get("tokenizer.ggml.pre").and_then(GValue::as_str) {
        Some("qwen2") => serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}),
        _ => byte_level(false),
    };
    let j = serde_json::json!({
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
