//! The seam between the microphone loop and ALSA: [`PcmSource`], the real [`AlsaPcm`], and [`ScriptedPcm`],
//! a stand-in that plays given samples and injects errors (EPIPE overruns, ENODEV).
//!
//! Errors are `io::Error`s carrying ALSA's errno (positive, `raw_os_error`): EPIPE is an overrun (the
//! application did not read in time, the ring of the driver overflowed), ESTRPIPE a suspend; both are
//! recovered with `snd_pcm_recover`. EAGAIN / EINTR / a timeout mean "no data yet".

use crate::mic::MicConfig;
use alsa::pcm::{Access, Format as AlsaFormat, HwParams, PCM};
use alsa::{Direction, ValueOr};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// What a capture device was set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    /// Sample rate in Hz (resampled to 16 kHz by the microphone loop when different).
    pub rate: u32,
    /// Interleaved channels (downmixed to mono).
    pub channels: u32,
    /// Period in frames.
    pub period_frames: usize,
    /// Buffer in frames.
    pub buffer_frames: usize,
}

/// A capture PCM as the microphone loop sees it. Always S16_LE, interleaved.
pub trait PcmSource: Send {
    /// The device's name (`default`, `hw:1,0`).
    fn name(&self) -> &str;
    /// Opens and configures the device for `want` (16-bit, the rate / channels / period / buffer nearest).
    fn open(&mut self, want: &MicConfig) -> io::Result<PcmFormat>;
    /// Reads up to `buf.len() / channels` frames into `buf` (interleaved); returns the frames read. Waits at
    /// most ~0.5 s.
    fn read(&mut self, buf: &mut [i16]) -> io::Result<usize>;
    /// Recovers from an error `read` returned (EPIPE, ESTRPIPE): `snd_pcm_recover`.
    fn recover(&mut self, err: &io::Error) -> io::Result<()>;
    /// Closes the device; never fails.
    fn close(&mut self);
}

fn alsa_io(e: alsa::Error) -> io::Error {
    let errno = e.errno();
    if errno > 0 {
        io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            AlsaIoError {
                func: e.func(),
                errno,
            },
        )
    } else {
        io::Error::other(e.to_string())
    }
}

/// ALSA's failing function and errno, kept inside an `io::Error` (see [`errno_of`]).
#[derive(Debug)]
struct AlsaIoError {
    func: &'static str,
    errno: i32,
}

impl std::fmt::Display for AlsaIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.func,
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for AlsaIoError {}

/// The errno of an error from a [`PcmSource`] (ours from ALSA, or an OS error), if it has one.
pub fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<AlsaIoError>())
            .map(|a| a.errno)
    })
}

/// The real capture device, through alsa-lib.
pub struct AlsaPcm {
    name: String,
    pcm: Option<PCM>,
    channels: usize,
}

impl std::fmt::Debug for AlsaPcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaPcm")
            .field("name", &self.name)
            .field("open", &self.pcm.is_some())
            .finish()
    }
}

impl AlsaPcm {
    /// The ALSA PCM `name`; nothing is opened until [`PcmSource::open`].
    pub fn new(name: &str) -> AlsaPcm {
        AlsaPcm {
            name: name.to_string(),
            pcm: None,
            channels: 1,
        }
    }
}

impl PcmSource for AlsaPcm {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self, want: &MicConfig) -> io::Result<PcmFormat> {
        self.close();
        let pcm = PCM::new(&self.name, Direction::Capture, false).map_err(alsa_io)?;
        let fmt = {
            let hwp = HwParams::any(&pcm).map_err(alsa_io)?;
            hwp.set_access(Access::RWInterleaved).map_err(alsa_io)?;
            hwp.set_format(AlsaFormat::S16LE).map_err(alsa_io)?;
            hwp.set_channels_near(1).map_err(alsa_io)?;
            hwp.set_rate_near(want.rate, ValueOr::Nearest)
                .map_err(alsa_io)?;
            let period = alsa::pcm::Frames::try_from(want.period_frames.max(1)).unwrap_or(320);
            let buffer =
                alsa::pcm::Frames::try_from(want.buffer_frames.max(want.period_frames * 2))
                    .unwrap_or(period * 4);
            hwp.set_period_size_near(period, ValueOr::Nearest)
                .map_err(alsa_io)?;
            hwp.set_buffer_size_near(buffer).map_err(alsa_io)?;
            pcm.hw_params(&hwp).map_err(alsa_io)?;
            let cur = pcm.hw_params_current().map_err(alsa_io)?;
            PcmFormat {
                rate: cur.get_rate().map_err(alsa_io)?,
                channels: cur.get_channels().map_err(alsa_io)?,
                period_frames: usize::try_from(cur.get_period_size().map_err(alsa_io)?)
                    .unwrap_or(0),
                buffer_frames: usize::try_from(cur.get_buffer_size().map_err(alsa_io)?)
                    .unwrap_or(0),
            }
        };
        if fmt.channels == 0 || fmt.rate == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the device was set to {} channels at {} Hz",
                    fmt.channels, fmt.rate
                ),
            ));
        }
        pcm.prepare().map_err(alsa_io)?;
        self.channels = fmt.channels as usize;
        self.pcm = Some(pcm);
        Ok(fmt)
    }

    fn read(&mut self, buf: &mut [i16]) -> io::Result<usize> {
        let Some(pcm) = self.pcm.as_ref() else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let frames = buf.len() / self.channels;
        if frames == 0 {
            return Ok(0);
        }
        // A running stream with nothing to read within 0.5 s: report a timeout so the loop sees its stop flag.
        if pcm.state() == alsa::pcm::State::Running && !pcm.wait(Some(500)).map_err(alsa_io)? {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "snd_pcm_wait"));
        }
        let io = pcm.io_i16().map_err(alsa_io)?;
        io.readi(&mut buf[..frames * self.channels])
            .map_err(alsa_io)
    }

    fn recover(&mut self, err: &io::Error) -> io::Result<()> {
        let Some(pcm) = self.pcm.as_ref() else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let errno = errno_of(err).unwrap_or(libc::EIO);
        pcm.recover(-errno, true).map_err(alsa_io)
    }

    fn close(&mut self) {
        if let Some(pcm) = self.pcm.take() {
            let _ = pcm.drop();
        }
    }
}

