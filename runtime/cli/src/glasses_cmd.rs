//! `flint glasses`: the main job (flint-glasses; docs/GLASSES.md). Parses the options, applies the board profile
//! (display geometry, bridge device, camera mode, microphone periods, the encoder/decoder thread split, the
//! memory budget) and runs the loop.

use crate::common::{board_profile, check_threads};
use anyhow::{bail, Result};
use flint_glasses::{Geometry, ModelPaths, Options, Reporter, Source, Target};
use std::path::PathBuf;

/// Arguments of `flint glasses`.
#[derive(clap::Args, Debug)]
pub struct GlassesArgs {
    /// The answer model (.flint). Default: the bundled one, `MODELS/answer.flint`.
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Where the bundled models are (what scripts/setup.sh installed).
    #[arg(long, env = "FLINT_MODELS", default_value = "models")]
    models: PathBuf,
    /// The speech recogniser: a CTranslate2 Whisper folder. Default: `MODELS/whisper-tiny-en`.
    #[arg(long)]
    asr: Option<PathBuf>,
    /// Run on a recording (DIR/audio.wav + DIR/frames/<ms>.jpg|png) instead of the camera and microphone.
    #[arg(long)]
    recording: Option<PathBuf>,
    /// Playback speed of a recording: `real` (its own pace) or `max` (as fast as the loop takes it).
    #[arg(long, default_value = "real", value_parser = ["real", "max"])]
    speed: String,
    /// The camera (a V4L2 device; default: the board profile's, else /dev/video0); `none` for audio only.
    #[arg(long)]
    camera: Option<String>,
    /// Camera size and rate, WxH@FPS (default: the board profile's, else 640x480@15).
    #[arg(long)]
    camera_mode: Option<String>,
    /// The camera pixel format to ask for first (default: the board profile's, else mjpeg).
    #[arg(long, value_parser = ["mjpeg", "yuyv"])]
    camera_format: Option<String>,
    /// The microphone (an ALSA PCM name; default: the board profile's, else `default`).
    #[arg(long)]
    mic: Option<String>,
    /// Play the recording again and again.
    #[arg(long = "loop")]
    looped: bool,
    /// serial:DEV[@BAUD], sim[:DIR] or png:DIR. Default: png:glasses-frames.
    #[arg(long)]
    display: Option<Target>,
    /// Display size, WxH (default: the board profile's, else 640x480).
    #[arg(long)]
    display_size: Option<String>,
    /// The engine of the ONNX models (voice activity, OCR): tract (built in) or ort (ONNX Runtime, loaded from
    /// --ort-lib, else ORT_DYLIB_PATH, else MODELS/onnxruntime/libonnxruntime.so).
    #[arg(long, default_value = "tract", value_parser = ["tract", "ort"])]
    onnx: String,
    /// With --onnx ort: the execution provider (cpu, xnnpack, qnn, rknpu, nnapi, acl, cuda; the loaded library
    /// must offer it).
    #[arg(long, default_value = "cpu")]
    ep: String,
    /// With --onnx ort: the ONNX Runtime shared library.
    #[arg(long)]
    ort_lib: Option<PathBuf>,
    /// Do not read text in view (no OCR models).
    #[arg(long)]
    no_ocr: bool,
    /// With an answer model that has a vision tower: send the last second of camera as video frames instead of
    /// the sharpest frame.
    #[arg(long)]
    video: bool,
    /// With a vision tower: image tokens at most per frame (default: the board profile's
    /// `camera.image_tokens_max`, else the model's processor's); heat and a low battery halve it.
    #[arg(long)]
    image_tokens: Option<usize>,
    /// One JSON object per line and event on stdout.
    #[arg(long)]
    json: bool,
    /// A timing line per turn.
    #[arg(long)]
    timings: bool,
    /// Longest answer, tokens.
    #[arg(short = 'n', long, default_value_t = 64)]
    max_tokens: usize,
    /// Worker threads of the answer model and of speech recognition (default: the board profile's
    /// `cpu.decoder_threads` and `cpu.encoder_threads`, else 2).
    #[arg(short, long)]
    threads: Option<usize>,
    /// Refuse to start when the model files exceed this many MiB (default: the board profile's
    /// `memory.budget_mib`).
    #[arg(long, value_name = "MIB")]
    mem_budget: Option<u64>,
    /// Stop after this many turns.
    #[arg(long)]
    turns: Option<u64>,
    /// Write what was captured into DIR, in the recording layout (nothing is written without it).
    #[arg(long)]
    record: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<Geometry> {
    let bad = || anyhow::anyhow!("--display-size {s:?}: expected WxH, e.g. 640x480");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    Ok(Geometry {
        width: w.parse().map_err(|_| bad())?,
        height: h.parse().map_err(|_| bad())?,
    })
}

fn parse_mode(s: &str) -> Result<(u32, u32, f64)> {
    let bad = || anyhow::anyhow!("--camera-mode {s:?}: expected WxH@FPS, e.g. 640x480@15");
    let (size, fps) = s.split_once('@').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h, fps): (u32, u32, f64) = (
        w.parse().map_err(|_| bad())?,
        h.parse().map_err(|_| bad())?,
        fps.parse().map_err(|_| bad())?,
    );
    if w == 0 || h == 0 || w > 8192 || h > 8192 || !(fps > 0.0 && fps <= 240.0) {
        bail!("--camera-mode {s:?}: sizes 1..8192 and rates up to 240 fps");
    }
    Ok((w, h, fps))
}

