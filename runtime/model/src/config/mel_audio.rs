//! The description of a log-mel audio encoder (Qwen3-Omni's `audio_config`, transformers'
//! `Qwen3OmniMoeAudioEncoder`), stored as `model.config.mel_audio`.
//!
//! The features `[num_mel_bins, frames]` (WhisperFeatureExtractor) are cut into chunks of `2 · n_window` frames
//! (the last one shorter, all zero-padded to the longest); each chunk goes through three 3×3 stride-2 convolutions
//! (padding 1, GELU) to `downsample · ceil³(mels / 2)` values per step, a bias-free `conv_out` to `d_model`, plus a
//! sinusoidal position per step within its chunk. The valid steps of all chunks then run through pre-LayerNorm
//! encoder layers whose attention stays within windows of `n_window_infer / (2 · n_window)` chunks' steps; then
//! `ln_post`, `proj2 · gelu(proj1 · x)` to `output_dim` (the decoder's width). One row per valid step.
//!
//! Qwen2.5-Omni's (`kind: qwen25_omni`, `Qwen2_5OmniAudioEncoder`) runs each chunk through two 1-D convolutions
//! instead (`conv1` over the mel bins, kernel 3, padding 1, GELU, the padded frames zeroed; `conv2` stride 2, GELU),
//! attends within each chunk, then averages the clip's rows in pairs before `ln_post` and one projection
//! (`a.proj`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelAudioConfig {
    pub num_mel_bins: usize,
    /// Channels of the three convolutions (`downsample_hidden_size`).
    pub downsample: usize,
    pub d_model: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// Width of each layer's MLP (`encoder_ffn_dim`).
    pub ffn_dim: usize,
    /// Half a chunk, in frames.
    pub n_window: usize,
    /// An attention window, in frames (a multiple of `2 · n_window`).
    pub n_window_infer: usize,
    /// Rows of the sinusoidal table (`max_source_positions`): steps a chunk may have.
    pub max_source_positions: usize,
    /// The decoder's width.
    pub output_dim: usize,
    /// The placeholder the rows replace (`audio_token_id`).
    pub token_id: u32,
    /// Which encoder design (Qwen3-Omni by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: MelKind,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The log-mel encoder designs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelKind {
    /// Three stride-2 2-D convolutions, windowed attention, two projections.
    #[default]
    Qwen3Omni,
    /// Two 1-D convolutions, attention per chunk, pairs averaged, one projection.
    Qwen25Omni,
}

impl MelAudioConfig {
    /// Steps after the three stride-2 convolutions of `n` frames (or mel bins).
    pub fn after_convs(n: usize) -> usize {
        (0..3).fold(n, |n, _| n.div_ceil(2))
    }

    /// Frames in a full chunk.
    pub fn chunk(&self) -> usize {
        2 * self.n_window
    }

    /// `conv_out`'s input width.
    pub fn conv_out_in(&self) -> usize {
        self.downsample * Self::after_convs(self.num_mel_bins)
    }

    /// Rows the encoder gives for `frames` frames (transformers' `_get_feat_extract_output_lengths`).
    pub fn rows(&self, frames: usize) -> usize {
        if self.kind == MelKind::Qwen25Omni {
            // One stride-2 convolution, then pairs.
            return frames.div_ceil(2) / 2;
        }
        let c = self.chunk().max(1);
        let tail = frames % c;
        let tail_rows = if tail == 0 {
            0
        } else {
            Self::after_convs(tail)
        };
        frames / c * Self::after_convs(c) + tail_rows
    }
}

/// Tensor names (`a.` prefix, one paging group).
pub mod names {
    pub const PREFIX: &str = "a.";
    /// `a.conv{1,2,3}` (`[c_out, c_in, 3, 3]`, f32) and their `.bias`.
    pub fn conv(i: usize) -> String {
        format!("a.conv{i}")
    }
    pub const CONV_OUT: &str = "a.conv_out";
    pub const LN_POST: &str = "a.ln_post";
    pub const PROJ1: &str = "a.proj1";
    pub const PROJ2: &str = "a.proj2";
    /// Qwen2.5-Omni's one projection.
    pub const PROJ: &str = "a.proj";
    /// A tensor of encoder layer `l`.
    pub fn blk(l: usize, what: &str) -> String {
        format!("a.blk.{l}.{what}")
    }
}
