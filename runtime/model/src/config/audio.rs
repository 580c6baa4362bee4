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

#[cfg(test)]
mod tests {
    use super::AudioConfig;
    use crate::config::limits::check_audio;

    /// The tiny fixture's tower (patch sizes 4, 3, 2).
    fn good() -> AudioConfig {
        AudioConfig {
            patch_sizes: vec![4, 3, 2],
            hidden_sizes: vec![16, 24, 32],
            depths: vec![1, 2, 1],
            mlp_sizes: vec![64, 96, 128],
            conv_kernel: 5,
            out_size: 64,
            rms_norm_eps: 1e-6,
            token_id: 5,
        }
    }

    fn field(f: impl FnOnce(&mut AudioConfig)) -> &'static str {
        let mut a = good();
        f(&mut a);
        check_audio(&a, 64, 512)
            .expect_err("should be refused")
            .field
    }

    #[test]
    fn derived_sizes() {
        let a = good();
        assert_eq!(
            (a.layers(), a.samples_per_token(), a.conv_context()),
            (3, 24, 4)
        );
        assert_eq!((a.input_width(0), a.input_width(2)), (1, 24));
        assert_eq!(
            (a.tokens_for(160), a.tokens_for(168), a.tokens_for(169)),
            (7, 7, 8)
        );
    }

    #[test]
    fn every_field_is_checked_and_named() {
        assert_eq!(check_audio(&good(), 64, 512), Ok(()));
        assert_eq!(field(|a| a.patch_sizes.clear()), "audio.patch_sizes");
        assert_eq!(field(|a| a.patch_sizes = vec![1; 17]), "audio.patch_sizes");
        assert_eq!(field(|a| a.patch_sizes[1] = 0), "audio.patch_sizes");
        assert_eq!(
            field(|a| a.patch_sizes = vec![1 << 20, 1 << 20, 1 << 30]),
            "audio.patch_sizes"
        );
        assert_eq!(field(|a| a.hidden_sizes.truncate(2)), "audio.hidden_sizes");
        assert_eq!(field(|a| a.hidden_sizes[0] = 1 << 20), "audio.hidden_sizes");
        assert_eq!(field(|a| a.depths = vec![1]), "audio.depths");
        assert_eq!(field(|a| a.depths[2] = 100_000), "audio.depths");
        assert_eq!(field(|a| a.mlp_sizes[1] = 0), "audio.mlp_sizes");
        assert_eq!(field(|a| a.conv_kernel = 0), "audio.conv_kernel");
        assert_eq!(field(|a| a.conv_kernel = 1 << 30), "audio.conv_kernel");
        assert_eq!(field(|a| a.out_size = 32), "audio.out_size");
        assert_eq!(field(|a| a.rms_norm_eps = f32::NAN), "audio.rms_norm_eps");
        assert_eq!(field(|a| a.token_id = 512), "audio.token_id");
    }

    #[test]
    fn old_files_without_audio_still_load_and_audio_round_trips() {
        let mut c = crate::ModelConfig {
            arch: "llama".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert!(v.get("audio").is_none(), "{v}");
        c.audio = Some(good());
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["audio"]["patch_sizes"], serde_json::json!([4, 3, 2]));
        assert_eq!(serde_json::from_value::<crate::ModelConfig>(v).unwrap(), c);
        let bad = serde_json::json!({"patch_sizes": [4], "hidden_sizes": [16], "depths": [1], "mlp_sizes": [64],
            "conv_kernel": 5, "out_size": 64, "rms_norm_eps": 1e-6, "token_id": 5, "stride": 2});
        assert!(
            serde_json::from_value::<AudioConfig>(bad).is_err(),
            "unknown fields are refused"
        );
    }
}
