//! JPEG decoding that equals PIL's: PIL decodes with libjpeg-turbo (accurate integer IDCT, fancy upsampling),
//! and so does this file, through the `mozjpeg` crate (mozjpeg's decoder is libjpeg-turbo's C code, built by
//! `cc`; no system library). The image crate's pure-Rust decoder (zune-jpeg) differs from libjpeg-turbo by up
//! to 4 levels in 10-16 % of the values of the fixture photos, which is more than the processors' own
//! backend yardstick; libjpeg-turbo's output is bit-exact (checked against `resized_u8` and the manifests'
//! sha256).
//!
//! Order of checks, so that libjpeg only ever sees files that passed a memory-safe parser first:
//! 1. the marker segments are walked to the first start-of-scan, and an end-of-image marker must follow it
//!    (PIL refuses truncated files: "image file is truncated"; libjpeg would pad them with grey);
//! 2. the image crate (zune-jpeg) reads the header (size checked against the caps before any pixel buffer)
//!    and decodes the whole file under `image::Limits`: corrupt data is an error here;
//! 3. libjpeg-turbo decodes it again for the exact values. Its errors unwind (mozjpeg's error manager) and are
//!    caught here into an error naming the file.
//!
//! Colour: grey is replicated; CMYK / YCCK files are read as CMYK and, like PIL, taken as Adobe-inverted
//! (`CMYK;I`) then converted with PIL's `cmyk2rgb`.

use crate::decode::{check_dimensions, RgbImage};
use crate::error::MediaError;
use image::ImageDecoder;
use mozjpeg::{ColorSpace, Decompress};
use std::io::Cursor;
use std::path::Path;

/// Decodes JPEG bytes as PIL does.
pub(crate) fn decode_jpeg(
    name: &Path,
    bytes: &[u8],
    limits: image::Limits,
) -> Result<RgbImage, MediaError> {
    let bad = |detail: String| MediaError::Decode {
        path: name.to_path_buf(),
        detail,
    };
    check_complete(bytes).map_err(|d| bad(d.into()))?;
    // 2. The memory-safe decoder first: header caps, then every byte of entropy-coded data.
    let mut z = image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let (w, h) = z.dimensions();
    check_dimensions(name, u64::from(w), u64::from(h))?;
    z.set_limits(limits).map_err(|e| bad(e.to_string()))?;
    image::DynamicImage::from_decoder(z).map_err(|e| bad(e.to_string()))?;
    // 3. libjpeg-turbo for the values.
    IN_LIBJPEG.with(|f| f.set(true));
    let caught = std::panic::catch_unwind(|| libjpeg(bytes));
    IN_LIBJPEG.with(|f| f.set(false));
    let out = caught
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libjpeg error".into());
            bad(msg)
        })?
        .map_err(|e| bad(e.to_string()))?;
    if (out.width, out.height) != (w as usize, h as usize) {
        return Err(bad(format!(
            "libjpeg decoded {}x{}, the header says {w}x{h}",
            out.width, out.height
        )));
    }
    Ok(out)
}

thread_local! {
    static IN_LIBJPEG: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside libjpeg, whose errors unwind as panics that [`decode_jpeg`] catches: a
/// panic hook (the fuzz target's, which otherwise aborts on every panic) can let those pass.
pub fn in_libjpeg() -> bool {
    IN_LIBJPEG.with(|f| f.get())
}

/// Step 1: the segments up to the first SOS are well formed and an EOI marker follows it.
fn check_complete(b: &[u8]) -> Result<(), &'static str> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return Err("no start-of-image marker");
    }
    let mut i = 2usize;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        match (b.get(i), b.get(i + 1)) {
            (Some(0xFF), Some(0xDA)) => break,
            (Some(0xFF), Some(0xD9)) => return Err("end-of-image before any scan"),
            (Some(0xFF), Some(m)) if (0xD0..=0xD7).contains(m) || *m == 0x01 => i += 2,
            (Some(0xFF), Some(_)) => {
                let len = match (b.get(i + 2), b.get(i + 3)) {
                    (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
                    _ => return Err("truncated in a marker segment"),
                };
                if len < 2 {
                    return Err("marker segment of length < 2");
                }
                i = i.saturating_add(2).saturating_add(len);
            }
            (None, _) | (_, None) => return Err("truncated before the first scan"),
            _ => return Err("garbage between marker segments"),
        }
    }
    if b[i..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err("truncated: no end-of-image marker after the scan data")
    }
}

/// libjpeg-turbo with its defaults (JDCT_ISLOW, fancy upsampling), as PIL calls it.
fn libjpeg(bytes: &[u8]) -> std::io::Result<RgbImage> {
    let d = Decompress::new_mem(bytes)?;
    let (w, h) = (d.width(), d.height());
    let data: Vec<u8> = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => {
            let mut s = d.grayscale()?;
            let px: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            px.iter().flat_map(|&v| [v; 3]).collect()
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let mut s = d.to_colorspace(ColorSpace::JCS_CMYK)?;
            let px: Vec<[u8; 4]> = s.read_scanlines()?;
            s.finish()?;
            px.iter().flat_map(|p| cmyk_inverted_to_rgb(*p)).collect()
        }
        _ => {
            let mut s = d.rgb()?;
            let px: Vec<[u8; 3]> = s.read_scanlines()?;
            s.finish()?;
            px.concat()
        }
    };
    RgbImage::new(w, h, data).ok_or_else(|| std::io::Error::other("libjpeg returned a short image"))
}

/// PIL: the raw CMYK is read as `CMYK;I` (inverted), then `cmyk2rgb`: `nk = 255 - k`,
/// `r = clip(nk - muldiv255(c, nk))`, with `muldiv255(a, b) = (t + (t >> 8)) >> 8, t = a b + 128`.
pub fn cmyk_inverted_to_rgb(raw: [u8; 4]) -> [u8; 3] {
    let inv = raw.map(|v| 255 - i32::from(v));
    let nk = 255 - inv[3];
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    [0, 1, 2].map(|c| (nk - muldiv255(inv[c], nk)).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness_check() {
        assert!(check_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 1, 2, 0xFF, 0xD9]).is_ok());
        assert!(check_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 1, 2]).is_err());
        assert!(
            check_complete(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 1]).is_err()
        );
        assert!(check_complete(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF]).is_err());
        assert!(check_complete(&[0x89, b'P']).is_err());
    }

    #[test]
    fn cmyk_like_pil() {
        // Stored inverted: raw 255 everywhere is CMYK (0, 0, 0, 0), white.
        assert_eq!(cmyk_inverted_to_rgb([255, 255, 255, 255]), [255, 255, 255]);
        // Raw k = 0 is full black.
        assert_eq!(cmyk_inverted_to_rgb([255, 255, 255, 0]), [0, 0, 0]);
        // Full cyan (raw c = 0): red 0, green and blue 255.
        assert_eq!(cmyk_inverted_to_rgb([0, 255, 255, 255]), [0, 255, 255]);
    }
}
