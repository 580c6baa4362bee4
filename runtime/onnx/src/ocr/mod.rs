//! Text reading with PP-OCRv4 (detector `ch_PP-OCRv4_det_infer.onnx`, recogniser
//! `ch_PP-OCRv4_rec_infer.onnx`, as shipped in rapidocr-onnxruntime 1.4.4), following RapidOCR 1.4.4's default
//! pipeline step by step (the tests compare against it):
//!
//! 1. whole image: a side above 2000 px is scaled down, a side below 30 px up (both to multiples of 32); an
//!    image 30 px high or less, or wider than 8:1, gets black bands above and below;
//! 2. detector input: scaled so the short side is at least `min_det_side` (736 px, as RapidOCR), both sides rounded to multiples of 32,
//!    BGR, `(x / 255 - 0.5) / 0.5`; the map goes through [`db`];
//! 3. boxes: ordered clockwise from top-left, clipped, those 3 px or thinner dropped, sorted top to bottom then
//!    left to right (lines within 10 px count as one row);
//! 4. each box is cut out with a perspective warp (bicubic), turned upright if 1.5 times taller than wide;
//! 5. recogniser: batches of 6 by width/height ratio, 48 px high, as wide as the widest of the batch (at least
//!    320), padded with 0 after the same normalisation; CTC greedy decoding ([`ctc`]);
//! 6. words scoring below `text_score` (0.5) are dropped; boxes are mapped back to input pixels.
//!
//! Both models run on the engine named by [`OcrConfig::backend`] (tract by default).
//!
//! RapidOCR also runs an angle classifier by default (it flips crops it finds upside down); it is skipped here:
//! for upright text it changes nothing (the fixtures' results are identical with and without it).
//!
//! Work is bounded: images above [`OcrConfig::max_pixels`] are refused, the detector input is at most
//! [`OcrConfig::max_det_side`] long, at most [`OcrConfig::max_boxes`] boxes are recognised, and a recogniser
//! batch is at most [`OcrConfig::max_rec_width`] wide.

pub mod ctc;
pub mod db;
pub mod geom;
pub mod image;

use crate::backend::{Backend, Dim, F32Tensor, Session};
use crate::error::OnnxError;
use ctc::Alphabet;
use db::{boxes_from_map, round_half_even, DbParams};
use geom::{order_clockwise, Pt};
use image::{pad_rows, perspective, resize_linear, rot90, warp_cubic, Img};
use std::path::Path;
use std::time::{Duration, Instant};

const DET_NAME: &str = "PP-OCRv4 text detector (ch_PP-OCRv4_det_infer.onnx)";
const REC_NAME: &str = "PP-OCRv4 text recogniser (ch_PP-OCRv4_rec_infer.onnx)";
const REC_H: usize = 48;
const REC_MIN_W: usize = 320;
const REC_BATCH: usize = 6;

/// One line of text read.
#[derive(Clone, Debug, PartialEq)]
pub struct OcrWord {
    /// The text (PP-OCR often drops spaces between words).
    pub text: String,
    /// Mean probability of the decoded characters, in [0, 1].
    pub score: f32,
    /// Corners in input-image pixels, clockwise from top-left.
    pub quad: [[f32; 2]; 4],
}

/// Thresholds, caps and engine; [`Default`] is RapidOCR's configuration plus the caps, on tract.
#[derive(Clone, Debug, PartialEq)]
pub struct OcrConfig {
    /// Detector pixel threshold (0.3).
    pub det_thresh: f32,
    /// Minimum mean detector probability of a box (0.5).
    pub box_thresh: f32,
    /// Box growth factor (1.6).
    pub unclip_ratio: f64,
    /// Minimum recognition score of a word (0.5).
    pub text_score: f32,
    /// Larger images are refused (default 4096 x 4096).
    pub max_pixels: u64,
    /// At most this many boxes, in reading order, are recognised (default 100).
    pub max_boxes: usize,
    /// A recogniser batch is at most this wide (default 48 * 64 = 3072 px; RapidOCR has no cap).
    pub max_rec_width: usize,
    /// The detector input's long side is at most this (default 4096; RapidOCR has no cap, and its 736 px
    /// short-side rule blows a 3x700 image up to 736x161184).
    pub max_det_side: usize,
    /// Images whose short side is below this are scaled up to it for the detector (RapidOCR: 736). Lower is
    /// faster: the glasses loop uses 480, so camera frames of 640x480 go in at their own size.
    pub min_det_side: usize,
    /// The inference engine of both models (default tract).
    pub backend: Backend,
}

