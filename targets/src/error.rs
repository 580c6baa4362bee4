//! Errors of the profile loader: each names the file (or built-in profile) and, where one is at fault, the key.

use std::path::PathBuf;

/// Everything that can go wrong loading, checking or applying a board profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetsError {
    /// The name is neither a built-in profile, an alias, nor a path to a `.toml` file.
    #[error("unknown board `{name}`; built-in boards: {known}")]
    UnknownBoard { name: String, known: String },

    /// The profile file could not be read.
    #[error("{}: cannot read board profile: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid TOML, or a key is missing, unknown or of the wrong type.
    #[error("{file}:{line}:{column}: {}: {message}", key_phrase(key))]
    Parse {
        file: String,
        /// Dotted path of the key at fault (`cpu.threads`), empty when toml could not tell.
        key: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// The file parses but a value breaks a rule (threads above the core count, budget above total memory...).
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },

    /// Pinning the current thread to the profile's cores failed (for example a core that is offline here).
    #[error("cannot pin thread to cores {cores:?}: {reason}")]
    Affinity { cores: Vec<usize>, reason: String },
}

fn key_phrase(key: &str) -> String {
    if key.is_empty() {
        "invalid TOML".to_string()
    } else {
        format!("key `{key}`")
    }
}
