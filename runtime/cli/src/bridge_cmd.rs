//! `flint bridge`: tools for the firmware bridge (docs/BRIDGE.md).
//!
//! - `decode [FILE]`: wire bytes (stdin or FILE) to one JSON line per frame on stdout; dropped frames are
//!   counted on stderr; exits 0 when the input ends, whatever it contained.
//! - `encode [FILE] [-o OUT]`: JSON lines back to wire bytes.
//! - `sim --pty`: the microcontroller simulator on a pty pair; prints the tty path to use.
//! - `send --device TTY FILE`: sends JSON lines to a device with ack, retry, flow control and reconnection,
//!   and prints the device's events as JSON lines.
//!
//! Exit codes: 0 success, 1 error (bad arguments, unreadable input, invalid JSON line, link failure).

use anyhow::{bail, Context, Result};
use flint_bridge::host::{self, Host, HostConfig};
use flint_bridge::json::{self, JsonFrame, JsonMsg};
use flint_bridge::sim::pty::{self, PtyConfig, ScheduledEvent};
use flint_bridge::sim::SimConfig;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Arguments of `flint bridge`.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {
    #[command(subcommand)]
    cmd: BridgeCmd,
}

#[derive(clap::Subcommand, Debug)]
enum BridgeCmd {
    /// Decode a byte stream into JSON lines (one per frame).
    Decode {
        /// Input file; stdin if absent or `-`.
        file: Option<PathBuf>,
        /// Print each dropped frame's reason on stderr, not only the totals.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Encode JSON lines into a byte stream.
    Encode {
        /// Input file; stdin if absent or `-`.
        file: Option<PathBuf>,
        /// Output file (written atomically); stdout if absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run the microcontroller simulator.
    Sim {
        /// Serve on a new pty pair (the only transport the simulator has).
        #[arg(long, required = true)]
        pty: bool,
        /// Keep a symlink at this path pointing at the current tty.
        #[arg(long)]
        link: Option<PathBuf>,
        /// Write each presented frame to this PNG.
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long, default_value_t = 640)]
        width: u16,
        #[arg(long, default_value_t = 480)]
        height: u16,
        /// Flow-control window advertised to the host.
        #[arg(long, default_value_t = 4)]
        window: u8,
        /// Drop the link once after this many frames (to exercise reconnection).
        #[arg(long)]
        drop_after: Option<u64>,
        /// Exit after this many presented frames.
        #[arg(long)]
        exit_after: Option<u64>,
        /// Send a device event after N presented frames, as the glasses would when the wearer presses the
        /// button or the battery runs low: N:JSON in the JSON-lines format without `seq`, e.g.
        /// '2:{"type":"button","id":0,"action":"press","t_ms":0}' or '0:{"type":"thermal","sensor":0,"centi_celsius":7500}'.
        /// Repeatable.
        #[arg(long = "event", value_name = "N:JSON", value_parser = parse_event)]
        events: Vec<ScheduledEvent>,
    },
    /// Send JSON lines to a device (or the simulator) over a serial link.
    Send {
        /// Serial device, e.g. /dev/ttyACM0 or the simulator's tty.
        #[arg(long)]
        device: PathBuf,
        #[arg(long, default_value_t = 2_000_000)]
        baud: u32,
        /// JSON lines to send; stdin if absent or `-`.
        file: Option<PathBuf>,
    },
}

/// Parses `--event N:JSON`.
fn parse_event(s: &str) -> Result<ScheduledEvent, String> {
    let (n, text) = s
        .split_once(':')
        .ok_or_else(|| format!("--event {s:?}: expected N:JSON"))?;
    let after: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("--event {s:?}: {n:?} is not a number of presents"))?;
    let msg: JsonMsg = serde_json::from_str(text).map_err(|e| format!("--event {s:?}: {e}"))?;
    let mut scratch = Vec::new();
    let message = msg
        .with_message(&mut scratch, |m| m.to_static())
        .map_err(|e| format!("--event {s:?}: {e}"))?;
    message
        .and_then(|m| ScheduledEvent::new(after, m))
        .ok_or_else(|| {
            format!("--event {s:?}: only device events (button, battery, thermal, imu) can be scheduled")
        })
}

