//! Quantization errors: each names the file, tensor or option at fault.

use std::path::PathBuf;

/// An error quantizing a `.flint` file or measuring the result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    // The cause is not repeated in the message: it is the error's source, which `{:#}` chains print after it.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `--keep PATTERN=TYPE` rule that does not parse, names an unknown type or matches no matrix.
    #[error("--keep `{rule}`: {msg}")]
    Keep { rule: String, msg: String },
    /// A tensor of the input that cannot be written as asked.
    #[error("{}: tensor `{name}`: {msg}", path.display())]
    Tensor {
        path: PathBuf,
        name: String,
        msg: String,
    },
    /// The calibration set (or one of its files) is missing, empty or unusable.
    #[error("calibration {}: {msg}", path.display())]
    Calibration { path: PathBuf, msg: String },
    /// An option out of range (`--ctx 0`, a float `--weights`, output = input).
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Format(#[from] flint_format::FormatError),
    #[error(transparent)]
    Model(#[from] flint_model::ModelError),
}

impl QuantError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        QuantError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
