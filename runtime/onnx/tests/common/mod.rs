//! Paths shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (this crate is runtime/onnx).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A model under .cache/models, or a panic telling how to fetch it.
pub fn model(rel: &str) -> PathBuf {
    let p = root().join(".cache/models").join(rel);
    assert!(
        p.is_file(),
        "model {} is missing: run bench/fetch_models.sh from the repository root",
        p.display()
    );
    p
}

/// A file under tests/data.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Parsed JSON under tests/data.
pub fn json(rel: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(data(rel)).expect("reference JSON (see tests/data/make_refs.py)");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A scratch file path unique to this process and `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("flint-onnx-test-{}-{tag}", std::process::id()))
}
