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
//!
//! Qwen3-VL (`kind: qwen3_vl`, transformers' `Qwen3VLMoeVisionModel`) differs:
//! - patches arrive in merge-block order (each `merge × merge` block of neighbours consecutive), and the tower
//!   works in that order throughout;
//! - the patch embedding has a bias; the position table is resampled bilinearly with `align_corners=True` and
//!   edge clamping; no `ln_pre` / `ln_post`;
//! - every layer attends over its whole image or frame; the MLP's GELU is the tanh form (`act: gelu_tanh`);
//!   rotary positions are (row, col);
//! - the merger: LayerNorm per patch, the `merge²` consecutive rows concatenated, `fc2 · gelu(fc1 · x)` to the
//!   decoder's width; no projection, no final norm;
//! - deepstack: after each layer in `deepstack_layers`, a merger of its own (LayerNorm over the concatenated
//!   rows) gives rows that the decoder adds to its hidden states at the image positions after its layer
//!   `i` (the i-th entry).
//!
//! Qwen2.5-VL (`kind: qwen25_vl`, transformers' `Qwen2_5OmniVisionEncoder`) is Qwen3-VL's layout without the
//! position table, the patch bias and deepstack; its norms are RMSNorms (the merger's too), its MLPs SwiGLU
//! (`act: silu`), and the layers not in `full_layers` attend within windows of `window × window` merged tokens
//! (the merged tokens regrouped window by window before the layers, restored after the merger).

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
    /// Which tower design (Muse by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: VisionKind,
    /// The layers' MLP activation.
    #[serde(default, skip_serializing_if = "is_default")]
    pub act: VisionAct,
    /// Layers whose output feeds a deepstack merger (Qwen3-VL), in the order of the decoder layers they join.
    #[serde(default, skip_serializing_if = "is_default")]
    pub deepstack_layers: Vec<usize>,
    /// Qwen2.5-VL: the side of an attention window, in merged tokens (`window_size / merge / patch`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub window: usize,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The tower designs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisionKind {
    /// Muse Spark / Muse Glimmer: window attention, `ln_pre`/`ln_post`, pixel shuffle, adapter, projection.
    #[default]
    Muse,
    /// Qwen3-VL: merge-block order, a merger instead of the adapter, deepstack mergers.
    Qwen3Vl,
    /// Qwen2.5-VL (Qwen2.5-Omni): Qwen3-VL's order and merger without a position table, patch bias or deepstack;
    /// RMSNorms, SwiGLU MLPs, and window attention on the layers `full_layers` leaves out.
    Qwen25Vl,
}

/// GELU's two forms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisionAct {
    /// `x Φ(x)` with the error function (transformers' `gelu`).
    #[default]
    GeluErf,
    /// The tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
    /// SiLU, in a SwiGLU MLP (Qwen2.5-VL).
    Silu,
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
    /// Qwen3-VL's merger LayerNorm (its fc1 / fc2 are `ADAPTER_FC1` / `ADAPTER_FC2`, with biases).
    pub const MERGER_NORM: &str = "v.merger.norm";
    /// A tensor of deepstack merger `i` (`norm`, `fc1`, `fc2`).
    pub fn deepstack(i: usize, what: &str) -> String {
        format!("v.deepstack.{i}.{what}")
    }
    /// The prefix every tower tensor's name starts with.
    pub const PREFIX: &str = "v.";
    /// Columns of a quantized block: a matrix is stored whole only when its width is a multiple of this.
    pub const BLOCK_COLS: usize = 32;
    /// The last `cols % BLOCK_COLS` columns of tower linear `name`, stored apart (see [`splits_tail`]).
    pub fn tail(name: &str) -> String {
        format!("{name}.tail")
    }
    /// Whether the importer stores tower matrix `name` of `cols` columns as two: `name` with the first
    /// `cols - cols % BLOCK_COLS` columns, which a block type fits, and [`tail`] with the rest (which keeps its
    /// float type), so that `flint-quantize` can quantize the bulk of a matrix such as SigLIP's and Qwen3-VL's MLP
    /// down projection (4304 wide). The tower linears (vision `v.*`, log-mel audio `a.*`) read such pairs; the
    /// position table is not a linear and stays whole.
    pub fn splits_tail(name: &str, cols: usize) -> bool {
        let tower =
            name.starts_with(PREFIX) || name.starts_with(crate::config::mel_audio::names::PREFIX);
        tower && name != POS_EMBD && cols > BLOCK_COLS && !cols.is_multiple_of(BLOCK_COLS)
    }
    /// A tensor of vision layer `l`.
    pub fn blk(l: usize, what: &str) -> String {
        format!("v.blk.{l}.{what}")
    }
    /// The bias that goes with a weight.
    pub fn bias(weight: &str) -> String {
        format!("{weight}.bias")
    }
}

