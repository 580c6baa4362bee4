//! Where the overlay goes (`--display`):
//! - `serial:DEV[@BAUD]`: the glasses' microcontroller over a serial link, through the bridge's host transport
//!   (acknowledgements, retries, flow control, reconnection);
//! - `sim[:DIR]`: the bridge's simulated microcontroller on a pty pair, driven through that same host transport
//!   over the pty (so the whole wire path runs); with DIR it writes its framebuffer to DIR/sim.png at each present;
//! - `png:DIR`: no link at all: the commands are drawn into the same framebuffer code the simulator uses and each
//!   presented frame is written as DIR/NNNNN.png.
//!
//! "First pixel" is when the frame is on the display: the device's `DisplayAck` over a link, the written PNG
//! without one.

use crate::layout::{Cmd, Geometry};
use anyhow::{bail, Context, Result};
use flint_bridge::host::{self, Host, HostConfig};
use flint_bridge::message::Message;
use flint_bridge::sim::pty::{self, PtyConfig};
use flint_bridge::sim::Framebuffer;
use flint_bridge::sim::SimConfig;
use flint_bridge::types::ButtonAction;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `--display` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Serial { device: PathBuf, baud: u32 },
    Sim { dir: Option<PathBuf> },
    Png { dir: PathBuf },
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "serial" if !rest.is_empty() => {
                let (dev, baud) = match rest.rsplit_once('@') {
                    Some((d, b)) => (
                        d,
                        b.parse()
                            .map_err(|_| format!("--display {s}: baud {b:?} is not a number"))?,
                    ),
                    None => (rest, 2_000_000),
                };
                Ok(Target::Serial {
                    device: dev.into(),
                    baud,
                })
            }
            "sim" => Ok(Target::Sim {
                dir: (!rest.is_empty()).then(|| rest.into()),
            }),
            "png" if !rest.is_empty() => Ok(Target::Png { dir: rest.into() }),
            _ => Err(format!(
                "--display {s}: expected serial:DEV[@BAUD], sim[:DIR] or png:DIR"
            )),
        }
    }
}

/// The simulator thread of `sim`.
struct SimThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<flint_bridge::sim::Device>>>,
}

impl Drop for SimThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Sink {
    Png {
        fb: Framebuffer,
        dir: PathBuf,
    },
    Link {
        host: Box<Host>,
        _sim: Option<SimThread>,
    },
}

/// An open display.
pub struct Display {
    sink: Sink,
    pub geometry: Geometry,
    frame: u16,
    /// Frames presented so far.
    pub presents: u64,
    /// What the link reported and the loop has not said yet (drops, reconnections).
    notes: Vec<String>,
    /// Device events received and not yet taken.
    pending: Vec<Message<'static>>,
    /// Reconnections of the link already reported.
    reconnects: u64,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display")
            .field("geometry", &self.geometry)
            .field("presents", &self.presents)
            .finish_non_exhaustive()
    }
}

/// How long a present may wait for the device's `DisplayAck` before the loop goes on without it.
const DISPLAY_ACK_TIMEOUT: Duration = Duration::from_secs(2);

