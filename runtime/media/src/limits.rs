//! Caps on everything a media file or a preprocessor_config.json may ask of the runtime, in one place
//! (docs/MEDIA.md lists them). Each is checked before anything is allocated or looped over: an image's size comes
//! from its header, a clip's length from its WAV header, a processor's sizes from its config.
//!
//! The caps are far above any camera or microphone the glasses carry and far below what would exhaust a 3 GB
//! device: the largest decoded image is 2^26 pixels (256 MiB as RGBA at 16 bits, the widest form the decoder
//! builds), the longest clip 2^27 samples per channel (an hour at 32 kHz).

/// Bytes of one image file.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;
/// Width or height of an image, from its header.
pub const MAX_IMAGE_SIDE: u64 = 1 << 15;
/// Pixels of one image (width x height), from its header; also the cap on a resize target.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;
/// Bytes the image decoder may allocate in all (`image::Limits::max_alloc`).
pub const MAX_DECODE_ALLOC: u64 = 1 << 30;

/// Bytes of one WAV file.
pub const MAX_WAV_FILE_BYTES: u64 = 1 << 30;
/// Channels of a WAV file.
pub const MAX_CHANNELS: u16 = 32;
/// Samples per channel of one clip.
pub const MAX_AUDIO_SAMPLES: u64 = 1 << 27;
/// Lowest and highest sample rate accepted, in Hz (from a WAV header or a config).
pub const MIN_SAMPLE_RATE: u32 = 1000;
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Bytes of a preprocessor_config.json.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// `patch_size` (pixels).
pub const MAX_PATCH: u64 = 1024;
/// `temporal_patch_size` (frames) and `merge_size`.
pub const MAX_TEMPORAL_PATCH: u64 = 16;
pub const MAX_MERGE: u64 = 16;
/// `max_image_tokens`, `max_video_frame_tokens` (merged tokens per image or frame).
pub const MAX_IMAGE_TOKENS: u64 = 1 << 20;
/// Frames of one video, and `num_frames`.
pub const MAX_VIDEO_FRAMES: u64 = 4096;
/// `samples_per_token` of the Muse Spark extractor, and `hop_length` / `n_fft` of Whisper's.
pub const MAX_SAMPLES_PER_TOKEN: u64 = 1 << 20;
pub const MAX_FFT: u64 = 1 << 16;
/// Mel bins (`feature_size` of Whisper) and `chunk_length` in seconds.
pub const MAX_MEL_BINS: u64 = 1024;
pub const MAX_CHUNK_SECONDS: u64 = 3600;
/// Elements of one output tensor (pixel_values, input_values, input_features): 2^30 f32 values, 4 GiB.
pub const MAX_OUTPUT_ELEMS: u64 = 1 << 30;
