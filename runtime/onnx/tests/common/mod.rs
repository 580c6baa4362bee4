//! Paths, inputs and helpers shared by the integration tests.
#![allow(dead_code)]

use flint_onnx::{Backend, Ocr, OcrConfig, Vad, VadEvent};
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

/// A 16 kHz speech clip from the shared audio fixtures.
pub fn clip(name: &str) -> Vec<f32> {
    let path = Path::new("/work/shared/fixtures/processors/audio").join(name);
    let c = flint_media::read_wav_file(&path).expect("speech fixture");
    assert_eq!(c.sample_rate, flint_onnx::vad::SAMPLE_RATE);
    c.samples
}

/// The audio of a clip of tests/data/vad_refs.json: a speech fixture, or `r["samples"]` zeros.
pub fn samples_for(name: &str, r: &serde_json::Value) -> Vec<f32> {
    if name.ends_with(".wav") {
        clip(name)
    } else {
        vec![0.0; r["samples"].as_u64().unwrap() as usize]
    }
}

/// Every event of `x` pushed `step` samples at a time, then the stream finished.
pub fn events(vad: &mut Vad, x: &[f32], step: usize) -> Vec<VadEvent> {
    let mut ev = Vec::new();
    for part in x.chunks(step) {
        ev.extend(vad.push(part).unwrap());
    }
    ev.extend(vad.finish());
    ev
}

/// PP-OCRv4 from .cache/models/ppocr on `backend`, RapidOCR's configuration.
pub fn open_ocr(backend: Backend) -> Ocr {
    let what = backend.to_string();
    Ocr::open_with(
        &model("ppocr/det.onnx"),
        &model("ppocr/rec.onnx"),
        OcrConfig {
            backend,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("open OCR on {what}: {e}"))
}