fn open_input(file: &Option<PathBuf>) -> Result<Box<dyn Read>> {
    Ok(match file {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
        _ => Box::new(std::io::stdin().lock()),
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A device or pipe is written in place: renaming over it would replace the device node.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()));
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Runs `flint bridge`.
pub fn run(a: BridgeArgs) -> Result<()> {
    match a.cmd {
        BridgeCmd::Decode { file, verbose } => {
            let input = open_input(&file)?;
            let stdout = std::io::stdout();
            let out = std::io::BufWriter::new(stdout.lock());
            let rep = json::decode_stream(input, out, |at, why| {
                if verbose {
                    eprintln!("byte {at}: {why}");
                }
            })
            .context("decoding")?;
            eprintln!(
                "bytes: {}, frames: {}, errors: {} (overflow: {}, malformed: {}, crc: {}, message: {})",
                rep.bytes,
                rep.frames,
                rep.errors(),
                rep.overflow,
                rep.malformed,
                rep.crc,
                rep.message
            );
            Ok(())
        }
        BridgeCmd::Encode { file, output } => {
            let input = BufReader::new(open_input(&file)?);
            let mut bytes = Vec::new();
            let what = file
                .as_deref()
                .unwrap_or(Path::new("stdin"))
                .display()
                .to_string();
            let n = json::encode_stream(input, &mut bytes)
                .with_context(|| format!("encoding {what}"))?;
            match output {
                Some(p) => write_atomic(&p, &bytes)?,
                None => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&bytes)?;
                    o.flush()?;
                }
            }
            eprintln!("frames: {n}, bytes: {}", bytes.len());
            Ok(())
        }
        BridgeCmd::Sim {
            pty: _,
            link,
            png,
            width,
            height,
            window,
            drop_after,
            exit_after,
            events,
        } => {
            let cfg = PtyConfig {
                sim: SimConfig {
                    width,
                    height,
                    png,
                    window,
                },
                link,
                drop_after,
                exit_after_presents: exit_after,
                events,
            };
            cfg.sim
                .validate()
                .map_err(|e| anyhow::anyhow!("--width/--height: {e}"))?;
            let stop = AtomicBool::new(false);
            let dev = pty::run(cfg, &stop, |p| {
                println!("{}", p.display());
                let _ = std::io::stdout().flush();
            })
            .context("running the simulator")?;
            eprintln!(
                "frames: {}, errors: {}, duplicates: {}, presents: {}",
                dev.stats.frames, dev.stats.errors, dev.stats.duplicates, dev.stats.presents
            );
            Ok(())
        }
        BridgeCmd::Send { device, baud, file } => send(&device, baud, &file),
    }
}

fn send(device: &Path, baud: u32, file: &Option<PathBuf>) -> Result<()> {
    let mut h = Host::connect(host::serial(device, baud), HostConfig::default())
        .with_context(|| format!("connecting to {}", device.display()))?;
    let mut scratch = Vec::new();
    let mut presents = Vec::new();
    for r in json::Lines::new(BufReader::new(open_input(file)?)) {
        let (i, line) = r.context("reading input")?;
        if line.trim().is_empty() {
            continue;
        }
        let fr: JsonFrame = serde_json::from_str(&line).with_context(|| format!("line {i}"))?;
        if let JsonMsg::Present { frame } = fr.msg {
            presents.push(frame);
        }
        fr.msg
            .with_message(&mut scratch, |m| h.send(m))
            .with_context(|| format!("line {i}"))?
            .with_context(|| format!("sending line {i}"))?;
    }
    h.flush().context("waiting for acknowledgements")?;
    let mut shown = Vec::new();
    for f in presents {
        shown.push(
            h.wait_for(
                Duration::from_secs(5),
                |m| matches!(m, flint_bridge::Message::DisplayAck { frame } if *frame == f),
            )
            .with_context(|| format!("waiting for the display to show frame {f}"))?,
        );
    }
    let mut out = std::io::stdout().lock();
    // The device's events, then the display acknowledgements waited for above. `seq` is not kept for
    // events, so it prints as 0.
    while let Some(ev) = h
        .next_event()
        .or_else(|| (!shown.is_empty()).then(|| shown.remove(0)))
    {
        let line = serde_json::to_string(&JsonFrame {
            seq: 0,
            msg: JsonMsg::from_message(&ev),
        })?;
        writeln!(out, "{line}")?;
    }
    eprintln!(
        "sent frames: {}, bytes: {}, retries: {}, reconnects: {}",
        h.stats.frames_sent, h.stats.bytes_sent, h.stats.retries, h.stats.reconnects
    );
    if h.caps().0 == 0 {
        bail!("device negotiated no capabilities");
    }
    Ok(())
}
