//! The camera thread: frames from a [`CaptureDevice`] (V4L2 by default) decoded to RGB into a [`LatestFrame`].
//!
//! The loop: dequeue a buffer, decode it (MJPEG with flint-media's JPEG decoder, YUYV with [`crate::yuv`]),
//! stamp it with [`crate::clock::now_ms`] and replace the slot's frame. A buffer that does not decode (truncated
//! or garbage MJPEG, a short YUYV buffer) is dropped with [`CameraEvent::FrameDropped`]. "No frame yet"
//! (EAGAIN, EINTR, the 500 ms poll timeout) is ignored. Any other error (ENODEV or EIO when the camera is
//! unplugged) sends [`CameraEvent::Lost`] naming the device, closes it, and reopens it with backoff
//! ([`crate::Backoff`]: 100 ms doubling to 2 s by default) until it opens ([`CameraEvent::Opened`], with the
//! format negotiated again) and a frame arrives ([`CameraEvent::Back`]). Events go through a bounded channel
//! ([`EVENT_QUEUE`]); when the consumer does not read them, new ones are dropped. Dropping the [`Camera`] (or
//! [`Camera::stop`]) sets the stop flag and joins the thread (at most ~0.5 s, one poll timeout).

use crate::capture::{is_transient, CameraConfig, CaptureDevice, Format, PixelFormat};
use crate::clock::{now_ms, sleep_unless};
use crate::error::SensorError;
use crate::latest::{Frame, LatestFrame};
use crate::v4l_capture::V4lCapture;
use flint_media::RgbImage;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Capacity of a camera's (and a microphone's) event channel.
pub const EVENT_QUEUE: usize = 64;

/// Something that happened to the camera.
#[derive(Debug)]
pub enum CameraEvent {
    /// The device was (re)opened with this format.
    Opened {
        /// The device.
        device: String,
        /// The negotiated format.
        format: Format,
    },
    /// The device failed (unplugged: ENODEV / EIO); reopening with backoff.
    Lost {
        /// The device.
        device: String,
        /// The error that ended the stream.
        error: std::io::Error,
    },
    /// Frames arrive again after [`CameraEvent::Lost`].
    Back {
        /// The device.
        device: String,
    },
    /// A buffer that could not be decoded was dropped.
    FrameDropped {
        /// The decoding error (names the device and the frame).
        error: SensorError,
    },
}

struct Shared {
    latest: LatestFrame,
    stop: AtomicBool,
    decoded: AtomicU64,
}

