//! `Qwen2VLImageProcessor` of transformers 5.23 (torchvision backend, the default class) and
//! `Qwen2VLImageProcessorPil` (PIL backend), for one still image; Qwen2.5-VL uses the same processor.
//!
//! - resize to [`smart_resize_pixels`]`(h, w, patch_size * merge_size, min_pixels, max_pixels)` (the config's
//!   `size.shortest_edge` / `size.longest_edge`, or the older `min_pixels` / `max_pixels`, which win) with
//!   `resample` (BICUBIC, 3, by default): torchvision's antialiased uint8 kernel or Pillow's
//!   ([`crate::resize`]);
//! - rescale and normalise through a per-channel table ([`Normalize`]: torchvision fuses the two in f32, numpy
//!   rescales in f64);
//! - patchify: cells of `patch_size` in merge-block order (each `merge_size` x `merge_size` block of
//!   neighbouring cells consecutive, blocks in raster order, cells within a block in raster order), each row
//!   `[channel][temporal copy][y][x]` with the still image repeated `temporal_patch_size` times;
//!   `image_grid_thw = [1, h / patch, w / patch]` and `h * w / patch^2 / merge^2` merged tokens (the
//!   `<|image_pad|>` placeholders of the prompt).

use crate::config::{patch_geometry, to_usize, Fields};
use crate::decode::{check_dimensions, RgbImage};
use crate::error::MediaError;
use crate::limits;
use crate::normalize::Normalize;
use crate::resize::{resize, Backend, Filter};
use crate::smart_resize::smart_resize_pixels;
use std::path::Path;

/// `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`, the class defaults.
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// The `image_processor_type`s this config may name (the PIL class saves itself without its suffix).
const TYPES: [&str; 3] = [
    "Qwen2VLImageProcessor",
    "Qwen2VLImageProcessorFast",
    "Qwen2VLImageProcessorPil",
];

/// The fields of a Qwen2-VL image preprocessor_config.json, and which backend to reproduce.
#[derive(Clone, Debug, PartialEq)]
pub struct Qwen2VlConfig {
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub merge_size: usize,
    /// `size.shortest_edge`: the least number of pixels of the resized image (a pixel count, not an edge).
    pub min_pixels: usize,
    /// `size.longest_edge`: the most pixels.
    pub max_pixels: usize,
    pub do_resize: bool,
    /// `resample`: 3 (BICUBIC) or 1 (LANCZOS).
    pub resample: Filter,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    /// Not in the file (both classes save the same one): torchvision unless the caller asks for PIL.
    pub backend: Backend,
}

impl Default for Qwen2VlConfig {
    /// The class defaults: patch 14, temporal 2, merge 2, 56² ..= 28² x 1280 pixels, BICUBIC, CLIP mean / std.
    fn default() -> Self {
        Qwen2VlConfig {
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            do_resize: true,
            resample: Filter::Bicubic,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            backend: Backend::Torchvision,
        }
    }
}

