//! The resize MuseGlimmerImageProcessor does: `torchvision.transforms.v2.functional.resize(uint8 image,
//! interpolation=LANCZOS, antialias=True)` on CPU, which (torchvision >= 0.27) hands the uint8 tensor straight to
//! `torch.nn.functional.interpolate(mode="lanczos", antialias=True)`. That is ATen's separable antialiased
//! kernel on uint8, which this file reproduces integer for integer:
//!
//! - per axis, `scale = in / out`; the Lanczos-3 filter `sinc(x) sinc(x / 3)` for `|x| < 3` is stretched by
//!   `max(scale, 1)` (support `3 * max(scale, 1)`), output pixel `i` is centred at `scale * (i + 0.5)` and
//!   reads `xmin..xmin + xsize` with `xmin = trunc(center - support + 0.5)` clamped to the image (PIL's bounds);
//! - the weights are computed in f64, normalised per output pixel to sum to 1, then turned into int16 with one
//!   precision for the whole axis: the largest `p < 22` with `round(w_max * 2^(p+1)) < 2^15`, each weight rounded
//!   half away from zero;
//! - the horizontal pass (width) runs first into a uint8 image, then the vertical one; each output value is
//!   `clamp((2^(p-1) + sum src * w) >> p, 0, 255)`; an axis whose size does not change is not resampled.

use crate::decode::RgbImage;

/// The Lanczos-3 kernel as ATen (and Pillow) write it.
fn lanczos3(x: f64) -> f64 {
    fn sinc(x: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
    let x = x.abs();
    if x < 3.0 {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// One axis's taps: output `i` reads `len[i]` inputs from `start[i]` with the int16 weights
/// `weights[i * ksize..]` at `precision` fractional bits.
#[derive(Debug)]
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    ksize: usize,
    weights: Vec<i32>,
    precision: u32,
}

fn taps(in_size: usize, out_size: usize) -> Taps {
    const INTERP: f64 = 6.0; // HelperInterpLanczos::interp_size
    let scale = in_size as f64 / out_size as f64;
    let support = if scale >= 1.0 {
        INTERP * 0.5 * scale
    } else {
        INTERP * 0.5
    };
    let ksize = support.ceil() as usize * 2 + 1;
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut wf = vec![0f64; out_size * ksize];
    let mut wt_max = 0f64;
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        // C++ static_cast<int64_t> truncates toward zero, as `as` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xsize =
            (((center + support + 0.5) as i64).min(in_size as i64) - xmin).clamp(0, ksize as i64);
        let w = &mut wf[i * ksize..(i + 1) * ksize];
        let mut total = 0f64;
        for j in 0..xsize as usize {
            let v = lanczos3(((j as i64 + xmin) as f64 - center + 0.5) * invscale);
            w[j] = v;
            total += v;
        }
        if total != 0.0 {
            for v in &mut w[..xsize as usize] {
                *v /= total;
                wt_max = wt_max.max(*v);
            }
        }
        start.push(xmin as usize);
        len.push(xsize as usize);
    }
    let mut precision = 0u32;
    while precision < 22 {
        let next = (0.5 + wt_max * f64::from(1u32 << (precision + 1))) as i32;
        if next >= 1 << 15 {
            break;
        }
        precision += 1;
    }
    let weights = wf
        .iter()
        .map(|&w| {
            let v = w * f64::from(1u32 << precision);
            // (int)(v ± 0.5), then stored as int16 (the values fit by the choice of precision).
            (if v < 0.0 {
                (-0.5 + v) as i32
            } else {
                (0.5 + v) as i32
            }) as i16 as i32
        })
        .collect();
    Taps {
        start,
        len,
        ksize,
        weights,
        precision,
    }
}

/// One output value from `n` inputs `src(k)` and its weights.
#[inline]
fn dot(t: &Taps, i: usize, src: impl Fn(usize) -> u8) -> u8 {
    let w = &t.weights[i * t.ksize..];
    let mut acc: i64 = 1 << (t.precision - 1);
    for j in 0..t.len[i] {
        acc += i64::from(src(t.start[i] + j)) * i64::from(w[j]);
    }
    (acc >> t.precision).clamp(0, 255) as u8
}

/// Resizes `img` to `out_w` x `out_h` as torchvision's antialiased Lanczos on uint8 does. Both sizes must be
/// at least 1 (the processor's targets always are).
pub fn resize_lanczos(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    assert!(out_w > 0 && out_h > 0, "resize target must not be empty");
    let mut cur = img.clone();
    if out_w != cur.width {
        let t = taps(cur.width, out_w);
        let mut data = vec![0u8; out_w * cur.height * 3];
        for y in 0..cur.height {
            let row = &cur.data[y * cur.width * 3..(y + 1) * cur.width * 3];
            let out = &mut data[y * out_w * 3..(y + 1) * out_w * 3];
            for x in 0..out_w {
                for c in 0..3 {
                    out[x * 3 + c] = dot(&t, x, |k| row[k * 3 + c]);
                }
            }
        }
        cur = RgbImage {
            width: out_w,
            height: cur.height,
            data,
        };
    }
    if out_h != cur.height {
        let t = taps(cur.height, out_h);
        let w3 = cur.width * 3;
        let mut data = vec![0u8; w3 * out_h];
        for y in 0..out_h {
            let out = &mut data[y * w3..(y + 1) * w3];
            for (xc, o) in out.iter_mut().enumerate() {
                *o = dot(&t, y, |k| cur.data[k * w3 + xc]);
            }
        }
        cur = RgbImage {
            width: cur.width,
            height: out_h,
            data,
        };
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(600, 588), (480, 476), (1280, 56), (10, 37), (451, 476)] {
            let t = taps(i, o);
            for k in 0..o {
                let s: i32 = t.weights[k * t.ksize..k * t.ksize + t.len[k]].iter().sum();
                let one = 1i32 << t.precision;
                assert!(
                    (s - one).abs() <= t.len[k] as i32,
                    "{i}->{o} at {k}: {s} vs {one}"
                );
                assert!(t.start[k] + t.len[k] <= i);
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage::new(37, 23, [9u8, 128, 250].repeat(37 * 23)).unwrap();
        for (w, h) in [(12, 40), (37, 5), (80, 23)] {
            let r = resize_lanczos(&img, w, h);
            assert!(r.data.chunks(3).all(|p| p == [9, 128, 250]), "{w}x{h}");
        }
    }
}
