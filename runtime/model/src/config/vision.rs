//! The vision tower's description (`model.config.vision`), read from a Muse checkpoint's `vision_config` plus the
//! top-level adapter fields, and the names of its tensors in a `.flint` file.
//!
//! Architecture (transformers' `MuseSparkVisionModel` / `MuseGlimmerVisionModel` and the model's adapter):
//! - patch embedding: one bias-free matmul over rows of `patch_temporal × 3 × patch_size²` pixels (the processor
//!   patchifies; a still image repeats over the temporal patch);
//! - plus a learned `pos_emb_height × pos_emb_width` position table resampled bilinearly to each image's patch
//!   grid (grid_sample semantics: half-pixel centres, zero padding); Muse Spark reads it with height and width
//!   swapped (`pos_table_transposed`), Muse Glimmer does not;
//! - `ln_pre` (LayerNorm), then pre-LayerNorm ViT layers (bias everywhere, GELU-erf MLP) with axial 2-D RoPE at
//!   positions (col + 1, row + 1); `full_layers[l]` attends over each image or video frame, the others within
//!   windows of `pos_emb_height × pos_emb_height` patches (tokens regrouped window by window, undone at the end);
//! - `ln_post`, a pixel shuffle of `merge_size²` neighbours into one token laid out `[channel][dy][dx]`, the adapter
//!   `gelu(fc2 · gelu(fc1 · x))`, the projection to the decoder's width, and a scaleless RMSNorm (eps the decoder's
//!   `rms_norm_eps`): the rows that replace the image / video placeholder tokens.

use serde::{Deserialize, Serialize};

/// Everything the vision tower, its adapter and projection need to know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Tower width.
    pub hidden_size: usize,
    /// Width of each layer's MLP.
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// Pixels on a patch's side.
    pub patch_size: usize,
    /// Frames in one patch.
    pub patch_temporal: usize,
    /// Side of the learned position table (square: `pos_emb_width` equals it); also the window side in patches.
    pub pos_emb_height: usize,
    pub pos_emb_width: usize,
    /// `merge_size × merge_size` patches become one token.
    pub merge_size: usize,
    pub layer_norm_eps: f32,
    /// Base of the axial RoPE.
    pub rope_theta: f32,
    /// One entry per layer: full attention over the image (true) or window attention (false).
    pub full_layers: Vec<bool>,
    /// The position table is read at (width, height) instead of (height, width) (Muse Spark).
    pub pos_table_transposed: bool,
    /// Width of the adapter MLP (`projector_hidden_size`).
    pub adapter_size: usize,
    /// The decoder's placeholder ids for image and video rows.
    pub image_token_id: u32,
    pub video_token_id: u32,
}

impl VisionConfig {
    /// Values per head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads.max(1)
    }

    /// Pixel values per patch row.
    pub fn patch_len(&self) -> usize {
        self.patch_temporal * 3 * self.patch_size * self.patch_size
    }

    /// Width of a merged token (the adapter's input).
    pub fn merged_size(&self) -> usize {
        self.hidden_size * self.merge_size * self.merge_size
    }
}

/// Tensor names of the tower (`v.` like llama.cpp's mmproj files).
pub mod names {
    pub const PATCH_EMBD: &str = "v.patch_embd";
    pub const POS_EMBD: &str = "v.pos_embd";
    pub const LN_PRE: &str = "v.ln_pre";
    pub const LN_POST: &str = "v.ln_post";
    pub const ADAPTER_FC1: &str = "v.adapter.fc1";
    pub const ADAPTER_FC2: &str = "v.adapter.fc2";
    pub const PROJ: &str = "v.proj";
    /// The prefix every tower tensor's name starts with.
    pub const PREFIX: &str = "v.";
    /// A tensor of vision layer `l`.
    pub fn blk(l: usize, what: &str) -> String {
        format!("v.blk.{l}.{what}")
    }
    /// The bias that goes with a weight.
    pub fn bias(weight: &str) -> String {
        format!("{weight}.bias")
    }
}
