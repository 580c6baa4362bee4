//! The processors' settings of a Hugging Face folder, carried into the `.flint` so that `flint run` preprocesses
//! images, videos and audio as the checkpoint's own processor does.
//!
//! transformers writes them as `processor_config.json` (one object with a sub-object per processor: newer) or as
//! `preprocessor_config.json` (the image processor or the feature extractor, told apart by their `*_type` key)
//! plus `video_preprocessor_config.json`. Either way the file gets `{"image_processor": …, "video_processor": …,
//! "feature_extractor": …}` with the ones present; the runtime reads each field (flint-media), so only their
//! shape is checked here.

use super::{read_opt, ImportError};
use flint_model::config::limits;
use serde_json::{Map, Value};
use std::path::Path;

const PARTS: [&str; 3] = ["image_processor", "video_processor", "feature_extractor"];

/// The processors of the folder `dir`, or None when it has none.
pub fn read(dir: &Path) -> Result<Option<Value>, ImportError> {
    let mut out = Map::new();
    let object = |p: &Path| -> Result<Option<Map<String, Value>>, ImportError> {
        let Some(s) = read_opt(p, limits::MAX_CONFIG_BYTES)? else {
            return Ok(None);
        };
        match serde_json::from_str(&s).map_err(|e| ImportError::parse(p, e.to_string()))? {
            Value::Object(o) => Ok(Some(o)),
            _ => Err(ImportError::parse(p, "is not a JSON object")),
        }
    };
    let pc = dir.join("processor_config.json");
    if let Some(o) = object(&pc)? {
        for part in PARTS {
            match o.get(part) {
                Some(v @ Value::Object(_)) => {
                    out.insert(part.into(), v.clone());
                }
                Some(Value::Null) | None => {}
                Some(_) => {
                    return Err(ImportError::parse(
                        &pc,
                        format!("`{part}` is not an object"),
                    ));
                }
            }
        }
    }
    let pp = dir.join("preprocessor_config.json");
    if let Some(o) = object(&pp)? {
        // The Omni releases keep both in one file (a Qwen2VLImageProcessor's keys and a WhisperFeatureExtractor's):
        // it is then both.
        let audio = o.contains_key("feature_extractor_type");
        let image = o.contains_key("image_processor_type") || !audio;
        if audio {
            out.entry("feature_extractor")
                .or_insert(Value::Object(o.clone()));
        }
        if image {
            out.entry("image_processor").or_insert(Value::Object(o));
        }
    }
    if let Some(o) = object(&dir.join("video_preprocessor_config.json"))? {
        out.entry("video_processor").or_insert(Value::Object(o));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}
