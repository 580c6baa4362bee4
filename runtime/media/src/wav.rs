//! WAV files to a mono f32 waveform, as the Muse and Whisper extractors expect it (`hound` parses the RIFF
//! container):
//!
//! - integer PCM of 8, 16, 24 or 32 bits is scaled by `2^-(bits - 1)` (16-bit: `int16 / 32768`, what the
//!   fixtures' extractors were fed; 8-bit WAV is unsigned, hound recentres it), 32-bit float is taken as is;
//! - several channels are averaged into one (the extractors take mono only); a mono file is not touched, so its
//!   values are exact;
//! - refused, naming the file: 0 or more than [`limits::MAX_CHANNELS`] channels, a sample rate outside
//!   [`limits::MIN_SAMPLE_RATE`]..=[`limits::MAX_SAMPLE_RATE`], an empty clip, more than
//!   [`limits::MAX_AUDIO_SAMPLES`] frames, data shorter than its header says, NaN or infinite float samples (the
//!   FFT resampler panics on them: a fuzzing find), other sample formats.

use crate::error::{read_capped, MediaError};
use crate::limits;
use std::io::Cursor;
use std::path::Path;

/// A mono clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub sample_rate: u32,
    pub samples: Vec<f32>,
    /// Channels of the file the clip was read from (averaged into `samples`).
    pub source_channels: u16,
}

/// Reads the WAV file at `path`.
pub fn read_wav_file(path: &Path) -> Result<Clip, MediaError> {
    let bytes = read_capped(path, limits::MAX_WAV_FILE_BYTES)?;
    read_wav(path, &bytes)
}

/// Reads WAV bytes; `name` names them in errors.
pub fn read_wav(name: &Path, bytes: &[u8]) -> Result<Clip, MediaError> {
    let err = |detail: String| MediaError::Wav {
        path: name.to_path_buf(),
        detail,
    };
    let reader = hound::WavReader::new(Cursor::new(bytes))
        .map_err(|e| err(format!("not a usable WAV file: {e}")))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.channels > limits::MAX_CHANNELS {
        return Err(err(format!(
            "{} channels (1..={} are read)",
            spec.channels,
            limits::MAX_CHANNELS
        )));
    }
    if !(limits::MIN_SAMPLE_RATE..=limits::MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(err(format!(
            "sample rate {} Hz is outside {}..={} Hz",
            spec.sample_rate,
            limits::MIN_SAMPLE_RATE,
            limits::MAX_SAMPLE_RATE
        )));
    }
    let frames = u64::from(reader.duration());
    if frames == 0 {
        return Err(err("an empty clip (no samples)".into()));
    }
    if frames > limits::MAX_AUDIO_SAMPLES {
        return Err(err(format!(
            "{frames} samples per channel is over the cap of {}",
            limits::MAX_AUDIO_SAMPLES
        )));
    }
    // The header's length is only a claim: compare it with the bytes that are there before allocating for it.
    let bytes_per_sample = u64::from(spec.bits_per_sample).div_ceil(8);
    let claimed = frames * u64::from(spec.channels) * bytes_per_sample;
    if claimed > bytes.len() as u64 {
        return Err(err(format!(
            "truncated: the data chunk claims {claimed} bytes, the file has {}",
            bytes.len()
        )));
    }
    let ch = usize::from(spec.channels);
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            let v = collect(reader.into_samples::<f32>(), |v| v, &err)?;
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(err(format!("sample {i} is {} (NaN or infinite)", v[i])));
            }
            v
        }
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            if bits <= 16 {
                // Exact in f32: a power-of-two scale of a value that fits the mantissa.
                let s = scale as f32;
                collect(reader.into_samples::<i32>(), |v| v as f32 * s, &err)?
            } else {
                collect(
                    reader.into_samples::<i32>(),
                    |v| (f64::from(v) * scale) as f32,
                    &err,
                )?
            }
        }
        (fmt, bits) => {
            return Err(err(format!(
                "unsupported sample format: {bits}-bit {fmt:?}"
            )))
        }
    };
    if !interleaved.len().is_multiple_of(ch) || interleaved.is_empty() {
        return Err(err(format!(
            "truncated: {} samples is not a whole number of {ch}-channel frames",
            interleaved.len()
        )));
    }
    let samples = if ch == 1 {
        interleaved
    } else {
        interleaved
            .chunks_exact(ch)
            .map(|f| (f.iter().map(|&v| f64::from(v)).sum::<f64>() / ch as f64) as f32)
            .collect()
    };
    Ok(Clip {
        sample_rate: spec.sample_rate,
        samples,
        source_channels: spec.channels,
    })
}

fn collect<S, I>(
    it: I,
    map: impl Fn(S) -> f32,
    err: &dyn Fn(String) -> MediaError,
) -> Result<Vec<f32>, MediaError>
where
    I: Iterator<Item = hound::Result<S>>,
{
    let mut out = Vec::with_capacity(it.size_hint().0);
    for s in it {
        match s {
            Ok(v) => out.push(map(v)),
            Err(e) => return Err(err(format!("truncated or corrupt sample data: {e}"))),
        }
    }
    Ok(out)
}
