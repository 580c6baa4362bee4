//! `--record DIR`: writes what was captured in the layout [`crate::Recording`] reads back (`audio.wav` at
//! 16 kHz mono 16-bit, `frames/<ms>.jpg|png`).
//!
//! Every file appears atomically: it is written under a hidden temporary name in the same directory
//! (`frames/.<ms>.png.tmp`, `.audio.wav.tmp`) and renamed into place when complete, so a reader (or a crash)
//! never sees half a file (files are not fsynced: a power cut may lose the last ones); [`crate::frame_files`] skips the hidden names. Audio streams to its temporary file
//! (bounded memory) and is renamed into place by [`Recorder::finish`] (or, best effort, on drop). Samples are
//! stored as `round(x * 32768)` clamped to i16, so audio that came from 16-bit PCM round-trips exactly.

use crate::error::SensorError;
use crate::recording::AUDIO_RATE;
use flint_media::RgbImage;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a recording directory. See the module docs.
pub struct Recorder {
    dir: PathBuf,
    frames_dir: PathBuf,
    wav_tmp: PathBuf,
    wav: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    last_frame_ms: Option<u64>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("last_frame_ms", &self.last_frame_ms)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `dir` (and `dir/frames`) and starts the audio file. Refused if `dir/audio.wav` already exists.
    pub fn create(dir: impl AsRef<Path>) -> Result<Recorder, SensorError> {
        let dir = dir.as_ref().to_path_buf();
        let frames_dir = dir.join("frames");
        std::fs::create_dir_all(&frames_dir)
            .map_err(|e| SensorError::io(&frames_dir, "create directory", e))?;
        let final_wav = dir.join("audio.wav");
        if final_wav.exists() {
            return Err(SensorError::recording(
                &final_wav,
                "already exists: record into a new directory",
            ));
        }
        let wav_tmp = dir.join(".audio.wav.tmp");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: AUDIO_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::create(&wav_tmp, spec)
            .map_err(|e| hound_err(&wav_tmp, "create", e))?;
        Ok(Recorder {
            dir,
            frames_dir,
            wav_tmp,
            wav: Some(wav),
            last_frame_ms: None,
        })
    }

    /// The recording directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends 16 kHz mono samples to the audio.
    pub fn audio(&mut self, samples: &[f32]) -> Result<(), SensorError> {
        let Some(w) = self.wav.as_mut() else {
            return Err(SensorError::recording(
                &self.wav_tmp,
                "recorder already finished",
            ));
        };
        for &x in samples {
            let v = (f64::from(x) * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
            w.write_sample(v)
                .map_err(|e| hound_err(&self.wav_tmp, "write", e))?;
        }
        Ok(())
    }

    /// Writes a frame taken at `t_ms` as `frames/<t_ms>.png`. Timestamps must increase.
    pub fn frame(&mut self, t_ms: u64, image: &RgbImage) -> Result<PathBuf, SensorError> {
        let png = flint_media::decode::encode_png(image);
        self.write_frame(t_ms, "png", &png)
    }

    /// Writes a camera's JPEG (MJPEG buffer) as is, as `frames/<t_ms>.jpg`. Timestamps must increase.
    pub fn frame_jpeg(&mut self, t_ms: u64, jpeg: &[u8]) -> Result<PathBuf, SensorError> {
        let path = self.frames_dir.join(format!("{t_ms}.jpg"));
        if !jpeg.starts_with(&[0xFF, 0xD8]) {
            return Err(SensorError::recording(
                path,
                "not JPEG data (no SOI marker)",
            ));
        }
        self.write_frame(t_ms, "jpg", jpeg)
    }

    fn write_frame(&mut self, t_ms: u64, ext: &str, bytes: &[u8]) -> Result<PathBuf, SensorError> {
        let path = self.frames_dir.join(format!("{t_ms}.{ext}"));
        if let Some(last) = self.last_frame_ms {
            if t_ms <= last {
                return Err(SensorError::recording(
                    path,
                    format!("frame timestamps must increase (last was {last} ms)"),
                ));
            }
        }
        let tmp = self.frames_dir.join(format!(".{t_ms}.{ext}.tmp"));
        write_atomic(&tmp, &path, bytes)?;
        self.last_frame_ms = Some(t_ms);
        Ok(path)
    }

    /// Completes `audio.wav` (header, rename into place). Frames are already in place.
    pub fn finish(mut self) -> Result<PathBuf, SensorError> {
        self.finish_audio()
    }

    fn finish_audio(&mut self) -> Result<PathBuf, SensorError> {
        let dst = self.dir.join("audio.wav");
        let Some(w) = self.wav.take() else {
            return Ok(dst);
        };
        w.finalize()
            .map_err(|e| hound_err(&self.wav_tmp, "finish", e))?;
        std::fs::rename(&self.wav_tmp, &dst)
            .map_err(|e| SensorError::io(&dst, "rename into place", e))?;
        Ok(dst)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.finish_audio();
    }
}

fn write_atomic(tmp: &Path, dst: &Path, bytes: &[u8]) -> Result<(), SensorError> {
    let mut f = std::fs::File::create(tmp).map_err(|e| SensorError::io(tmp, "create", e))?;
    f.write_all(bytes)
        .map_err(|e| SensorError::io(tmp, "write", e))?;
    drop(f);
    std::fs::rename(tmp, dst).map_err(|e| SensorError::io(dst, "rename into place", e))
}

fn hound_err(path: &Path, op: &'static str, e: hound::Error) -> SensorError {
    match e {
        hound::Error::IoError(io) => SensorError::io(path, op, io),
        other => SensorError::recording(path, format!("{op}: {other}")),
    }
}
