//! 8-bit image operations as RapidOCR gets them from OpenCV: `cv2.resize` (bilinear, half-pixel centres,
//! 11-bit fixed-point weights), `warpPerspective` (bicubic, A = -0.75, coordinates on a 1/32 grid, replicated
//! border), `copyMakeBorder` (constant black), `np.rot90`. Results agree with OpenCV's to about one grey
//! level (its SIMD rounding is not reproduced bit for bit).

/// An interleaved 3-channel 8-bit image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Img {
    /// Columns.
    pub w: usize,
    /// Rows.
    pub h: usize,
    /// `h * w * 3` bytes.
    pub data: Vec<u8>,
}

impl Img {
    fn px(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.w + x) * 3;
        &self.data[i..i + 3]
    }
}

const COEF_BITS: i32 = 11;
const COEF_ONE: i32 = 1 << COEF_BITS;

/// Source index and fixed-point weights of each output coordinate for a linear resize.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, i32, i32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let mut s = f.floor() as isize;
            let mut frac = (f - s as f64) as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s as usize >= src - 1 {
                s = src as isize - 1;
                frac = 0.0;
            }
            let s = s as usize;
            let w0 = ((1.0 - frac) * COEF_ONE as f32).round() as i32;
            (s, (s + 1).min(src - 1), w0, COEF_ONE - w0)
        })
        .collect()
}

/// `cv2.resize(img, (w, h))` with the default bilinear interpolation. `w`, `h` and the source are non-empty.
pub fn resize_linear(img: &Img, w: usize, h: usize) -> Img {
    let xs = linear_taps(img.w, w);
    let ys = linear_taps(img.h, h);
    // Horizontal pass into i32 rows, then vertical with OpenCV's rounding ((b*(r>>4))>>16 summed, +2, >>2).
    let hrow = |y: usize| -> Vec<i32> {
        let mut row = Vec::with_capacity(w * 3);
        for &(s0, s1, a0, a1) in &xs {
            let (p, q) = (img.px(s0, y), img.px(s1, y));
            for c in 0..3 {
                row.push(i32::from(p[c]) * a0 + i32::from(q[c]) * a1);
            }
        }
        row
    };
    let mut data = Vec::with_capacity(w * h * 3);
    let mut cache: Option<(usize, Vec<i32>)> = None;
    for &(s0, s1, b0, b1) in &ys {
        let r0 = match cache.take() {
            Some((y, r)) if y == s0 => r,
            _ => hrow(s0),
        };
        let r1 = if s1 == s0 { r0.clone() } else { hrow(s1) };
        for i in 0..w * 3 {
            let v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
            data.push(v.clamp(0, 255) as u8);
        }
        cache = Some((s1, r1));
    }
    Img { w, h, data }
}

/// `cv2.copyMakeBorder(img, top, bottom, 0, 0, BORDER_CONSTANT, 0)`.
pub fn pad_rows(img: &Img, top: usize, bottom: usize) -> Img {
    let mut data = vec![0u8; top * img.w * 3];
    data.extend_from_slice(&img.data);
    data.resize(data.len() + bottom * img.w * 3, 0);
    Img {
        w: img.w,
        h: img.h + top + bottom,
        data,
    }
}

/// `np.rot90(img)`: a quarter turn counter-clockwise.
pub fn rot90(img: &Img) -> Img {
    let (w, h) = (img.h, img.w);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(img.px(img.w - 1 - y, x));
        }
    }
    Img { w, h, data }
}

/// The 3x3 homography taking the four `from` points to the four `to` points (`getPerspectiveTransform`).
pub fn perspective(from: &[[f64; 2]; 4], to: &[[f64; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let piv = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for r in 0..8 {
            if r != col {
                let f = a[r][col] / a[col][col];
                for c in col..9 {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
    let mut m = [0.0; 9];
    for i in 0..8 {
        m[i] = a[i][8] / a[i][i];
    }
    m[8] = 1.0;
    Some(m)
}

fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let w2 = ((A + 2.0) * (1.0 - t) - (A + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// `cv2.warpPerspective(img, M, (w, h), INTER_CUBIC, BORDER_REPLICATE)` given `inv`, the map from output to
/// source pixels.
pub fn warp_cubic(img: &Img, inv: &[f64; 9], w: usize, h: usize) -> Img {
    let mut data = Vec::with_capacity(w * h * 3);
    let clampx = |x: isize| x.clamp(0, img.w as isize - 1) as usize;
    let clampy = |y: isize| y.clamp(0, img.h as isize - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f64, y as f64);
            let d = inv[6] * xf + inv[7] * yf + inv[8];
            let d = if d != 0.0 { 1.0 / d } else { 0.0 };
            let sx = (inv[0] * xf + inv[1] * yf + inv[2]) * d;
            let sy = (inv[3] * xf + inv[4] * yf + inv[5]) * d;
            // OpenCV snaps source coordinates to a 1/32 grid.
            let qx = (sx * 32.0).round().clamp(-1e9, 1e9) as i64;
            let qy = (sy * 32.0).round().clamp(-1e9, 1e9) as i64;
            let (ix, iy) = (qx.div_euclid(32) as isize, qy.div_euclid(32) as isize);
            let wx = cubic_weights(qx.rem_euclid(32) as f64 / 32.0);
            let wy = cubic_weights(qy.rem_euclid(32) as f64 / 32.0);
            let mut acc = [0.0f64; 3];
            for (j, wyj) in wy.iter().enumerate() {
                let row = clampy(iy + j as isize - 1);
                for (i, wxi) in wx.iter().enumerate() {
                    let p = img.px(clampx(ix + i as isize - 1), row);
                    let wgt = wyj * wxi;
                    for c in 0..3 {
                        acc[c] += wgt * f64::from(p[c]);
                    }
                }
            }
            for v in acc {
                data.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Img { w, h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_resize_and_warp() {
        let img = Img {
            w: 3,
            h: 2,
            data: (0..18).map(|v| v * 10).collect(),
        };
        assert_eq!(resize_linear(&img, 3, 2), img);
        let m = perspective(
            &[[0.0, 0.0], [3.0, 0.0], [3.0, 2.0], [0.0, 2.0]],
            &[[0.0, 0.0], [3.0, 0.0], [3.0, 2.0], [0.0, 2.0]],
        )
        .unwrap();
        assert_eq!(warp_cubic(&img, &m, 3, 2), img);
        let r = rot90(&img);
        assert_eq!((r.w, r.h), (2, 3));
        assert_eq!(r.px(0, 0), img.px(2, 0));
    }
}