/// One step of a [`ScriptedPcm`].
#[derive(Clone, Debug)]
pub enum PcmStep {
    /// Interleaved samples delivered by one `read` (at most the caller's buffer; the rest stays queued).
    Samples(Vec<i16>),
    /// `read` fails with this errno (EPIPE, ENODEV, ...).
    Error(i32),
    /// The device is unplugged: `read` fails with `errno`, then the next `reopen_failures` opens fail with
    /// ENOENT before one succeeds.
    Unplug {
        /// What `read` returns (ENODEV or EIO).
        errno: i32,
        /// Failed opens before the device is back.
        reopen_failures: u32,
    },
}

/// A [`PcmSource`] playing a script (tests, demos without a sound card). After the script it times out.
#[derive(Debug)]
pub struct ScriptedPcm {
    name: String,
    format: PcmFormat,
    /// The script.
    pub steps: VecDeque<PcmStep>,
    /// Errnos for successive `open` calls to fail with.
    pub open_errors: VecDeque<i32>,
    /// How many times `recover` was called.
    pub recovered: u32,
    /// Pause before each step.
    pub interval: Duration,
    is_open: bool,
    /// `recover` fails (with EIO) when false.
    pub recover_ok: bool,
}

impl ScriptedPcm {
    /// A device `name` delivering `format.channels` channels at `format.rate`.
    pub fn new(name: &str, rate: u32, channels: u32) -> ScriptedPcm {
        ScriptedPcm {
            name: name.to_string(),
            format: PcmFormat {
                rate,
                channels: channels.max(1),
                period_frames: 320,
                buffer_frames: 1280,
            },
            steps: VecDeque::new(),
            open_errors: VecDeque::new(),
            recovered: 0,
            interval: Duration::from_micros(200),
            is_open: false,
            recover_ok: true,
        }
    }
}

impl PcmSource for ScriptedPcm {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self, want: &MicConfig) -> io::Result<PcmFormat> {
        if let Some(errno) = self.open_errors.pop_front() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.is_open = true;
        self.format.period_frames = want.period_frames;
        self.format.buffer_frames = want.buffer_frames;
        Ok(self.format)
    }

    fn read(&mut self, buf: &mut [i16]) -> io::Result<usize> {
        if !self.is_open {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        std::thread::sleep(self.interval);
        let ch = self.format.channels as usize;
        match self.steps.pop_front() {
            None => {
                std::thread::sleep(Duration::from_millis(5));
                Err(io::Error::new(io::ErrorKind::TimedOut, "snd_pcm_wait"))
            }
            Some(PcmStep::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(PcmStep::Unplug {
                errno,
                reopen_failures,
            }) => {
                self.open_errors
                    .extend((0..reopen_failures).map(|_| libc::ENOENT));
                Err(io::Error::from_raw_os_error(errno))
            }
            Some(PcmStep::Samples(mut s)) => {
                let n = (buf.len() / ch).min(s.len() / ch) * ch;
                buf[..n].copy_from_slice(&s[..n]);
                if n < s.len() {
                    s.drain(..n);
                    self.steps.push_front(PcmStep::Samples(s));
                }
                Ok(n / ch)
            }
        }
    }

    fn recover(&mut self, _err: &io::Error) -> io::Result<()> {
        self.recovered += 1;
        if self.recover_ok {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
    }

    fn close(&mut self) {
        self.is_open = false;
    }
}
