//! `Qwen2VLVideoProcessor` of transformers 5.23 (torchvision), the video processor of the Omni thinkers, over
//! frames already decoded (this crate reads no video containers):
//!
//! - the frames are used as given (`do_sample_frames` off, the class default): the caller samples them, at
//!   [`Qwen2VlVideoConfig::fps`], and the processor is told that rate;
//! - every frame resized as the image processor resizes a still ([`crate::qwen2_vl`]: `smart_resize` to
//!   multiples of `patch_size * merge_size` within `size`), with `cap_pixels_per_frame` (qwen-vl-utils' bound)
//!   lowering `max_pixels` to an even share of `max_video_tokens`;
//! - the last frame repeated until the count is a multiple of `temporal_patch_size`; rows grid by grid
//!   (`grid_t` of them), each grid in merge-block order, each row `[c][temporal][y][x]`;
//! - `video_second_per_grid = temporal_patch_size / fps` (the Omni processors'), which the thinkers' M-RoPE turns
//!   into time positions; the prompt takes `t h w / merge^2` video placeholders between the vision start and end.

use crate::config::{to_usize, Fields};
use crate::decode::RgbImage;
use crate::error::MediaError;
use crate::limits;
use crate::qwen2_vl::{patchify, resize_image, Qwen2VlConfig};
use std::path::Path;

/// The `video_processor_type`s this config may name.
const TYPES: [&str; 2] = ["Qwen2VLVideoProcessor", "Qwen2VLVideoProcessorFast"];

/// The fields of a Qwen2-VL video_preprocessor_config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct Qwen2VlVideoConfig {
    /// Resizing, normalisation and patch sizes, as for a still image (video defaults: `128 ..= 768` merged
    /// tokens of pixels).
    pub frame: Qwen2VlConfig,
    /// Bound the pixels of each frame by an even share of `max_video_tokens` (qwen-vl-utils' rule).
    pub cap_pixels_per_frame: bool,
    pub max_video_tokens: usize,
    /// The rate the frames are sampled at (the `fps` given to the Omni processors; `fps` in the file, else 2).
    pub fps: f64,
}

impl Qwen2VlVideoConfig {
    /// The Omni processors' defaults at a tower's patch sizes: `128 ..= 768` merged tokens of pixels a frame
    /// (the processors' `videos_kwargs`), CLIP mean / std, 2 frames per second.
    pub fn omni_default(patch_size: usize, temporal_patch_size: usize, merge_size: usize) -> Self {
        let f = patch_size * merge_size;
        Qwen2VlVideoConfig {
            frame: Qwen2VlConfig {
                patch_size,
                temporal_patch_size,
                merge_size,
                min_pixels: 128 * f * f,
                max_pixels: 768 * f * f,
                ..Qwen2VlConfig::default()
            },
            cap_pixels_per_frame: false,
            max_video_tokens: 128_000,
            fps: 2.0,
        }
    }

    /// Reads a video_preprocessor_config.json.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::from_fields(&Fields::read(path)?)
    }

    /// The same from the JSON text of the config (as a model file carries it); `name` names it in errors.
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::from_fields(&Fields::parse(name, bytes)?)
    }

    /// Reads and checks the fields; a missing one takes the class default (`Qwen2VLVideoProcessor`'s: patch
    /// 14, temporal 2, merge 2, `128 * 28^2 ..= 768 * 28^2` pixels).
    pub fn from_fields(f: &Fields) -> Result<Self, MediaError> {
        f.expect_type_of("video_processor_type", &TYPES)?;
        if f.boolean("do_sample_frames", false)? {
            return Err(f.err(
                "do_sample_frames",
                "true is not supported (Flint samples the frames itself, at `fps`)",
            ));
        }
        let d = Self::omni_default(14, 2, 2);
        Ok(Qwen2VlVideoConfig {
            frame: Qwen2VlConfig::from_fields_over(f, &d.frame)?,
            cap_pixels_per_frame: f.boolean("cap_pixels_per_frame", false)?,
            max_video_tokens: to_usize(f.int(
                "max_video_tokens",
                128_000,
                1,
                limits::MAX_IMAGE_TOKENS,
            )?),
            fps: f.float("fps", d.fps, 1e-3, 1e3)?,
        })
    }

    /// `temporal_patch_size / fps`: seconds between the starts of two temporal grids.
    pub fn second_per_grid(&self) -> f64 {
        self.frame.temporal_patch_size as f64 / self.fps
    }

    /// The per-frame resize settings for a video of `frames` frames (`cap_pixels_per_frame` applied).
    fn frame_config(&self, frames: usize) -> Qwen2VlConfig {
        let mut c = self.frame.clone();
        if self.cap_pixels_per_frame {
            let f = c.factor();
            // int(max_video_tokens * f^2 * 0.9) * temporal // frames, floored at int(1.05 * min_pixels).
            let total = (self.max_video_tokens as f64 * (f * f) as f64 * 0.9) as usize;
            let share = total.saturating_mul(c.temporal_patch_size) / frames.max(1);
            let floor = (c.min_pixels as f64 * 1.05) as usize;
            c.max_pixels = c.max_pixels.min(share).max(floor);
        }
        c
    }
}

