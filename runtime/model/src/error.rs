//! Errors of the model layer; each names the tensor, key or token at fault.

/// An error loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error(transparent)]
    Format(#[from] flint_format::FormatError),
    #[error("{path}: metadata `{key}`: {msg}")]
    Metadata {
        path: String,
        key: &'static str,
        msg: String,
    },
    #[error("{path}: tensor `{name}`: expected {expected}, found {found}")]
    Tensor {
        path: String,
        name: String,
        expected: String,
        found: String,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("the context is full: {pos} positions used, {asked} more asked, the model's limit is {limit}")]
    ContextFull {
        pos: usize,
        asked: usize,
        limit: usize,
    },
    #[error("{0}")]
    Invalid(String),
    /// The grammar of constrained decoding refused a token, or left none.
    #[error("constrained decoding: {0}")]
    Constraint(String),
}
