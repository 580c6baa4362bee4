//! The separable antialiased resizes the HF processors run on uint8 images, integer for integer:
//!
//! - [`Backend::Torchvision`]: `torchvision.transforms.v2.functional.resize(uint8, antialias=True)` on CPU.
//!   torchvision 0.29 hands a uint8 tensor straight to `torch.nn.functional.interpolate(antialias=True)` for
//!   BICUBIC (always) and LANCZOS (torchvision >= 0.27): ATen's separable antialiased uint8 kernel, with
//!   int16 weights at one precision per axis (the largest `p < 22` with `round(w_max * 2^(p+1)) < 2^15`).
//! - [`Backend::Pil`]: Pillow's `Image.resize` (`ImagingResample`, 8 bits per channel), the same design with
//!   int32 weights at a fixed 22 fractional bits, which is where the two backends part (1–2 levels on a few
//!   values of the fixture photos), and a different order of the passes in some cases (up to 9 levels).
//!
//! Common to both (ATen ported Pillow's code): per axis `scale = in / out`; the filter (Keys cubic with
//! a = -0.5, support 2, or Lanczos-3, support 3) is stretched by `max(scale, 1)`; output pixel `i` is centred at
//! `scale * (i + 0.5)` and reads `xmin..xmin + xsize` with `xmin = trunc(center - support + 0.5)` clamped to
//! the image; the weights are computed in f64 and normalised per output pixel to sum to 1, then rounded half
//! away from zero to fixed point; one pass per axis into a uint8 image (the width first, except where Pillow
//! runs the height first: [`resize`]); each output value is `clamp((2^(p-1) + sum src * w) >> p, 0, 255)`; an
//! axis whose size does not change is not resampled.

use crate::decode::RgbImage;

/// Whose resize (and, for the processors, whose normalisation arithmetic) to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The torchvision image processors (transformers' default class).
    #[default]
    Torchvision,
    /// The `...ImageProcessorPil` classes: Pillow's resize, numpy's arithmetic.
    Pil,
}

/// A resampling filter, by PIL's `resample` id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `resample = 3`: Keys' cubic convolution with a = -0.5 (PIL's and ATen's antialiased BICUBIC).
    Bicubic,
    /// `resample = 1`: Lanczos-3.
    Lanczos3,
}

impl Filter {
    /// The filter for a PIL `resample` id, if it is one of those implemented.
    pub fn from_pil_id(id: u64) -> Option<Self> {
        match id {
            1 => Some(Filter::Lanczos3),
            3 => Some(Filter::Bicubic),
            _ => None,
        }
    }

    /// Half the filter's width at scale 1 (ATen: `interp_size / 2`; PIL: `filter.support`).
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Lanczos3 => 3.0,
        }
    }

    fn eval(self, backend: Backend, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic(x),
            Filter::Lanczos3 => lanczos3(backend, x),
        }
    }
}

