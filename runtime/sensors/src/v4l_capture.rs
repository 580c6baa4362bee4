//! The real [`CaptureDevice`]: V4L2 through the `v4l` crate, mmap streaming.
//!
//! `open`: `VIDIOC_ENUM_FMT` / `ENUM_FRAMESIZES` / `ENUM_FRAMEINTERVALS` list the MJPEG and YUYV modes (a
//! stepwise size range contributes the asked size clamped and snapped into it), [`negotiate`] picks one,
//! `VIDIOC_S_FMT` sets it (the driver's answer is what is reported), `VIDIOC_S_PARM` asks for the frame rate
//! (ignored if the driver refuses), then buffers are requested, mapped, queued and streaming starts.
//! `dequeue` polls with a 500 ms timeout (so the loop can see its stop flag), `VIDIOC_DQBUF`s one buffer, copies
//! its `bytesused` bytes out; the buffer is requeued on the next call.
//!
//! `v4l`'s stream (and its buffer arena) panic in `Drop` if `VIDIOC_STREAMOFF`, `munmap` or freeing the buffers
//! fails with anything but ENODEV. `close` therefore stops the stream and drops it under `catch_unwind`, as does
//! `open` around the buffer allocation (the panic message is printed by the panic hook; nothing unwinds further).
//! This relies on `panic = "unwind"`, the workspace's setting.

use crate::capture::{
    negotiate, BufferInfo, CameraConfig, CaptureDevice, Format, Mode, PixelFormat,
};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;
use v4l::buffer::Type;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::Capture;
use v4l::{Device, FourCC, Fraction};

/// A V4L2 capture device (`/dev/video0`).
pub struct V4lCapture {
    path: PathBuf,
    name: String,
    stream: Option<v4l::io::mmap::Stream<'static>>,
    device: Option<Device>,
}

impl std::fmt::Debug for V4lCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4lCapture")
            .field("path", &self.path)
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}

impl V4lCapture {
    /// The device at `path`; nothing is opened until [`CaptureDevice::open`].
    pub fn new(path: impl Into<PathBuf>) -> V4lCapture {
        let path = path.into();
        V4lCapture {
            name: path.display().to_string(),
            path,
            stream: None,
            device: None,
        }
    }
}

fn fps_of(f: Fraction) -> Option<f64> {
    (f.numerator > 0 && f.denominator > 0)
        .then(|| f64::from(f.denominator) / f64::from(f.numerator))
}

fn snap(v: u32, min: u32, max: u32, step: u32) -> u32 {
    let v = v.clamp(min, max.max(min));
    let step = step.max(1);
    min + (v - min) / step * step
}

/// Lists the MJPEG / YUYV modes of `dev`.
fn modes(dev: &Device, want: &CameraConfig) -> io::Result<Vec<Mode>> {
    let mut out = Vec::new();
    for desc in dev.enum_formats()? {
        let Some(pixel) = PixelFormat::from_fourcc(desc.fourcc.repr) else {
            continue;
        };
        let sizes = dev.enum_framesizes(desc.fourcc).unwrap_or_default();
        let mut wh = Vec::new();
        for fs in sizes {
            match fs.size {
                FrameSizeEnum::Discrete(d) => wh.push((d.width, d.height)),
                FrameSizeEnum::Stepwise(s) => {
                    wh.push((
                        snap(want.width, s.min_width, s.max_width, s.step_width),
                        snap(want.height, s.min_height, s.max_height, s.step_height),
                    ));
                    wh.push((s.max_width, s.max_height));
                }
            }
        }
        for (w, h) in wh {
            let mut fps = Vec::new();
            for fi in dev
                .enum_frameintervals(desc.fourcc, w, h)
                .unwrap_or_default()
            {
                match fi.interval {
                    FrameIntervalEnum::Discrete(f) => fps.extend(fps_of(f)),
                    FrameIntervalEnum::Stepwise(s) => {
                        let (lo, hi) = (fps_of(s.max), fps_of(s.min));
                        fps.extend(lo);
                        fps.extend(hi);
                        if let (Some(lo), Some(hi)) = (lo, hi) {
                            fps.push(want.fps.clamp(lo.min(hi), hi.max(lo)));
                        }
                    }
                }
            }
            out.push(Mode {
                pixel,
                width: w,
                height: h,
                fps,
            });
        }
    }
    Ok(out)
}

impl CaptureDevice for V4lCapture {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self, want: &CameraConfig) -> io::Result<Format> {
        self.close();
        let dev = Device::with_path(&self.path)?;
        let offered = modes(&dev, want)?;
        let (i, fps) = negotiate(&offered, want).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the device offers no MJPEG or YUYV capture format",
            )
        })?;
        let m = &offered[i];
        let set = dev.set_format(&v4l::Format::new(
            m.width,
            m.height,
            FourCC::new(&m.pixel.fourcc()),
        ))?;
        let pixel = PixelFormat::from_fourcc(set.fourcc.repr).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the driver switched to pixel format {}", set.fourcc),
            )
        })?;
        let denom = (fps * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32;
        let fps = match dev.set_params(&v4l::video::capture::Parameters::new(Fraction::new(
            1000, denom,
        ))) {
            Ok(p) => fps_of(p.interval).unwrap_or(fps),
            Err(_) => fps,
        };
        let mut stream = v4l::io::mmap::Stream::with_buffers(
            &dev,
            Type::VideoCapture,
            want.buffers.clamp(2, 8),
        )?;
        stream.set_timeout(Duration::from_millis(500));
        self.stream = Some(stream);
        self.device = Some(dev);
        Ok(Format {
            pixel,
            width: set.width,
            height: set.height,
            stride: set.stride,
            fps,
        })
    }

    fn dequeue(&mut self, out: &mut Vec<u8>) -> io::Result<BufferInfo> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let (buf, meta) = CaptureStream::next(stream)?;
        let used = (meta.bytesused as usize).min(buf.len());
        out.clear();
        out.extend_from_slice(&buf[..used]);
        let ts = meta.timestamp;
        Ok(BufferInfo {
            sequence: meta.sequence,
            timestamp_us: u64::try_from(ts.sec).unwrap_or(0) * 1_000_000
                + u64::try_from(ts.usec).unwrap_or(0),
        })
    }

    fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.stop();
            // v4l panics in Drop when STREAMOFF or freeing the buffers fails with anything but ENODEV.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(stream)));
        }
        self.device = None;
    }
}

impl Drop for V4lCapture {
    fn drop(&mut self) {
        self.close();
    }
}
