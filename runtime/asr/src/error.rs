//! The one error type of the crate. Every failure that comes from a file names the file and the field or
//! variable that was wrong; nothing read from disk may panic.

use std::path::PathBuf;

/// Why a Whisper folder could not be opened or a clip could not be transcribed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsrError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// model.bin is structurally invalid: truncated, a bad header field, trailing bytes. `field` says which part
    /// of the file was being read and `offset` where.
    #[error("{}: {field} at byte {offset}: {why}", path.display())]
    Format {
        path: PathBuf,
        field: String,
        offset: u64,
        why: String,
    },
    /// A variable of model.bin is missing, has the wrong shape or dtype, or holds an unsupported value.
    #[error("{}: variable `{name}`: {why}", path.display())]
    Variable {
        path: PathBuf,
        name: String,
        why: String,
    },
    /// config.json (or another JSON file of the folder) is missing a field, has the wrong type or a bad value.
    #[error("{}: `{field}`: {why}", path.display())]
    Config {
        path: PathBuf,
        field: String,
        why: String,
    },
    /// tokenizer.json could not be loaded or lacks a token Whisper needs.
    #[error("{}: tokenizer: {why}", path.display())]
    Tokenizer { path: PathBuf, why: String },
    /// An argument of a call does not fit the model (wrong length, clip too long, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// Feature extraction failed.
    #[error(transparent)]
    Media(#[from] flint_media::error::MediaError),
}
