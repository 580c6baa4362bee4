//! `MuseGlimmerVideoProcessor` (transformers 5.23) over frames already decoded (this crate reads no video
//! containers; a camera hands over frames):
//!
//! - optional frame sampling (`do_sample_frames`): `n = min(int(total * fps / video_fps), num_frames, total)`,
//!   rounded down to a multiple of `temporal_patch_size` (at least one group, at most `total`), indices
//!   `torch.linspace(0, total - 1, n).long()` computed in f32 as ATen does;
//! - every frame resized like an image, with the `max_video_frame_tokens` cap;
//! - the frame count padded to a multiple of `temporal_patch_size` by repeating the last frame; rows ordered
//!   (group, cell row, cell column), each `[t][c][y][x]`; `video_grid_thw = [groups, h / patch, w / patch]`;
//! - the prompt: one timestamp (`frame index / fps`) per group, formatted by `frame_timestamp_format`
//!   (see [`crate::prompt::video_prompt`]).

use crate::config::{to_usize, Fields};
use crate::decode::{check_dimensions, RgbImage};
use crate::error::MediaError;
use crate::glimmer::{patchify, GlimmerImageConfig};
use crate::limits;
use crate::resize::resize_lanczos;
use std::path::Path;

/// The fields of a MuseGlimmer video_preprocessor_config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct GlimmerVideoConfig {
    /// Patch sizes, normalisation and `max_video_frame_tokens` (as `max_tokens`).
    pub image: GlimmerImageConfig,
    pub do_sample_frames: bool,
    pub num_frames: usize,
    /// Frames sampled per second of video.
    pub fps: f64,
    /// `frame_timestamp_format`, e.g. `Time: {timestamp:.1f}s`.
    pub frame_timestamp_format: String,
}

impl GlimmerVideoConfig {
    /// The class defaults (144 tokens per frame, 96 frames at 2 fps).
    pub fn default_video() -> Self {
        GlimmerVideoConfig {
            image: GlimmerImageConfig {
                max_tokens: 144,
                ..GlimmerImageConfig::default_image()
            },
            do_sample_frames: true,
            num_frames: 96,
            fps: 2.0,
            frame_timestamp_format: "Time: {timestamp:.1f}s".into(),
        }
    }

    /// Reads a video processor's config.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::parsed(&Fields::read(path)?)
    }

    /// The same from the JSON text of the config (as a model file carries it); `name` names it in errors.
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::parsed(&Fields::parse(name, bytes)?)
    }

    fn parsed(f: &Fields) -> Result<Self, MediaError> {
        f.expect_type("video_processor_type", "MuseGlimmerVideoProcessor")?;
        let c = GlimmerVideoConfig {
            image: GlimmerImageConfig::from_fields(f, "max_video_frame_tokens", 144)?,
            do_sample_frames: f.boolean("do_sample_frames", true)?,
            num_frames: to_usize(f.int("num_frames", 96, 1, limits::MAX_VIDEO_FRAMES)?),
            fps: f.float("fps", 2.0, 1e-6, 1e6)?,
            frame_timestamp_format: f.string("frame_timestamp_format", "Time: {timestamp:.1f}s")?,
        };
        crate::prompt::format_timestamp(&c.frame_timestamp_format, 0.0)
            .map_err(|why| MediaError::config(f.path(), "frame_timestamp_format", why))?;
        Ok(c)
    }

    /// The frame indices `sample_frames` picks from `total` frames of a video at `video_fps` (24 when unknown,
    /// as transformers assumes).
    pub fn sample_indices(&self, total: usize, video_fps: Option<f64>) -> Vec<usize> {
        let vfps = video_fps
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(24.0);
        let t = self.image.temporal_patch_size;
        let by_fps = (total as f64 * self.fps / vfps) as usize;
        let mut n = by_fps.min(self.num_frames).min(total);
        n = t.max(n / t * t);
        n = n.min(total);
        linspace_long(total.saturating_sub(1) as f32, n)
    }
}

