//! `MuseSparkFeatureExtractor` (transformers 5.23): Muse Spark's audio tower reads the raw 24 kHz waveform, so
//! the extractor only batches and pads:
//!
//! - every clip padded (with `padding_value`, on `padding_side`) to the longest clip of the batch, rounded up to
//!   a multiple of `samples_per_token` (1920 by default: the tower turns that many samples into one embedding);
//! - `input_values` [batch, len] f32 and `input_values_mask` [batch, len] i32 (1 on real samples);
//! - the clips must already be mono at `sampling_rate` ([`crate::wav`], [`crate::resample`]).
//!
//! Not implemented: the call's `max_length` / `truncation` / `pad_to_multiple_of` overrides (the defaults are
//! what the processor uses).

use crate::config::{to_usize, Fields};
use crate::error::MediaError;
use crate::limits;
use std::path::Path;

/// The fields of a MuseSparkFeatureExtractor preprocessor_config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct SparkAudioConfig {
    pub sampling_rate: u32,
    pub samples_per_token: usize,
    pub padding_value: f32,
    pub pad_left: bool,
    pub return_attention_mask: bool,
}

impl Default for SparkAudioConfig {
    fn default() -> Self {
        SparkAudioConfig {
            sampling_rate: 24000,
            samples_per_token: 1920,
            padding_value: 0.0,
            pad_left: false,
            return_attention_mask: true,
        }
    }
}

impl SparkAudioConfig {
    /// Reads a preprocessor_config.json.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::parsed(&Fields::read(path)?)
    }

    /// The same from the JSON text of the config (as a model file carries it); `name` names it in errors.
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::parsed(&Fields::parse(name, bytes)?)
    }

    fn parsed(f: &Fields) -> Result<Self, MediaError> {
        f.expect_type("feature_extractor_type", "MuseSparkFeatureExtractor")?;
        f.int("feature_size", 1, 1, 1)?;
        let side = f.string("padding_side", "right")?;
        if side != "right" && side != "left" {
            return Err(MediaError::config(
                f.path(),
                "padding_side",
                format!("{side:?} is not \"right\" or \"left\""),
            ));
        }
        Ok(SparkAudioConfig {
            sampling_rate: f.sampling_rate(24000)?,
            samples_per_token: to_usize(f.int(
                "samples_per_token",
                1920,
                1,
                limits::MAX_SAMPLES_PER_TOKEN,
            )?),
            padding_value: f.float("padding_value", 0.0, -1e30, 1e30)? as f32,
            pad_left: side == "left",
            return_attention_mask: f.boolean("return_attention_mask", true)?,
        })
    }
}

/// A padded batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SparkAudio {
    pub batch: usize,
    /// Samples per row (a multiple of `samples_per_token`).
    pub len: usize,
    /// `[batch, len]`.
    pub input_values: Vec<f32>,
    /// `[batch, len]`, 1 on real samples; empty when `return_attention_mask` is off.
    pub input_values_mask: Vec<i32>,
}

impl SparkAudio {
    /// Audio tokens of row `b` (real samples over samples_per_token, rounded up), as the prompt needs.
    pub fn tokens(&self, b: usize, samples_per_token: usize) -> usize {
        let real = if self.input_values_mask.is_empty() {
            self.len
        } else {
            self.input_values_mask[b * self.len..(b + 1) * self.len]
                .iter()
                .filter(|&&m| m == 1)
                .count()
        };
        real.div_ceil(samples_per_token)
    }
}

/// Pads `clips` (mono, at `cfg.sampling_rate`) into one batch; `name` names the input in errors.
pub fn extract(
    cfg: &SparkAudioConfig,
    name: &Path,
    clips: &[&[f32]],
) -> Result<SparkAudio, MediaError> {
    if clips.is_empty() {
        return Err(MediaError::input(name, "no clips"));
    }
    if clips.iter().any(|c| c.is_empty()) {
        return Err(MediaError::input(name, "an empty clip"));
    }
    let longest = clips.iter().map(|c| c.len()).max().unwrap_or(0);
    let len = longest.div_ceil(cfg.samples_per_token) * cfg.samples_per_token;
    let total = (len as u64).saturating_mul(clips.len() as u64);
    if total > limits::MAX_OUTPUT_ELEMS {
        return Err(MediaError::input(
            name,
            format!("input_values of {total} values is over the cap"),
        ));
    }
    let mut input_values = Vec::with_capacity(total as usize);
    let mut mask = Vec::with_capacity(if cfg.return_attention_mask {
        total as usize
    } else {
        0
    });
    for c in clips {
        let pad = len - c.len();
        let fill = std::iter::repeat_n(cfg.padding_value, pad);
        let zeros = std::iter::repeat_n(0, pad);
        let ones = std::iter::repeat_n(1, c.len());
        if cfg.pad_left {
            input_values.extend(fill.chain(c.iter().copied()));
            if cfg.return_attention_mask {
                mask.extend(zeros.chain(ones));
            }
        } else {
            input_values.extend(c.iter().copied().chain(fill));
            if cfg.return_attention_mask {
                mask.extend(ones.chain(zeros));
            }
        }
    }
    Ok(SparkAudio {
        batch: clips.len(),
        len,
        input_values,
        input_values_mask: mask,
    })
}