/// Runs `flint glasses`.
pub fn run(a: GlassesArgs, board: Option<&str>) -> Result<()> {
    let profile = board_profile(board)?;
    let (encoder_threads, threads) = match (a.threads, profile.as_ref()) {
        (Some(t), _) => {
            let t = check_threads(t, "--threads")?;
            (t, t)
        }
        (None, Some(p)) => {
            let (e, d) = p.glasses_threads();
            (
                check_threads(e, "board profile `cpu.encoder_threads`")?,
                check_threads(d, "board profile `cpu.decoder_threads`")?,
            )
        }
        (None, None) => (2, 2),
    };
    let image_tokens_max = profile.as_ref().and_then(|p| p.camera.image_tokens_max);
    if a.image_tokens == Some(0) {
        bail!("--image-tokens 0: a frame needs at least one token");
    }
    let mem_budget = match (a.mem_budget, profile.as_ref()) {
        (Some(0), _) => bail!("--mem-budget 0: give a size in MiB"),
        (Some(m), _) => Some((m.saturating_mul(1 << 20), format!("--mem-budget {m}"))),
        (None, Some(p)) => Some((
            p.memory_budget_bytes(),
            format!(
                "board profile `memory.budget_mib` = {}",
                p.memory.budget_mib
            ),
        )),
        (None, None) => None,
    };
    let geometry = match (&a.display_size, profile.as_ref()) {
        (Some(s), _) => parse_size(s)?,
        (None, Some(p)) => Geometry {
            width: u16::try_from(p.display.width)
                .map_err(|_| anyhow::anyhow!("board profile `display.width` is too large"))?,
            height: u16::try_from(p.display.height)
                .map_err(|_| anyhow::anyhow!("board profile `display.height` is too large"))?,
        },
        (None, None) => Geometry {
            width: 640,
            height: 480,
        },
    };
    let display = match (a.display, profile.as_ref()) {
        (Some(t), _) => t,
        (None, Some(p)) if a.recording.is_none() => Target::Serial {
            device: p.bridge.port.clone().into(),
            baud: p.bridge.baud,
        },
        _ => Target::Png {
            dir: "glasses-frames".into(),
        },
    };
    let speed = if a.speed == "max" {
        flint_sensors::Speed::Max
    } else {
        flint_sensors::Speed::RealTime
    };
    let source = match a.recording {
        Some(dir) => Source::Recording {
            dir,
            speed,
            looped: a.looped,
        },
        None => {
            let camera = a
                .camera
                .or_else(|| profile.as_ref().map(|p| p.camera.device.clone()))
                .unwrap_or_else(|| "/dev/video0".into());
            let mic = a
                .mic
                .or_else(|| profile.as_ref().map(|p| p.microphone.device.clone()))
                .unwrap_or_else(|| "default".into());
            let (w, h, fps) = match (&a.camera_mode, profile.as_ref()) {
                (Some(m), _) => parse_mode(m)?,
                (None, Some(p)) => (p.camera.width, p.camera.height, f64::from(p.camera.fps)),
                (None, None) => (640, 480, 15.0),
            };
            let format = a
                .camera_format
                .or_else(|| profile.as_ref().map(|p| p.camera.format.clone()));
            let camera = (camera != "none").then(|| {
                let cfg = flint_sensors::CameraConfig {
                    width: w,
                    height: h,
                    fps,
                    format_pref: match format.as_deref() {
                        Some("yuyv") => flint_sensors::PixelFormat::Yuyv,
                        _ => flint_sensors::PixelFormat::Mjpeg,
                    },
                    ..Default::default()
                };
                (camera, cfg)
            });
            let mut mic_cfg = flint_sensors::MicConfig::default();
            if let Some(p) = &profile {
                mic_cfg.rate = p.microphone.rate;
                mic_cfg.period_frames = p.microphone.period_frames;
                mic_cfg.buffer_frames = p.microphone.buffer_frames;
            }
            Source::Devices {
                camera,
                mic: (mic, mic_cfg),
            }
        }
    };
    let onnx = match a.onnx.as_str() {
        "ort" => {
            let bundled = a.models.join("onnxruntime/libonnxruntime.so");
            let library = a.ort_lib.clone().or_else(|| {
                (std::env::var_os("ORT_DYLIB_PATH").is_none() && bundled.is_file())
                    .then_some(bundled)
            });
            flint_onnx::Backend::Ort(flint_onnx::OrtOptions {
                library,
                provider: a.ep.clone(),
            })
        }
        _ if a.ort_lib.is_some() || a.ep != "cpu" => {
            bail!("--ep and --ort-lib choose ONNX Runtime's provider and library: add --onnx ort")
        }
        _ => flint_onnx::Backend::Tract,
    };
    let mut models = ModelPaths::bundled(&a.models);
    if let Some(m) = a.model {
        models.answer = m;
    }
    if let Some(w) = a.asr {
        models.asr = Some(w);
    }
    if a.no_ocr {
        models.ocr = None;
    }
    let opts = Options {
        models,
        source,
        display,
        geometry,
        max_tokens: a.max_tokens,
        threads,
        encoder_threads,
        mem_budget,
        max_turns: a.turns,
        record: a.record,
        video: a.video,
        image_tokens: a.image_tokens.or(image_tokens_max),
        vad: flint_onnx::VadConfig::default(),
        onnx,
    };
    let mut report = Reporter::new(Box::new(std::io::stdout()), a.json, a.timings);
    flint_glasses::run(&opts, &mut report)?;
    Ok(())
}
