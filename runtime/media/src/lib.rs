//! flint-media: files in, model inputs out, equal to what transformers' processors make (5.23).
//!
//! - [`decode`]: JPEG / PNG to 8-bit RGB as PIL + `convert_to_rgb` give it, with caps checked from the header
//!   before decoding (decompression bombs), typed errors naming the file.
//! - [`glimmer`]: `MuseGlimmerImageProcessor` (also Muse Spark's): token-capped [`smart_resize`], torchvision's
//!   antialiased uint8 Lanczos ([`resize`]), fused rescale/normalise, `(temporal, channel, y, x)` patches.
//! - [`qwen2_vl`]: `Qwen2VLImageProcessor` (torchvision) and `Qwen2VLImageProcessorPil`: Qwen2-VL's
//!   pixel-bounded [`smart_resize::smart_resize_pixels`], antialiased bicubic ([`resize`], either backend's
//!   integer arithmetic), [`normalize`] tables, `(channel, temporal, y, x)` rows in 2x2 merge-block order.
//! - [`qwen2_vl_video`]: `Qwen2VLVideoProcessor` (the Omni thinkers') over decoded frames.
//! - [`video`]: `MuseGlimmerVideoProcessor` over decoded frames: frame sampling, temporal groups, timestamps.
//! - [`prompt`]: the placeholder strings the Muse processors put into the prompt.
//! - [`wav`] (hound) and [`resample`] (rubato sinc): a mono clip at the extractor's rate.
//! - [`spark_audio`]: `MuseSparkFeatureExtractor` (padding to `samples_per_token`, `input_values_mask`).
//! - [`whisper`]: `WhisperFeatureExtractor` log-mel features (numpy STFT semantics).

//!
//! Depends on no other Flint crate. Caps: [`limits`]. docs/MEDIA.md describes it.

pub mod budget;
pub mod config;
pub mod decode;
pub mod error;
pub mod glimmer;
pub mod jpeg;
pub mod limits;
pub mod normalize;
pub mod prompt;
pub mod qwen2_vl;
pub mod qwen2_vl_video;
pub mod resample;
pub mod resize;
pub mod smart_resize;
pub mod spark_audio;
pub mod video;
pub mod wav;
pub mod whisper;

pub use decode::{decode_image, decode_image_file, RgbImage};
pub use error::MediaError;
pub use glimmer::{preprocess_image, GlimmerImage, GlimmerImageConfig, PatchedImage};
pub use qwen2_vl::{Qwen2VlConfig, Qwen2VlImage};
pub use qwen2_vl_video::{Qwen2VlVideo, Qwen2VlVideoConfig};
pub use resize::{Backend, Filter};
pub use smart_resize::{smart_resize, smart_resize_pixels};
pub use spark_audio::{extract, SparkAudio, SparkAudioConfig};
pub use video::{preprocess_video, GlimmerVideo, GlimmerVideoConfig};
pub use wav::{read_wav, read_wav_file, Clip};
