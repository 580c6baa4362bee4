//! `WhisperFeatureExtractor` (transformers 5.23, its numpy path `_np_extract_fbank_features`): log-mel features
//! of a 16 kHz clip, as Whisper's encoder takes them.
//!
//! - the clip is cut or zero-padded to `chunk_length * sampling_rate` samples (30 s: 480000);
//! - STFT: reflect padding of `n_fft / 2` on both sides, frames every `hop_length` samples, periodic Hann
//!   window of `n_fft`, a real FFT in f64 whose bins are stored as complex64 (numpy's `spectrogram` does), power
//!   `|X|^2` in f64;
//! - Slaney-scale mel filters from 0 to 8 kHz with Slaney area normalisation (`mel_filter_bank`), `max(1e-10,
//!   filters^T power)`, `log10`, then to f32; the last frame dropped (3000 frames);
//! - `max(x, max(x) - 8)`, then `(x + 4) / 4`, in f32.
//!
//! `dither` must be 0 (random noise is not reproducible); `do_normalize` (off by default) is not implemented.

use crate::config::{to_usize, Fields};
use crate::error::MediaError;
use crate::limits;
use realfft::RealFftPlanner;
use std::path::Path;

/// The fields of a WhisperFeatureExtractor preprocessor_config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct WhisperConfig {
    pub feature_size: usize,
    pub sampling_rate: u32,
    pub hop_length: usize,
    pub n_fft: usize,
    pub chunk_length: usize,
}

impl WhisperConfig {
    /// Reads a preprocessor_config.json.
    pub fn from_file(path: &Path) -> Result<Self, MediaError> {
        Self::parsed(&Fields::read(path)?)
    }

    /// Reads the JSON text of a preprocessor config, named `name` in errors (a model file's metadata).
    pub fn from_json(name: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        Self::parsed(&Fields::parse(name, bytes)?)
    }

    /// transformers' defaults (16 kHz, hop 160, n_fft 400, 30 s) with `feature_size` mel bins.
    pub fn with_bins(feature_size: usize) -> Self {
        WhisperConfig {
            feature_size,
            sampling_rate: 16000,
            hop_length: 160,
            n_fft: 400,
            chunk_length: 30,
        }
    }

    /// Frames the features of `samples` real samples cover (the attention mask's ones).
    pub fn valid_frames(&self, samples: usize) -> usize {
        samples.div_ceil(self.hop_length).min(self.frames())
    }

    fn parsed(f: &Fields) -> Result<Self, MediaError> {
        let path = f.path();
        f.expect_type("feature_extractor_type", "WhisperFeatureExtractor")?;
        if f.float("dither", 0.0, -1e9, 1e9)? != 0.0 {
            return Err(MediaError::config(
                path,
                "dither",
                "only 0 is supported (dithering is random)",
            ));
        }
        if f.float("padding_value", 0.0, -1e9, 1e9)? != 0.0 {
            return Err(MediaError::config(
                path,
                "padding_value",
                "only 0 is supported",
            ));
        }
        let c = WhisperConfig {
            feature_size: to_usize(f.int("feature_size", 80, 1, limits::MAX_MEL_BINS)?),
            sampling_rate: f.sampling_rate(16000)?,
            hop_length: to_usize(f.int("hop_length", 160, 1, limits::MAX_FFT)?),
            n_fft: to_usize(f.int("n_fft", 400, 2, limits::MAX_FFT)?),
            chunk_length: to_usize(f.int("chunk_length", 30, 1, limits::MAX_CHUNK_SECONDS)?),
        };
        let frames = c.n_samples() / c.hop_length;
        if (frames as u64).saturating_mul(c.feature_size as u64) > limits::MAX_OUTPUT_ELEMS {
            return Err(MediaError::config(
                path,
                "chunk_length",
                "input_features over the cap",
            ));
        }
        Ok(c)
    }

    /// Samples of one padded chunk.
    pub fn n_samples(&self) -> usize {
        self.chunk_length * self.sampling_rate as usize
    }

    /// Frames of the features (`nb_max_frames`).
    pub fn frames(&self) -> usize {
        self.n_samples() / self.hop_length
    }
}

fn hz_to_mel(f: f64) -> f64 {
    let logstep = 27.0 / 6.4f64.ln();
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() * logstep
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if m >= 15.0 {
        1000.0 * (logstep * (m - 15.0)).exp()
    } else {
        200.0 * m / 3.0
    }
}