#[cfg(test)]
mod tests {
    use super::VisionConfig;
    use crate::config::limits::check_config;
    use crate::ModelConfig;

    fn good() -> ModelConfig {
        ModelConfig {
            arch: "muse_spark".into(),
            vocab_size: 512,
            hidden_size: 64,
            num_layers: 1,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            intermediate_size: 128,
            rope_theta: 1e4,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 256,
            vision: Some(VisionConfig {
                hidden_size: 48,
                intermediate_size: 88,
                num_layers: 3,
                num_heads: 4,
                patch_size: 4,
                patch_temporal: 2,
                pos_emb_height: 4,
                pos_emb_width: 4,
                merge_size: 2,
                layer_norm_eps: 1e-5,
                rope_theta: 1e4,
                full_layers: vec![false, true, false],
                pos_table_transposed: true,
                adapter_size: 72,
                image_token_id: 3,
                video_token_id: 4,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field(f: impl FnOnce(&mut VisionConfig)) -> &'static str {
        let mut c = good();
        f(c.vision.as_mut().unwrap());
        check_config(&c).expect_err("should be refused").field
    }

    #[test]
    fn every_vision_field_is_checked_and_named() {
        assert_eq!(check_config(&good()), Ok(()));
        assert_eq!(field(|v| v.hidden_size = 0), "vision.hidden_size");
        assert_eq!(field(|v| v.num_layers = 1 << 30), "vision.num_layers");
        assert_eq!(field(|v| v.num_heads = 5), "vision.num_heads");
        assert_eq!(field(|v| v.num_heads = 8), "vision.num_heads"); // head_dim 6: not a multiple of 4
        assert_eq!(field(|v| v.patch_size = 1 << 20), "vision.patch_size");
        assert_eq!(field(|v| v.patch_temporal = 0), "vision.patch_temporal");
        assert_eq!(
            field(|v| {
                v.patch_size = 1024;
                v.patch_temporal = 64
            }),
            "vision.patch_temporal × 3 × patch_size²"
        );
        assert_eq!(field(|v| v.pos_emb_width = 5), "vision.pos_emb_width");
        assert_eq!(field(|v| v.merge_size = 17), "vision.merge_size");
        assert_eq!(
            field(|v| {
                v.hidden_size = 1 << 16;
                v.num_heads = 1
            }),
            "vision.hidden_size × merge_size²"
        );
        assert_eq!(field(|v| v.adapter_size = 0), "vision.adapter_size");
        assert_eq!(
            field(|v| v.layer_norm_eps = f32::NAN),
            "vision.layer_norm_eps"
        );
        assert_eq!(field(|v| v.rope_theta = 0.0), "vision.rope_theta");
        assert_eq!(field(|v| v.full_layers.truncate(2)), "vision.full_layers");
        assert_eq!(field(|v| v.image_token_id = 512), "vision.image_token_id");
        assert_eq!(
            field(|v| v.video_token_id = u32::MAX),
            "vision.video_token_id"
        );
    }

    #[test]
    fn round_trips_and_is_optional() {
        let c = good();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["vision"]["full_layers"],
            serde_json::json!([false, true, false])
        );
        assert_eq!(serde_json::from_value::<ModelConfig>(v).unwrap(), c);
        let text_only = ModelConfig { vision: None, ..c };
        let v = serde_json::to_value(&text_only).unwrap();
        assert!(
            v.get("vision").is_none(),
            "an absent tower is not written: {v}"
        );
        let mut bad = serde_json::to_value(good()).unwrap();
        bad["vision"]["window_size"] = serde_json::json!(4);
        assert!(
            serde_json::from_value::<ModelConfig>(bad).is_err(),
            "unknown fields are refused"
        );
    }
}