/// What the processor returns for one video.
#[derive(Clone, Debug)]
pub struct Qwen2VlVideo {
    /// `[grid_t * grid_h * grid_w, 3 * temporal * patch^2]`.
    pub pixel_values_videos: Vec<f32>,
    /// `[grid_t, grid_h, grid_w]` in patches.
    pub grid_thw: [usize; 3],
    /// Merged tokens: the video placeholders of the prompt.
    pub tokens: usize,
    /// [`Qwen2VlVideoConfig::second_per_grid`].
    pub second_per_grid: f64,
}

/// Qwen2VLVideoProcessor over `frames` (all of one size, sampled at `cfg.fps`); `name` names the video in
/// errors.
pub fn preprocess_video(
    cfg: &Qwen2VlVideoConfig,
    name: &Path,
    frames: &[RgbImage],
) -> Result<Qwen2VlVideo, MediaError> {
    let first = crate::video::check_frames(name, frames)?;
    let fc = cfg.frame_config(frames.len());
    let t = fc.temporal_patch_size;
    let n = frames.len().div_ceil(t) * t;
    let (th, tw) = fc.target_size(name, first.height, first.width)?;
    let elems = n as u64 * (th * tw * 3) as u64;
    if elems > limits::MAX_OUTPUT_ELEMS {
        return Err(MediaError::input(
            name,
            format!("pixel_values_videos of {elems} values is over the cap"),
        ));
    }
    let resized = frames
        .iter()
        .map(|f| resize_image(&fc, name, f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut refs: Vec<&RgbImage> = resized.iter().collect();
    refs.resize(n, &resized[resized.len() - 1]);
    let p = fc.patch_size;
    let grid_thw = [n / t, th / p, tw / p];
    Ok(Qwen2VlVideo {
        pixel_values_videos: patchify(&refs, &fc, &fc.norm_lut()),
        tokens: grid_thw.iter().product::<usize>() / (fc.merge_size * fc.merge_size),
        grid_thw,
        second_per_grid: cfg.second_per_grid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: u8) -> RgbImage {
        RgbImage::new(4, 4, vec![v; 4 * 4 * 3]).unwrap()
    }

    #[test]
    fn frames_fill_the_temporal_patch_grid_by_grid() {
        // Patch 2, merge 2, no resizing or normalisation: a 4x4 frame is one merged token of 4 cells.
        let mut cfg = Qwen2VlVideoConfig::omni_default(2, 2, 2);
        cfg.frame.do_resize = false;
        cfg.frame.do_rescale = false;
        cfg.frame.do_normalize = false;
        let v = preprocess_video(&cfg, Path::new("v"), &[flat(1), flat(2), flat(3)]).unwrap();
        // Three frames: the third repeated into the second grid.
        assert_eq!(v.grid_thw, [2, 2, 2]);
        assert_eq!(v.tokens, 2);
        assert_eq!(v.second_per_grid, 1.0);
        let rows: Vec<&[f32]> = v.pixel_values_videos.chunks(cfg.frame.row_len()).collect();
        assert_eq!(rows.len(), 8);
        // Row layout [c][t][y][x]: per channel, 4 values of the first frame of the group, then 4 of the second.
        let row = |a: f32, b: f32| [[a; 4], [b; 4]].concat().repeat(3);
        assert_eq!(rows[0], row(1.0, 2.0).as_slice());
        assert_eq!(rows[4], row(3.0, 3.0).as_slice());
    }

    #[test]
    fn caps_and_bad_configs_are_refused_naming_the_field() {
        let cfg = Qwen2VlVideoConfig::omni_default(2, 2, 2);
        let e = preprocess_video(
            &cfg,
            Path::new("v"),
            &[flat(1), RgbImage::new(2, 2, vec![0; 12]).unwrap()],
        );
        assert!(e.unwrap_err().to_string().contains("different sizes"));
        let bad = br#"{"video_processor_type": "Qwen2VLVideoProcessor", "do_sample_frames": true}"#;
        let e = Qwen2VlVideoConfig::from_json(Path::new("vp.json"), bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vp.json") && e.contains("do_sample_frames"),
            "{e}"
        );
        let bad = br#"{"video_processor_type": "Qwen2VLVideoProcessor", "fps": 0}"#;
        assert!(Qwen2VlVideoConfig::from_json(Path::new("vp.json"), bad).is_err());
    }

    #[test]
    fn the_pixel_cap_shares_max_video_tokens_among_the_frames() {
        let mut cfg = Qwen2VlVideoConfig::omni_default(14, 2, 2);
        cfg.cap_pixels_per_frame = true;
        cfg.max_video_tokens = 1000;
        // int(1000 * 784 * 0.9) * 2 // 100 = 14112, above the floor int(1.05 * 128 * 784) = 105369.
        assert_eq!(cfg.frame_config(100).max_pixels, 105_369);
        cfg.max_video_tokens = 100_000;
        assert_eq!(cfg.frame_config(100).max_pixels, 768 * 784);
    }
}
