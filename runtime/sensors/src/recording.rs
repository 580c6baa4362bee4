//! Recordings: what the glasses saw and heard, on disk, standing in for the camera and the microphone.
//!
//! Layout of a recording directory `DIR`:
//!
//! - `DIR/audio.wav`: the microphone, any rate flint-media accepts, mono or several channels (averaged to mono,
//!   then resampled to [`AUDIO_RATE`] with `flint_media::resample`);
//! - `DIR/frames/<ms>.jpg|.jpeg|.png`: one file per camera frame, named by its timestamp in milliseconds from the
//!   start of the recording (`0.jpg`, `33.jpg`, `1500.png`). Names starting with `.` are skipped (a
//!   [`crate::Recorder`]'s temporary files); anything else that is not `<digits>.<image extension>` is an error
//!   naming the file, as are two files with the same timestamp (`40.jpg` and `040.png`).
//!
//! [`Recording::open`] checks all of that up front (and that `audio.wav` decodes); frames are decoded only when
//! played, so a corrupt JPEG is reported by the [`crate::Player`] when it comes due, naming the file.

use crate::error::SensorError;
use crate::player::{Player, Speed};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sample rate of all audio this crate hands out (mono f32 in -1..1).
pub const AUDIO_RATE: u32 = 16_000;
/// At most this many frames in one recording's `frames/` directory.
pub const MAX_FRAMES: usize = 1 << 20;

/// How [`Recording::open_with`] validates a recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Accept a recording with no frames (no `frames/` directory or an empty one): audio only.
    pub allow_no_frames: bool,
}

/// A validated recording: its audio at 16 kHz mono in memory, its frame files listed in timestamp order.
#[derive(Clone, Debug)]
pub struct Recording {
    dir: PathBuf,
    audio: Arc<[f32]>,
    frames: Arc<[(u64, PathBuf)]>,
    duration_ms: u64,
}

impl Recording {
    /// Opens and validates `dir`; a recording without frames is refused (see [`Recording::open_with`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Recording, SensorError> {
        Self::open_with(dir, OpenOptions::default())
    }

    /// Opens and validates `dir` with `opts`.
    pub fn open_with(dir: impl AsRef<Path>, opts: OpenOptions) -> Result<Recording, SensorError> {
        let dir = dir.as_ref();
        let md = std::fs::metadata(dir).map_err(|e| SensorError::io(dir, "open recording", e))?;
        if !md.is_dir() {
            return Err(SensorError::recording(dir, "not a directory"));
        }
        let wav = dir.join("audio.wav");
        if !wav.is_file() {
            return Err(SensorError::recording(
                &wav,
                "no audio.wav in the recording (a recording is audio.wav plus frames/<ms>.jpg|png)",
            ));
        }
        let clip = flint_media::read_wav_file(&wav)?;
        let audio =
            flint_media::resample::resample(&wav, &clip.samples, clip.sample_rate, AUDIO_RATE)?;
        let frames_dir = dir.join("frames");
        let frames = if frames_dir.exists() {
            frame_files(&frames_dir)?
        } else {
            Vec::new()
        };
        if frames.is_empty() && !opts.allow_no_frames {
            return Err(SensorError::recording(
                &frames_dir,
                "no frames (frames/<ms>.jpg or .png); open with allow_no_frames for audio only",
            ));
        }
        let audio_ms = (audio.len() as u64 * 1000).div_ceil(u64::from(AUDIO_RATE));
        let last_frame = frames.last().map_or(0, |f| f.0 + 1);
        let duration_ms = audio_ms.max(last_frame).max(1);
        Ok(Recording {
            dir: dir.to_path_buf(),
            audio: audio.into(),
            frames: frames.into(),
            duration_ms,
        })
    }

    /// The recording's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The audio, 16 kHz mono.
    pub fn audio(&self) -> &[f32] {
        &self.audio
    }

    /// The frame files, `(timestamp ms, path)` in timestamp order.
    pub fn frames(&self) -> &[(u64, PathBuf)] {
        &self.frames
    }

    /// Length of one pass: the longer of the audio and the last frame's timestamp + 1 ms. A looped player
    /// starts pass `k` at `k * duration_ms`.
    pub fn duration_ms(&self) -> u64 {
        self.duration_ms
    }

    /// A player over this recording (audio in [`crate::player::DEFAULT_CHUNK_MS`] chunks).
    pub fn player(&self, speed: Speed, looped: bool) -> Player {
        Player::new(
            self.audio.clone(),
            self.frames.clone(),
            self.duration_ms,
            speed,
            looped,
        )
    }
}

/// Lists the frame files of a `frames/` directory as `(timestamp ms, path)`, sorted by timestamp.
///
/// Shared by recordings and by video input. Refused, naming the file: a name that is not `<digits>.jpg`,
/// `.jpeg` or `.png` (extension case-insensitive), a timestamp over `u64`, two files with one timestamp, more
/// than [`MAX_FRAMES`] files. Hidden names (`.…`) are skipped. An empty directory gives an empty list.
pub fn frame_files(dir: impl AsRef<Path>) -> Result<Vec<(u64, PathBuf)>, SensorError> {
    let dir = dir.as_ref();
    let rd = std::fs::read_dir(dir).map_err(|e| SensorError::io(dir, "read directory", e))?;
    let mut out: Vec<(u64, PathBuf)> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| SensorError::io(dir, "read directory", e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(SensorError::recording(&path, "frame name is not UTF-8"));
        };
        if name.starts_with('.') {
            continue;
        }
        if out.len() >= MAX_FRAMES {
            return Err(SensorError::recording(
                dir,
                format!("more than {MAX_FRAMES} frames"),
            ));
        }
        out.push((parse_frame_name(&path, name)?, path));
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(SensorError::recording(
            &w[1].1,
            format!(
                "two frames with timestamp {} ms (also {})",
                w[0].0,
                w[0].1.display()
            ),
        ));
    }
    Ok(out)
}

fn parse_frame_name(path: &Path, name: &str) -> Result<u64, SensorError> {
    let bad = |why: &str| {
        SensorError::recording(
            path,
            format!("frame name {name:?} {why}; frames are named <ms>.jpg, <ms>.jpeg or <ms>.png"),
        )
    };
    let (stem, ext) = name
        .rsplit_once('.')
        .ok_or_else(|| bad("has no extension"))?;
    let ext = ext.to_ascii_lowercase();
    if !matches!(ext.as_str(), "jpg" | "jpeg" | "png") {
        return Err(bad("is not a JPEG or PNG"));
    }
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a number of milliseconds"));
    }
    stem.parse::<u64>().map_err(|_| bad("is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_names() {
        let p = Path::new("x");
        assert_eq!(parse_frame_name(p, "0.jpg").unwrap(), 0);
        assert_eq!(parse_frame_name(p, "0040.PNG").unwrap(), 40);
        assert_eq!(parse_frame_name(p, "33.jpeg").unwrap(), 33);
        for bad in [
            "a.jpg",
            "12.gif",
            "12",
            ".jpg",
            "-1.jpg",
            "1.5.jpg",
            "99999999999999999999999.jpg",
        ] {
            assert!(parse_frame_name(p, bad).is_err(), "{bad}");
        }
    }
}
