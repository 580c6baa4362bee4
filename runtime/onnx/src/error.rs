//! The one error type of the crate. Every variant names the model file (or the input) it is about, so a
//! message read in a log says which file to fix and what was wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong loading or running one of the ONNX models.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The model file is not there (or cannot be read).
    #[error("model file {path}: {detail} (CI fetches the models with bench/fetch_models.sh)")]
    Missing {
        /// The file asked for.
        path: PathBuf,
        /// What the file system said.
        detail: String,
    },
    /// The file exists but is not an ONNX model the engine can load.
    #[error("model file {path} is not a usable ONNX model: {detail}")]
    NotOnnx {
        /// The file.
        path: PathBuf,
        /// The engine's reason.
        detail: String,
    },
    /// The model loads but its inputs, outputs or metadata are not the ones this crate was written for.
    #[error("model file {path} does not look like {want}: {detail}")]
    UnexpectedModel {
        /// The file.
        path: PathBuf,
        /// Which model it was opened as (e.g. "Silero VAD 16 kHz").
        want: &'static str,
        /// What differs.
        detail: String,
    },
    /// Running the model failed.
    #[error("running {path}: {detail}")]
    Run {
        /// The file.
        path: PathBuf,
        /// The engine's reason.
        detail: String,
    },
    /// The inference engine cannot be used: ONNX Runtime's library is not named, missing or not loadable, another
    /// library is already loaded in this process, or the execution provider asked for is not in it. The detail
    /// names the library file.
    #[error("ONNX Runtime: {detail}")]
    Backend {
        /// What is wrong, naming the library and how to get one.
        detail: String,
    },
    /// The caller's input is wrong (image buffer size, pixel cap, non-finite samples...).
    #[error("bad input: {0}")]
    Input(String),
}