/// `mel_filter_bank(1 + n_fft / 2, n_mels, 0, 8000, sr, norm="slaney", mel_scale="slaney")`: `[bins][mels]`.
pub fn mel_filters(n_fft: usize, n_mels: usize, sampling_rate: u32) -> Vec<Vec<f64>> {
    let bins = 1 + n_fft / 2;
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
    // np.linspace: i * step + start, the last point set to stop.
    let step = (hi - lo) / (n_mels + 1) as f64;
    let mut mels: Vec<f64> = (0..n_mels + 2).map(|i| i as f64 * step + lo).collect();
    mels[n_mels + 1] = hi;
    let ff: Vec<f64> = mels.iter().map(|&m| mel_to_hz(m)).collect();
    let fstep = f64::from(sampling_rate / 2) / (bins - 1) as f64;
    let mut fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * fstep).collect();
    fft_freqs[bins - 1] = f64::from(sampling_rate / 2);
    (0..bins)
        .map(|k| {
            (0..n_mels)
                .map(|j| {
                    let down = -(ff[j] - fft_freqs[k]) / (ff[j + 1] - ff[j]);
                    let up = (ff[j + 2] - fft_freqs[k]) / (ff[j + 2] - ff[j + 1]);
                    let enorm = 2.0 / (ff[j + 2] - ff[j]);
                    0f64.max(down.min(up)) * enorm
                })
                .collect()
        })
        .collect()
}

/// `input_features` `[feature_size, frames]` (row-major, mel-major) of one clip at `cfg.sampling_rate`.
pub fn log_mel(cfg: &WhisperConfig, name: &Path, samples: &[f32]) -> Result<Vec<f32>, MediaError> {
    if samples.is_empty() {
        return Err(MediaError::input(name, "an empty clip"));
    }
    let n = cfg.n_samples();
    let (nfft, hop, half) = (cfg.n_fft, cfg.hop_length, cfg.n_fft / 2);
    if n <= half {
        return Err(MediaError::input(
            name,
            "n_fft is longer than the padded clip",
        ));
    }
    let mut x = vec![0f64; n];
    for (d, s) in x.iter_mut().zip(samples) {
        *d = f64::from(*s);
    }
    // Reflect padding (numpy "reflect": the edge sample is not repeated).
    let mut p = Vec::with_capacity(n + 2 * half);
    p.extend((1..=half).rev().map(|i| x[i]));
    p.extend_from_slice(&x);
    p.extend((0..half).map(|j| x[n - 2 - j]));
    let frames = 1 + (p.len() - nfft) / hop;
    // np.hanning(n_fft + 1)[:-1]
    let window: Vec<f64> = (0..nfft)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nfft as f64).cos())
        .collect();
    let filters = mel_filters(nfft, cfg.feature_size, cfg.sampling_rate);
    let bins = 1 + nfft / 2;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nfft);
    let (mut buf, mut spec) = (fft.make_input_vec(), fft.make_output_vec());
    let out_frames = frames - 1;
    let m = cfg.feature_size;
    let mut out = vec![0f32; m * out_frames];
    let mut power = vec![0f64; bins];
    // The bins each filter covers: the terms outside are exactly zero, and adding them changes no sum.
    let spans: Vec<std::ops::Range<usize>> = (0..m)
        .map(|j| {
            let first = (0..bins).find(|&k| filters[k][j] != 0.0).unwrap_or(0);
            let end = (0..bins)
                .rposition(|k| filters[k][j] != 0.0)
                .map_or(0, |k| k + 1);
            first..end.max(first)
        })
        .collect();
    // A frame of zeros (the padding that fills a short clip to 30 s) has zero power: every mel value is the floor.
    let silent = 1e-10f64.log10() as f32;
    for t in 0..out_frames {
        let frame = &p[t * hop..t * hop + nfft];
        if frame.iter().all(|v| *v == 0.0) {
            for j in 0..m {
                out[j * out_frames + t] = silent;
            }
            continue;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = frame[i] * window[i];
        }
        fft.process(&mut buf, &mut spec)
            .map_err(|e| MediaError::input(name, format!("FFT failed: {e}")))?;
        for (pw, c) in power.iter_mut().zip(&spec) {
            // Stored as complex64, then |.|^2 in f64.
            let (re, im) = (f64::from(c.re as f32), f64::from(c.im as f32));
            *pw = re.hypot(im).powi(2);
        }
        for (j, span) in spans.iter().enumerate() {
            let s: f64 = span.clone().map(|k| filters[k][j] * power[k]).sum();
            out[j * out_frames + t] = s.max(1e-10).log10() as f32;
        }
    }
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let floor = max - 8.0;
    for v in &mut out {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
    Ok(out)
}
