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
    for r in [from, to] {
        if !(limits::MIN_SAMPLE_RATE..=limits::MAX_SAMPLE_RATE).contains(&r) {
            return Err(MediaError::input(
                name,
                format!("sample rate {r} Hz is out of range"),
            ));
        }
    }
    if from == to {
        return Ok(samples.to_vec());
    }
    if samples.is_empty() {
        return Err(MediaError::input(name, "an empty clip"));
    }
    // rubato's FFT resampler panics on NaN / infinity (its inverse real FFT checks the DC bin).
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(MediaError::input(name, format!("sample {i} is not finite")));
    }
    let want = (samples.len() as u128 * u128::from(to)).div_ceil(u128::from(from)) as usize;
    if want as u64 > limits::MAX_AUDIO_SAMPLES {
        return Err(MediaError::input(
            name,
            format!("{want} resampled samples is over the cap"),
        ));
    }
    let fail =
        |e: String| MediaError::input(name, format!("resampling {from} -> {to} Hz failed: {e}"));
    let mut r = FftFixedIn::<f64>::new(from as usize, to as usize, CHUNK, 1, 1)
        .map_err(|e| fail(e.to_string()))?;
    let delay = r.output_delay();
    let mut out: Vec<f64> = Vec::with_capacity(want + delay + CHUNK);
    let input: Vec<f64> = samples.iter().map(|&v| f64::from(v)).collect();
    let mut pos = 0;
    let chunk = r.input_frames_next();
    while pos + chunk <= input.len() {
        let y = r
            .process(&[&input[pos..pos + chunk]], None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&y[0]);
        pos += chunk;
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
