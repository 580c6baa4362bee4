//! flint-onnx: the small ONNX models that run beside the decoder in the glasses loop, through tract.
//!
//! - [`vad`]: Silero voice activity detection, streaming over 16 kHz mono f32, with speech start/end events
//!   (pre-roll, minimum speech, hangover).
//! - [`ocr`]: PP-OCRv4 text detection (DB) and recognition (CTC), pre- and post-processing written after
//!   RapidOCR 1.4.4's (the reference the tests compare against).
//! - [`backend`]: the only module that calls tract: load an ONNX file, run f32 tensors. A second engine
//!   (onnxruntime through `ort`) belongs behind the same [`backend::Session`] seam.
//! - [`OnnxError`]: every error names the model file and what was wrong.
//!
//! Nothing here panics on bad input: files, images and samples are checked, and tract calls are wrapped.

pub mod backend;
pub mod error;
pub mod ocr;
pub mod vad;

pub use error::OnnxError;
pub use ocr::{Ocr, OcrConfig, OcrWord};
pub use vad::{Vad, VadConfig, VadEvent};