/// `torch.linspace(0, end, steps).long()` in f32: ATen fills the first half from the start and the second half
/// from the end.
fn linspace_long(end: f32, steps: usize) -> Vec<usize> {
    if steps == 0 {
        return vec![];
    }
    if steps == 1 {
        return vec![0];
    }
    let step = end / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            let v = if i < half {
                step * i as f32
            } else {
                end - step * (steps - i - 1) as f32
            };
            v.max(0.0) as usize
        })
        .collect()
}

/// What the video processor returns for one video.
#[derive(Clone, Debug)]
pub struct GlimmerVideo {
    /// `[groups * grid_h * grid_w, temporal * 3 * patch * patch]`.
    pub pixel_values_videos: Vec<f32>,
    /// `[groups, grid_h, grid_w]`.
    pub grid_thw: [usize; 3],
    /// The indices of the frames used, into the frames given.
    pub frames_indices: Vec<usize>,
    /// One timestamp in seconds per temporal group (the prompt's `Time: ...`).
    pub group_timestamps: Vec<f64>,
}

/// The first of `frames`, once they are known to be at least one, at most the cap, and all of one size.
pub(crate) fn check_frames<'a>(
    name: &Path,
    frames: &'a [RgbImage],
) -> Result<&'a RgbImage, MediaError> {
    let Some(first) = frames.first() else {
        return Err(MediaError::input(name, "a video of no frames"));
    };
    if frames.len() as u64 > limits::MAX_VIDEO_FRAMES {
        return Err(MediaError::input(
            name,
            format!("{} frames is over the cap", frames.len()),
        ));
    }
    if frames
        .iter()
        .any(|f| (f.width, f.height) != (first.width, first.height))
    {
        return Err(MediaError::input(name, "frames of different sizes"));
    }
    Ok(first)
}

/// MuseGlimmerVideoProcessor over `frames` (all of one size) of a video at `video_fps` frames per second.
pub fn preprocess_video(
    cfg: &GlimmerVideoConfig,
    name: &Path,
    frames: &[RgbImage],
    video_fps: Option<f64>,
) -> Result<GlimmerVideo, MediaError> {
    let first = check_frames(name, frames)?;
    check_dimensions(name, first.width as u64, first.height as u64)?;
    let ic = &cfg.image;
    let indices: Vec<usize> = if cfg.do_sample_frames {
        cfg.sample_indices(frames.len(), video_fps)
    } else {
        (0..frames.len()).collect()
    };
    let (th, tw) = ic.target_size(first.height, first.width);
    let p = ic.patch_size;
    if th % p != 0 || tw % p != 0 {
        return Err(MediaError::input(
            name,
            format!("{tw}x{th} is not a multiple of patch_size {p}"),
        ));
    }
    let t = ic.temporal_patch_size;
    let groups = indices.len().div_ceil(t);
    let elems = (groups * t) as u64 * (th * tw * 3) as u64;
    if elems > limits::MAX_OUTPUT_ELEMS {
        return Err(MediaError::input(
            name,
            format!("pixel_values_videos of {elems} values is over the cap"),
        ));
    }
    let mut resized: Vec<RgbImage> = indices
        .iter()
        .map(|&i| {
            let f = &frames[i];
            if (th, tw) == (f.height, f.width) {
                f.clone()
            } else {
                resize_lanczos(f, tw, th)
            }
        })
        .collect();
    while resized.len() < groups * t {
        let last = resized[resized.len() - 1].clone();
        resized.push(last);
    }
    let lut = ic.norm_lut();
    let mut pixel_values_videos = Vec::new();
    for g in 0..groups {
        let group: Vec<&RgbImage> = resized[g * t..(g + 1) * t].iter().collect();
        pixel_values_videos.extend(patchify(&group, t, p, &lut));
    }
    let fps = video_fps
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(24.0);
    let mut group_timestamps: Vec<f64> = indices
        .iter()
        .step_by(t)
        .map(|&i| i as f64 / fps)
        .take(groups)
        .collect();
    while group_timestamps.len() < groups {
        group_timestamps.push(group_timestamps.last().copied().unwrap_or(0.0));
    }
    Ok(GlimmerVideo {
        pixel_values_videos,
        grid_thw: [groups, th / p, tw / p],
        frames_indices: indices,
        group_timestamps,
    })
}
