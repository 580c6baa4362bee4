//! Sample-rate conversion to the rate an extractor wants (24 kHz for Muse Spark, 16 kHz for Whisper), with
//! rubato's asynchronous sinc resampler at a high-quality setting: a 256-tap sinc per phase, Blackman-Harris²
//! window, the cutoff rubato computes for that window and length (about 0.94 of the lower Nyquist), 256-fold
//! oversampled table with cubic interpolation between entries, f64 throughout.
//!
//! The output is aligned and sized like `scipy.signal.resample_poly(x, up, down)` (what the fixtures used):
//! the filter delay rubato reports is dropped and `ceil(n * out_rate / in_rate)` samples are kept. The two
//! filters differ (scipy: Kaiser β = 5, cutoff at Nyquist), so the results are close, not equal; the test
//! measures how close.

use crate::error::MediaError;
use crate::limits;
use rubato::{
    calculate_cutoff, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};
use std::path::Path;

const SINC_LEN: usize = 256;
const CHUNK: usize = 4096;

/// Resamples mono `samples` from `from` Hz to `to` Hz; `name` names the clip in errors.
pub fn resample(name: &Path, samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, MediaError> {
    for r in [from, to] {
        if !(limits::MIN_SAMPLE_RATE..=limits::MAX_SAMPLE_RATE).contains(&r) {
            return Err(MediaError::input(name, format!("sample rate {r} Hz is out of range")));
        }
    }
    if from == to {
        return Ok(samples.to_vec());
    }
    if samples.is_empty() {
        return Err(MediaError::input(name, "an empty clip"));
    }
    let ratio = f64::from(to) / f64::from(from);
    let want = (samples.len() as u128 * u128::from(to)).div_ceil(u128::from(from)) as usize;
    if want as u64 > limits::MAX_AUDIO_SAMPLES {
        return Err(MediaError::input(name, format!("{want} resampled samples is over the cap")));
    }
    let window = WindowFunction::BlackmanHarris2;
    let params = SincInterpolationParameters {
        sinc_len: SINC_LEN,
        f_cutoff: calculate_cutoff(SINC_LEN, window),
        interpolation: SincInterpolationType::Cubic,
        oversampling_factor: 256,
        window,
    };
    let fail = |e: String| MediaError::input(name, format!("resampling {from} -> {to} Hz failed: {e}"));
    let mut r = SincFixedIn::<f64>::new(ratio, 1.0, params, CHUNK, 1).map_err(|e| fail(e.to_string()))?;
    let delay = r.output_delay();
    let mut out: Vec<f64> = Vec::with_capacity(want + delay + CHUNK);
    let input: Vec<f64> = samples.iter().map(|&v| f64::from(v)).collect();
    let mut pos = 0;
    while pos + CHUNK <= input.len() {
        let y = r
            .process(&[&input[pos..pos + CHUNK]], None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&y[0]);
        pos += CHUNK;
    }
    if pos < input.len() {
        let y = r
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&y[0]);
    }
    // Flush the filter's tail with silence until the delayed output is complete.
    let mut guard = 0;
    while out.len() < delay + want {
        let y = r
            .process_partial(None::<&[&[f64]]>, None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&y[0]);
        guard += 1;
        if guard > 64 {
            return Err(fail("the resampler stopped producing output".into()));
        }
    }
    Ok(out[delay..delay + want].iter().map(|&v| v as f32).collect())
}
