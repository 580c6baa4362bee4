//! `MuseGlimmerImageProcessor` (transformers 5.23, torchvision backend; Muse Spark uses it too):
//!
//! - resize to [`smart_resize`]`(h, w, patch_size * merge_size, max_image_tokens)` with torchvision's
//!   antialiased Lanczos on uint8 ([`resize_lanczos`]);
//! - rescale by `rescale_factor` and normalise by `image_mean` / `image_std`, fused as transformers fuses them:
//!   `(x - mean / rescale) / (std / rescale)` in f32 (mean = std = 0.5: `(x - 127.5) / 127.5`);
//! - patchify: one row per `patch_size` cell in raster order, laid out `[temporal copy][channel][y][x]` with the
//!   image repeated `temporal_patch_size` times; `image_grid_thw = [1, h / patch, w / patch]`, and
//!   `h * w / patch^2 / merge^2` merged tokens.

use crate::config::{patch_geometry, to_usize, Fields};
use crate::decode::{check_dimensions, RgbImage};
use crate::error::MediaError;
use crate::limits;
use crate::normalize::Normalize;
use crate::resize::{resize_lanczos, Backend};
use crate::smart_resize::smart_resize;
use std::path::Path;

/// PIL's resampling id for LANCZOS, the only one the Muse processors use.
pub const RESAMPLE_LANCZOS: u64 = 1;

/// The fields of a MuseGlimmer image (or video) preprocessor_config.json this crate uses.
#[derive(Clone, Debug, PartialEq)]
pub struct GlimmerImageConfig {
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub merge_size: usize,
    /// `max_image_tokens` (images) or `max_video_frame_tokens` (video frames).
    pub max_tokens: usize,
    pub do_resize: bool,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
}

impl GlimmerImageConfig {
    /// The class defaults (patch 14, temporal 2, merge 2, 4096 tokens, mean = std = 0.5).
    pub fn default_image() -> Self {
        GlimmerImageConfig {
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            max_tokens: 4096,
            do_resize: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        }
    }

    /// Reads an image processor's preprocessor_config.json.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::parsed(&Fields::read(path)?)
    }

    /// The same from the JSON text of the config (as a model file carries it); `name` names it in errors.
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::parsed(&Fields::parse(name, bytes)?)
    }

    fn parsed(f: &Fields) -> Result<Self, MediaError> {
        f.expect_type("image_processor_type", "MuseGlimmerImageProcessor")?;
        Self::from_fields(f, "max_image_tokens", 4096)
    }

    /// Reads the fields shared by the image and video processors; `tokens_key` names the token cap.
    pub(crate) fn from_fields(
        f: &Fields,
        tokens_key: &str,
        tokens_default: u64,
    ) -> Result<Self, MediaError> {
        let resample = f.int("resample", RESAMPLE_LANCZOS, 0, 5)?;
        if resample != RESAMPLE_LANCZOS {
            return Err(MediaError::config(
                f.path(),
                "resample",
                format!("{resample}: only LANCZOS (1) is implemented, as the Muse processors use"),
            ));
        }
        if !f.boolean("do_convert_rgb", true)? {
            return Err(MediaError::config(
                f.path(),
                "do_convert_rgb",
                "false is not supported",
            ));
        }
        let (patch_size, temporal_patch_size, merge_size) = patch_geometry(f)?;
        let c = GlimmerImageConfig {
            patch_size,
            temporal_patch_size,
            merge_size,
            max_tokens: to_usize(f.int(tokens_key, tokens_default, 1, limits::MAX_IMAGE_TOKENS)?),
            do_resize: f.boolean("do_resize", true)?,
            do_rescale: f.boolean("do_rescale", true)?,
            rescale_factor: f.float("rescale_factor", 1.0 / 255.0, 1e-12, 1e12)?,
            do_normalize: f.boolean("do_normalize", true)?,
            image_mean: f.triple("image_mean", [0.5; 3], -1e12, 1e12)?,
            image_std: f.triple("image_std", [0.5; 3], 1e-12, 1e12)?,
        };
        if c.patch_size * c.merge_size > limits::MAX_PATCH as usize {
            return Err(MediaError::config(
                f.path(),
                "merge_size",
                format!("patch_size x merge_size is over {}", limits::MAX_PATCH),
            ));
        }
        Ok(c)
    }

    /// The resize target `(height, width)` for an image of `height` x `width`.
    pub fn target_size(&self, height: usize, width: usize) -> (usize, usize) {
        if !self.do_resize {
            return (height, width);
        }
        smart_resize(
            height,
            width,
            self.patch_size * self.merge_size,
            self.max_tokens,
        )
    }

    /// The f32 value of every u8 level of each channel: `lut[c][v]` (transformers' fused rescale/normalise).
    pub fn norm_lut(&self) -> [[f32; 256]; 3] {
        Normalize {
            do_rescale: self.do_rescale,
            rescale_factor: self.rescale_factor,
            do_normalize: self.do_normalize,
            image_mean: self.image_mean,
            image_std: self.image_std,
        }
        .lut(Backend::Torchvision)
    }
}

