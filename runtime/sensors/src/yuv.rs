//! YUYV (YUY2, V4L2 `YUYV`) to RGB, and back for tests and fake cameras.
//!
//! YUYV packs two pixels in four bytes, `Y0 U Y1 V`: each pixel has its own luma, the pair shares the chroma.
//! UVC webcams send BT.601 limited range ("studio swing": Y in 16..235, U/V in 16..240 around 128). The
//! conversion is the usual 8-bit fixed-point form of
//!
//! ```text
//! R = 1.164 (Y - 16)                 + 1.596 (V - 128)
//! G = 1.164 (Y - 16) - 0.391 (U - 128) - 0.813 (V - 128)
//! B = 1.164 (Y - 16) + 2.018 (U - 128)
//! ```
//!
//! with coefficients scaled by 256 (298, 409, 100, 208, 516), `+128` to round, `>> 8`, clamped to 0..255.
//! [`rgb_to_yuyv`] is the inverse (coefficients 66/129/25, -38/-74/112, 112/-94/-18, chroma averaged over the
//! pair); a round trip is within a few levels, not exact.

use flint_media::RgbImage;

#[inline]
fn clamp8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// One pixel: BT.601 limited-range `Y`, `U`, `V` to RGB (see the module docs).
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    [
        clamp8((c + 409 * e + 128) >> 8),
        clamp8((c - 100 * d - 208 * e + 128) >> 8),
        clamp8((c + 516 * d + 128) >> 8),
    ]
}

/// Decodes a YUYV buffer of `width` x `height` pixels whose rows are `stride` bytes apart (`stride >= 2 *
/// width`; V4L2's `bytesperline`). `None` when the sizes do not fit: odd width, a stride below `2 * width`,
/// a buffer shorter than `stride * (height - 1) + 2 * width`.
pub fn yuyv_to_rgb(buf: &[u8], width: usize, height: usize, stride: usize) -> Option<RgbImage> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) {
        return None;
    }
    let row_bytes = width.checked_mul(2)?;
    if stride < row_bytes || buf.len() < stride.checked_mul(height - 1)?.checked_add(row_bytes)? {
        return None;
    }
    let mut out = vec![0u8; width.checked_mul(height)?.checked_mul(3)?];
    for (r, dst) in out.chunks_exact_mut(width * 3).enumerate() {
        let src = &buf[r * stride..r * stride + row_bytes];
        for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            d[..3].copy_from_slice(&yuv_to_rgb(s[0], s[1], s[3]));
            d[3..].copy_from_slice(&yuv_to_rgb(s[2], s[1], s[3]));
        }
    }
    RgbImage::new(width, height, out)
}

/// One pixel RGB to BT.601 limited-range `[Y, U, V]`.
#[inline]
pub fn rgb_to_yuv(rgb: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (i32::from(rgb[0]), i32::from(rgb[1]), i32::from(rgb[2]));
    [
        clamp8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16),
        clamp8(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128),
        clamp8(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128),
    ]
}

/// Encodes an image as a YUYV buffer (`stride = 2 * width`); an odd last column is dropped. For tests and
/// fake cameras: what a UVC camera would send for this picture.
pub fn rgb_to_yuyv(img: &RgbImage) -> Vec<u8> {
    let w = img.width & !1;
    let mut out = Vec::with_capacity(w * img.height * 2);
    for y in 0..img.height {
        for x in (0..w).step_by(2) {
            let a = rgb_to_yuv(img.pixel(x, y));
            let b = rgb_to_yuv(img.pixel(x + 1, y));
            let u = (u16::from(a[1]) + u16::from(b[1])).div_ceil(2) as u8;
            let v = (u16::from(a[2]) + u16::from(b[2])).div_ceil(2) as u8;
            out.extend_from_slice(&[a[0], u, b[0], v]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_colours() {
        // Limited-range reference values of BT.601 (black, white, 75% colour bars are common; here full).
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(126, 128, 128), [128, 128, 128]);
        let red = yuv_to_rgb(81, 90, 240);
        let green = yuv_to_rgb(145, 54, 34);
        let blue = yuv_to_rgb(41, 240, 110);
        for (got, want) in [
            (red, [255, 0, 0]),
            (green, [0, 255, 0]),
            (blue, [0, 0, 255]),
        ] {
            for c in 0..3 {
                assert!(
                    (i32::from(got[c]) - want[c]).abs() <= 2,
                    "{got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn buffer_with_stride() {
        // 2x2 pixels: top row black/white sharing neutral chroma, bottom row red; 4 bytes of row padding.
        let buf = [
            16, 128, 235, 128, 0, 0, 0, 0, //
            81, 90, 81, 240, 9, 9, 9, 9,
        ];
        let img = yuyv_to_rgb(&buf, 2, 2, 8).unwrap();
        assert_eq!(img.pixel(0, 0), [0, 0, 0]);
        assert_eq!(img.pixel(1, 0), [255, 255, 255]);
        assert_eq!(img.pixel(0, 1), img.pixel(1, 1));
        assert!(img.pixel(0, 1)[0] > 250 && img.pixel(0, 1)[1] < 3);
        assert!(yuyv_to_rgb(&buf[..10], 2, 2, 8).is_none());
        assert!(yuyv_to_rgb(&buf, 3, 2, 8).is_none());
        assert!(yuyv_to_rgb(&buf, 2, 2, 3).is_none());
    }
}
