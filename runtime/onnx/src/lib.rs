//! flint-onnx: the small ONNX models that run beside the decoder in the glasses loop, through tract (the default)
//! or ONNX Runtime.
//!
//! - [`vad`]: Silero voice activity detection, streaming over 16 kHz mono f32, with speech start/end events
//!   (pre-roll, minimum speech, hangover).
//! - [`ocr`]: PP-OCRv4 text detection (DB) and recognition (CTC), pre- and post-processing written after
//!   RapidOCR 1.4.4's (the reference the tests compare against).
//! - [`backend`]: the only module that calls an inference engine: load an ONNX file, run f32 tensors, on
//!   [`Backend::Tract`] (default: pure Rust, nothing to install) or [`Backend::Ort`] (ONNX Runtime loaded from a
//!   `libonnxruntime.so` at run time, with an execution provider for boards with an NPU). [`VadConfig`] and
//!   [`OcrConfig`] carry the choice.
//! - [`OnnxError`]: every error names the model file and what was wrong.
//!
//! Nothing here panics on bad input: files, images and samples are checked, and calls into the engines are
//! wrapped.

pub mod backend;
pub mod error;
pub mod ocr;
pub mod vad;

pub use backend::{ort_providers, Backend, OrtOptions};
pub use error::OnnxError;
pub use ocr::{Ocr, OcrConfig, OcrWord};
pub use vad::{Vad, VadConfig, VadEvent};
