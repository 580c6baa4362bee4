//! What a typical answer overlay costs on the link: three lines of text and two boxes, sent as drawing
//! commands, versus the same picture sent as pixels (run-length tiles of the whole frame, and raw RGB565).
//! Then the same commands through the simulator over a pty with the real host transport.
//!
//!     cargo run --release -p flint-bridge --example overlay_cost [BAUD]
//!
//! Link time assumes 8N1 framing (10 bits per byte) at BAUD (default 2 000 000) and nothing else on the
//! line; it is computed, not measured, because a pty has no baud rate.

use flint_bridge::host::{self, Host, HostConfig};
use flint_bridge::sim::pty::{self, PtyConfig};
use flint_bridge::sim::{Framebuffer, SimConfig};
use flint_bridge::{encode_frame, rle, Font, Message, Rgb565, Rle, MAX_PAYLOAD, MAX_WIRE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const W: u16 = 640;
const H: u16 = 480;

fn overlay() -> Vec<Message<'static>> {
    let white = Rgb565::WHITE;
    vec![
        Message::Clear {
            x: 0,
            y: 0,
            w: W,
            h: H,
            color: Rgb565::BLACK,
        },
        // The object the answer is about, and the answer panel.
        Message::Rect {
            x: 220,
            y: 80,
            w: 200,
            h: 180,
            radius: 0,
            stroke_width: 3,
            stroke: Rgb565::new(0, 63, 0),
            fill: None,
        },
        Message::Rect {
            x: 16,
            y: 360,
            w: 608,
            h: 104,
            radius: 6,
            stroke_width: 2,
            stroke: white,
            fill: Some(Rgb565::new(2, 4, 2)),
        },
        Message::Text {
            x: 28,
            y: 372,
            font: Font::Large,
            fg: white,
            bg: None,
            text: "Oak leaf (Quercus robur)",
        },
        Message::Text {
            x: 28,
            y: 398,
            font: Font::Medium,
            fg: Rgb565::new(24, 48, 24),
            bg: None,
            text: "Lobed edges, short stalk; common in Europe.",
        },
        Message::Text {
            x: 28,
            y: 418,
            font: Font::Small,
            fg: Rgb565::new(31, 50, 0),
            bg: None,
            text: "Confidence 92% - tap to hear more",
        },
        Message::Present { frame: 1 },
    ]
}

fn wire_len(msgs: &[Message<'_>]) -> usize {
    let mut buf = [0u8; MAX_WIRE];
    msgs.iter()
        .enumerate()
        .map(|(i, m)| encode_frame(i as u16, m, &mut buf).expect("overlay fits"))
        .sum()
}

/// Wire bytes of the framebuffer as RLE tiles: bands of full rows, as many rows per tile as fit.
fn tiles_len(fb: &Framebuffer) -> (usize, usize) {
    let px = fb.pixels();
    let row_pixels = |y: usize| {
        px[y * W as usize..(y + 1) * W as usize]
            .iter()
            .map(|&p| Rgb565(p))
    };
    let mut rle_buf = vec![0u8; 64 * 1024];
    let mut wire = [0u8; MAX_WIRE];
    let (mut bytes, mut tiles) = (0, 0);
    let mut y = 0usize;
    while y < H as usize {
        // Grow the band while its runs fit in one payload (8 bytes of tile header).
        let mut h = 0;
        while y + h < H as usize {
            let k = rle::encode((y..y + h + 1).flat_map(row_pixels), &mut rle_buf)
                .expect("buffer large enough");
            if k + 8 > MAX_PAYLOAD {
                break;
            }
            h += 1;
        }
        assert!(
            h > 0,
            "a single row does not fit one tile; this overlay never needs that"
        );
        let n = rle::encode((y..y + h).flat_map(row_pixels), &mut rle_buf)
            .expect("buffer large enough");
        let rle = Rle::new(&rle_buf[..n], W as u32 * h as u32).expect("valid runs");
        let m = Message::Tile {
            x: 0,
            y: y as u16,
            w: W,
            h: h as u16,
            rle,
        };
        bytes += encode_frame(tiles as u16, &m, &mut wire).expect("fits");
        tiles += 1;
        y += h;
    }
    (bytes, tiles)
}

fn main() {
    let baud: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000.0);
    let secs = |bytes: usize| bytes as f64 * 10.0 / baud;
    let msgs = overlay();
    let cmd_bytes = wire_len(&msgs);
    let mut fb = Framebuffer::new(W, H);
    for m in &msgs {
        fb.render(m);
    }
    let (tile_bytes, tiles) = tiles_len(&fb);
    let raw = W as usize * H as usize * 2;
    println!("overlay: 3 text lines + 2 boxes (+ clear, present) on {W}x{H} RGB565, link {baud} baud 8N1");
    println!(
        "commands : {:>7} bytes in {} frames  {:>9.3} ms",
        cmd_bytes,
        msgs.len(),
        secs(cmd_bytes) * 1e3
    );
    println!(
        "RLE tiles: {:>7} bytes in {} frames {:>9.3} ms",
        tile_bytes,
        tiles,
        secs(tile_bytes) * 1e3
    );
    println!(
        "raw frame: {:>7} bytes               {:>9.3} ms",
        raw,
        secs(raw) * 1e3
    );
    println!(
        "commands are {:.0}x smaller than raw pixels, {:.0}x smaller than RLE tiles",
        raw as f64 / cmd_bytes as f64,
        tile_bytes as f64 / cmd_bytes as f64
    );

    // CPU cost of encoding the commands, per overlay.
    let t = Instant::now();
    let reps = 20_000;
    let mut total = 0;
    for _ in 0..reps {
        total += wire_len(&msgs);
    }
    println!(
        "encode   : {:.2} us per overlay (host CPU)",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    assert_eq!(total, cmd_bytes * reps);

    // End to end through a pty with acks: host transport -> tty -> simulator renders -> display ack.
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let cfg = PtyConfig {
        sim: SimConfig {
            width: W,
            height: H,
            png: None,
            window: 4,
        },
        ..PtyConfig::default()
    };
    let sim = std::thread::spawn(move || pty::run(cfg, &s2, |p| drop(tx.send(p.to_path_buf()))));
    let path = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("simulator started");
    let mut h =
        Host::connect(host::serial(&path, baud as u32), HostConfig::default()).expect("connect");
    let rounds = 50;
    let t = Instant::now();
    for r in 0..rounds {
        for m in &msgs {
            let m = match m {
                Message::Present { .. } => Message::Present { frame: r },
                m => *m,
            };
            h.send(&m).expect("send");
        }
        h.wait_for(
            Duration::from_secs(5),
            |m| matches!(m, Message::DisplayAck { frame } if *frame == r),
        )
        .expect("display ack");
    }
    let per = t.elapsed().as_secs_f64() / rounds as f64;
    println!("pty loop : {:.2} ms per overlay, send -> rendered -> display_ack (no baud limit; {} retries)", per * 1e3, h.stats.retries);
    stop.store(true, Ordering::Relaxed);
    let dev = sim.join().expect("sim thread").expect("sim");
    assert_eq!(dev.fb, fb);
}