/// A running camera. See the module docs.
pub struct Camera {
    device: String,
    format: Format,
    shared: Arc<Shared>,
    events: Receiver<CameraEvent>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("device", &self.device)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Camera {
    /// Opens the V4L2 device at `device` (`/dev/video0`), negotiates `config` and starts the camera thread.
    /// Fails if the device cannot be opened now; later losses are reported as events and recovered.
    pub fn start(device: impl AsRef<Path>, config: CameraConfig) -> Result<Camera, SensorError> {
        Self::start_with(Box::new(V4lCapture::new(device.as_ref())), config)
    }

    /// As [`Camera::start`], over any [`CaptureDevice`] (e.g. a [`crate::ScriptedDevice`]).
    pub fn start_with(
        mut dev: Box<dyn CaptureDevice>,
        config: CameraConfig,
    ) -> Result<Camera, SensorError> {
        let device = dev.name().to_string();
        let format = dev
            .open(&config)
            .map_err(|e| SensorError::device(&device, "open and start streaming", e))?;
        let (tx, rx) = sync_channel(EVENT_QUEUE);
        let _ = tx.try_send(CameraEvent::Opened {
            device: device.clone(),
            format,
        });
        let shared = Arc::new(Shared {
            latest: LatestFrame::new(),
            stop: AtomicBool::new(false),
            decoded: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("camera {device}"))
            .spawn(move || run(dev, config, format, &sh, &tx))
            .map_err(|e| SensorError::device(&device, "spawn the camera thread", e))?;
        Ok(Camera {
            device,
            format,
            shared,
            events: rx,
            thread: Some(thread),
        })
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The format negotiated at start (after a reopen, see [`CameraEvent::Opened`]).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The newest frame and its time ([`crate::clock::now_ms`]), if one has arrived.
    pub fn latest(&self) -> Option<(u64, RgbImage)> {
        self.shared
            .latest
            .get()
            .map(|f| (f.t_ms, RgbImage::clone(&f.image)))
    }

    /// The latest-frame slot itself (no copy of the image; [`LatestFrame::wait_newer`] to wait).
    pub fn slot(&self) -> &LatestFrame {
        &self.shared.latest
    }

    /// Frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.shared.decoded.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for a frame newer than `after_seq` (0: any).
    pub fn wait_newer(&self, after_seq: u64, timeout: Duration) -> Option<Frame> {
        self.shared.latest.wait_newer(after_seq, timeout)
    }

    /// The camera's events (bounded; read them with `try_recv` / `recv_timeout`).
    pub fn events(&self) -> &Receiver<CameraEvent> {
        &self.events
    }

    /// Stops the thread and closes the device.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Decodes one buffer of `format`; `device` and `sequence` name it in errors.
pub fn decode_frame(
    device: &str,
    sequence: u32,
    format: &Format,
    data: &[u8],
) -> Result<RgbImage, SensorError> {
    match format.pixel {
        PixelFormat::Mjpeg => {
            let name = format!("{device} frame {sequence}");
            Ok(flint_media::decode_image(Path::new(&name), data)?)
        }
        PixelFormat::Yuyv => {
            let stride = if format.stride == 0 {
                format.width as usize * 2
            } else {
                format.stride as usize
            };
            crate::yuv::yuyv_to_rgb(data, format.width as usize, format.height as usize, stride)
                .ok_or_else(|| SensorError::BadFrame {
                    device: device.to_string(),
                    sequence,
                    why: format!(
                        "{} bytes is not a {}x{} YUYV frame (stride {stride})",
                        data.len(),
                        format.width,
                        format.height
                    ),
                })
        }
    }
}

fn run(
    mut dev: Box<dyn CaptureDevice>,
    config: CameraConfig,
    mut format: Format,
    sh: &Shared,
    tx: &SyncSender<CameraEvent>,
) {
    let name = dev.name().to_string();
    let mut buf = Vec::new();
    let mut lost = false;
    let mut is_open = true;
    let mut delay = config.backoff.initial;
    while !sh.stop.load(Ordering::Relaxed) {
        if !is_open {
            if !sleep_unless(&sh.stop, delay) {
                break;
            }
            match dev.open(&config) {
                Ok(f) => {
                    format = f;
                    is_open = true;
                    let _ = tx.try_send(CameraEvent::Opened {
                        device: name.clone(),
                        format,
                    });
                }
                Err(_) => {
                    delay = config.backoff.next(delay);
                    continue;
                }
            }
        }
        match dev.dequeue(&mut buf) {
            Ok(info) => {
                if lost {
                    lost = false;
                    delay = config.backoff.initial;
                    let _ = tx.try_send(CameraEvent::Back {
                        device: name.clone(),
                    });
                }
                match decode_frame(&name, info.sequence, &format, &buf) {
                    Ok(img) => {
                        sh.latest.put(now_ms(), img);
                        sh.decoded.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        let _ = tx.try_send(CameraEvent::FrameDropped { error });
                    }
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(error) => {
                dev.close();
                is_open = false;
                if !lost {
                    lost = true;
                    delay = config.backoff.initial;
                    let _ = tx.try_send(CameraEvent::Lost {
                        device: name.clone(),
                        error,
                    });
                } else {
                    delay = config.backoff.next(delay);
                }
            }
        }
    }
    dev.close();
}
