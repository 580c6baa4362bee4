//! The seam between the camera loop and V4L2: [`CaptureDevice`], the formats it negotiates, and
//! [`ScriptedDevice`], a stand-in that replays recorded buffers and injects the errors a real device returns.
//!
//! Negotiation ([`negotiate`]) takes the modes a device offers (pixel format, size, frame rates) and the
//! [`CameraConfig`] asked for, and picks the mode of least cost:
//!
//! - size: `2 |ln(area / asked area)| + 2 |ln(aspect / asked aspect)|` (0 for the size asked);
//! - rate: `|ln(fps / asked fps)|` over the rates the mode offers (0 when the device lists none: the asked
//!   rate is requested and the driver decides);
//! - `+ 0.3` when the pixel format is not the preferred one.
//!
//! So the size asked wins over the format preference, a much closer rate wins over it too (30 fps MJPEG over
//! 5 fps YUYV), and between near equals the preferred format is taken. Only MJPEG and YUYV are used.

use crate::clock::Backoff;
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// Pixel formats the camera loop decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Motion JPEG (`MJPG`): one JPEG per buffer, decoded by flint-media.
    Mjpeg,
    /// YUYV 4:2:2 (`YUYV`), BT.601 limited range ([`crate::yuv`]).
    Yuyv,
}

impl PixelFormat {
    /// The V4L2 FourCC.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
        }
    }

    /// The format of a FourCC, if it is one of ours.
    pub fn from_fourcc(f: [u8; 4]) -> Option<PixelFormat> {
        match &f {
            b"MJPG" => Some(PixelFormat::Mjpeg),
            b"YUYV" => Some(PixelFormat::Yuyv),
            _ => None,
        }
    }
}

/// What the camera is asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// The preferred pixel format (the other one is the fallback).
    pub format_pref: PixelFormat,
    /// Reopening after the device is lost.
    pub backoff: Backoff,
    /// mmap buffers to ask the driver for (clamped to 2..=8).
    pub buffers: u32,
}

impl Default for CameraConfig {
    /// 640x480 at 30 fps, MJPEG preferred, 4 buffers, 100 ms → 2 s backoff.
    fn default() -> Self {
        CameraConfig {
            width: 640,
            height: 480,
            fps: 30.0,
            format_pref: PixelFormat::Mjpeg,
            backoff: Backoff::default(),
            buffers: 4,
        }
    }
}

/// One mode a device offers: a pixel format at a size, with the frame rates it lists there.
#[derive(Clone, Debug, PartialEq)]
pub struct Mode {
    /// Pixel format.
    pub pixel: PixelFormat,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frame rates offered (may be empty: unknown).
    pub fps: Vec<f64>,
}

/// The format a device was set to (what the driver reported back).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Format {
    /// Pixel format.
    pub pixel: PixelFormat,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Bytes per row (YUYV; 0 for MJPEG).
    pub stride: u32,
    /// Frame rate in effect (or asked, when the driver does not say).
    pub fps: f64,
}

/// Metadata of a dequeued buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BufferInfo {
    /// The driver's sequence number.
    pub sequence: u32,
    /// The driver's timestamp in µs (CLOCK_MONOTONIC on UVC), 0 if none.
    pub timestamp_us: u64,
}

/// A camera as the loop sees it. Errors carry the device's errno (`raw_os_error`): ENODEV / EIO mean the
/// device is gone; EAGAIN, EINTR and [`io::ErrorKind::TimedOut`] mean "no frame yet".
pub trait CaptureDevice: Send {
    /// The device's name (`/dev/video0`), for events and errors.
    fn name(&self) -> &str;
    /// Opens the device, negotiates a format for `want` and starts streaming.
    fn open(&mut self, want: &CameraConfig) -> io::Result<Format>;
    /// Waits (bounded, ~0.5 s) for the next filled buffer and copies its bytes into `out` (cleared first).
    /// The driver's buffer goes back to its queue (is requeued) before the next buffer is dequeued.
    fn dequeue(&mut self, out: &mut Vec<u8>) -> io::Result<BufferInfo>;
    /// Stops streaming and closes the device (also after it vanished); never fails.
    fn close(&mut self);
}

/// Whether an error from [`CaptureDevice::dequeue`] only means "no frame yet".
pub fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
        || matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        )
}

fn ln_ratio(a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        (a / b).ln().abs()
    } else {
        f64::INFINITY
    }
}

