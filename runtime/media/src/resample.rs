//! Sample-rate conversion to the rate an extractor wants (24 kHz for Muse Spark, 16 kHz for Whisper) with
//! rubato's synchronous FFT resampler (`FftFixedIn`): a windowed-sinc low-pass (Blackman-Harris², cutoff from
//! rubato's `calculate_cutoff` for the filter length) applied by FFT for the exact rational ratio of the two
//! rates (22050 -> 24000 is 147 -> 160), f64 throughout. The filter is as long as the FFT, here ~4096 input
//! frames per chunk, far longer than a 256-tap sinc.
//!
//! Why not rubato's `SincFixedIn`: measured with a tone, its output `k` sits at input time
//! `(k + 1) / ratio - 1 + 1 / oversampling`, not `k / ratio`, and `output_delay()` reports half the sinc length
//! instead: a fraction of a sample that cannot be dropped away (SNR ~30 dB against resample_poly at the best
//! whole-sample shift). The FFT resampler's delay is the `output_delay()` it reports, exactly.
//!
//! The output is aligned and sized like `scipy.signal.resample_poly(x, up, down)` (what the fixtures used):
//! the reported delay is dropped and `ceil(n * out_rate / in_rate)` samples are kept. The two filters differ
//! (scipy: Kaiser β = 5, cutoff at Nyquist), so the results are close, not equal; the test measures how close.

use crate::error::MediaError;
use crate::limits;
use rubato::{FftFixedIn, Resampler};
use std::path::Path;

const CHUNK: usize = 4096;

/// Resamples mono `samples` from `from` Hz to `to` Hz; `name` names the clip in errors.
pub fn resample(name: &Path, samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, MediaError> {
    let mut s = Stream::new(name, from, to)?;
    if from != to && samples.is_empty() {
        return Err(MediaError::input(name, "an empty clip"));
    }
    let mut out = s.push(samples)?;
    out.extend(s.finish()?);
    Ok(out)
}

/// A resampler for audio that arrives in pieces (a microphone): the pieces' outputs, then [`Stream::finish`]'s,
/// are exactly what [`resample`] gives the whole clip (the same filter runs over the same chunks; only the last,
/// partial chunk and the filter's tail wait for the end).
pub struct Stream {
    name: std::path::PathBuf,
    from: u32,
    to: u32,
    /// None when the rates are equal (samples pass through).
    r: Option<FftFixedIn<f64>>,
    /// Input not yet a whole chunk.
    pending: Vec<f64>,
    /// Output samples of the filter's delay still to drop.
    skip: usize,
    taken: u64,
    given: u64,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// A stream from `from` Hz to `to` Hz; `name` names the source in errors.
    pub fn new(name: &Path, from: u32, to: u32) -> Result<Stream, MediaError> {
        for r in [from, to] {
            if !(limits::MIN_SAMPLE_RATE..=limits::MAX_SAMPLE_RATE).contains(&r) {
                return Err(MediaError::input(
                    name,
                    format!("sample rate {r} Hz is out of range"),
                ));
            }
        }
        let r = (from != to)
            .then(|| FftFixedIn::<f64>::new(from as usize, to as usize, CHUNK, 1, 1))
            .transpose()
            .map_err(|e| {
                MediaError::input(name, format!("resampling {from} -> {to} Hz failed: {e}"))
            })?;
        Ok(Stream {
            name: name.to_path_buf(),
            from,
            to,
            skip: r.as_ref().map_or(0, |r| r.output_delay()),
            r,
            pending: Vec::new(),
            taken: 0,
            given: 0,
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> MediaError {
        MediaError::input(
            &self.name,
            format!("resampling {} -> {} Hz failed: {e}", self.from, self.to),
        )
    }

    /// The output samples `taken` input samples make in all.
    fn want(&self) -> u64 {
        (u128::from(self.taken) * u128::from(self.to)).div_ceil(u128::from(self.from)) as u64
    }

    /// Output past the filter's delay, at most up to `limit` samples in all.
    fn give(&mut self, y: &[f64], limit: u64, out: &mut Vec<f32>) {
        let drop = self.skip.min(y.len());
        self.skip -= drop;
        let room = limit.saturating_sub(self.given) as usize;
        let y = &y[drop..drop + (y.len() - drop).min(room)];
        self.given += y.len() as u64;
        out.extend(y.iter().map(|&v| v as f32));
    }

    /// Adds `samples`; returns the output they complete (possibly none).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, MediaError> {
        // rubato's FFT resampler panics on NaN / infinity (its inverse real FFT checks the DC bin).
        if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
            return Err(MediaError::input(
                &self.name,
                format!("sample {} is not finite", self.taken + i as u64),
            ));
        }
        self.taken += samples.len() as u64;
        if self.want() > limits::MAX_AUDIO_SAMPLES {
            return Err(MediaError::input(
                &self.name,
                format!("{} resampled samples is over the cap", self.want()),
            ));
        }
        let Some(r) = self.r.as_mut() else {
            self.given += samples.len() as u64;
            return Ok(samples.to_vec());
        };
        self.pending.extend(samples.iter().map(|&v| f64::from(v)));
        let chunk = r.input_frames_next();
        let mut ys = Vec::new();
        let mut pos = 0;
        while pos + chunk <= self.pending.len() {
            let y = r
                .process(&[&self.pending[pos..pos + chunk]], None)
                .map_err(|e| e.to_string());
            ys.push(y);
            pos += chunk;
        }
        self.pending.drain(..pos);
        let mut out = Vec::new();
        for y in ys {
            let y = y.map_err(|e| self.fail(e))?;
            self.give(&y[0], u64::MAX, &mut out);
        }
        Ok(out)
    }

    /// Ends the stream: the output still owed, up to `ceil(n * to / from)` samples in all for `n` pushed.
    pub fn finish(mut self) -> Result<Vec<f32>, MediaError> {
        let want = self.want();
        let mut out = Vec::new();
        let Some(mut r) = self.r.take() else {
            return Ok(out);
        };
        if !self.pending.is_empty() {
            let y = r
                .process_partial(Some(&[&self.pending[..]]), None)
                .map_err(|e| self.fail(e))?;
            self.give(&y[0], want, &mut out);
        }
        // Flush the filter's tail with silence until the delayed output is complete.
        let mut guard = 0;
        while self.given < want {
            let y = r
                .process_partial(None::<&[&[f64]]>, None)
                .map_err(|e| self.fail(e))?;
            self.give(&y[0], want, &mut out);
            guard += 1;
            if guard > 64 {
                return Err(self.fail("the resampler stopped producing output"));
            }
        }
        Ok(out)
    }
}