impl Display {
    /// Opens `target` at `geometry`.
    pub fn open(target: &Target, geometry: Geometry) -> Result<Display> {
        SimConfig {
            width: geometry.width,
            height: geometry.height,
            ..Default::default()
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("display geometry: {e}"))?;
        let sink = match target {
            Target::Png { dir } => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("creating the display's PNG folder {}", dir.display())
                })?;
                Sink::Png {
                    fb: Framebuffer::new(geometry.width, geometry.height),
                    dir: dir.clone(),
                }
            }
            Target::Serial { device, baud } => {
                let host = Host::connect(host::serial(device, *baud), HostConfig::default())
                    .with_context(|| {
                        format!("connecting to the display at {}", device.display())
                    })?;
                Sink::Link {
                    host: Box::new(host),
                    _sim: None,
                }
            }
            Target::Sim { dir } => {
                if let Some(d) = dir {
                    std::fs::create_dir_all(d).with_context(|| {
                        format!("creating the simulator's PNG folder {}", d.display())
                    })?;
                }
                let cfg = PtyConfig {
                    sim: SimConfig {
                        width: geometry.width,
                        height: geometry.height,
                        png: dir.as_ref().map(|d| d.join("sim.png")),
                        window: 4,
                    },
                    link: None,
                    drop_after: None,
                    exit_after_presents: None,
                    events: Vec::new(),
                };
                let stop = Arc::new(AtomicBool::new(false));
                let (tx, rx) = mpsc::channel();
                let s = stop.clone();
                let thread = std::thread::Builder::new()
                    .name("bridge-sim".into())
                    .spawn(move || {
                        pty::run(cfg, &s, |p| {
                            let _ = tx.send(p.to_path_buf());
                        })
                    })
                    .context("starting the display simulator")?;
                let sim = SimThread {
                    stop,
                    thread: Some(thread),
                };
                let path = rx
                    .recv_timeout(Duration::from_secs(5))
                    .context("the display simulator did not open its pty")?;
                let host = Host::connect(host::serial(&path, 2_000_000), HostConfig::default())
                    .with_context(|| {
                        format!("connecting to the simulator at {}", path.display())
                    })?;
                Sink::Link {
                    host: Box::new(host),
                    _sim: Some(sim),
                }
            }
        };
        Ok(Display {
            sink,
            geometry,
            frame: 0,
            presents: 0,
            notes: Vec::new(),
            pending: Vec::new(),
            reconnects: 0,
        })
    }

    /// Draws `cmds` and presents them; returns when the frame is on the display (see the module docs).
    pub fn show(&mut self, cmds: &[Cmd]) -> Result<Instant> {
        self.frame = self.frame.wrapping_add(1);
        let frame = self.frame;
        match &mut self.sink {
            Sink::Png { fb, dir } => {
                for c in cmds {
                    fb.render(&c.message());
                }
                fb.render(&Message::Present { frame });
                let path = dir.join(format!("{:05}.png", self.presents + 1));
                fb.write_png(&path)
                    .with_context(|| format!("writing the display frame {}", path.display()))?;
            }
            Sink::Link { host, .. } => {
                for c in cmds {
                    host.send(&c.message()).context("sending to the display")?;
                }
                host.send(&Message::Present { frame })
                    .context("presenting on the display")?;
                host.flush().context("flushing the display link")?;
                let acked = host.wait_for(
                    DISPLAY_ACK_TIMEOUT,
                    |m| matches!(m, Message::DisplayAck { frame: f } if *f == frame),
                );
                if let Err(e) = acked {
                    self.notes
                        .push(format!("display did not confirm frame {frame}: {e}"));
                }
            }
        }
        self.presents += 1;
        self.note_reconnects();
        Ok(Instant::now())
    }

    /// Notes a link that dropped and came back since the last look (the host transport reconnects by itself).
    fn note_reconnects(&mut self) {
        if let Sink::Link { host, .. } = &self.sink {
            let n = host.stats.reconnects;
            if n > self.reconnects {
                self.notes.push(format!(
                    "display link dropped and reconnected ({n} time{} so far)",
                    if n == 1 { "" } else { "s" }
                ));
                self.reconnects = n;
            }
        }
    }

    /// Reads what the microcontroller sent into `pending` (buttons, battery, temperature).
    fn poll(&mut self) {
        if let Sink::Link { host, .. } = &mut self.sink {
            if let Err(e) = host.poll() {
                self.notes.push(format!("display link: {e}"));
            }
            while let Some(m) = host.next_event() {
                if matches!(
                    m,
                    Message::Button { .. } | Message::Battery { .. } | Message::Thermal { .. }
                ) {
                    self.pending.push(m);
                }
            }
        }
        self.note_reconnects();
    }

    /// Events from the microcontroller (buttons, battery, temperature) not yet taken.
    pub fn events(&mut self) -> Vec<Message<'static>> {
        self.poll();
        std::mem::take(&mut self.pending)
    }

    /// Takes the first button press received (if any), leaving the other events for [`Display::events`]. Cheap
    /// enough to call at every token: it reads only what the link already holds.
    pub fn take_press(&mut self) -> Option<Message<'static>> {
        self.poll();
        let i = self.pending.iter().position(|m| {
            matches!(
                m,
                Message::Button {
                    action: ButtonAction::Press | ButtonAction::LongPress,
                    ..
                }
            )
        })?;
        Some(self.pending.remove(i))
    }

    /// What happened on the link since the last call, for the log.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

/// Checks a `--display` PNG folder argument early (before models load).
pub fn check_target(t: &Target) -> Result<()> {
    if let Target::Serial { device, .. } = t {
        if !device.exists() {
            bail!("display device {} does not exist", device.display());
        }
    }
    Ok(())
}