/// Picks the mode for `want` among `offered` (see the module docs): `(mode index, fps to ask for)`.
pub fn negotiate(offered: &[Mode], want: &CameraConfig) -> Option<(usize, f64)> {
    let (ww, wh) = (f64::from(want.width.max(1)), f64::from(want.height.max(1)));
    let mut best: Option<(f64, usize, f64)> = None;
    for (i, m) in offered.iter().enumerate() {
        if m.width == 0 || m.height == 0 {
            continue;
        }
        let (w, h) = (f64::from(m.width), f64::from(m.height));
        let size = 2.0 * ln_ratio(w * h, ww * wh) + 2.0 * ln_ratio(w / h, ww / wh);
        let (fps, fps_cost) = m
            .fps
            .iter()
            .filter(|f| f.is_finite() && **f > 0.0)
            .map(|&f| (f, ln_ratio(f, want.fps)))
            .fold(
                (want.fps, if m.fps.is_empty() { 0.0 } else { f64::INFINITY }),
                |b, c| {
                    if c.1 < b.1 {
                        c
                    } else {
                        b
                    }
                },
            );
        let pref = if m.pixel == want.format_pref {
            0.0
        } else {
            0.3
        };
        let cost = size + fps_cost + pref;
        if cost.is_finite() && best.is_none_or(|b| cost < b.0) {
            best = Some((cost, i, fps));
        }
    }
    best.map(|(_, i, fps)| (i, fps))
}

/// One step of a [`ScriptedDevice`]'s stream.
#[derive(Clone, Debug)]
pub enum Step {
    /// A filled buffer.
    Frame(Vec<u8>),
    /// `dequeue` fails with this errno (ENODEV, EIO, EAGAIN, ...).
    Error(i32),
    /// The device is unplugged: `dequeue` fails with `errno`, then the next `reopen_failures` opens fail
    /// with ENOENT (the device node is gone) before one succeeds.
    Unplug {
        /// What `dequeue` returns (ENODEV or EIO).
        errno: i32,
        /// Failed opens before the device is back.
        reopen_failures: u32,
    },
}

/// A [`CaptureDevice`] that replays recorded buffers and injected errors (tests, demos without a camera).
///
/// `open` negotiates against `modes` like a driver would (stride `2 * width` for YUYV), or fails with the next
/// errno of `open_errors` while there is one. `dequeue` plays the steps in order, one per `interval`; once
/// they are used up it replays the frames in `repeat` forever (or times out if `repeat` is empty).
#[derive(Debug)]
pub struct ScriptedDevice {
    name: String,
    modes: Vec<Mode>,
    /// Errnos for successive `open` calls to fail with (consumed one per call).
    pub open_errors: VecDeque<i32>,
    /// The scripted stream.
    pub steps: VecDeque<Step>,
    /// Frames replayed after `steps` run out.
    pub repeat: Vec<Vec<u8>>,
    /// Time between steps.
    pub interval: Duration,
    is_open: bool,
    seq: u32,
    /// Number of successful `open` calls so far.
    pub opens: u32,
}

impl ScriptedDevice {
    /// A device called `name` offering `modes`, with an empty script and 1 ms between steps.
    pub fn new(name: &str, modes: Vec<Mode>) -> ScriptedDevice {
        ScriptedDevice {
            name: name.to_string(),
            modes,
            open_errors: VecDeque::new(),
            steps: VecDeque::new(),
            repeat: Vec::new(),
            interval: Duration::from_millis(1),
            is_open: false,
            seq: 0,
            opens: 0,
        }
    }
}

impl CaptureDevice for ScriptedDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self, want: &CameraConfig) -> io::Result<Format> {
        if let Some(errno) = self.open_errors.pop_front() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let (i, fps) = negotiate(&self.modes, want).ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "no MJPEG or YUYV mode offered")
        })?;
        let m = &self.modes[i];
        self.is_open = true;
        self.opens += 1;
        Ok(Format {
            pixel: m.pixel,
            width: m.width,
            height: m.height,
            stride: if m.pixel == PixelFormat::Yuyv {
                m.width * 2
            } else {
                0
            },
            fps,
        })
    }

    fn dequeue(&mut self, out: &mut Vec<u8>) -> io::Result<BufferInfo> {
        if !self.is_open {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        std::thread::sleep(self.interval);
        let data = match self.steps.pop_front() {
            Some(Step::Frame(f)) => f,
            Some(Step::Error(errno)) => return Err(io::Error::from_raw_os_error(errno)),
            Some(Step::Unplug {
                errno,
                reopen_failures,
            }) => {
                self.open_errors
                    .extend((0..reopen_failures).map(|_| libc::ENOENT));
                return Err(io::Error::from_raw_os_error(errno));
            }
            None if self.repeat.is_empty() => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "VIDIOC_DQBUF"))
            }
            None => self.repeat[self.seq as usize % self.repeat.len()].clone(),
        };
        out.clear();
        out.extend_from_slice(&data);
        self.seq = self.seq.wrapping_add(1);
        Ok(BufferInfo {
            sequence: self.seq,
            timestamp_us: 0,
        })
    }

    fn close(&mut self) {
        self.is_open = false;
    }
}
