//! The tiny Muse Spark fixture as a user's checkpoint: the stand-in tokenizer as a tokenizer.json, the processors the
//! fixture used, imported into a `.flint`; and its audio clip as a WAV.

use crate::{fixtures, import, Ref};
use flint_format::DType;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The fixture's stand-in tokenizer (manifest `inputs_how.standin_tokenizer`) as a tokenizer.json: the special
/// tokens at their ids, char c at 256 + ord(c) - 32, and every other id a private-use char of its own, so any id
/// sequence has a text; a BPE without merges reads one char per token, and the post-processor puts bos in front.
pub fn standin_tokenizer(
    specials: &serde_json::Map<String, serde_json::Value>,
    vocab: u32,
) -> String {
    use serde_json::json;
    let mut v = serde_json::Map::new();
    let mut added = Vec::new();
    let name = |k: &str| match k {
        "pad" | "bos" | "eos" => format!("<|{k}|>"),
        other => other.to_string(),
    };
    for (k, id) in specials {
        let n = name(k);
        let id = id.as_u64().unwrap();
        v.insert(n.clone(), json!(id));
        added.push(
            json!({"id": id, "content": n, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": true}),
        );
    }
    for id in 13..vocab {
        v.insert(char_of(id).to_string(), json!(id));
    }
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": null, "decoder": null,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [1], "tokens": ["<|bos|>"]}}},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": v, "merges": []}
    })
    .to_string()
}

/// The text of a non-special id under [`standin_tokenizer`].
pub fn char_of(id: u32) -> char {
    if (256..256 + 95).contains(&id) {
        char::from_u32(id - 256 + 32).unwrap()
    } else {
        char::from_u32(0xE000 + id).unwrap()
    }
}

/// The tiny Muse Spark checkpoint with the stand-in tokenizer and the processors the fixture used (a 15-token image
/// cap, 24 samples per audio token), imported as f32 into `dir/m.flint`; returns its path and the special token ids.
pub fn muse_spark_with_processors(
    dir: &Path,
) -> (PathBuf, serde_json::Map<String, serde_json::Value>) {
    muse_spark_edited(dir, |_| {})
}

/// [`muse_spark_with_processors`] with a context of `positions` (the fixture's 256 hold a fifth of a second of
/// audio at its 24 samples per token; the weights do not depend on it).
pub fn muse_spark_long(
    dir: &Path,
    positions: usize,
) -> (PathBuf, serde_json::Map<String, serde_json::Value>) {
    muse_spark_edited(dir, |c| {
        c["text_config"]["max_position_embeddings"] = positions.into();
    })
}

fn muse_spark_edited(
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (PathBuf, serde_json::Map<String, serde_json::Value>) {
    let fx = fixtures();
    let man: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fx.join("hf/muse_spark/manifest.json")).unwrap(),
    )
    .unwrap();
    let specials = man["inputs_how"]["special_token_ids"]
        .as_object()
        .unwrap()
        .clone();
    let ck = dir.join("ckpt");
    std::fs::create_dir(&ck).unwrap();
    std::fs::copy(
        fx.join("hf/muse_spark/model/model.safetensors"),
        ck.join("model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fx.join("hf/muse_spark/model/config.json")).unwrap(),
    )
    .unwrap();
    edit(&mut config);
    std::fs::write(ck.join("config.json"), config.to_string()).unwrap();
    std::fs::write(ck.join("tokenizer.json"), standin_tokenizer(&specials, 512)).unwrap();
    std::fs::write(
        ck.join("processor_config.json"),
        serde_json::json!({
            "processor_class": "MuseSparkProcessor",
            "image_processor": {"image_processor_type": "MuseGlimmerImageProcessor", "patch_size": 4,
                                "temporal_patch_size": 2, "merge_size": 2, "max_image_tokens": 15},
            "feature_extractor": {"feature_extractor_type": "MuseSparkFeatureExtractor", "samples_per_token": 24,
                                  "sampling_rate": 24000, "feature_size": 1}
        })
        .to_string(),
    )
    .unwrap();
    let model = dir.join("m.flint");
    import(&ck, &model, DType::F32);
    (model, specials)
}

/// The fixture's clip (`io` is its io.safetensors) as a float WAV at 24 kHz: its valid samples only, as a microphone
/// would give them.
pub fn write_fixture_clip(io: &HashMap<String, Ref>, wav: &Path) {
    let valid = io["in.input_values_mask"]
        .data
        .iter()
        .filter(|&&m| m != 0.0)
        .count();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 24000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(wav, spec).unwrap();
    for &s in &io["in.input_values"].data[..valid] {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}