impl Qwen2VlConfig {
    /// Reads an image processor's preprocessor_config.json.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::from_fields(&Fields::read(path)?)
    }

    /// The same from the JSON text of the config (as a model file carries it); `name` names it in errors.
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::from_fields(&Fields::parse(name, bytes)?)
    }

    /// Reads and checks the fields; a missing one takes the class default.
    pub fn from_fields(f: &Fields) -> Result<Self, MediaError> {
        f.expect_type_of("image_processor_type", &TYPES)?;
        Self::from_fields_over(f, &Qwen2VlConfig::default())
    }

    /// The fields shared with the video processor, each missing one taken from `d`.
    pub(crate) fn from_fields_over(f: &Fields, d: &Qwen2VlConfig) -> Result<Self, MediaError> {
        let resample = f.int("resample", 3, 0, 5)?;
        let resample = Filter::from_pil_id(resample).ok_or_else(|| {
            f.err(
                "resample",
                format!("{resample}: only BICUBIC (3) and LANCZOS (1) are implemented"),
            )
        })?;
        if !f.boolean("do_convert_rgb", true)? {
            return Err(f.err("do_convert_rgb", "false is not supported"));
        }
        let do_resize = f.boolean("do_resize", true)?;
        let (min_pixels, max_pixels) = pixel_bounds(f, do_resize, d)?;
        let (patch_size, temporal_patch_size, merge_size) = patch_geometry(f)?;
        let c = Qwen2VlConfig {
            patch_size,
            temporal_patch_size,
            merge_size,
            min_pixels,
            max_pixels,
            do_resize,
            resample,
            do_rescale: f.boolean("do_rescale", true)?,
            rescale_factor: f.float("rescale_factor", d.rescale_factor, 1e-12, 1e12)?,
            do_normalize: f.boolean("do_normalize", true)?,
            image_mean: f.triple("image_mean", CLIP_MEAN, -1e12, 1e12)?,
            image_std: f.triple("image_std", CLIP_STD, 1e-12, 1e12)?,
            backend: Backend::Torchvision,
        };
        if c.factor() > limits::MAX_PATCH as usize {
            return Err(f.err(
                "merge_size",
                format!("patch_size x merge_size is over {}", limits::MAX_PATCH),
            ));
        }
        Ok(c)
    }

    /// The side every resized image is a multiple of: `patch_size * merge_size`.
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }

    /// Values in one row of `pixel_values`: `3 * temporal_patch_size * patch_size^2`.
    pub fn row_len(&self) -> usize {
        3 * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// The resize target `(height, width)` for an image of `height` x `width` (`name` names it in errors):
    /// refused if the python would raise (an aspect ratio over 200, or, without `do_resize`, sides that are not
    /// multiples of [`Self::factor`]) or if it is over the image caps.
    pub fn target_size(
        &self,
        name: &Path,
        height: usize,
        width: usize,
    ) -> Result<(usize, usize), MediaError> {
        check_dimensions(name, width as u64, height as u64)?;
        let f = self.factor();
        let (th, tw) = if self.do_resize {
            smart_resize_pixels(height, width, f, self.min_pixels, self.max_pixels).ok_or_else(
                || {
                    MediaError::input(
                        name,
                        format!(
                            "{width}x{height}: the aspect ratio is over 200 (Qwen2-VL refuses it)"
                        ),
                    )
                },
            )?
        } else {
            (height, width)
        };
        check_dimensions(name, tw as u64, th as u64)?;
        if th % f != 0 || tw % f != 0 {
            return Err(MediaError::input(
                name,
                format!(
                    "{tw}x{th} is not a multiple of patch_size x merge_size {f} (do_resize is off)"
                ),
            ));
        }
        let elems = (th * tw * 3) as u64 * self.temporal_patch_size as u64;
        if elems > limits::MAX_OUTPUT_ELEMS {
            return Err(MediaError::input(
                name,
                format!("pixel_values of {elems} values is over the cap"),
            ));
        }
        Ok((th, tw))
    }

    /// Merged tokens for an image of `height` x `width` without processing it (the processor's
    /// `get_number_of_image_patches` / merge²).
    pub fn tokens_for(
        &self,
        name: &Path,
        height: usize,
        width: usize,
    ) -> Result<usize, MediaError> {
        let (th, tw) = self.target_size(name, height, width)?;
        Ok(th * tw / (self.factor() * self.factor()))
    }

    /// The f32 value of every u8 level of each channel, as the chosen backend computes it.
    pub fn norm_lut(&self) -> [[f32; 256]; 3] {
        Normalize {
            do_rescale: self.do_rescale,
            rescale_factor: self.rescale_factor,
            do_normalize: self.do_normalize,
            image_mean: self.image_mean,
            image_std: self.image_std,
        }
        .lut(self.backend)
    }
}

/// `(min_pixels, max_pixels)`: the class's `__init__` lets top-level `min_pixels` / `max_pixels` override
/// `size`; a `size` without them must carry both bounds (as `shortest_edge` / `longest_edge`, or the older
/// `min_pixels` / `max_pixels` keys inside it), since the resize needs both; no `size` at all is the default.
fn pixel_bounds(
    f: &Fields,
    do_resize: bool,
    d: &Qwen2VlConfig,
) -> Result<(usize, usize), MediaError> {
    let cap = limits::MAX_IMAGE_PIXELS;
    let size = f.object("size")?;
    let bound = |top: &str, edge: &str, default: usize| -> Result<usize, MediaError> {
        if f.has(top) {
            return Ok(to_usize(f.int(top, 0, 1, cap)?));
        }
        let Some(s) = &size else {
            return Ok(default);
        };
        for key in [edge, top] {
            if s.has(key) {
                return Ok(to_usize(s.int(key, 0, 1, cap)?));
            }
        }
        if do_resize {
            return Err(s.err(edge, "missing: the resize needs both bounds of `size`"));
        }
        Ok(default)
    };
    let min = bound("min_pixels", "shortest_edge", d.min_pixels)?;
    let max = bound("max_pixels", "longest_edge", d.max_pixels)?;
    Ok((min, max))
}

/// What the processor returns for one image (pixel rows in merge-block order, layout in the module doc).
pub type Qwen2VlImage = crate::glimmer::PatchedImage;

