//! The crate's one error type. Every variant names what failed (the device such as `/dev/video0` or `hw:0`,
//! or the file) and the operation; nothing read from outside the process panics.

use std::path::PathBuf;

/// A sensor or recording input that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    /// A file or directory of a recording (or of a [`crate::Recorder`]) could not be read or written.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("read directory", "create", "rename", ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A recording whose layout or contents are wrong (no audio.wav, a frame name that isn't a number, ...).
    #[error("{}: {why}", path.display())]
    Recording {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// An image or WAV file (or a camera's MJPEG buffer) that flint-media refused; the error names the file.
    #[error(transparent)]
    Media(#[from] flint_media::MediaError),
    /// A camera or microphone operation failed.
    #[error("{device}: {op}: {source}")]
    Device {
        /// The device (`/dev/video0`, `default`, `hw:0,0`).
        device: String,
        /// The operation ("open", "VIDIOC_S_FMT", "snd_pcm_readi", ...).
        op: &'static str,
        /// The OS error (with its errno when the device gave one).
        #[source]
        source: std::io::Error,
    },
    /// A device that opened but cannot deliver anything usable (no MJPEG or YUYV mode, an odd sample rate).
    #[error("{device}: {why}")]
    Unsupported {
        /// The device.
        device: String,
        /// What it offers and why that cannot be used.
        why: String,
    },
    /// A camera buffer that is not a whole frame of the negotiated format.
    #[error("{device}: frame {sequence}: {why}")]
    BadFrame {
        /// The device.
        device: String,
        /// The driver's sequence number of the buffer.
        sequence: u32,
        /// What is wrong with it.
        why: String,
    },
}

impl SensorError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        SensorError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn recording(path: impl Into<PathBuf>, why: impl Into<String>) -> Self {
        SensorError::Recording {
            path: path.into(),
            why: why.into(),
        }
    }

    pub(crate) fn device(device: &str, op: &'static str, source: std::io::Error) -> Self {
        SensorError::Device {
            device: device.to_string(),
            op,
            source,
        }
    }
}
