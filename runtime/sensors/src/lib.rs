//! flint-sensors: the inputs of the glasses loop.
//!
//! - [`recording`] / [`player`]: a recording directory (`audio.wav` + `frames/<ms>.jpg|png`) played back as
//!   [`Input`]s in real time or as fast as possible, optionally looped; [`recorder`] writes one (`--record`).
//! - [`select`]: which frame to send (sharpness, near duplicates, the last second of frames).
//! - [`camera`]: V4L2 capture ([`v4l_capture`]) behind the [`CaptureDevice`] seam ([`capture`]), MJPEG or
//!   YUYV ([`yuv`]) to RGB into a [`LatestFrame`], surviving unplugging.
//! - [`mic`]: ALSA capture ([`pcm`]) behind the [`PcmSource`] seam, 16 kHz mono into a bounded ring,
//!   recovering from overruns.
//! - [`clock`]: the one monotonic clock live inputs are stamped with.
//!
//! Errors: [`SensorError`], naming the device or file and the operation. Nothing from outside the process
//! panics; every queue is bounded (one-frame slot, a capped sample ring, 64-event channels).

pub mod camera;
pub mod capture;
pub mod clock;
pub mod error;
pub mod latest;
pub mod mic;
pub mod pcm;
pub mod player;
pub mod recorder;
pub mod recording;
pub mod select;
pub mod v4l_capture;
pub mod yuv;

pub use camera::{Camera, CameraEvent};
pub use capture::{CameraConfig, CaptureDevice, Format, Mode, PixelFormat, ScriptedDevice, Step};
pub use clock::{now_ms, Backoff};
pub use error::SensorError;
pub use latest::{Frame, LatestFrame};
pub use mic::{Mic, MicConfig, MicEvent, Overflow};
pub use pcm::{AlsaPcm, PcmFormat, PcmSource, PcmStep, ScriptedPcm};
pub use player::{Input, Player, Speed};
pub use recorder::Recorder;
pub use recording::{frame_files, OpenOptions, Recording, AUDIO_RATE};
pub use select::{is_near_duplicate, pick_sharpest, sharpness, FrameRing, Thumbnail};
pub use v4l_capture::V4lCapture;
