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
    /// The error of a part read out of a bigger checkpoint (the thinker of a full Omni release): a config key is
    /// named under `section` (`thinker_config.…`) and a tensor that the plan's check names by its short name under
    /// `prefix` (`thinker.…`), as they appear in the files.
    pub(crate) fn within(self, section: &str, prefix: &str) -> Self {
        let long = |n: String| {
            if n.starts_with(prefix) {
                n
            } else {
                format!("{prefix}{n}")
            }
        };
        match self {
            // `(config)` names no key (a check of the translated description).
            ImportError::Config { path, key, msg } if !key.starts_with('(') => {
                ImportError::Config {
                    path,
                    key: format!("{section}.{key}"),
                    msg,
                }
            }
            ImportError::MissingTensor { path, name } => ImportError::MissingTensor {
                path,
                name: long(name),
            },
            ImportError::UnusedTensor { path, name } => ImportError::UnusedTensor {
                path,
                name: long(name),
            },
            ImportError::Shape {
                path,
                name,
                expected,
                found,
            } => ImportError::Shape {
                path,
                name: long(name),
                expected,
                found,
            },
            e => e,
        }
    }
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