impl Default for OcrConfig {
    fn default() -> Self {
        Self {
            det_thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            text_score: 0.5,
            max_pixels: 4096 * 4096,
            max_boxes: 100,
            max_rec_width: REC_H * 64,
            max_det_side: 4096,
            min_det_side: 736,
            backend: Backend::Tract,
        }
    }
}

/// Time spent in the last [`Ocr::read_timed`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OcrTimes {
    /// Detector pre-processing, model and post-processing.
    pub det: Duration,
    /// Cropping, recogniser model and decoding.
    pub rec: Duration,
    /// Boxes recognised.
    pub boxes: usize,
}

/// The detector and recogniser, loaded.
#[derive(Debug)]
pub struct Ocr {
    det: Session,
    rec: Session,
    alphabet: Alphabet,
    cfg: OcrConfig,
}

/// Width and height after scaling both by `ratio` and rounding to multiples of 32 (RapidOCR's helpers).
fn scaled32(w: usize, h: usize, ratio: f64) -> (usize, usize) {
    let r =
        |v: usize| (round_half_even(((v as f64 * ratio) as usize) as f64 / 32.0) * 32.0) as usize;
    (r(w), r(h))
}

impl Ocr {
    /// Loads the detector and recogniser with the default [`OcrConfig`].
    pub fn open(det: &Path, rec: &Path) -> Result<Ocr, OnnxError> {
        Self::open_with(det, rec, OcrConfig::default())
    }

