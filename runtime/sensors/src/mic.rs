//! The microphone thread: S16_LE from a [`PcmSource`] (ALSA by default), downmixed to mono, resampled to
//! 16 kHz when the device runs at another rate, into a bounded ring the loop drains with [`Mic::read`].
//!
//! - Format: 16-bit, the rate, period and buffer nearest to [`MicConfig`]'s (the board profile's), one channel
//!   if the device allows it; several channels are averaged. Samples are `s / 32768`, so 16 kHz mono input
//!   comes out exactly.
//! - Resampling: rubato's FFT resampler (`FftFixedIn`, the same filter family flint-media uses) streaming in
//!   chunks of ~20 ms of input; its delay is dropped at the start.
//! - Overruns: a read failing with EPIPE (or ESTRPIPE) is recovered with `snd_pcm_recover` and reported as
//!   [`MicEvent::Overrun`]; capture continues. If recovery fails, or the device fails otherwise (ENODEV, EIO),
//!   [`MicEvent::Lost`], then reopening with backoff, [`MicEvent::Opened`] and [`MicEvent::Back`] when samples
//!   flow again.
//! - The ring holds at most [`MicConfig::ring_samples`]; when it is full, [`Overflow`] decides what is lost,
//!   reported once per episode as [`MicEvent::Dropped`]. Events go through a bounded channel
//!   ([`crate::camera::EVENT_QUEUE`]).

use crate::clock::{now_ms, sleep_unless, Backoff};
use crate::error::SensorError;
use crate::pcm::{errno_of, AlsaPcm, PcmFormat, PcmSource};
use crate::recording::AUDIO_RATE;
use rubato::{FftFixedIn, Resampler};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What to lose when the ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest samples (live use: the newest audio matters).
    DropOldest,
    /// Drop the incoming samples (keeps what was captured first; tests, recording).
    DropNewest,
}

/// What the microphone is asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicConfig {
    /// Device sample rate to ask for (16 kHz; another rate is resampled to 16 kHz).
    pub rate: u32,
    /// Period in frames (board profile).
    pub period_frames: usize,
    /// Device buffer in frames (board profile; at least two periods).
    pub buffer_frames: usize,
    /// Capacity of the 16 kHz ring, in samples.
    pub ring_samples: usize,
    /// What to lose when the ring is full.
    pub overflow: Overflow,
    /// Reopening after the device is lost.
    pub backoff: Backoff,
}

impl Default for MicConfig {
    /// 16 kHz, 20 ms periods, 80 ms buffer, a 10 s ring dropping the oldest, 100 ms → 2 s backoff.
    fn default() -> Self {
        MicConfig {
            rate: AUDIO_RATE,
            period_frames: 320,
            buffer_frames: 1280,
            ring_samples: 10 * AUDIO_RATE as usize,
            overflow: Overflow::DropOldest,
            backoff: Backoff::default(),
        }
    }
}

/// Something that happened to the microphone.
#[derive(Debug)]
pub enum MicEvent {
    /// The device was (re)opened with this format.
    Opened {
        /// The device.
        device: String,
        /// What it was set to.
        format: PcmFormat,
    },
    /// An overrun (EPIPE) or suspend (ESTRPIPE), recovered: some audio was lost.
    Overrun {
        /// The device.
        device: String,
    },
    /// The device failed; reopening with backoff.
    Lost {
        /// The device.
        device: String,
        /// The error.
        error: std::io::Error,
    },
    /// Samples flow again after [`MicEvent::Lost`].
    Back {
        /// The device.
        device: String,
    },
    /// The ring was full (the consumer is behind): samples were lost.
    Dropped {
        /// The device.
        device: String,
    },
}

struct Shared {
    ring: Mutex<VecDeque<f32>>,
    stop: AtomicBool,
    dropped: AtomicU64,
}

/// A running microphone. See the module docs.
pub struct Mic {
    device: String,
    format: PcmFormat,
    shared: Arc<Shared>,
    events: Receiver<MicEvent>,
    thread: Option<JoinHandle<()>>,
    started_ms: u64,
    position: u64,
}

