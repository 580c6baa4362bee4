//! The host transport against the simulator through a real tty (a pty pair): drawing, acknowledgement,
//! retry over a lossy link, flow control, and reconnection after the link drops.

use flint_bridge::host::{self, Connector, Host, HostConfig, Link};
use flint_bridge::json::{JsonFrame, JsonMsg};
use flint_bridge::sim::pty::{self, PtyConfig, ScheduledEvent};
use flint_bridge::sim::{Framebuffer, SimConfig};
use flint_bridge::{Message, Rgb565};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

const SAMPLE: &str = include_str!("../samples/messages.jsonl");

/// The host-to-device commands of the sample file.
/// qemu-user does not translate the termios ioctls the serial transport uses ("Not a typewriter"), so these tests
/// can only run natively; scripts/test-aarch64.sh sets FLINT_QEMU_CPU. Everything else of the bridge runs there.
fn under_qemu_user() -> bool {
    if let Ok(cpu) = std::env::var("FLINT_QEMU_CPU") {
        eprintln!("skipped: pty tests need native termios, not qemu-user (cpu {cpu})");
        return true;
    }
    false
}

fn sample_commands() -> Vec<JsonMsg> {
    SAMPLE
        .lines()
        .map(|l| serde_json::from_str::<JsonFrame>(l).unwrap().msg)
        .filter(|m| {
            let mut s = Vec::new();
            m.with_message(&mut s, |m| m.needs_ack()).unwrap()
        })
        .collect()
}

struct Sim {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<std::io::Result<flint_bridge::sim::Device>>>,
    link: PathBuf,
    _dir: tempfile::TempDir,
    png: PathBuf,
}

impl Sim {
    fn start(window: u8, drop_after: Option<u64>) -> Sim {
        Sim::start_with(window, drop_after, Vec::new())
    }

    fn start_with(window: u8, drop_after: Option<u64>, events: Vec<ScheduledEvent>) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("tty");
        let png = dir.path().join("display.png");
        let cfg = PtyConfig {
            sim: SimConfig {
                width: 640,
                height: 480,
                png: Some(png.clone()),
                window,
            },
            link: Some(link.clone()),
            drop_after,
            exit_after_presents: None,
            events,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let s2 = stop.clone();
        let handle = thread::spawn(move || {
            pty::run(cfg, &s2, |p| {
                let _ = tx.send(p.to_path_buf());
            })
        });
        let first = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("simulator did not start");
        assert!(first.starts_with("/dev/pts"), "{}", first.display());
        Sim {
            stop,
            handle: Some(handle),
            link,
            _dir: dir,
            png,
        }
    }

    fn finish(mut self) -> flint_bridge::sim::Device {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap().unwrap()
    }
}

fn send_all(h: &mut Host, cmds: &[JsonMsg]) {
    let mut s = Vec::new();
    for m in cmds {
        m.with_message(&mut s, |m| h.send(m)).unwrap().unwrap();
    }
    h.flush().unwrap();
}

/// What the sample overlay looks like when rendered directly, without any link.
fn reference() -> Framebuffer {
    let mut fb = Framebuffer::new(640, 480);
    let mut s = Vec::new();
    for m in sample_commands() {
        m.with_message(&mut s, |m| fb.render(m)).unwrap();
    }
    fb
}

fn png_pixels(p: &Path) -> Vec<u8> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (640, 480));
    buf.truncate(info.buffer_size());
    buf
}

#[test]
fn overlay_over_a_tty_matches_direct_rendering() {
    if under_qemu_user() {
        return;
    }
    let sim = Sim::start(4, None);
    let mut h = Host::connect(host::serial(&sim.link, 2_000_000), HostConfig::default()).unwrap();
    let peer = h.peer().unwrap();
    assert_eq!((peer.version, peer.width, peer.height), (1, 640, 480));
    send_all(&mut h, &sample_commands());
    let ack = h
        .wait_for(Duration::from_secs(5), |m| {
            matches!(m, Message::DisplayAck { .. })
        })
        .unwrap();
    assert_eq!(ack, Message::DisplayAck { frame: 1 });
    assert_eq!(h.window(), 4);
    // The hello reply was followed by battery and thermal reports.
    assert!(h
        .wait_for(Duration::from_secs(1), |m| matches!(
            m,
            Message::Battery { .. }
        ))
        .is_ok());
    let png = png_pixels(&sim.png);
    let dev = sim.finish();
    let want = reference();
    assert_eq!(dev.fb, want);
    // The PNG is the framebuffer, expanded to 8 bits per channel.
    let expanded: Vec<u8> = want
        .pixels()
        .iter()
        .flat_map(|&p| Rgb565(p).to_rgb888())
        .collect();
    assert!(png == expanded);
    // Spot checks that drawing happened where the commands said: the answer box's white border, the green
    // target box, the red point and the tile's first (red) run.
    assert_eq!(want.pixel(16, 400), Some(Rgb565::WHITE));
    assert_eq!(want.pixel(220, 150), Some(Rgb565::new(0, 63, 0)));
    assert_eq!(want.pixel(320, 170), Some(Rgb565::new(31, 0, 0)));
    assert_eq!(want.pixel(600, 16), Some(Rgb565::new(31, 0, 0)));
    assert_eq!(want.pixel(607, 19), Some(Rgb565::WHITE));
    assert_eq!(dev.stats.errors, 0);
}

