//! Import errors: each names the file, key or tensor at fault.

/// An error importing or quantizing a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Parse { path: String, msg: String },
    #[error("{path}: config key `{key}`: {msg}")]
    Config {
        path: String,
        key: String,
        msg: String,
    },
    #[error("{path}: unknown architecture `{arch}` (supported: {supported})")]
    UnknownArch {
        path: String,
        arch: String,
        supported: &'static str,
    },
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: String, name: String },
    #[error("{path}: tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    Shape {
        path: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: tensor `{name}` is not used by the importer (unknown tensor)")]
    UnusedTensor { path: String, name: String },
    #[error("{path}: tensor `{name}`: unsupported type {dtype}")]
    DType {
        path: String,
        name: String,
        dtype: String,
    },
    #[error(transparent)]
    Format(#[from] flint_format::FormatError),
    #[error(transparent)]
    Model(#[from] flint_model::ModelError),
}

impl ImportError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn parse(path: &std::path::Path, msg: impl Into<String>) -> Self {
        ImportError::Parse {
            path: path.display().to_string(),
            msg: msg.into(),
        }
    }
}