impl std::fmt::Debug for Mic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mic")
            .field("device", &self.device)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Mic {
    /// Opens the ALSA capture PCM `device` (`default`, `hw:1,0`) and starts the microphone thread. Fails if
    /// it cannot be opened now.
    pub fn start(device: &str, config: MicConfig) -> Result<Mic, SensorError> {
        Self::start_with(Box::new(AlsaPcm::new(device)), config)
    }

    /// As [`Mic::start`], over any [`PcmSource`] (e.g. a [`crate::ScriptedPcm`]).
    pub fn start_with(mut src: Box<dyn PcmSource>, config: MicConfig) -> Result<Mic, SensorError> {
        let device = src.name().to_string();
        let format = src
            .open(&config)
            .map_err(|e| SensorError::device(&device, "open capture PCM", e))?;
        let conv = Converter::new(&device, format)?;
        let (tx, rx) = sync_channel(crate::camera::EVENT_QUEUE);
        let _ = tx.try_send(MicEvent::Opened {
            device: device.clone(),
            format,
        });
        let shared = Arc::new(Shared {
            ring: Mutex::new(VecDeque::with_capacity(config.ring_samples.min(1 << 22))),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let started_ms = now_ms();
        let thread = std::thread::Builder::new()
            .name(format!("mic {device}"))
            .spawn(move || run(src, config, format, conv, &sh, &tx))
            .map_err(|e| SensorError::device(&device, "spawn the microphone thread", e))?;
        Ok(Mic {
            device,
            format,
            shared,
            events: rx,
            thread: Some(thread),
            started_ms,
            position: 0,
        })
    }

    /// Appends the 16 kHz mono samples available now to `out`; returns how many.
    pub fn read(&mut self, out: &mut Vec<f32>) -> usize {
        let mut ring = self.shared.ring.lock().unwrap_or_else(|e| e.into_inner());
        let n = ring.len();
        out.extend(ring.drain(..));
        self.position += n as u64;
        n
    }

    /// 16 kHz samples handed out by [`Mic::read`] so far: the next sample is at about
    /// `started_ms() + position() / 16` ms (less any audio lost to overruns or a full ring).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// [`crate::clock::now_ms`] when the microphone started.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Samples lost to a full ring so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The format the device was set to at start.
    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// The microphone's events (bounded).
    pub fn events(&self) -> &Receiver<MicEvent> {
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

impl Drop for Mic {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Interleaved i16 at the device's rate to 16 kHz mono f32.
struct Converter {
    channels: usize,
    resampler: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    skip: usize,
}

impl Converter {
    fn new(device: &str, f: PcmFormat) -> Result<Converter, SensorError> {
        let resampler = if f.rate == AUDIO_RATE {
            None
        } else {
            let chunk = (f.rate as usize / 50).max(64);
            Some(
                FftFixedIn::<f32>::new(f.rate as usize, AUDIO_RATE as usize, chunk, 1, 1).map_err(
                    |e| SensorError::Unsupported {
                        device: device.to_string(),
                        why: format!("cannot resample {} Hz to 16 kHz: {e}", f.rate),
                    },
                )?,
            )
        };
        let skip = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(Converter {
            channels: f.channels.max(1) as usize,
            resampler,
            pending: Vec::new(),
            skip,
        })
    }

    fn push(&mut self, interleaved: &[i16], out: &mut Vec<f32>) {
        let ch = self.channels;
        let mono = interleaved.chunks_exact(ch).map(|f| {
            if ch == 1 {
                f32::from(f[0]) / 32768.0
            } else {
                f.iter().map(|&s| f32::from(s)).sum::<f32>() / (32768.0 * ch as f32)
            }
        });
        let Some(r) = self.resampler.as_mut() else {
            out.extend(mono);
            return;
        };
        self.pending.extend(mono);
        let mut used = 0;
        while self.pending.len() - used >= r.input_frames_next() {
            let n = r.input_frames_next();
            let Ok(y) = r.process(&[&self.pending[used..used + n]], None) else {
                break;
            };
            used += n;
            let y = &y[0];
            let k = self.skip.min(y.len());
            self.skip -= k;
            out.extend_from_slice(&y[k..]);
        }
        self.pending.drain(..used);
    }
}

fn push_ring(sh: &Shared, cfg: &MicConfig, samples: &[f32]) -> bool {
    let mut ring = sh.ring.lock().unwrap_or_else(|e| e.into_inner());
    let cap = cfg.ring_samples.max(1);
    let free = cap.saturating_sub(ring.len());
    if samples.len() <= free {
        ring.extend(samples);
        return false;
    }
    match cfg.overflow {
        Overflow::DropNewest => {
            ring.extend(&samples[..free]);
            sh.dropped
                .fetch_add((samples.len() - free) as u64, Ordering::Relaxed);
        }
        Overflow::DropOldest => {
            let keep = &samples[samples.len().saturating_sub(cap)..];
            let excess = (ring.len() + keep.len()).saturating_sub(cap);
            ring.drain(..excess);
            ring.extend(keep);
            sh.dropped.fetch_add(
                (samples.len() - keep.len() + excess) as u64,
                Ordering::Relaxed,
            );
        }
    }
    true
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(errno_of(e), Some(libc::EAGAIN) | Some(libc::EINTR))
        || matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::Interrupted
        )
}

fn run(
    mut src: Box<dyn PcmSource>,
    cfg: MicConfig,
    mut format: PcmFormat,
    mut conv: Converter,
    sh: &Shared,
    tx: &SyncSender<MicEvent>,
) {
    let name = src.name().to_string();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let (mut is_open, mut lost, mut overflowing) = (true, false, false);
    let mut delay = cfg.backoff.initial;
    let event = |e: MicEvent| {
        let _ = tx.try_send(e);
    };
    while !sh.stop.load(Ordering::Relaxed) {
        if !is_open {
            if !sleep_unless(&sh.stop, delay) {
                break;
            }
            match src.open(&cfg).map(|f| (f, Converter::new(&name, f))) {
                Ok((f, Ok(c))) => {
                    (format, conv, is_open) = (f, c, true);
                    event(MicEvent::Opened {
                        device: name.clone(),
                        format,
                    });
                }
                Ok((_, Err(_))) | Err(_) => {
                    src.close();
                    delay = cfg.backoff.next(delay);
                    continue;
                }
            }
        }
        let frames = format.period_frames.clamp(16, 1 << 16);
        buf.resize(frames * format.channels.max(1) as usize, 0);
        let failure = match src.read(&mut buf) {
            Ok(0) => continue,
            Ok(n) => {
                if lost {
                    lost = false;
                    delay = cfg.backoff.initial;
                    event(MicEvent::Back {
                        device: name.clone(),
                    });
                }
                out.clear();
                let n = (n * format.channels.max(1) as usize).min(buf.len());
                conv.push(&buf[..n], &mut out);
                let full = push_ring(sh, &cfg, &out);
                if full && !overflowing {
                    event(MicEvent::Dropped {
                        device: name.clone(),
                    });
                }
                overflowing = full;
                continue;
            }
            Err(e) if is_transient(&e) => continue,
            Err(e) if matches!(errno_of(&e), Some(libc::EPIPE) | Some(libc::ESTRPIPE)) => {
                event(MicEvent::Overrun {
                    device: name.clone(),
                });
                match src.recover(&e) {
                    Ok(()) => continue,
                    Err(e2) => e2,
                }
            }
            Err(e) => e,
        };
        src.close();
        is_open = false;
        if !lost {
            lost = true;
            delay = cfg.backoff.initial;
            event(MicEvent::Lost {
                device: name.clone(),
                error: failure,
            });
        } else {
            delay = cfg.backoff.next(delay);
        }
    }
    src.close();
}
