//! The host side of the link: a transport over a serial device (anything `Read + Write`, usually a
//! `serialport` TTY) with
//! - hello: version and capability negotiation on every (re)connection;
//! - ack and retry: every drawing/display command is kept until the device acknowledges its sequence
//!   number, and resent after `ack_timeout`, at most `max_retries` times;
//! - flow control: at most `window` commands unacknowledged, the window set by the device's `flow` messages
//!   (0 pauses the host);
//! - reconnection: a read or write error drops the link; the host reopens it through its connector until
//!   `reconnect_timeout`, says hello again and resends what was unacknowledged.
//!
//! Events from the device (buttons, IMU, battery, thermal, display acks, heartbeats) are queued for
//! [`Host::next_event`].

use crate::message::{Hello, Message};
use crate::types::{AckStatus, Caps};
use crate::{encode_frame, Decoder, EncodeError, MAX_PAYLOAD, MAX_WIRE, PROTOCOL_VERSION};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::prelude::rust_2021::*;
use std::time::{Duration, Instant};

/// A byte link to the device.
pub trait Link: Read + Write + Send {}
impl<T: Read + Write + Send> Link for T {}

/// Opens (or reopens) the link.
pub type Connector = Box<dyn FnMut() -> std::io::Result<Box<dyn Link>> + Send>;

/// A connector for a serial device: `path` (a tty, a pty slave or a symlink to one) at `baud`, 8N1, no
/// flow control in hardware. Reads time out after 5 ms so the host can service retries.
pub fn serial(path: impl Into<PathBuf>, baud: u32) -> Connector {
    let path = path.into();
    Box::new(move || {
        let port = serialport::new(path.to_string_lossy(), baud)
            .timeout(Duration::from_millis(5))
            .open_native()
            .map_err(|e| {
                std::io::Error::other(format!("opening serial device {}: {e}", path.display()))
            })?;
        Ok(Box::new(port) as Box<dyn Link>)
    })
}

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Time to wait for an acknowledgement before resending.
    pub ack_timeout: Duration,
    /// Resends of one frame before giving up.
    pub max_retries: u32,
    /// How long to keep trying to reopen a dropped link.
    pub reconnect_timeout: Duration,
    /// Capabilities the host asks for.
    pub caps: Caps,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            ack_timeout: Duration::from_millis(200),
            max_retries: 5,
            reconnect_timeout: Duration::from_secs(5),
            caps: Caps::ALL_V1,
        }
    }
}

/// Errors of the host transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The link could not be (re)opened in time.
    #[error("link down and not back within {waited:?}: {last}")]
    LinkDown {
        /// How long reconnection was tried.
        waited: Duration,
        /// The last error.
        last: std::io::Error,
    },
    /// The device never answered hello.
    #[error("no hello from the device after {tries} tries")]
    NoHello {
        /// Hellos sent.
        tries: u32,
    },
    /// The device speaks no common protocol version.
    #[error("device speaks protocol version {device}, host {host}")]
    Incompatible {
        /// Device's version.
        device: u8,
        /// Host's version.
        host: u8,
    },
    /// A command was not acknowledged after all retries.
    #[error("frame seq {seq} not acknowledged after {tries} sends")]
    NoAck {
        /// Sequence number.
        seq: u16,
        /// Sends.
        tries: u32,
    },
    /// The device refused a command.
    #[error("device answered {status:?} to frame seq {seq}")]
    Rejected {
        /// Sequence number.
        seq: u16,
        /// Status.
        status: AckStatus,
    },
    /// Waiting for something timed out.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The message cannot be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] EncodeError),
}

/// Transport counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Frames written, retransmissions included.
    pub frames_sent: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Retransmissions.
    pub retries: u64,
    /// Successful reconnections.
    pub reconnects: u64,
    /// Frames from the device dropped as corrupt.
    pub rx_errors: u64,
}

#[derive(Debug)]
struct Pending {
    seq: u16,
    wire: Vec<u8>,
    sent: Instant,
    tries: u32,
}