/// The resized image the processor patchifies (what `resized_u8` of the fixtures holds).
pub fn resize_image(
    cfg: &Qwen2VlConfig,
    name: &Path,
    img: &RgbImage,
) -> Result<RgbImage, MediaError> {
    let (th, tw) = cfg.target_size(name, img.height, img.width)?;
    Ok(if (th, tw) == (img.height, img.width) {
        img.clone()
    } else {
        resize(img, tw, th, cfg.resample, cfg.backend)
    })
}

/// Qwen2VLImageProcessor (or, with `cfg.backend = Pil`, Qwen2VLImageProcessorPil) over one decoded image.
pub fn preprocess(img: &RgbImage, cfg: &Qwen2VlConfig) -> Result<Qwen2VlImage, MediaError> {
    preprocess_named(Path::new("image"), img, cfg)
}

/// [`preprocess`], with `name` naming the image in errors.
pub fn preprocess_named(
    name: &Path,
    img: &RgbImage,
    cfg: &Qwen2VlConfig,
) -> Result<Qwen2VlImage, MediaError> {
    let resized = resize_image(cfg, name, img)?;
    let p = cfg.patch_size;
    let (gh, gw) = (resized.height / p, resized.width / p);
    let pixel_values = patchify(
        &vec![&resized; cfg.temporal_patch_size],
        cfg,
        &cfg.norm_lut(),
    );
    Ok(Qwen2VlImage {
        pixel_values,
        grid_thw: [1, gh, gw],
        tokens: gh * gw / (cfg.merge_size * cfg.merge_size),
        resized,
    })
}

/// Rows in merge-block order, each `[c][t][y][x]` through `lut`, for `frames` of one size taken
/// `temporal_patch_size` at a time (a still image is its own copies), groups in order: the rows of the first
/// group's grid, then the next's. The sides are multiples of `cfg.factor()` (checked by
/// [`Qwen2VlConfig::target_size`]) and `frames.len()` a multiple of `temporal_patch_size`.
pub(crate) fn patchify(
    frames: &[&RgbImage],
    cfg: &Qwen2VlConfig,
    lut: &[[f32; 256]; 3],
) -> Vec<f32> {
    let (p, m, t) = (cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size);
    let (h, w) = (frames[0].height, frames[0].width);
    let (gh, gw) = (h / p, w / p);
    let mut out = Vec::with_capacity(frames.len() / t * gh * gw * cfg.row_len());
    for group in frames.chunks_exact(t) {
        for by in 0..gh / m {
            for bx in 0..gw / m {
                for my in 0..m {
                    for mx in 0..m {
                        let (cy, cx) = (by * m + my, bx * m + mx);
                        for (c, lut_c) in lut.iter().enumerate() {
                            for img in group {
                                for y in 0..p {
                                    let src = &img.data[((cy * p + y) * w + cx * p) * 3..];
                                    out.extend((0..p).map(|x| lut_c[usize::from(src[x * 3 + c])]));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_a_tiny_image() {
        // 4x4 cells of 1 pixel, merge 2: the first row is cell (0, 0), then (0, 1), (1, 0), (1, 1), then the
        // block to the right. Values: r = 10 y + x, g = 100 + r, b = 200 - r; no normalisation.
        let cfg = Qwen2VlConfig {
            patch_size: 1,
            merge_size: 2,
            temporal_patch_size: 2,
            do_resize: false,
            do_rescale: false,
            do_normalize: false,
            ..Qwen2VlConfig::default()
        };
        let mut data = Vec::new();
        for y in 0..4u8 {
            for x in 0..4u8 {
                let r = 10 * y + x;
                data.extend([r, 100 + r, 200 - r]);
            }
        }
        let img = RgbImage::new(4, 4, data).unwrap();
        let out = preprocess(&img, &cfg).unwrap();
        assert_eq!(out.grid_thw, [1, 4, 4]);
        assert_eq!(out.tokens, 4);
        let rows: Vec<&[f32]> = out.pixel_values.chunks(cfg.row_len()).collect();
        let cell = |y: u8, x: u8| {
            let r = f32::from(10 * y + x);
            vec![r, r, 100.0 + r, 100.0 + r, 200.0 - r, 200.0 - r]
        };
        let order = [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (0, 2),
            (0, 3),
            (1, 2),
            (1, 3),
            (2, 0),
        ];
        for (i, &(y, x)) in order.iter().enumerate() {
            assert_eq!(rows[i], cell(y, x).as_slice(), "row {i}");
        }
    }
}
