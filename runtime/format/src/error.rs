//! Errors of the container: each names the file and the field or tensor at fault.

use std::path::PathBuf;

/// An error reading or writing a `.flint` file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a .flint file (bad magic)")]
    BadMagic { path: PathBuf },
    #[error(
        "{path}: format version {found} is not supported (this build reads version {supported})"
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: header field `{field}`: {msg}")]
    Header {
        path: PathBuf,
        field: &'static str,
        msg: String,
    },
    #[error("{path}: header/metadata/directory checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt")]
    IndexChecksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("{path}: metadata: {msg}")]
    Metadata { path: PathBuf, msg: String },
    #[error("{path}: tensor directory entry {index}{}: field `{field}`: {msg}", name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Directory {
        path: PathBuf,
        index: usize,
        name: Option<String>,
        field: &'static str,
        msg: String,
    },
    #[error("{path}: tensor `{name}`: data checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    DataChecksum {
        path: PathBuf,
        name: String,
        stored: u32,
        computed: u32,
    },
    #[error("{path}: no tensor named `{name}`")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}`: expected {expected}, found {found}")]
    TensorMismatch {
        path: PathBuf,
        name: String,
        expected: String,
        found: String,
    },
    #[error("writing tensor `{name}`: {msg}")]
    Write { name: String, msg: String },
}

impl FormatError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
