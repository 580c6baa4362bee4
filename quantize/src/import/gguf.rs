//! GGUF checkpoints (llama, qwen2, qwen3, qwen3moe, gemma3): config from the `{arch}.*` keys, tensors under
//! llama.cpp's names (for llama with the q/k row permutation undone: llama.cpp's converter permutes only llama's),
//! qwen2's q/k/v biases and qwen3's per-head q/k norms, qwen3moe's experts from the stacked
//! `ffn_{gate,up,down}_exps` tensors (`[experts, rows, cols]`, one slice per expert) with the router
//! `ffn_gate_inp`, gemma3's decoder as llama.cpp runs it (see `from_file`), and a tokenizer (gguf_tokenizer.rs).

pub use super::gguf_file::{GValue, GgufFile};
use super::plan::{Fetch, Plan};
use super::precheck;
use super::source::TensorSource;
use super::Checkpoint;
use crate::ImportError;
use flint_model::config::names::expert;
use flint_model::config::names::{blk, OUTPUT, OUTPUT_NORM, TOK_EMBD};
use flint_model::{AttnKind, FfnAct, ModelConfig, MoeConfig, QkNorm, SandwichConfig, SandwichKind};
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
    if !bytes.len().is_multiple_of(block) {
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
    if !["llama", "qwen2", "qwen3", "qwen3moe", "gemma3"].contains(&arch.as_str()) {
        return Err(ImportError::UnknownArch {
            path: path.display().to_string(),
            arch,
            supported: "llama, qwen2, qwen3, qwen3moe, gemma3 (GGUF)",
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
        &arch,
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
    // llama.cpp's qwen3moe graph renormalises the top-k weights unless the file says otherwise
    // (`expert_weights_norm`), as Qwen3-MoE's released configs do (`norm_topk_prob: true`).
    let moe = if arch == "qwen3moe" {
        let layers = num("block_count")?;
        let norm = match g.kv.get(&format!("{arch}.expert_weights_norm")) {
            None => true,
            Some(GValue::Bool(b)) => *b,
            Some(_) => {
                return Err(key_err(
                    &format!("{arch}.expert_weights_norm"),
                    "is not a boolean",
                ))
            }
        };
        Some(MoeConfig {
            num_experts: num("expert_count")?,
            top_k: num("expert_used_count")?,
            expert_width: num("expert_feed_forward_length")?,
            norm_topk_prob: norm,
            moe_layers: vec![true; layers],
            ..Default::default()
        })
    } else {
        None
    };
    let mut config = ModelConfig {
        // Flint names the architecture as transformers does.
        arch: match arch.as_str() {
            "qwen3moe" => "qwen3_moe".into(),
            "gemma3" => "gemma3_text".into(),
            a => a.to_string(),
        },
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
        qk_norm: if ["qwen3", "qwen3moe", "gemma3"].contains(&arch.as_str()) {
            QkNorm::PerHead
        } else {
            QkNorm::None
        },
        moe,
        bos_token_id: id("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: id("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
        ..Default::default()
    };
    if arch == "gemma3" {
        // llama.cpp's gemma3: a sliding window on every layer but each sixth (or as the pattern key says), the
        // sliding layers' RoPE base 10000 unless given, queries scaled by 1/sqrt(head_dim) (1/sqrt(hidden/heads)
        // for the 62-layer 27B), embeddings by sqrt(hidden), GeGLU with tanh GELU, the Glimmer sandwich (the
        // converter stored every norm's `1 + w` already), the logit soft cap when given.
        let window = num("attention.sliding_window").ok().filter(|&w| w > 0);
        let pattern_key = format!("{arch}.attention.sliding_window_pattern");
        let layers = config.num_layers;
        let sliding: Vec<bool> = match g.kv.get(&pattern_key) {
            _ if window.is_none() => vec![false; layers],
            None => (0..layers).map(|l| l % 6 < 5).collect(),
            Some(GValue::Array(a)) => {
                let v: Option<Vec<bool>> = a
                    .iter()
                    .map(|x| match x {
                        GValue::Bool(b) => Some(*b),
                        _ => None,
                    })
                    .collect();
                match v {
                    Some(v) if v.len() == layers => v,
                    _ => {
                        return Err(key_err(
                            &pattern_key,
                            &format!("is not {layers} booleans (one per layer)"),
                        ))
                    }
                }
            }
            Some(v) => match v.as_u64() {
                Some(n) => (0..layers as u64)
                    .map(|l| n == 0 || l % n < n - 1)
                    .collect(),
                None => return Err(key_err(&pattern_key, "is neither a count nor booleans")),
            },
        };
        config.layer_types = sliding
            .iter()
            .map(|&s| if s { AttnKind::Sliding } else { AttnKind::Full })
            .collect();
        config.sliding_window = window.filter(|_| sliding.contains(&true));
        config.rope_theta_sliding = Some(float("rope.freq_base_swa", 10_000.0)?);
        if layers == 62 {
            let per_head = (hidden / heads) as f64;
            config.qk_scale = Some((config.head_dim as f64 / per_head).sqrt() as f32);
        }
        config.embed_scale = Some((hidden as f64).sqrt() as f32);
        config.ffn_act = FfnAct::GeluTanh;
        config.logit_softcap = Some(float("final_logit_softcapping", 0.0)?).filter(|&c| c > 0.0);
        config.sandwich = Some(SandwichConfig {
            post_norm_eps: config.rms_norm_eps,
            embed_norm: false,
            kind: SandwichKind::Glimmer,
        });
    }
    config
        .validate()
        .map_err(|m| key_err(&format!("{arch}.*"), &m))?;
    let plan = plan(&config);
    let tok_name = |i: Option<u32>| i.and_then(|i| tokens.get(i as usize).cloned());
    let tokenizer_json = if tokens.is_empty() {
        None
    } else {
        Some(super::gguf_tokenizer::tokenizer_json(&g, &tokens)?)
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
        if c.sandwich.is_some() {
            p.vector(blk(l, "post_attn_norm"), h, w(g("post_attention_norm")));
            p.vector(blk(l, "post_ffn_norm"), h, w(g("post_ffw_norm")));
        }
        match &c.moe {
            Some(m) if c.is_moe_layer(l) => {
                p.matrix(
                    blk(l, "ffn_router"),
                    [m.num_experts, h],
                    w(g("ffn_gate_inp")),
                );
                let (iw, slice) = (m.expert_width, |t: &str, e: usize, rows: usize| {
                    Fetch::Slice {
                        key: g(t),
                        index: e,
                        rows: 0..rows,
                    }
                });
                for e in 0..m.num_experts {
                    p.group(|p| {
                        p.matrix(expert(l, e, "gate"), [iw, h], slice("ffn_gate_exps", e, iw));
                        p.matrix(expert(l, e, "up"), [iw, h], slice("ffn_up_exps", e, iw));
                        p.matrix(expert(l, e, "down"), [h, iw], slice("ffn_down_exps", e, h));
                    });
                }
            }
            _ => {
                p.matrix(blk(l, "ffn_gate"), [i, h], w(g("ffn_gate")));
                p.matrix(blk(l, "ffn_up"), [i, h], w(g("ffn_up")));
                p.matrix(blk(l, "ffn_down"), [h, i], w(g("ffn_down")));
            }
        }
    }
    p.vector(OUTPUT_NORM.into(), h, w("output_norm.weight".into()));
    if !c.tie_word_embeddings {
        p.matrix(OUTPUT.into(), [c.vocab_size, h], w("output.weight".into()));
    }
    p
}
