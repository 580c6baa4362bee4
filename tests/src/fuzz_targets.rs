//! The bodies of the `cargo fuzz` targets in fuzz/ (each a thin `fuzz_target!` over one of these), kept here so
//! that `cargo test` (tests/tests/fuzz_corpus.rs) replays every corpus file and kept crash input through exactly
//! the code the fuzzer ran, on stable and in seconds. Each returns whether the input was accepted; none may panic,
//! hang or allocate without bound whatever the bytes.

use flint_format::FlintFile;
use flint_model::text::{render_template, Message};
use flint_model::{Model, ModelConfig};
use flint_quantize::import::{self, gguf, plan::Plan, source::TensorSource};
use std::path::Path;

/// The targets, by name: the fuzz/ binaries, the corpus folders and this table agree.
pub const TARGETS: &[(&str, fn(&[u8]) -> bool)] = &[
    ("flint_file", flint_file),
    ("gguf", gguf_file),
    ("safetensors_config", safetensors_config),
    ("chat_template", chat_template),
    ("bridge_encode", bridge_encode),
];

/// Writes `crc` over the header, metadata and directory into bytes 72..76 when the header's offsets lie inside
/// `b`, so that random mutations reach the validation behind the checksum instead of stopping at it.
pub fn fix_index_crc(b: &mut [u8]) {
    let word = |b: &[u8], at: usize| -> Option<usize> {
        let v = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?);
        usize::try_from(v).ok()
    };
    let span = |b: &[u8], off: usize, len: usize| -> Option<(usize, usize)> {
        let (o, l) = (word(b, off)?, word(b, len)?);
        let e = o.checked_add(l)?;
        (e <= b.len()).then_some((o, e))
    };
    let (Some(m), Some(d)) = (span(b, 32, 40), span(b, 48, 56)) else {
        return;
    };
    if b.len() < 80 {
        return;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..72]);
    h.update(&b[m.0..m.1]);
    h.update(&b[d.0..d.1]);
    let crc = h.finalize();
    b[72..76].copy_from_slice(&crc.to_le_bytes());
}

/// The .flint reader and the model description's validation, then the loader binding every tensor. The first
/// byte chooses whether the index CRC is recomputed (mostly yes) or left as found.
pub fn flint_file(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let mut b = rest.to_vec();
    if mode % 8 != 0 {
        fix_index_crc(&mut b);
    }
    let Ok(f) = FlintFile::from_bytes("fuzz.flint", &b) else {
        return false;
    };
    if let Some(c) = f.meta("model.config") {
        if let Ok(c) = serde_json::from_value::<ModelConfig>(c.clone()) {
            let _ = c.validate();
        }
    }
    Model::load(f).is_ok()
}

/// The GGUF parser and the GGUF importer's config and plan (no tensor is read: the plan is checked against the
/// shapes).
pub fn gguf_file(data: &[u8]) -> bool {
    let Ok(g) = gguf::GgufFile::from_bytes(Path::new("fuzz.gguf"), data) else {
        return false;
    };
    match gguf::from_file(g) {
        Ok(ck) => ck.plan.check(ck.source.as_ref()).is_ok(),
        Err(_) => false,
    }
}

/// Shapes of an in-memory safetensors file.
struct Shapes(std::collections::HashMap<String, Vec<usize>>);

impl TensorSource for Shapes {
    fn path(&self) -> &Path {
        Path::new("fuzz")
    }
    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.0.get(key).cloned()
    }
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, flint_quantize::ImportError> {
        Err(flint_quantize::ImportError::MissingTensor {
            path: "fuzz".into(),
            name: key.into(),
        })
    }
}

/// config.json and a safetensors header: `[u32 n][n bytes of config.json][safetensors file]`. The config goes
/// through the importer's checks and translation; the safetensors file through the safetensors crate; then the
/// plan built from the config is checked against the file's shapes.
pub fn safetensors_config(data: &[u8]) -> bool {
    let Some((n, rest)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let n = (u32::from_le_bytes(*n) as usize).min(rest.len());
    let (cfg, st) = rest.split_at(n);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(cfg) else {
        return false;
    };
    let config = import::hf_config(&v, Path::new("fuzz/config.json"));
    let Ok(st) = safetensors::SafeTensors::deserialize(st) else {
        return false;
    };
    let shapes = Shapes(
        st.tensors()
            .into_iter()
            .map(|(k, t)| (k, t.shape().to_vec()))
            .collect(),
    );
    let Ok(config) = config else {
        return false;
    };
    let plan: Plan = import::hf::plan(&config, &shapes);
    plan.check(&shapes).is_ok()
}

/// The chat template renderer with its fuel and output cap, over a fixed conversation.
pub fn chat_template(data: &[u8]) -> bool {
    let Ok(tpl) = std::str::from_utf8(data) else {
        return false;
    };
    let msgs = [
        Message {
            role: "system".into(),
            content: "Be brief.".into(),
        },
        Message {
            role: "user".into(),
            content: "What is the capital of France?".into(),
        },
    ];
    render_template(tpl, &msgs, "<s>", "</s>").is_ok()
}

/// The bridge's JSON-lines encoder, with a decode of what it wrote.
pub fn bridge_encode(data: &[u8]) -> bool {
    flint_bridge::json::fuzz_encode(data).is_some()
}
