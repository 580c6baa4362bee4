//! Playback of a [`crate::Recording`] as the glasses loop's inputs: audio chunks and frames in the order a live
//! microphone and camera would deliver them.
//!
//! Timing: an audio chunk covering `[t, t + len)` is due at its end (when a microphone would have delivered it),
//! a frame at its timestamp; on a tie the audio comes first. [`Input`] carries the chunk's start time. One pass
//! lasts [`crate::Recording::duration_ms`]; when the frames outlast the audio, the audio is padded with silence
//! so that chunks stay contiguous. Looped, pass `k` is shifted by `k * duration_ms`: timestamps keep increasing.
//!
//! [`Speed::RealTime`] sleeps until each input is due (measured from the first call to `next`); when the
//! consumer falls behind nothing is skipped, the inputs come out as fast as it takes them. [`Speed::Max`] never
//! sleeps. Frames are decoded when they come due; a frame that fails to decode yields `Some(Err(..))` naming
//! the file, and playback continues with the next input.

use crate::error::SensorError;
use crate::recording::AUDIO_RATE;
use flint_media::RgbImage;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default audio chunk: 20 ms (320 samples at 16 kHz).
pub const DEFAULT_CHUNK_MS: u32 = 20;

/// How fast a [`Player`] plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// At the recording's pace: each input is returned when it is due.
    RealTime,
    /// As fast as the consumer takes the inputs.
    Max,
}

/// One input of the glasses loop.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Microphone audio: 16 kHz mono samples in -1..1, the first one at `t_ms`.
    Audio {
        /// Time of the first sample, ms from the start of playback.
        t_ms: u64,
        /// The samples.
        samples: Vec<f32>,
    },
    /// A camera frame taken at `t_ms`.
    Frame {
        /// Time of the frame, ms from the start of playback.
        t_ms: u64,
        /// The decoded frame.
        image: RgbImage,
    },
}

impl Input {
    /// The input's timestamp (for audio, its first sample's).
    pub fn t_ms(&self) -> u64 {
        match self {
            Input::Audio { t_ms, .. } | Input::Frame { t_ms, .. } => *t_ms,
        }
    }
}

/// Plays a recording: an iterator of [`Input`]s (endless when looped). Made by [`crate::Recording::player`].
#[derive(Debug)]
pub struct Player {
    audio: Arc<[f32]>,
    frames: Arc<[(u64, PathBuf)]>,
    duration_ms: u64,
    /// Samples of audio in one pass (`duration_ms * 16`, the audio padded with silence).
    pass_samples: usize,
    speed: Speed,
    looped: bool,
    chunk: usize,
    pass: u64,
    audio_pos: usize,
    frame_idx: usize,
    start: Option<Instant>,
}

impl Player {
    pub(crate) fn new(
        audio: Arc<[f32]>,
        frames: Arc<[(u64, PathBuf)]>,
        duration_ms: u64,
        speed: Speed,
        looped: bool,
    ) -> Player {
        let pass_samples =
            usize::try_from(duration_ms.saturating_mul(u64::from(AUDIO_RATE)) / 1000)
                .unwrap_or(usize::MAX);
        Player {
            audio,
            frames,
            duration_ms,
            pass_samples: pass_samples.max(1),
            speed,
            looped,
            chunk: (AUDIO_RATE * DEFAULT_CHUNK_MS / 1000) as usize,
            pass: 0,
            audio_pos: 0,
            frame_idx: 0,
            start: None,
        }
    }

    /// Sets the audio chunk length in milliseconds (clamped to 1..=1000 ms); call before playing.
    pub fn chunk_ms(mut self, ms: u32) -> Player {
        self.chunk = (AUDIO_RATE * ms.clamp(1, 1000) / 1000) as usize;
        self
    }

    fn pass_offset(&self) -> u64 {
        self.pass.saturating_mul(self.duration_ms)
    }

    fn sample_ms(&self, pos: usize) -> u64 {
        self.pass_offset() + pos as u64 * 1000 / u64::from(AUDIO_RATE)
    }

    fn wait_until(&mut self, due_ms: u64) {
        if self.speed == Speed::Max {
            return;
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + Duration::from_millis(due_ms);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

impl Iterator for Player {
    type Item = Result<Input, SensorError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let audio_left = self.audio_pos < self.pass_samples;
            let frame_left = self.frame_idx < self.frames.len();
            if !audio_left && !frame_left {
                if !self.looped {
                    return None;
                }
                self.pass += 1;
                self.audio_pos = 0;
                self.frame_idx = 0;
                continue;
            }
            let audio_end = (self.audio_pos + self.chunk).min(self.pass_samples);
            let audio_due = if audio_left {
                self.sample_ms(audio_end)
            } else {
                u64::MAX
            };
            let frame_due = if frame_left {
                self.pass_offset() + self.frames[self.frame_idx].0
            } else {
                u64::MAX
            };
            if audio_due <= frame_due {
                let t_ms = self.sample_ms(self.audio_pos);
                let mut samples = vec![0.0; audio_end - self.audio_pos];
                let real_end = audio_end.min(self.audio.len());
                if self.audio_pos < real_end {
                    samples[..real_end - self.audio_pos]
                        .copy_from_slice(&self.audio[self.audio_pos..real_end]);
                }
                self.audio_pos = audio_end;
                self.wait_until(audio_due);
                return Some(Ok(Input::Audio { t_ms, samples }));
            }
            let path = self.frames[self.frame_idx].1.clone();
            self.frame_idx += 1;
            self.wait_until(frame_due);
            return Some(
                flint_media::decode_image_file(&path)
                    .map(|image| Input::Frame {
                        t_ms: frame_due,
                        image,
                    })
                    .map_err(SensorError::from),
            );
        }
    }
}