/// A connected host.
pub struct Host {
    connect: Connector,
    link: Option<Box<dyn Link>>,
    cfg: HostConfig,
    dec: Box<Decoder>,
    next_seq: u16,
    pending: VecDeque<Pending>,
    window: u8,
    peer: Option<Hello>,
    events: VecDeque<Message<'static>>,
    failure: Option<HostError>,
    /// Counters.
    pub stats: HostStats,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("peer", &self.peer)
            .field("window", &self.window)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Host {
    /// Opens the link and negotiates.
    pub fn connect(connect: Connector, cfg: HostConfig) -> Result<Host, HostError> {
        let mut h = Host {
            connect,
            link: None,
            cfg,
            dec: Box::new(Decoder::new()),
            next_seq: 0,
            pending: VecDeque::new(),
            window: 1,
            peer: None,
            events: VecDeque::new(),
            failure: None,
            stats: HostStats::default(),
        };
        h.reconnect()?;
        Ok(h)
    }

    /// The device's hello, after negotiation.
    pub fn peer(&self) -> Option<Hello> {
        self.peer
    }

    /// Capabilities both sides have.
    pub fn caps(&self) -> Caps {
        self.peer
            .map_or(Caps(0), |p| p.caps.intersect(self.cfg.caps))
    }

    /// Current flow-control window.
    pub fn window(&self) -> u8 {
        self.window
    }

    /// Commands sent and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    fn take_seq(&mut self) -> u16 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    fn write_raw(&mut self, wire: &[u8]) -> std::io::Result<()> {
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| std::io::Error::new(ErrorKind::NotConnected, "link down"))?;
        link.write_all(wire)?;
        link.flush()?;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += wire.len() as u64;
        Ok(())
    }

    /// Reopens the link (the old one is dropped), says hello, and resends every unacknowledged command.
    fn reconnect(&mut self) -> Result<(), HostError> {
        let first = self.link.is_none() && self.peer.is_none() && self.stats.frames_sent == 0;
        self.link = None;
        self.peer = None;
        *self.dec = Decoder::new();
        let start = Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            match (self.connect)() {
                Ok(l) => {
                    self.link = Some(l);
                    match self.handshake() {
                        Ok(()) => break,
                        Err(HostError::LinkDown { .. })
                            if start.elapsed() < self.cfg.reconnect_timeout =>
                        {
                            self.link = None;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if start.elapsed() >= self.cfg.reconnect_timeout => {
                    return Err(HostError::LinkDown {
                        waited: start.elapsed(),
                        last: e,
                    });
                }
                Err(_) => {}
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        if !first {
            self.stats.reconnects += 1;
        }
        let resend: Vec<Vec<u8>> = self.pending.iter().map(|p| p.wire.clone()).collect();
        for p in self.pending.iter_mut() {
            p.sent = Instant::now();
        }
        for w in resend {
            self.write_raw(&w).map_err(|e| HostError::LinkDown {
                waited: start.elapsed(),
                last: e,
            })?;
            self.stats.retries += 1;
        }
        Ok(())
    }

    fn handshake(&mut self) -> Result<(), HostError> {
        let hello = Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            max_payload: MAX_PAYLOAD as u16,
            caps: self.cfg.caps,
            width: 0,
            height: 0,
        });
        let mut buf = [0u8; MAX_WIRE];
        for _ in 0..=self.cfg.max_retries {
            let seq = self.take_seq();
            let n = encode_frame(seq, &hello, &mut buf)?;
            let start = Instant::now();
            self.write_raw(&buf[..n]).map_err(|e| HostError::LinkDown {
                waited: start.elapsed(),
                last: e,
            })?;
            while start.elapsed() < self.cfg.ack_timeout {
                self.read_some().map_err(|e| HostError::LinkDown {
                    waited: start.elapsed(),
                    last: e,
                })?;
                if let Some(p) = self.peer {
                    if p.version == 0 {
                        return Err(HostError::Incompatible {
                            device: p.version,
                            host: PROTOCOL_VERSION,
                        });
                    }
                    return Ok(());
                }
            }
        }
        Err(HostError::NoHello {
            tries: self.cfg.max_retries + 1,
        })
    }

    /// Reads what is available (waiting at most the link's read timeout) and handles it.
    fn read_some(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 1024];
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| std::io::Error::new(ErrorKind::NotConnected, "link down"))?;
        let n = match link.read(&mut buf) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "device closed the link",
                ))
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            let Some(r) = self.dec.push(b) else { continue };
            let Ok(msg) = r.map_err(|_| ()).and_then(|f| f.message().map_err(|_| ())) else {
                self.stats.rx_errors += 1;
                continue;
            };
            match msg {
                Message::Hello(h) => {
                    let version = h.version.min(PROTOCOL_VERSION);
                    self.peer = Some(Hello { version, ..h });
                }
                Message::Ack { seq, status } => {
                    if let Some(i) = self.pending.iter().position(|p| p.seq == seq) {
                        match status {
                            AckStatus::Ok => {
                                self.pending.remove(i);
                            }
                            // Busy: keep it; it is resent when its timer runs out.
                            AckStatus::Busy => {}
                            AckStatus::Malformed | AckStatus::Unsupported => {
                                self.pending.remove(i);
                                self.failure
                                    .get_or_insert(HostError::Rejected { seq, status });
                            }
                        }
                    }
                }
                Message::Flow { window } => self.window = window,
                other => {
                    if let Some(m) = other.to_static() {
                        self.events.push_back(m);
                    }
                }
            }
        }
        Ok(())
    }

    /// Services the link once: reads, resends overdue commands, reconnects if the link dropped.
    pub fn poll(&mut self) -> Result<(), HostError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let io = self.read_some().and_then(|()| {
            let now = Instant::now();
            let mut resend = Vec::new();
            for p in self.pending.iter_mut() {
                if now.duration_since(p.sent) >= self.cfg.ack_timeout {
                    if p.tries > self.cfg.max_retries {
                        return Ok(Some(HostError::NoAck {
                            seq: p.seq,
                            tries: p.tries,
                        }));
                    }
                    p.tries += 1;
                    p.sent = now;
                    resend.push(p.wire.clone());
                }
            }
            for w in resend {
                self.write_raw(&w)?;
                self.stats.retries += 1;
            }
            Ok(None)
        });
        match io {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(e),
            Err(_) => self.reconnect(),
        }
    }

    /// Sends a message. Commands that need an acknowledgement wait (servicing the link) until the flow
    /// window has room; returns the frame's sequence number.
    pub fn send(&mut self, m: &Message<'_>) -> Result<u16, HostError> {
        let mut buf = [0u8; MAX_WIRE];
        if m.needs_ack() {
            let start = Instant::now();
            while self.pending.len() >= self.window as usize {
                if start.elapsed()
                    > self.cfg.reconnect_timeout + self.cfg.ack_timeout * (self.cfg.max_retries + 1)
                {
                    return Err(HostError::Timeout("room in the flow-control window"));
                }
                self.poll()?;
            }
        }
        let seq = self.take_seq();
        let n = encode_frame(seq, m, &mut buf)?;
        if m.needs_ack() {
            self.pending.push_back(Pending {
                seq,
                wire: buf[..n].to_vec(),
                sent: Instant::now(),
                tries: 1,
            });
        }
        if self.write_raw(&buf[..n]).is_err() {
            // The frame is pending (if it needs an ack) and is resent after reconnection.
            self.reconnect()?;
        }
        Ok(seq)
    }

    /// Waits until every command has been acknowledged.
    pub fn flush(&mut self) -> Result<(), HostError> {
        while !self.pending.is_empty() {
            self.poll()?;
        }
        self.poll()
    }

    /// The next queued event, if any (does not read the link).
    pub fn next_event(&mut self) -> Option<Message<'static>> {
        self.events.pop_front()
    }

    /// Services the link until `pred` accepts an event or `timeout` passes. Events before it are kept.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Message<'static>) -> bool,
    ) -> Result<Message<'static>, HostError> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.events.iter().position(&mut pred) {
                if let Some(m) = self.events.remove(i) {
                    return Ok(m);
                }
            }
            if start.elapsed() > timeout {
                return Err(HostError::Timeout("an event from the device"));
            }
            self.poll()?;
        }
    }
}
