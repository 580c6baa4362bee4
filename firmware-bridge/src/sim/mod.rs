//! The microcontroller simulator: decodes host frames, renders the drawing commands with embedded-graphics
//! into an RGB565 framebuffer, acknowledges like the firmware would, and writes the shown frame as a PNG.
//!
//! [`Device`] is the protocol logic over byte slices; [`pty::run`] puts it on the master side of a pty
//! pair so that the host talks to it through a real tty.

pub mod pty;
mod render;

pub use render::Framebuffer;

use crate::message::{Hello, Message};
use crate::types::{AckStatus, Caps};
use crate::{encode_frame, Decoder, MAX_PAYLOAD, MAX_WIRE, PROTOCOL_VERSION};
use std::path::PathBuf;
use std::prelude::rust_2021::*;
use std::time::Instant;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Display width.
    pub width: u16,
    /// Display height.
    pub height: u16,
    /// Where each presented frame is written as PNG (atomically); `None` to keep it in memory only.
    pub png: Option<PathBuf>,
    /// Flow-control window advertised after hello: how many unacknowledged frames the host may send.
    pub window: u8,
}

/// Most pixels a simulated display may have (`width × height`): 4096 × 4096, 32 MiB of RGB565.
pub const MAX_PIXELS: u32 = 4096 * 4096;

impl SimConfig {
    /// Checks the display size: neither side 0, at most [`MAX_PIXELS`] in all.
    pub fn validate(&self) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return Err(format!(
                "display size {w}x{h}: width and height must be positive"
            ));
        }
        if u32::from(w) * u32::from(h) > MAX_PIXELS {
            return Err(format!(
                "display size {w}x{h} exceeds the cap of {MAX_PIXELS} pixels"
            ));
        }
        Ok(())
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            width: 640,
            height: 480,
            png: None,
            window: 4,
        }
    }
}

/// Counters a test or the CLI can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Frames with a valid message.
    pub frames: u64,
    /// Frames dropped (framing or message errors).
    pub errors: u64,
    /// Retransmissions recognised by sequence number and acknowledged without drawing twice.
    pub duplicates: u64,
    /// Present commands executed.
    pub presents: u64,
}

/// The simulated microcontroller.
#[derive(Debug)]
pub struct Device {
    cfg: SimConfig,
    /// The display's framebuffer as last drawn.
    pub fb: Framebuffer,
    dec: Box<Decoder>,
    /// Recently executed host sequence numbers, to acknowledge retransmissions without executing them again.
    recent: [Option<u16>; 32],
    recent_at: usize,
    seq: u16,
    start: Instant,
    /// Counters.
    pub stats: SimStats,
    /// Last brightness level received.
    pub brightness: u8,
    /// What the device reports after each hello: its battery and its temperature (the last sent of each).
    battery: Message<'static>,
    thermal: Message<'static>,
}

impl Device {
    /// A device with a black display.
    pub fn new(cfg: SimConfig) -> Self {
        let fb = Framebuffer::new(cfg.width, cfg.height);
        Device {
            cfg,
            fb,
            dec: Box::new(Decoder::new()),
            recent: [None; 32],
            recent_at: 0,
            seq: 0,
            start: Instant::now(),
            stats: SimStats::default(),
            brightness: 255,
            battery: Message::Battery {
                millivolts: 3987,
                percent: 81,
                charging: false,
            },
            thermal: Message::Thermal {
                sensor: 0,
                centi_celsius: 3650,
            },
        }
    }

    /// Forgets a half-received frame, as after a link reset.
    pub fn reset_link(&mut self) {
        *self.dec = Decoder::new();
    }

    fn uptime_ms(&self) -> u32 {
        self.start.elapsed().as_millis() as u32
    }

    /// Sends a device event on the device's own initiative (a button, a battery or temperature report); the
    /// battery and temperature sent become what the device reports after its next hello.
    pub fn event(&mut self, m: &Message<'static>, out: &mut Vec<u8>) {
        match m {
            Message::Battery { .. } => self.battery = *m,
            Message::Thermal { .. } => self.thermal = *m,
            _ => {}
        }
        self.emit(m, out);
    }

    /// Appends one frame from the device to `out`.
    pub fn emit(&mut self, m: &Message<'_>, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_WIRE];
        // Every message the device sends is small and fixed-size, so encoding cannot fail.
        if let Ok(n) = encode_frame(self.seq, m, &mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        self.seq = self.seq.wrapping_add(1);
    }

    /// Handles received bytes; appends the device's replies to `out`.
    pub fn on_bytes(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut replies: Vec<Message<'static>> = Vec::new();
        for &b in data {
            let Some(r) = self.dec.push(b) else { continue };
            let Ok(f) = r else {
                self.stats.errors += 1;
                continue;
            };
            let m = match f.message() {
                Ok(m) => m,
                Err(_) => {
                    self.stats.errors += 1;
                    replies.push(Message::Ack {
                        seq: f.seq,
                        status: AckStatus::Malformed,
                    });
                    continue;
                }
            };
            self.stats.frames += 1;
            match m {
                Message::Hello(_) => {
                    replies.push(Message::Hello(Hello {
                        version: PROTOCOL_VERSION,
                        max_payload: MAX_PAYLOAD as u16,
                        caps: Caps::ALL_V1,
                        width: self.cfg.width,
                        height: self.cfg.height,
                    }));
                    replies.push(Message::Flow {
                        window: self.cfg.window,
                    });
                    replies.push(self.battery);
                    replies.push(self.thermal);
                }
                Message::Heartbeat { .. } => replies.push(Message::Heartbeat {
                    uptime_ms: self.uptime_ms(),
                }),
                m if m.needs_ack() => {
                    if self.recent.contains(&Some(f.seq)) {
                        self.stats.duplicates += 1;
                        replies.push(Message::Ack {
                            seq: f.seq,
                            status: AckStatus::Ok,
                        });
                        continue;
                    }
                    self.recent[self.recent_at] = Some(f.seq);
                    self.recent_at = (self.recent_at + 1) % self.recent.len();
                    if let Message::Brightness { level } = m {
                        self.brightness = level;
                    }
                    self.fb.render(&m);
                    replies.push(Message::Ack {
                        seq: f.seq,
                        status: AckStatus::Ok,
                    });
                    if let Message::Present { frame } = m {
                        self.stats.presents += 1;
                        if let Some(p) = &self.cfg.png {
                            self.fb.write_png(p)?;
                        }
                        replies.push(Message::DisplayAck { frame });
                    }
                }
                // Events and acks only ever flow from the device; a host sending them is answered as
                // unsupported rather than ignored, so the mistake shows.
                _ => replies.push(Message::Ack {
                    seq: f.seq,
                    status: AckStatus::Unsupported,
                }),
            }
        }
        for m in &replies {
            self.emit(m, out);
        }
        Ok(())
    }
}
