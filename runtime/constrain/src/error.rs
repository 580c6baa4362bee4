//! The one error type of the crate: every failure, at compile time or while decoding, says what and where.

/// What went wrong, and where: a line:col for GBNF text, a JSON pointer for schemas, a token id or byte offset while
/// decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// GBNF text that does not parse, or names a rule that does not exist.
    #[error("GBNF {line}:{col}: {msg}")]
    Syntax {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A grammar that parses but cannot be enforced: no `root`, left recursion, a rule that never ends, ...
    #[error("grammar: {0}")]
    Grammar(String),
    /// A JSON Schema we cannot enforce exactly (fail closed); `pointer` is the JSON pointer of the schema node.
    #[error("schema at {}: {msg}", if pointer.is_empty() { "the root" } else { pointer.as_str() })]
    Schema { pointer: String, msg: String },
    /// The grammar, after expansion, is bigger than we are willing to hold.
    #[error("grammar is too large: {0}")]
    TooLarge(String),
    /// The matcher would have to track more parses at once than its bound allows.
    #[error("grammar is too ambiguous at {0}")]
    Ambiguous(String),
    /// A token that the grammar does not allow here was taken.
    #[error("token {id} {text} is not allowed here: {why}")]
    TokenRejected { id: u32, text: String, why: String },
    /// Forced bytes that break the grammar.
    #[error("forced text rejected at its byte {offset}: {why}")]
    BytesRejected { offset: usize, why: String },
    /// No token of the vocabulary can continue the output.
    #[error("no token is allowed (dead end): {0}")]
    DeadEnd(String),
    /// The constraint already took an end token.
    #[error("constrained generation already finished")]
    Finished,
}

impl Error {
    pub(crate) fn schema(pointer: &str, msg: impl Into<String>) -> Error {
        Error::Schema {
            pointer: pointer.to_string(),
            msg: msg.into(),
        }
    }
}

/// Bytes shown in a message: escaped, and cut short.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(40).flat_map(char::escape_debug).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    format!("\"{s}\"")
}