    /// Loads the detector and recogniser with `cfg`, on `cfg.backend`.
    pub fn open_with(det: &Path, rec: &Path, cfg: OcrConfig) -> Result<Ocr, OnnxError> {
        let det_s = Session::load_on(
            &cfg.backend,
            det,
            DET_NAME,
            &[vec![
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Multiple("H", 32),
                Dim::Multiple("W", 32),
            ]],
        )?;
        let rec_s = Session::load_on(
            &cfg.backend,
            rec,
            REC_NAME,
            &[vec![
                Dim::Sym("N"),
                Dim::Fixed(3),
                Dim::Fixed(REC_H),
                Dim::Sym("W"),
            ]],
        )?;
        let unexpected = |path: &Path, want, detail: String| OnnxError::UnexpectedModel {
            path: path.to_path_buf(),
            want,
            detail,
        };
        let character = rec_s.metadata("character").ok_or_else(|| {
            unexpected(
                rec,
                REC_NAME,
                "no `character` metadata (the alphabet)".into(),
            )
        })?;
        let alphabet = Alphabet::from_metadata(character);
        // Probe both models once so shape surprises surface at open time, not mid-stream.
        let probe = |s: &Session, shape: Vec<usize>| {
            let n = shape.iter().product();
            s.run(&[F32Tensor {
                shape,
                data: vec![0.0; n],
            }])
        };
        let d = probe(&det_s, vec![1, 3, 32, 32])?;
        if d.len() != 1 || d[0].shape != [1, 1, 32, 32] {
            let shapes: Vec<_> = d.iter().map(|t| &t.shape).collect();
            return Err(unexpected(
                det,
                DET_NAME,
                format!("outputs {shapes:?} for a 32x32 input, want [[1, 1, 32, 32]]"),
            ));
        }
        let r = probe(&rec_s, vec![1, 3, REC_H, REC_MIN_W])?;
        if r.len() != 1
            || r[0].shape.len() != 3
            || r[0].shape[0] != 1
            || r[0].shape[2] != alphabet.len()
        {
            let shapes: Vec<_> = r.iter().map(|t| &t.shape).collect();
            return Err(unexpected(
                rec,
                REC_NAME,
                format!(
                    "outputs {shapes:?}, want [[1, steps, {}]] (alphabet of {} + blank + space)",
                    alphabet.len(),
                    alphabet.len() - 2
                ),
            ));
        }
        Ok(Ocr {
            det: det_s,
            rec: rec_s,
            alphabet,
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &OcrConfig {
        &self.cfg
    }

    /// Reads the text in `rgb` (`height` x `width` x 3 bytes, row-major).
    pub fn read(&self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<OcrWord>, OnnxError> {
        self.read_timed(rgb, width, height).map(|(w, _)| w)
    }

    /// [`Ocr::read`], also returning where the time went.
    pub fn read_timed(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<(Vec<OcrWord>, OcrTimes), OnnxError> {
        let (w, h) = (width as usize, height as usize);
        let pixels = u64::from(width) * u64::from(height);
        if w == 0 || h == 0 {
            return Err(OnnxError::Input(format!(
                "image of {width}x{height} pixels is empty"
            )));
        }
        if pixels > self.cfg.max_pixels {
            return Err(OnnxError::Input(format!(
                "image of {width}x{height} = {pixels} pixels is above the cap of {}",
                self.cfg.max_pixels
            )));
        }
        if rgb.len() as u64 != pixels * 3 {
            return Err(OnnxError::Input(format!(
                "RGB buffer of {} bytes does not match {width}x{height}x3 = {}",
                rgb.len(),
                pixels * 3
            )));
        }
        let mut times = OcrTimes::default();
        let t0 = Instant::now();
        let raw = Img {
            w,
            h,
            data: rgb.to_vec(),
        };

        // 1. Whole-image limits, then letterbox.
        let (mut img, mut ratio_w, mut ratio_h) = (raw, 1.0f64, 1.0f64);
        if w.max(h) > 2000 {
            let (nw, nh) = scaled32(w, h, 2000.0 / w.max(h) as f64);
            (ratio_w, ratio_h) = (w as f64 / nw as f64, h as f64 / nh as f64);
            img = resize_linear(&img, nw.max(1), nh.max(1));
        }
        if img.w.min(img.h) < 30 {
            let (iw, ih) = (img.w, img.h);
            let (nw, nh) = scaled32(iw, ih, 30.0 / iw.min(ih) as f64);
            if nw == 0 || nh == 0 {
                return Ok((Vec::new(), times));
            }
            (ratio_w, ratio_h) = (iw as f64 / nw as f64, ih as f64 / nh as f64);
            img = resize_linear(&img, nw, nh);
        }
        let mut pad_top = 0usize;
        if img.h <= 30 || img.w as f64 / img.h as f64 > 8.0 {
            let new_h = ((img.w as f64 / 8.0) as usize).max(30) * 2;
            pad_top = new_h.abs_diff(img.h) / 2;
            img = pad_rows(&img, pad_top, pad_top);
        }

        // 2. Detector.
        let min_side = self.cfg.min_det_side.max(32);
        let mut ratio = if img.w.min(img.h) < min_side {
            min_side as f64 / img.w.min(img.h) as f64
        } else {
            1.0
        };
        let long = img.w.max(img.h) as f64;
        if long * ratio > self.cfg.max_det_side as f64 {
            ratio = self.cfg.max_det_side as f64 / long;
        }
        let (dw, dh) = scaled32(img.w, img.h, ratio);
        if dw == 0 || dh == 0 {
            return Ok((Vec::new(), times));
        }
        let det_in = resize_linear(&img, dw, dh);
        let map = self.det.run(&[to_tensor(&det_in, dw, 1)])?;
        let map = match map.as_slice() {
            [m] if m.shape == [1, 1, dh, dw] => m,
            _ => {
                let shapes: Vec<_> = map.iter().map(|t| &t.shape).collect();
                return Err(OnnxError::UnexpectedModel {
                    path: self.det.path().to_path_buf(),
                    want: DET_NAME,
                    detail: format!("outputs {shapes:?} for input [1, 3, {dh}, {dw}]"),
                });
            }
        };
        let params = DbParams {
            thresh: self.cfg.det_thresh,
            box_thresh: self.cfg.box_thresh,
            unclip_ratio: self.cfg.unclip_ratio,
            max_candidates: 1000,
        };
        let found = boxes_from_map(&map.data, dw, dh, img.w, img.h, &params);

        // 3. Order, clip, drop thin, sort.
        let mut boxes: Vec<[Pt; 4]> = Vec::new();
        for b in found {
            let q = order_clockwise(&b.quad).map(|p| {
                [
                    p[0].clamp(0.0, img.w as f64 - 1.0).trunc(),
                    p[1].clamp(0.0, img.h as f64 - 1.0).trunc(),
                ]
            });
            if (dist(q[0], q[1]) as usize) <= 3 || (dist(q[0], q[3]) as usize) <= 3 {
                continue;
            }
            boxes.push(q);
        }
        sort_reading_order(&mut boxes);
        boxes.truncate(self.cfg.max_boxes);
        times.det = t0.elapsed();
        times.boxes = boxes.len();

        // 4-5. Crops and recognition.
        let t1 = Instant::now();
        let crops: Vec<Img> = boxes.iter().map(|b| crop(&img, b)).collect();
        let recognised = self.recognise(&crops)?;
        times.rec = t1.elapsed();

        // 6. Filter and map back.
        let (raw_w, raw_h) = (w as f64, h as f64);
        let words = boxes
            .iter()
            .zip(recognised)
            .filter(|(_, (_, s))| *s >= self.cfg.text_score)
            .map(|(b, (text, score))| OcrWord {
                text,
                score,
                quad: b.map(|p| {
                    let x = (p[0] * ratio_w).clamp(0.0, raw_w);
                    let y = ((p[1] - pad_top as f64) * ratio_h).clamp(0.0, raw_h);
                    [x as f32, y as f32]
                }),
            })
            .collect();
        Ok((words, times))
    }

    fn recognise(&self, crops: &[Img]) -> Result<Vec<(String, f32)>, OnnxError> {
        let ratio = |c: &Img| c.w as f64 / c.h as f64;
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by(|&a, &b| ratio(&crops[a]).total_cmp(&ratio(&crops[b])));
        let mut out = vec![(String::new(), 0.0f32); crops.len()];
        for batch in order.chunks(REC_BATCH) {
            let max_ratio = batch
                .iter()
                .map(|&i| ratio(&crops[i]))
                .fold(REC_MIN_W as f64 / REC_H as f64, f64::max);
            let bw = ((REC_H as f64 * max_ratio) as usize).min(self.cfg.max_rec_width.max(REC_H));
            let mut data = Vec::with_capacity(batch.len() * 3 * REC_H * bw);
            for &i in batch {
                let c = &crops[i];
                let rw = ((REC_H as f64 * ratio(c)).ceil() as usize).clamp(1, bw);
                let resized = resize_linear(c, rw, REC_H);
                data.extend(to_tensor(&resized, bw, 1).data);
            }
            let t = F32Tensor {
                shape: vec![batch.len(), 3, REC_H, bw],
                data,
            };
            let res = self.rec.run(&[t])?;
            let probs = match res.as_slice() {
                [p] if p.shape.len() == 3
                    && p.shape[0] == batch.len()
                    && p.shape[2] == self.alphabet.len() =>
                {
                    p
                }
                _ => {
                    let shapes: Vec<_> = res.iter().map(|t| &t.shape).collect();
                    return Err(OnnxError::UnexpectedModel {
                        path: self.rec.path().to_path_buf(),
                        want: REC_NAME,
                        detail: format!("outputs {shapes:?} for a batch of {}", batch.len()),
                    });
                }
            };
            let per = probs.shape[1] * probs.shape[2];
            for (k, &i) in batch.iter().enumerate() {
                out[i] = self
                    .alphabet
                    .decode(&probs.data[k * per..(k + 1) * per], probs.shape[1]);
            }
        }
        Ok(out)
    }
}

fn dist(a: Pt, b: Pt) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// NCHW BGR planes of `img` normalised to [-1, 1], each row padded with 0 up to `width` columns.
fn to_tensor(img: &Img, width: usize, batch: usize) -> F32Tensor {
    let plane = img.h * width;
    let mut data = vec![0.0f32; 3 * plane];
    for y in 0..img.h {
        for x in 0..img.w.min(width) {
            let i = (y * img.w + x) * 3;
            for c in 0..3 {
                // BGR order: plane 0 is blue.
                data[c * plane + y * width + x] =
                    (f32::from(img.data[i + 2 - c]) / 255.0 - 0.5) / 0.5;
            }
        }
    }
    F32Tensor {
        shape: vec![batch, 3, img.h, width],
        data,
    }
}

/// RapidOCR's `sorted_boxes`: by top-left y then x, then neighbours within 10 px in y swapped into x order.
fn sort_reading_order(b: &mut [[Pt; 4]]) {
    b.sort_by(|p, q| {
        p[0][1]
            .total_cmp(&q[0][1])
            .then(p[0][0].total_cmp(&q[0][0]))
    });
    for i in 0..b.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (b[j + 1][0][1] - b[j][0][1]).abs() < 10.0 && b[j + 1][0][0] < b[j][0][0] {
                b.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// RapidOCR's `get_rotate_crop_image`: the quad warped to an upright rectangle, turned if tall.
fn crop(img: &Img, q: &[Pt; 4]) -> Img {
    let cw = (dist(q[0], q[1]).max(dist(q[2], q[3])) as usize).max(1);
    let ch = (dist(q[0], q[3]).max(dist(q[1], q[2])) as usize).max(1);
    let rect = [
        [0.0, 0.0],
        [cw as f64, 0.0],
        [cw as f64, ch as f64],
        [0.0, ch as f64],
    ];
    let out = match perspective(&rect, q) {
        Some(inv) => warp_cubic(img, &inv, cw, ch),
        None => Img {
            w: cw,
            h: ch,
            data: vec![0; cw * ch * 3],
        },
    };
    if ch as f64 / cw as f64 >= 1.5 {
        rot90(&out)
    } else {
        out
    }
}
