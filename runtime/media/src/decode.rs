//! Image files to 8-bit RGB, the way the HF processors receive them: `PIL.Image.open` and transformers'
//! `convert_to_rgb`, i.e. PIL's `convert("RGB")`, except that an image with an alpha band (or a PNG `tRNS`
//! transparency) is first composited onto opaque white with PIL's `alpha_composite` integer arithmetic.
//!
//! - Formats: JPEG and PNG only, recognised by their magic bytes (not by the file name).
//! - Decompression bombs: the file is capped ([`limits::MAX_IMAGE_FILE_BYTES`]); the width and height are read
//!   from the header and checked against [`limits::MAX_IMAGE_SIDE`] and [`limits::MAX_IMAGE_PIXELS`] before any
//!   pixel buffer exists; `image::Limits` caps the decoder's own allocations as well.
//! - PIL's conversions: grey `L` is replicated; 16-bit RGB(A)/LA PNGs keep the high byte of each sample (PIL's
//!   `;16B` raw modes); 16-bit grey (PIL mode `I;16`) is clipped to 255, as PIL's `I16_RGB` does; CMYK JPEGs are
//!   read as PIL reads them ([`crate::jpeg`]).
//! - PNGs are decoded by the image crate, JPEGs by libjpeg-turbo after the image crate has checked them
//!   ([`crate::jpeg`]): both give PIL's values bit for bit.

use crate::error::{read_capped, MediaError};
use crate::limits;
use image::{DynamicImage, ImageDecoder, ImageFormat};
use std::io::Cursor;
use std::path::Path;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `[r, g, b]` (HWC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image from HWC bytes; `data.len()` must be `width * height * 3`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        (width.checked_mul(height)?.checked_mul(3)? == data.len()).then_some(RgbImage {
            width,
            height,
            data,
        })
    }

    /// The pixel at (`x`, `y`).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Reads and decodes the image file at `path`.
pub fn decode_image_file(path: &Path) -> Result<RgbImage, MediaError> {
    let bytes = read_capped(path, limits::MAX_IMAGE_FILE_BYTES)?;
    decode_image(path, &bytes)
}

/// Decodes JPEG or PNG bytes; `name` names them in errors.
pub fn decode_image(name: &Path, bytes: &[u8]) -> Result<RgbImage, MediaError> {
    if bytes.len() as u64 > limits::MAX_IMAGE_FILE_BYTES {
        return Err(MediaError::TooLarge {
            path: name.to_path_buf(),
            bytes: bytes.len() as u64,
            cap: limits::MAX_IMAGE_FILE_BYTES,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| MediaError::UnsupportedFormat {
        path: name.to_path_buf(),
        found: "unrecognised bytes".into(),
    })?;
    let dec = |e: image::ImageError| MediaError::Decode {
        path: name.to_path_buf(),
        detail: e.to_string(),
    };
    let img = match format {
        ImageFormat::Png => {
            // The size is checked from IHDR before the decoder exists (its own limit error would not say which).
            if let (Some(b"IHDR"), Some(w), Some(h)) =
                (bytes.get(12..16), bytes.get(16..20), bytes.get(20..24))
            {
                let be = |b: &[u8]| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                check_dimensions(name, be(w), be(h))?;
            }
            let d =
                image::codecs::png::PngDecoder::with_limits(Cursor::new(bytes), decoder_limits())
                    .map_err(dec)?;
            from_decoder(name, d)?
        }
        ImageFormat::Jpeg => return crate::jpeg::decode_jpeg(name, bytes, decoder_limits()),
        other => {
            return Err(MediaError::UnsupportedFormat {
                path: name.to_path_buf(),
                found: format!("{other:?}"),
            })
        }
    };
    to_rgb(name, img)
}

fn decoder_limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits::MAX_IMAGE_SIDE as u32);
    l.max_image_height = Some(limits::MAX_IMAGE_SIDE as u32);
    l.max_alloc = Some(limits::MAX_DECODE_ALLOC);
    l
}