/// What an image processor returns for one image (this one and Qwen2-VL's, `crate::qwen2_vl`).
#[derive(Clone, Debug)]
pub struct PatchedImage {
    /// `[patches, temporal * 3 * patch * patch]`, row-major, in the processor's patch order.
    pub pixel_values: Vec<f32>,
    /// `[1, grid_h, grid_w]`.
    pub grid_thw: [usize; 3],
    /// The resized image that was patchified (what `resized_u8` of the fixtures holds).
    pub resized: RgbImage,
    /// Merged tokens: the image's placeholders in the prompt.
    pub tokens: usize,
}

/// MuseGlimmerImageProcessor's output.
pub type GlimmerImage = PatchedImage;

impl PatchedImage {
    /// Rows of `pixel_values`.
    pub fn patches(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Width of one row of `pixel_values`.
    pub fn row_len(&self, cfg: &GlimmerImageConfig) -> usize {
        cfg.temporal_patch_size * 3 * cfg.patch_size * cfg.patch_size
    }
}

/// MuseGlimmerImageProcessor over one decoded image; `name` names it in errors.
pub fn preprocess_image(
    cfg: &GlimmerImageConfig,
    name: &Path,
    img: &RgbImage,
) -> Result<GlimmerImage, MediaError> {
    check_dimensions(name, img.width as u64, img.height as u64)?;
    let (th, tw) = cfg.target_size(img.height, img.width);
    check_dimensions(name, tw as u64, th as u64)?;
    let p = cfg.patch_size;
    if th % p != 0 || tw % p != 0 {
        return Err(MediaError::input(
            name,
            format!(
                "{}x{} is not a multiple of patch_size {p} (do_resize is off)",
                tw, th
            ),
        ));
    }
    let elems = (th * tw * 3) as u64 * cfg.temporal_patch_size as u64;
    if elems > limits::MAX_OUTPUT_ELEMS {
        return Err(MediaError::input(
            name,
            format!("pixel_values of {elems} values is over the cap"),
        ));
    }
    let resized = if (th, tw) == (img.height, img.width) {
        img.clone()
    } else {
        resize_lanczos(img, tw, th)
    };
    let (gh, gw) = (th / p, tw / p);
    let pixel_values = patchify(&[&resized], cfg.temporal_patch_size, p, &cfg.norm_lut());
    let m2 = cfg.merge_size * cfg.merge_size;
    Ok(GlimmerImage {
        pixel_values,
        grid_thw: [1, gh, gw],
        tokens: gh * gw / m2,
        resized,
    })
}

/// Patchifies `frames` (one image, or one temporal group of video frames when `frames.len() == temporal`): for
/// each cell in raster order a row `[t][c][y][x]`; a single image is repeated for every `t`.
pub(crate) fn patchify(
    frames: &[&RgbImage],
    temporal: usize,
    p: usize,
    lut: &[[f32; 256]; 3],
) -> Vec<f32> {
    let (w, h) = (frames[0].width, frames[0].height);
    let (gh, gw) = (h / p, w / p);
    let mut out = Vec::with_capacity(gh * gw * temporal * 3 * p * p);
    for cy in 0..gh {
        for cx in 0..gw {
            for t in 0..temporal {
                let f = frames[t.min(frames.len() - 1)];
                for (c, lut_c) in lut.iter().enumerate() {
                    for y in 0..p {
                        let row = &f.data[((cy * p + y) * w + cx * p) * 3..];
                        out.extend((0..p).map(|x| lut_c[row[x * 3 + c] as usize]));
                    }
                }
            }
        }
    }
    out
}