/// Keys' cubic, a = -0.5, in Pillow's form. ATen writes the outer piece as `((a x - 5a) x + 8a) x - 4a`;
/// with a = -0.5 every product by `a` is exact, so both forms round identically (up to the sign of a zero).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Lanczos-3: `sinc(x) sinc(x / 3)`, zero outside the support (ATen: `|x| < 3`; Pillow: `-3 <= x < 3`).
fn lanczos3(backend: Backend, x: f64) -> f64 {
    fn sinc(x: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
    let inside = match backend {
        Backend::Torchvision => x.abs() < 3.0,
        Backend::Pil => (-3.0..3.0).contains(&x),
    };
    if inside {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// One axis's taps: output `i` reads `len[i]` inputs from `start[i]` with the fixed-point weights
/// `weights[i * ksize..]` at `precision` fractional bits.
#[derive(Debug)]
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    ksize: usize,
    weights: Vec<i32>,
    precision: u32,
}

/// Pillow's fixed precision (`PRECISION_BITS = 32 - 8 - 2`).
const PIL_PRECISION: u32 = 22;

fn taps(in_size: usize, out_size: usize, filter: Filter, backend: Backend) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let stretch = scale.max(1.0);
    let support = filter.support() * stretch;
    let ksize = support.ceil() as usize * 2 + 1;
    let invscale = 1.0 / stretch;
    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut wf = vec![0f64; out_size * ksize];
    let mut wt_max = 0f64;
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        // C's casts to an integer truncate toward zero, as `as` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        // ATen clips the count to the buffer (it can exceed it by one through rounding); Pillow cannot overrun.
        let xsize = (xmax - xmin).clamp(0, ksize as i64) as usize;
        let w = &mut wf[i * ksize..(i + 1) * ksize];
        let mut total = 0f64;
        for (j, wj) in w[..xsize].iter_mut().enumerate() {
            let v = filter.eval(
                backend,
                ((j as i64 + xmin) as f64 - center + 0.5) * invscale,
            );
            *wj = v;
            total += v;
        }
        if total != 0.0 {
            for v in &mut w[..xsize] {
                *v /= total;
                wt_max = wt_max.max(*v);
            }
        }
        start.push(xmin as usize);
        len.push(xsize);
    }
    let precision = match backend {
        Backend::Pil => PIL_PRECISION,
        Backend::Torchvision => {
            let mut p = 0u32;
            while p < 22 {
                let next = (0.5 + wt_max * f64::from(1u32 << (p + 1))) as i32;
                if next >= 1 << 15 {
                    break;
                }
                p += 1;
            }
            p
        }
    };
    let one = f64::from(1u32 << precision);
    let weights = wf
        .iter()
        .map(|&w| {
            let v = w * one;
            // (int)(v ± 0.5); ATen then stores it as int16 (the value fits by the choice of precision).
            let q = if v < 0.0 {
                (-0.5 + v) as i32
            } else {
                (0.5 + v) as i32
            };
            match backend {
                Backend::Torchvision => i32::from(q as i16),
                Backend::Pil => q,
            }
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

/// One output value from the inputs `src(k)` of output `i`.
#[inline]
fn dot(t: &Taps, i: usize, src: impl Fn(usize) -> u8) -> u8 {
    let w = &t.weights[i * t.ksize..];
    let mut acc: i64 = if t.precision > 0 {
        1 << (t.precision - 1)
    } else {
        0
    };
    for (j, &wj) in w[..t.len[i]].iter().enumerate() {
        acc += i64::from(src(t.start[i] + j)) * i64::from(wj);
    }
    (acc >> t.precision).clamp(0, 255) as u8
}

/// The width pass: every row resampled to `out_w`.
fn horizontal(img: &RgbImage, out_w: usize, filter: Filter, backend: Backend) -> RgbImage {
    let t = taps(img.width, out_w, filter, backend);
    let mut data = vec![0u8; out_w * img.height * 3];
    for (row, out) in img
        .data
        .chunks_exact(img.width * 3)
        .zip(data.chunks_exact_mut(out_w * 3))
    {
        for x in 0..out_w {
            for c in 0..3 {
                out[x * 3 + c] = dot(&t, x, |k| row[k * 3 + c]);
            }
        }
    }
    RgbImage {
        width: out_w,
        height: img.height,
        data,
    }
}

/// The height pass: every column resampled to `out_h`.
fn vertical(img: &RgbImage, out_h: usize, filter: Filter, backend: Backend) -> RgbImage {
    let t = taps(img.height, out_h, filter, backend);
    let w3 = img.width * 3;
    let mut data = vec![0u8; w3 * out_h];
    for (y, out) in data.chunks_exact_mut(w3).enumerate() {
        for (xc, o) in out.iter_mut().enumerate() {
            *o = dot(&t, y, |k| img.data[k * w3 + xc]);
        }
    }
    RgbImage {
        width: img.width,
        height: out_h,
        data,
    }
}

/// Resizes `img` to `out_w` x `out_h` with `filter` as `backend` does. Both sizes must be at least 1 (the
/// processors' targets always are).
///
/// The order of the two passes matters (the intermediate image is rounded and clamped to u8): ATen always
/// runs the width first; Pillow 13 runs the height first when the height shrinks by more than twice what the
/// width shrinks (`in_h - out_h > 0` and `> 2 (in_w - out_w)`, in pixels), e.g. 640x480 -> 644x476, where
/// the two backends then differ by up to 7 levels.
pub fn resize(
    img: &RgbImage,
    out_w: usize,
    out_h: usize,
    filter: Filter,
    backend: Backend,
) -> RgbImage {
    assert!(out_w > 0 && out_h > 0, "resize target must not be empty");
    let (dw, dh) = (
        img.width as i64 - out_w as i64,
        img.height as i64 - out_h as i64,
    );
    let height_first = backend == Backend::Pil && dh > 0 && dh > 2 * dw;
    let (need_w, need_h) = (out_w != img.width, out_h != img.height);
    match (need_w, need_h) {
        (false, false) => img.clone(),
        (true, false) => horizontal(img, out_w, filter, backend),
        (false, true) => vertical(img, out_h, filter, backend),
        (true, true) if height_first => horizontal(
            &vertical(img, out_h, filter, backend),
            out_w,
            filter,
            backend,
        ),
        (true, true) => vertical(
            &horizontal(img, out_w, filter, backend),
            out_h,
            filter,
            backend,
        ),
    }
}

/// torchvision's antialiased Lanczos on uint8 (MuseGlimmer's resize).
pub fn resize_lanczos(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    resize(img, out_w, out_h, Filter::Lanczos3, Backend::Torchvision)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Backend; 2] = [Backend::Torchvision, Backend::Pil];
    const FILTERS: [Filter; 2] = [Filter::Bicubic, Filter::Lanczos3];

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [
            (600, 588),
            (480, 476),
            (1280, 56),
            (10, 37),
            (451, 476),
            (640, 644),
        ] {
            for f in FILTERS {
                for b in BOTH {
                    let t = taps(i, o, f, b);
                    for k in 0..o {
                        let s: i32 = t.weights[k * t.ksize..k * t.ksize + t.len[k]].iter().sum();
                        let one = 1i32 << t.precision;
                        assert!(
                            (s - one).abs() <= t.len[k] as i32,
                            "{f:?} {b:?} {i}->{o} at {k}: {s} vs {one}"
                        );
                        assert!(t.start[k] + t.len[k] <= i);
                    }
                }
            }
        }
    }

    #[test]
    fn bicubic_is_keys_cubic() {
        // Interpolating at the knots: 1 at 0, 0 at the other integers; ATen's form of the outer piece.
        assert_eq!(bicubic(0.0), 1.0);
        for x in [1.0, 2.0, -1.0, 2.5] {
            assert_eq!(bicubic(x), 0.0);
        }
        for k in 0..1000 {
            let x = 1.0 + k as f64 / 1000.0;
            let a = -0.5;
            let aten = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
            // Equal bits, but for the sign of a zero (Pillow's form gives -0 at x = 1), which no weight sees.
            assert!(
                bicubic(x).to_bits() == aten.to_bits() || (bicubic(x) == 0.0 && aten == 0.0),
                "{x}"
            );
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage::new(37, 23, [9u8, 128, 250].repeat(37 * 23)).unwrap();
        for (w, h) in [(12, 40), (37, 5), (80, 23)] {
            for f in FILTERS {
                for b in BOTH {
                    let r = resize(&img, w, h, f, b);
                    assert!(
                        r.data.chunks(3).all(|p| p == [9, 128, 250]),
                        "{w}x{h} {f:?} {b:?}"
                    );
                }
            }
        }
    }
}
