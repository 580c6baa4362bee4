//! The calibration set (`--calib`): one text file, or a folder of text, images and audio (docs/CALIBRATION.md).
//!
//! A folder holds:
//! - `*.txt`: calibration text, read in name order and joined by a blank line (measured in `--ctx` chunks as a
//!   single text file is);
//! - `*.jpg`, `*.jpeg`, `*.png` (images) and `*.wav` (audio): one prompt each, the medium followed by a question:
//!   the text of `NAME.prompt` beside `NAME.jpg` when there is one, else [`DEFAULT_IMAGE_PROMPT`] /
//!   [`DEFAULT_AUDIO_PROMPT`]. A model without the tower a medium needs (or without a tokenizer to build the
//!   prompt) skips it, and the report says so.
//!
//! A folder needs some text: every model is measured on it, whatever towers it has. Anything else in the folder is an error naming the file, so a typo does not silently shrink the set. Hidden
//! files (`.name`) are ignored.

use super::QuantError;
use std::path::{Path, PathBuf};

/// The question asked with an image that has no `.prompt` file.
pub const DEFAULT_IMAGE_PROMPT: &str = "Describe this image.";
/// The question asked with a clip that has no `.prompt` file.
pub const DEFAULT_AUDIO_PROMPT: &str = "What is said in this recording?";

/// Files a folder may hold at most.
pub const MAX_FILES: usize = 4096;
/// Bytes a text or prompt file may hold at most.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// What a medium is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Image,
    Audio,
}

impl Modality {
    pub fn name(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Audio => "audio",
        }
    }
}

/// One image or clip and the question asked with it.
#[derive(Clone, Debug)]
pub struct Medium {
    pub path: PathBuf,
    pub modality: Modality,
    pub prompt: String,
}

/// A calibration set.
#[derive(Clone, Debug)]
pub struct CalibSet {
    /// The file or folder it came from.
    pub path: PathBuf,
    /// All its text (may be empty for a folder of media only).
    pub text: String,
    /// Its media, in name order.
    pub media: Vec<Medium>,
}

fn read_text(path: &Path) -> Result<String, QuantError> {
    let len = std::fs::metadata(path)
        .map_err(|e| QuantError::io(path, e))?
        .len();
    if len > MAX_TEXT_BYTES {
        return Err(QuantError::Calibration {
            path: path.to_path_buf(),
            msg: format!("{len} bytes: more than the {MAX_TEXT_BYTES} a text file may hold"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| QuantError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| QuantError::Calibration {
        path: path.to_path_buf(),
        msg: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

/// Reads the set at `path`: a text file, or a folder as the module docs describe.
pub fn read(path: &Path) -> Result<CalibSet, QuantError> {
    let bad = |msg: String| QuantError::Calibration {
        path: path.to_path_buf(),
        msg,
    };
    let meta = std::fs::metadata(path).map_err(|e| QuantError::io(path, e))?;
    if !meta.is_dir() {
        let text = read_text(path)?;
        if text.trim().is_empty() {
            return Err(bad("is empty".into()));
        }
        return Ok(CalibSet {
            path: path.to_path_buf(),
            text,
            media: Vec::new(),
        });
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(path).map_err(|e| QuantError::io(path, e))? {
        let p = e.map_err(|e| QuantError::io(path, e))?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            files.push(p);
        }
        if files.len() > MAX_FILES {
            return Err(bad(format!("more than {MAX_FILES} files")));
        }
    }
    files.sort();
    let ext = |p: &Path| {
        p.extension()
            .and_then(|x| x.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    let (mut texts, mut media, mut prompts) = (Vec::new(), Vec::new(), Vec::new());
    for p in files {
        if p.is_dir() {
            return Err(QuantError::Calibration {
                path: p,
                msg: "a folder inside the calibration folder (it is not searched)".into(),
            });
        }
        match ext(&p).as_str() {
            "txt" => texts.push(read_text(&p)?),
            "jpg" | "jpeg" | "png" => media.push((p, Modality::Image)),
            "wav" => media.push((p, Modality::Audio)),
            "prompt" => prompts.push(p),
            _ => {
                return Err(QuantError::Calibration {
                    path: p,
                    msg:
                        "not a calibration file: expected .txt, .jpg, .jpeg, .png, .wav or .prompt"
                            .into(),
                })
            }
        }
    }
    let stem = |p: &Path| p.with_extension("");
    let mut out = Vec::with_capacity(media.len());
    for (p, modality) in media {
        let q = prompts.iter().position(|x| stem(x) == stem(&p));
        let prompt = match q {
            Some(i) => read_text(&prompts.swap_remove(i))?.trim().to_string(),
            None => match modality {
                Modality::Image => DEFAULT_IMAGE_PROMPT.to_string(),
                Modality::Audio => DEFAULT_AUDIO_PROMPT.to_string(),
            },
        };
        out.push(Medium {
            path: p,
            modality,
            prompt,
        });
    }
    if let Some(p) = prompts.into_iter().next() {
        return Err(QuantError::Calibration {
            path: p,
            msg: "a .prompt file without an image or .wav of the same name".into(),
        });
    }
    let text = texts.join("\n\n");
    if text.trim().is_empty() {
        return Err(bad(
            "holds no text (.txt files): every model is measured on text, media come on top".into(),
        ));
    }
    Ok(CalibSet {
        path: path.to_path_buf(),
        text,
        media: out,
    })
}