/// A link that silently drops every `n`th frame the host writes, as line noise would.
struct Lossy {
    inner: Box<dyn Link>,
    n: usize,
    frames: usize,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for Lossy {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(b)
    }
}
impl Write for Lossy {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // The host writes one whole frame per call.
        self.frames += 1;
        if self.frames.is_multiple_of(self.n) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(b.len());
        }
        self.inner.write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn lost_frames_are_retried_and_the_window_is_respected() {
    if under_qemu_user() {
        return;
    }
    let sim = Sim::start(1, None);
    let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d2 = dropped.clone();
    let mut serial = host::serial(&sim.link, 2_000_000);
    let connector: Connector = Box::new(move || {
        Ok(Box::new(Lossy {
            inner: serial()?,
            n: 4,
            frames: 0,
            dropped: d2.clone(),
        }) as Box<dyn Link>)
    });
    let cfg = HostConfig {
        ack_timeout: Duration::from_millis(50),
        ..HostConfig::default()
    };
    let mut h = Host::connect(connector, cfg).unwrap();
    assert_eq!(h.window(), 1);
    let cmds = sample_commands();
    let mut s = Vec::new();
    for m in &cmds {
        m.with_message(&mut s, |m| h.send(m)).unwrap().unwrap();
        assert!(h.unacknowledged() <= 1, "window of 1 exceeded");
    }
    h.flush().unwrap();
    h.wait_for(Duration::from_secs(5), |m| {
        matches!(m, Message::DisplayAck { frame: 1 })
    })
    .unwrap();
    assert!(dropped.load(Ordering::Relaxed) >= 2);
    assert!(
        h.stats.retries >= dropped.load(Ordering::Relaxed) as u64 - 1,
        "{:?}",
        h.stats
    );
    let dev = sim.finish();
    assert_eq!(dev.fb, reference());
}

#[test]
fn host_reconnects_after_the_link_drops() {
    if under_qemu_user() {
        return;
    }
    // The simulator closes its pty after 5 frames and opens a new one behind the same symlink.
    let sim = Sim::start(2, Some(5));
    let mut h = Host::connect(host::serial(&sim.link, 2_000_000), HostConfig::default()).unwrap();
    send_all(&mut h, &sample_commands());
    h.wait_for(Duration::from_secs(5), |m| {
        matches!(m, Message::DisplayAck { frame: 1 })
    })
    .unwrap();
    assert_eq!(h.stats.reconnects, 1, "{:?}", h.stats);
    let dev = sim.finish();
    assert_eq!(dev.fb, reference());
}

/// Scheduled device events arrive after their present, and the temperature sent stays what the device reports
/// when the host says hello again after the link dropped.
#[test]
fn scheduled_events_arrive_after_their_present_and_outlive_a_reconnection() {
    if under_qemu_user() {
        return;
    }
    let hot = Message::Thermal {
        sensor: 0,
        centi_celsius: 7500,
    };
    let press = Message::Button {
        id: 1,
        action: flint_bridge::types::ButtonAction::Press,
        t_ms: 0,
    };
    assert!(ScheduledEvent::new(0, Message::Present { frame: 1 }).is_none());
    let events = vec![
        ScheduledEvent::new(1, hot).unwrap(),
        ScheduledEvent::new(2, press).unwrap(),
    ];
    let sim = Sim::start_with(4, Some(8), events);
    let mut h = Host::connect(host::serial(&sim.link, 2_000_000), HostConfig::default()).unwrap();
    let mut seen = Vec::new();
    for frame in 1..=4u16 {
        h.send(&Message::Present { frame }).unwrap();
        h.flush().unwrap();
        h.wait_for(
            Duration::from_secs(2),
            |m| matches!(m, Message::DisplayAck { frame: f } if *f == frame),
        )
        .unwrap();
        while let Some(m) = h.next_event() {
            seen.push((frame, m));
        }
    }
    let at = |want: &Message<'static>| seen.iter().find(|(_, m)| m == want).map(|(f, _)| *f);
    assert_eq!(at(&hot), Some(1), "{seen:?}");
    assert_eq!(at(&press), Some(2), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|(_, m)| *m == press).count(),
        1,
        "sent once: {seen:?}"
    );
    // The link drops after 8 frames; the next hello reports the heat, not the boot temperature.
    for frame in 5..=12u16 {
        h.send(&Message::Present { frame }).unwrap();
        h.flush().unwrap();
        let _ = h.wait_for(
            Duration::from_secs(2),
            |m| matches!(m, Message::DisplayAck { frame: f } if *f == frame),
        );
        while let Some(m) = h.next_event() {
            seen.push((frame, m));
        }
    }
    assert!(h.stats.reconnects >= 1, "the link did not drop");
    let temps: Vec<i16> = seen
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Thermal { centi_celsius, .. } => Some(*centi_celsius),
            _ => None,
        })
        .collect();
    assert_eq!(temps.last(), Some(&7500), "{temps:?}");
    assert!(
        temps.len() >= 3,
        "boot, scheduled, after reconnection: {temps:?}"
    );
    sim.finish();
}
