//! The one error type of the crate: every failure names the file (or the stand-in name a caller gave for bytes
//! in memory) and what was wrong with it. Nothing read from outside the process may panic.

use std::path::{Path, PathBuf};

/// A media input that could not be turned into model inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The file could not be read at all.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Larger than the cap on bytes read from one file.
    #[error("{}: {bytes} bytes is over the cap of {cap} bytes", path.display())]
    TooLarge { path: PathBuf, bytes: u64, cap: u64 },
    /// Not a JPEG or PNG (by content, not by name).
    #[error("{}: unsupported image format ({found}); JPEG and PNG are read", path.display())]
    UnsupportedFormat { path: PathBuf, found: String },
    /// The header's width or height is refused before anything is decoded.
    #[error("{}: image of {width}x{height} pixels: {why}", path.display())]
    BadDimensions {
        path: PathBuf,
        width: u64,
        height: u64,
        why: &'static str,
    },
    /// The decoder failed: truncated or corrupt data, an unsupported variant, a limit hit while decoding.
    #[error("{}: cannot decode the image: {detail}", path.display())]
    Decode { path: PathBuf, detail: String },
    /// A WAV file that cannot be used.
    #[error("{}: {detail}", path.display())]
    Wav { path: PathBuf, detail: String },
    /// A preprocessor_config.json field is missing, of the wrong JSON type or out of range.
    #[error("{}: `{field}`: {why}", path.display())]
    Config {
        path: PathBuf,
        field: String,
        why: String,
    },
    /// An input that is well formed but cannot be processed as asked (empty clip, no frames, a size over a cap).
    #[error("{}: {why}", path.display())]
    Input { path: PathBuf, why: String },
}

impl MediaError {
    /// The file (or stand-in name) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            MediaError::Io { path, .. }
            | MediaError::TooLarge { path, .. }
            | MediaError::UnsupportedFormat { path, .. }
            | MediaError::BadDimensions { path, .. }
            | MediaError::Decode { path, .. }
            | MediaError::Wav { path, .. }
            | MediaError::Config { path, .. }
            | MediaError::Input { path, .. } => path,
        }
    }

    pub(crate) fn config(path: &Path, field: &str, why: impl Into<String>) -> Self {
        MediaError::Config {
            path: path.to_path_buf(),
            field: field.to_string(),
            why: why.into(),
        }
    }

    pub(crate) fn input(path: &Path, why: impl Into<String>) -> Self {
        MediaError::Input {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Reads a whole file of at most `cap` bytes (the size is checked from the metadata first and again while
/// reading, so a file that grows meanwhile is still bounded).
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, MediaError> {
    use std::io::Read;
    let io = |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > cap {
        return Err(MediaError::TooLarge {
            path: path.to_path_buf(),
            bytes: len,
            cap,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > cap {
        return Err(MediaError::TooLarge {
            path: path.to_path_buf(),
            bytes: buf.len() as u64,
            cap,
        });
    }
    Ok(buf)
}
