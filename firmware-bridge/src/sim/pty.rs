//! Runs the simulated device on the master side of a pty pair. The host opens the slave side like any
//! serial port (its path is printed, and optionally published as a symlink so it survives reconnection).

use super::{Device, SimConfig};
use crate::message::Message;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// One pty pair. The device keeps the slave open too, so the master does not see a hang-up while the
/// host is between connections.
#[derive(Debug)]
pub struct Pty {
    /// The device's end.
    pub master: File,
    _slave: OwnedFd,
    /// Path of the slave device, e.g. `/dev/pts/3`.
    pub path: PathBuf,
}

/// Opens a pty pair with the slave in raw mode (no echo, no line editing, 8-bit clean).
pub fn open() -> std::io::Result<Pty> {
    let p = openpty(None, None).map_err(|e| std::io::Error::other(format!("openpty: {e}")))?;
    let mut t = tcgetattr(p.slave.as_fd())
        .map_err(|e| std::io::Error::other(format!("tcgetattr on pty: {e}")))?;
    cfmakeraw(&mut t);
    tcsetattr(p.slave.as_fd(), SetArg::TCSANOW, &t)
        .map_err(|e| std::io::Error::other(format!("tcsetattr on pty: {e}")))?;
    let path = nix::unistd::ttyname(p.slave.as_fd())
        .map_err(|e| std::io::Error::other(format!("ttyname of pty: {e}")))?;
    Ok(Pty {
        master: File::from(p.master),
        _slave: p.slave,
        path,
    })
}

/// Points `link` at `target`, atomically (a new symlink renamed over the old one).
fn publish(link: &Path, target: &Path) -> std::io::Result<()> {
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
        .map_err(|e| std::io::Error::new(e.kind(), format!("publishing {}: {e}", link.display())))
}

/// How the pty runner behaves.
#[derive(Debug, Clone, Default)]
pub struct PtyConfig {
    /// The device.
    pub sim: SimConfig,
    /// Symlink kept pointing at the current slave device.
    pub link: Option<PathBuf>,
    /// Close the link once after this many valid frames and open a new pty: a dropped cable, for testing
    /// reconnection.
    pub drop_after: Option<u64>,
    /// Return after this many presents (0 or `None`: run until `stop`).
    pub exit_after_presents: Option<u64>,
    /// Events the device sends on its own (a button pressed, the battery running low, the case heating up),
    /// each once, as soon as the device has shown its `after_presents`-th frame.
    pub events: Vec<ScheduledEvent>,
}

/// A device event [`run`] sends after a number of presents: how tests and demos press the glasses' button or
/// heat them up.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledEvent {
    /// Sent once this many frames have been presented (0: right after the host's `Hello`).
    pub after_presents: u64,
    /// A device-to-host event: `Button`, `Battery`, `Thermal` or `Imu`.
    pub message: Message<'static>,
}

impl ScheduledEvent {
    /// `message` after `after_presents` presents; `None` unless it is an event a device sends on its own.
    pub fn new(after_presents: u64, message: Message<'static>) -> Option<Self> {
        matches!(
            message,
            Message::Button { .. }
                | Message::Battery { .. }
                | Message::Thermal { .. }
                | Message::Imu { .. }
        )
        .then_some(Self {
            after_presents,
            message,
        })
    }
}

/// Serves the device until `stop` is set or the present limit is reached; returns the device so callers
/// can inspect its framebuffer. `on_link` is called with each new slave path.
pub fn run(
    cfg: PtyConfig,
    stop: &AtomicBool,
    mut on_link: impl FnMut(&Path),
) -> std::io::Result<Device> {
    cfg.sim
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut dev = Device::new(cfg.sim.clone());
    let mut drop_after = cfg.drop_after;
    let mut pending: Vec<Option<ScheduledEvent>> = cfg.events.iter().cloned().map(Some).collect();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    // Set when the present limit is reached; the device keeps serving a little longer so the host can read
    // the last acknowledgements (closing a pty master discards what the slave has not read yet).
    let mut exit_at: Option<std::time::Instant> = None;
    loop {
        let mut pty = open()?;
        if let Some(l) = &cfg.link {
            publish(l, &pty.path)?;
        }
        on_link(&pty.path);
        dev.reset_link();
        let base = dev.stats.frames;
        loop {
            if stop.load(Ordering::Relaxed)
                || exit_at.is_some_and(|t| std::time::Instant::now() >= t)
            {
                return Ok(dev);
            }
            let ready = {
                let mut fds = [PollFd::new(pty.master.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::from(50u16))
                    .map_err(|e| std::io::Error::other(format!("poll pty: {e}")))?
            };
            if ready == 0 {
                continue;
            }
            let n = match pty.master.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("reading pty {}: {e}", pty.path.display()),
                    ))
                }
            };
            out.clear();
            dev.on_bytes(&buf[..n], &mut out)?;
            // Scheduled events wait for the host's hello, so a host connecting late still gets them.
            if dev.stats.frames > 0 {
                let presents = dev.stats.presents;
                for e in &mut pending {
                    if let Some(ev) = e.take_if(|ev| ev.after_presents <= presents) {
                        dev.event(&ev.message, &mut out);
                    }
                }
            }
            pty.master.write_all(&out)?;
            if let Some(k) = cfg.exit_after_presents.filter(|&k| k > 0) {
                if dev.stats.presents >= k && exit_at.is_none() {
                    exit_at =
                        Some(std::time::Instant::now() + std::time::Duration::from_millis(500));
                }
            }
            if drop_after.is_some_and(|d| dev.stats.frames - base >= d) {
                drop_after = None;
                break; // drops `pty`: the host's reads and writes fail and it must reconnect
            }
        }
    }
}