/// Checks the header's size, then decodes.
fn from_decoder(name: &Path, d: impl ImageDecoder) -> Result<DynamicImage, MediaError> {
    let (w, h) = d.dimensions();
    check_dimensions(name, u64::from(w), u64::from(h))?;
    DynamicImage::from_decoder(d).map_err(|e| MediaError::Decode {
        path: name.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Refuses empty images and images over the side or pixel caps.
pub(crate) fn check_dimensions(name: &Path, width: u64, height: u64) -> Result<(), MediaError> {
    let bad = |why| MediaError::BadDimensions {
        path: name.to_path_buf(),
        width,
        height,
        why,
    };
    if width == 0 || height == 0 {
        return Err(bad("an empty image"));
    }
    if width > limits::MAX_IMAGE_SIDE || height > limits::MAX_IMAGE_SIDE {
        return Err(bad("a side is over the cap of 32768 pixels"));
    }
    if width.saturating_mul(height) > limits::MAX_IMAGE_PIXELS {
        return Err(bad("over the cap of 2^26 pixels"));
    }
    Ok(())
}

/// PIL's `convert("RGB")` after transformers' white compositing of alpha.
fn to_rgb(name: &Path, img: DynamicImage) -> Result<RgbImage, MediaError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<u8> = match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageLuma8(b) => b.into_raw().iter().flat_map(|&v| [v; 3]).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| over_white([p[0]; 3], p[1]))
            .collect(),
        DynamicImage::ImageRgba8(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| over_white([p[0], p[1], p[2]], p[3]))
            .collect(),
        DynamicImage::ImageRgb16(b) => b.into_raw().iter().map(|&v| (v >> 8) as u8).collect(),
        DynamicImage::ImageLuma16(b) => b
            .into_raw()
            .iter()
            .flat_map(|&v| [v.min(255) as u8; 3])
            .collect(),
        DynamicImage::ImageLumaA16(b) => b
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| over_white([(p[0] >> 8) as u8; 3], (p[1] >> 8) as u8))
            .collect(),
        DynamicImage::ImageRgba16(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| {
                let c = |v: u16| (v >> 8) as u8;
                over_white([c(p[0]), c(p[1]), c(p[2])], c(p[3]))
            })
            .collect(),
        other => {
            return Err(MediaError::Decode {
                path: name.to_path_buf(),
                detail: format!("unsupported pixel type {:?}", other.color()),
            })
        }
    };
    RgbImage::new(w, h, data).ok_or_else(|| MediaError::Decode {
        path: name.to_path_buf(),
        detail: "decoder returned a buffer of the wrong size".into(),
    })
}

/// `PIL.Image.alpha_composite(white, rgba).convert("RGB")` for one pixel (Pillow's AlphaComposite.c: 7 extra
/// bits of precision, divisions by 255 rounded with the shift trick).
pub fn over_white(rgb: [u8; 3], a: u8) -> [u8; 3] {
    if a == 0 {
        return [255; 3];
    }
    const PREC: u32 = 7;
    let a = u32::from(a);
    let blend = 255 * (255 - a);
    let outa255 = a * 255 + blend;
    let coef1 = a * 255 * 255 * (1 << PREC) / outa255;
    let coef2 = 255 * (1 << PREC) - coef1;
    let div255 = |v: u32| ((v >> 8) + v) >> 8;
    rgb.map(|c| (div255(u32::from(c) * coef1 + 255 * coef2 + (0x80 << PREC)) >> PREC) as u8)
}

/// `img` as PNG bytes (8-bit RGB): what a processor resized, for looking at or for an OCR check.
pub fn encode_png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    // Writing into a Vec cannot fail for a well-formed RgbImage (its data is width * height * 3 bytes).
    let _ = image::ImageEncoder::write_image(
        enc,
        &img.data,
        img.width as u32,
        img.height as u32,
        image::ExtendedColorType::Rgb8,
    );
    out
}
