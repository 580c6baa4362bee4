//! The description of a raw-waveform audio tower (Muse Spark's `audio_config`), stored as `model.config.audio`.
//!
//! The tower is a causal convolution pyramid over a mono waveform: layer `i` is a patch embedding (a linear map
//! over `patch_sizes[i]` consecutive steps of the layer below, `hidden_sizes[i]` wide, then RMSNorm) followed by
//! `depths[i]` blocks of `x + mlp(rms_norm(causal_depthwise_conv(x)))`; then RMSNorm, a projection to
//! `out_size` (the decoder's hidden size) and RMSNorm. One output row per `samples_per_token()` samples.
//! Checked by [`super::limits::check_audio`] as part of [`super::ModelConfig::validate`].

use serde::{Deserialize, Serialize};

/// Shape of the audio tower; lists have one entry per pyramid layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// Steps of the layer below folded into one step of this layer (`patch_sizes`).
    pub patch_sizes: Vec<usize>,
    /// Width of each layer (`hidden_sizes`).
    pub hidden_sizes: Vec<usize>,
    /// Conv blocks per layer (`depths`).
    pub depths: Vec<usize>,
    /// Intermediate width of each layer's block MLPs: `int(hidden_sizes[i] * mlp_ratio)`, computed at import.
    pub mlp_sizes: Vec<usize>,
    /// Kernel of the causal depthwise convolutions (`conv_kernel_size`); stride and dilation are 1.
    pub conv_kernel: usize,
    /// Width of the projection (`out_hidden_size`): the decoder's `hidden_size`.
    pub out_size: usize,
    /// eps of every RMSNorm inside the tower (`rms_norm_eps`). The embedding norm after it uses the decoder's.
    pub rms_norm_eps: f32,
    /// The `<|audio|>` placeholder the embeddings replace in the prompt (`audio_token_id`).
    pub token_id: u32,
}

impl AudioConfig {
    /// Pyramid layers.
    pub fn layers(&self) -> usize {
        self.patch_sizes.len()
    }

    /// Waveform samples per output token: the product of `patch_sizes` (1920 for the released model). Validated
    /// not to overflow (and to stay under its cap) by `check_audio`; saturates otherwise.
    pub fn samples_per_token(&self) -> usize {
        self.patch_sizes
            .iter()
            .fold(1usize, |a, &p| a.saturating_mul(p))
    }

    /// The input width of layer `i`'s patch embedding: 1 (the mono waveform) for layer 0, else the width below.
    pub fn input_width(&self, i: usize) -> usize {
        match i {
            0 => 1,
            _ => self.hidden_sizes.get(i - 1).copied().unwrap_or(0),
        }
    }

    /// Left context each convolution keeps between chunks: `kernel - 1` steps (`left_pad` in transformers).
    pub fn conv_context(&self) -> usize {
        self.conv_kernel.saturating_sub(1)
    }

    /// Output tokens for `valid` real samples: `ceil(valid / samples_per_token)` (what `get_audio_features` keeps
    /// of a right-padded clip).
    pub fn tokens_for(&self, valid: usize) -> usize {
        valid.div_ceil(self.samples_per_token().max(1))
    }
}

/// Tensor names of the tower inside a `.flint` file (docs/FORMAT.md), shared by the importer and the runtime.
pub mod names {
    pub const NORM: &str = "audio.norm";
    pub const PROJ: &str = "audio.proj";
    pub const PROJ_BIAS: &str = "audio.proj.bias";
    pub const POST_PROJ_NORM: &str = "audio.post_proj_norm";
    /// `patch`, `patch.bias`, `patch_norm` of layer `i`.
    pub fn layer(i: usize, what: &str) -> String {
        format!("audio.layer.{i}.{what}")
    }
    /// `conv`, `conv.bias`, `norm`, `fc1`, `fc1.bias`, `fc2`, `fc2.bias` of block `b` of layer `i`.
    pub fn block(i: usize, b: usize, what: &str) -> String {
        format!("audio.layer.{i}.block.{b}.{what}")
    }
}
