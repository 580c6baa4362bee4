//! The loop: inputs in, turns out.
//!
//! Audio goes through the voice-activity detector as it arrives; frames go into a ring of the last seconds.
//! Speech start opens a turn (the audio from the detector's pre-roll on is kept); speech end closes it and runs
//! [`crate::turn::run`] on the utterance and the frames in view while the wearer spoke. Nothing queues: while a
//! turn is answered, a recording waits (it is read again afterwards), and devices keep only their latest frame
//! and a bounded ring of audio.

use crate::display::{Display, Target};
use crate::events::Reporter;
use crate::inputs::Inputs;
use crate::layout::Geometry;
use crate::turn::{self, Budget, Memory};
use anyhow::{bail, Context, Result};
use flint_bridge::message::Message;
use flint_sensors::select::FrameRing;
use flint_sensors::{Input, Speed};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model files of the loop.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// The answer model (`.flint`).
    pub answer: PathBuf,
    /// A CTranslate2 Whisper folder (none: the answer model hears the speech itself).
    pub asr: Option<PathBuf>,
    /// Silero VAD (ONNX).
    pub vad: PathBuf,
    /// PP-OCRv4 detection and recognition (ONNX); none: no text reading.
    pub ocr: Option<(PathBuf, PathBuf)>,
}

impl ModelPaths {
    /// The bundled models as the README's setup command lays them out in `dir` (`models/`):
    /// `answer.flint`, `whisper-tiny-en/`, `silero_vad_16k.onnx`, `ppocr/det.onnx` + `ppocr/rec.onnx`.
    pub fn bundled(dir: &Path) -> ModelPaths {
        ModelPaths {
            answer: dir.join("answer.flint"),
            asr: Some(dir.join("whisper-tiny-en")),
            vad: dir.join("silero_vad_16k.onnx"),
            ocr: Some((dir.join("ppocr/det.onnx"), dir.join("ppocr/rec.onnx"))),
        }
    }

    /// The files a loop with this answer model uses: no speech recogniser when it has an audio tower (it
    /// hears the question itself), no OCR when it has a vision tower (it sees the frame itself).
    pub fn for_model(&self, hears: bool, sees: bool) -> ModelPaths {
        ModelPaths {
            asr: self.asr.clone().filter(|_| !hears),
            ocr: self.ocr.clone().filter(|_| !sees),
            ..self.clone()
        }
    }

    /// Checks that every file is there, naming the first missing one.
    pub fn check(&self) -> Result<()> {
        let mut all = vec![
            ("answer model", &self.answer),
            ("voice activity model", &self.vad),
        ];
        if let Some(a) = &self.asr {
            all.push(("speech recogniser", a));
        }
        if let Some((d, r)) = &self.ocr {
            all.push(("text detector", d));
            all.push(("text recogniser", r));
        }
        for (what, p) in all {
            if !p.exists() {
                bail!(
                    "the {what} {} does not exist (scripts/setup.sh installs the bundled models into models/)",
                    p.display()
                );
            }
        }
        Ok(())
    }
}

/// Where the inputs come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A recording folder (`audio.wav` + `frames/<ms>.jpg|png`).
    Recording {
        dir: PathBuf,
        speed: Speed,
        looped: bool,
    },
    /// The camera (V4L2; none: audio only) and the microphone (ALSA).
    Devices {
        camera: Option<(String, flint_sensors::CameraConfig)>,
        mic: (String, flint_sensors::MicConfig),
    },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Recording { dir, .. } => format!("recording {}", dir.display()),
            Source::Devices { camera, mic } => format!(
                "camera {}, microphone {}",
                camera.as_ref().map_or("(none)", |c| c.0.as_str()),
                mic.0
            ),
        }
    }
}

/// Everything `flint glasses` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub models: ModelPaths,
    pub source: Source,
    pub display: Target,
    pub geometry: Geometry,
    pub max_tokens: usize,
    /// Threads of the answer model.
    pub threads: usize,
    /// Threads of the speech recogniser (board profile `cpu.encoder_threads`).
    pub encoder_threads: usize,
    /// The memory budget, bytes, and where it came from (board profile `memory.budget_mib`, `--mem-budget`).
    pub mem_budget: Option<(u64, String)>,
    /// Stop after this many turns.
    pub max_turns: Option<u64>,
    /// Write what was captured here, in the recording layout.
    pub record: Option<PathBuf>,
    /// With a vision tower: the last second of camera as video frames, not the sharpest frame.
    pub video: bool,
    /// With a vision tower: image tokens at most per frame (none: the processor's cap).
    pub image_tokens: Option<usize>,
    /// Voice-activity settings.
    pub vad: flint_onnx::VadConfig,
    /// The engine of the ONNX models (voice activity, OCR): tract, or ONNX Runtime on a chosen execution provider.
    pub onnx: flint_onnx::Backend,
}

/// How many seconds of frames the loop keeps: a turn looks at the frames since speech start (at most this).
const FRAME_SECONDS: u64 = 12;
/// Audio kept before speech start, for the detector's pre-roll (it reports starts this far back at most).
const PRE_ROLL_SAMPLES: usize = 16_000;
/// Longest utterance kept (Whisper reads 30 s).
const MAX_UTTERANCE: usize = 30 * 16_000;
/// A turn the button opened closes after this long without speech (ms of input).
const PUSH_TO_TALK_MS: u64 = 8_000;

/// What the loop did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub turns: u64,
    pub display_frames: u64,
}

/// What the bridge last said about heat and battery.
#[derive(Debug, Default)]
struct Power {
    hot: Option<String>,
    low_battery: Option<String>,
}

/// Lowers the load while the bridge reports heat (70 C and up) or a low battery (15% or less, not charging),
/// restores it when neither holds, and says so.
fn adjust(
    power: &mut Power,
    budget: &mut Budget,
    base: &Budget,
    ev: &Message<'static>,
    report: &mut Reporter,
) {
    match *ev {
        Message::Thermal { centi_celsius, .. } => {
            power.hot = (centi_celsius >= 7000)
                .then(|| format!("temperature {:.1} C", centi_celsius as f32 / 100.0));
        }
        Message::Battery {
            percent, charging, ..
        } => {
            power.low_battery = (!charging && percent <= 15).then(|| format!("battery {percent}%"))
        }
        _ => return,
    }
    let why: Vec<&str> = [&power.hot, &power.low_battery]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let lowered = budget.max_tokens < base.max_tokens;
    if !why.is_empty() && !lowered {
        budget.max_tokens = (base.max_tokens / 2).max(16);
        budget.threads = 1;
        budget.encoder_threads = 1;
        budget.image_tokens = base.image_tokens.map(|n| (n / 2).max(1));
        budget.status = " | low power: short answers".into();
        let fewer = match budget.image_tokens {
            Some(n) => format!(", {n} image tokens"),
            None => String::new(),
        };
        report.event(
            "power",
            json!({"message": format!("{}: shorter answers{fewer}, 1 thread", why.join(", ")),
                   "max_tokens": budget.max_tokens, "image_tokens": budget.image_tokens}),
        );
    } else if why.is_empty() && lowered {
        *budget = base.clone();
        report.event(
            "power",
            json!({"message": "temperature and battery normal: full load again", "max_tokens": budget.max_tokens,
                   "image_tokens": budget.image_tokens}),
        );
    }
}

/// Runs the loop until the source ends (or `max_turns`).
pub fn run(opts: &Options, report: &mut Reporter) -> Result<Summary> {
    run_with(opts, None, report)
}

/// [`run`] with the inputs given (devices behind scripted seams, in tests) instead of `opts.source`.
pub fn run_with(opts: &Options, inputs: Option<Inputs>, report: &mut Reporter) -> Result<Summary> {
    if !opts.models.answer.exists() {
        opts.models.check()?;
    }
    crate::display::check_target(&opts.display)?;
    flint_engine::set_threads(opts.threads);
    let t_load = Instant::now();
    let loading = || format!("loading the answer model {}", opts.models.answer.display());
    let mut answer = flint_model::Model::open(&opts.models.answer).with_context(loading)?;
    // A model with towers takes the speech and the frame itself: no Whisper, no OCR.
    let (hears, sees) = (
        answer.config.audio.is_some(),
        answer.config.vision.is_some(),
    );
    if opts.video && !sees {
        bail!(
            "--video: the answer model {} has no vision tower",
            opts.models.answer.display()
        );
    }
    let used = opts.models.for_model(hears, sees);
    used.check()?;
    let paging = match &opts.mem_budget {
        Some((bytes, what)) => crate::memory::fit_budget(&used, &mut answer, *bytes, what)?,
        None => None,
    };
    if let Some(p) = &paging {
        report.event("paging", json!({ "message": p }));
    }
    let flint = flint_engine::Flint::from_model(answer).with_context(loading)?;
    let asr = match &used.asr {
        Some(dir) => Some(
            flint_asr::Whisper::open(dir)
                .with_context(|| format!("loading Whisper from {}", dir.display()))?,
        ),
        None => None,
    };
    let vad_cfg = flint_onnx::VadConfig {
        backend: opts.onnx.clone(),
        ..opts.vad.clone()
    };
    let mut vad = flint_onnx::Vad::open(&opts.models.vad, vad_cfg)
        .with_context(|| format!("loading voice activity from {}", opts.models.vad.display()))?;
    let ocr = match &used.ocr {
        Some((det, rec)) => Some(
            flint_onnx::Ocr::open_with(det, rec, ocr_config(&opts.onnx)).with_context(|| {
                format!("loading OCR from {} and {}", det.display(), rec.display())
            })?,
        ),
        None => None,
    };
    let mut display = Display::open(&opts.display, opts.geometry)?;
    let mut inputs = match inputs {
        Some(i) => i,
        None => open_source(&opts.source)?,
    };
    let mut recorder = match &opts.record {
        Some(d) => Some(flint_sensors::Recorder::create(d)?),
        None => None,
    };
    report.event(
        "start",
        json!({"source": opts.source.describe(), "display": format!("{:?}", opts.display),
               "answer_model": opts.models.answer, "load_ms": t_load.elapsed().as_secs_f64() * 1e3,
               "threads": opts.threads, "encoder_threads": opts.encoder_threads, "onnx": opts.onnx.to_string(),
               "model_mib": crate::memory::model_bytes(&used) >> 20,
               "answer_model_hears": hears, "answer_model_sees": sees, "video": opts.video}),
    );
    let base = Budget {
        max_tokens: opts.max_tokens,
        threads: opts.threads,
        encoder_threads: opts.encoder_threads,
        image_tokens: flint
            .image_token_cap()
            .map(|cap| opts.image_tokens.map_or(cap, |n| n.min(cap))),
        status: String::new(),
    };
    let mut budget = base.clone();
    let mut power = Power::default();
    let models = turn::Models {
        flint: &flint,
        asr: asr.as_ref(),
        ocr: ocr.as_ref(),
        sees,
        video: opts.video,
    };
    let mut memory = Memory::default();
    let mut frames = FrameRing::new(FRAME_SECONDS as usize * 30, FRAME_SECONDS * 1000);
    // Audio: `heard` holds the samples from `heard_from` (absolute sample index) on.
    let mut heard: Vec<f32> = Vec::new();
    let mut heard_from: u64 = 0;
    let mut speech_from: Option<(u64, u64, bool)> = None; // (sample index, t_ms, opened by the button)
    let mut summary = Summary::default();
    // Time (ms) of the first audio sample: sample indices of the detector count from it.
    let mut audio_origin: Option<u64> = None;
    let mut notes = Vec::new();
    // A scope for the OCR started at speech start (its thread borrows the OCR models).
    let mut chat = flint.chat();
    chat.system(turn::SYSTEM);
    // The conversation: here between turns, on the speech-start thread while the wearer speaks.
    let mut chat_slot = Some(chat);
    // The speech as the answer model's audio tower encodes it while it arrives (a model that hears).
    let mut listener: Option<flint_engine::Listener<'_>> = None;
    std::thread::scope(|scope| -> Result<Summary> {
        let mut ended = false;
        let mut early = None;
        let mut now_ms = 0;
        // Whether the detector is inside speech (a turn the button opened waits for it to end).
        let mut vad_open = false;
        while !ended {
            let next = inputs.next(&mut |n| notes.push(n));
            for n in notes.drain(..) {
                report.event("device", json!({"message": n}));
            }
            let mut edges = Vec::new();
            for ev in display.events() {
                if let Message::Button {
                    action: flint_bridge::types::ButtonAction::Press,
                    ..
                } = ev
                {
                    // Push to talk: a press opens a turn; a second press (or the end of the speech) closes it.
                    let at = heard_from + heard.len() as u64;
                    let (edge, what) = match speech_from {
                        None => (Edge::Start { at, button: true }, "turn opened"),
                        Some((_, _, true)) if !vad_open => (Edge::End { at }, "turn closed"),
                        Some(_) => continue,
                    };
                    report.event("button", json!({"message": format!("press: {what}")}));
                    edges.push(edge);
                    continue;
                }
                adjust(&mut power, &mut budget, &base, &ev, report);
            }
            match next {
                // The source ended: close speech still open.
                None => {
                    ended = true;
                    edges.extend(vad.finish().map(Edge::from));
                    if let (Some((_, _, true)), false) = (speech_from, vad_open) {
                        edges.push(Edge::End {
                            at: heard_from + heard.len() as u64,
                        });
                    }
                }
                // A frame that does not decode is reported and skipped; anything else ends the run.
                Some(Err(e)) if is_bad_frame(&e) => {
                    report.event("device", json!({"message": format!("{e:#}")}));
                    continue;
                }
                Some(Err(e)) => return Err(e.context("reading the inputs")),
                Some(Ok(Input::Frame { t_ms, image })) => {
                    if let Some(r) = &mut recorder {
                        r.frame(t_ms, &image)?;
                    }
                    frames.push(t_ms, image);
                }
                Some(Ok(Input::Audio { t_ms, samples })) => {
                    if let Some(r) = &mut recorder {
                        r.audio(&samples)?;
                    }
                    audio_origin.get_or_insert(t_ms);
                    now_ms = t_ms + samples.len() as u64 / 16;
                    heard.extend_from_slice(&samples);
                    if let (Some(l), Some((from, _, _))) = (&mut listener, speech_from) {
                        // At most the longest utterance (the rest of a longer one is not heard).
                        let open = (heard_from + heard.len() as u64).saturating_sub(from);
                        if open <= MAX_UTTERANCE as u64 {
                            l.push(&samples)
                                .context("encoding the speech as it arrives")?;
                        }
                    }
                    edges.extend(vad.push(&samples)?.into_iter().map(Edge::from));
                }
            };
            // A turn the button opened and nobody spoke into ends after a while.
            if let (Some((_, start_ms, true)), false) = (speech_from, vad_open) {
                if now_ms > start_ms + PUSH_TO_TALK_MS && edges.is_empty() {
                    report.event(
                        "button",
                        json!({"message": "no speech after the press: turn closed"}),
                    );
                    edges.push(Edge::End {
                        at: heard_from + heard.len() as u64,
                    });
                }
            }
            let origin = audio_origin.unwrap_or(0);
            for edge in edges {
                match edge {
                    Edge::Start { at, button } => {
                        if !button {
                            vad_open = true;
                        }
                        // The detector hears speech in a turn the button opened: the turn goes on.
                        if speech_from.is_some() {
                            continue;
                        }
                        let at = at.max(heard_from);
                        let start_ms = origin + at / 16;
                        speech_from = Some((at, start_ms, button));
                        report.event(
                            "speech_start",
                            json!({"t_ms": start_ms, "by": if button { "button" } else { "voice" }}),
                        );
                        let recent: Vec<(u64, &flint_media::RgbImage)> =
                            frames.iter().filter(|(t, _)| *t + 1000 >= now_ms).collect();
                        // The conversation goes to the speech-start thread (OCR or the frame, then the prompt's
                        // start).
                        let chat = match (chat_slot.take(), early.take()) {
                            (Some(c), _) => c,
                            (None, Some(e)) => turn::Early::join(e)?.1,
                            (None, None) => bail!("internal: the conversation was lost"),
                        };
                        early = Some(turn::start(scope, &models, &recent, &memory, chat, &budget));
                        if hears {
                            // The audio since the start (the detector's pre-roll) first, then as it comes.
                            let mut l = flint
                                .listen(16_000, budget.encoder_threads)
                                .context("listening with the answer model's audio tower")?;
                            let lo = ((at - heard_from) as usize).min(heard.len());
                            l.push(&heard[lo..])
                                .context("encoding the speech as it arrives")?;
                            listener = Some(l);
                        }
                    }
                    Edge::End { at: at_sample } => {
                        vad_open = false;
                        let Some((from, start_ms, _)) = speech_from.take() else {
                            continue;
                        };
                        let speech_end = Instant::now();
                        let lo = (from.saturating_sub(heard_from) as usize).min(heard.len());
                        let hi =
                            (at_sample.saturating_sub(heard_from) as usize).clamp(lo, heard.len());
                        let utterance = heard[lo..hi].to_vec();
                        summary.turns += 1;
                        let n = summary.turns;
                        let end_ms = origin + at_sample / 16;
                        report.event(
                            "turn",
                            json!({"turn": n, "speech_start_ms": start_ms, "speech_end_ms": end_ms,
                                   "detected_at_ms": now_ms}),
                        );
                        // The frames in view while the wearer spoke (from a second before), else the latest.
                        let mut window: Vec<(u64, &flint_media::RgbImage)> = frames
                            .iter()
                            .filter(|(t, _)| *t + 1000 >= start_ms && *t <= end_ms + 200)
                            .collect();
                        if window.is_empty() {
                            window.extend(frames.latest());
                        }
                        let source = match early.take() {
                            Some(e) => turn::ChatSource::Early(e),
                            None => turn::ChatSource::Ready(
                                chat_slot
                                    .take()
                                    .context("internal: the conversation was lost")?,
                            ),
                        };
                        chat_slot = Some(turn::run(
                            n,
                            &utterance,
                            &window,
                            source,
                            listener.take(),
                            speech_end,
                            &models,
                            &budget,
                            &mut memory,
                            &mut display,
                            report,
                        )?);
                        if opts.max_turns.is_some_and(|m| n >= m) {
                            return finish(summary, &display, opts, report, recorder);
                        }
                    }
                }
            }
            // Keep the audio bounded: the open utterance (capped) or the pre-roll.
            let keep = match speech_from {
                Some((from, _, _)) => {
                    let open = (heard_from + heard.len() as u64).saturating_sub(from) as usize;
                    open.min(MAX_UTTERANCE) + PRE_ROLL_SAMPLES
                }
                None => PRE_ROLL_SAMPLES,
            };
            if heard.len() > keep + 16_000 {
                let drop = heard.len() - keep;
                heard.drain(..drop);
                heard_from += drop as u64;
            }
        }
        finish(summary, &display, opts, report, recorder)
    })
}

/// Where a turn opens or closes: the detector's speech start (or a button press) and end, in samples.
#[derive(Debug, Clone, Copy)]
enum Edge {
    Start { at: u64, button: bool },
    End { at: u64 },
}

impl From<flint_onnx::VadEvent> for Edge {
    fn from(e: flint_onnx::VadEvent) -> Edge {
        match e {
            flint_onnx::VadEvent::SpeechStart { at_sample } => Edge::Start {
                at: at_sample,
                button: false,
            },
            flint_onnx::VadEvent::SpeechEnd { at_sample } => Edge::End { at: at_sample },
        }
    }
}

fn finish(
    mut summary: Summary,
    display: &Display,
    opts: &Options,
    report: &mut Reporter,
    recorder: Option<flint_sensors::Recorder>,
) -> Result<Summary> {
    if let Some(r) = recorder {
        r.finish()?;
    }
    summary.display_frames = display.presents;
    let frames_at = match &opts.display {
        Target::Png { dir } => Some(dir.display().to_string()),
        Target::Sim { dir: Some(d) } => Some(d.join("sim.png").display().to_string()),
        _ => None,
    };
    report.event(
        "end",
        json!({"turns": summary.turns, "display_frames": summary.display_frames, "frames_at": frames_at}),
    );
    Ok(summary)
}

/// A recording's frame that does not decode (reported and skipped; the loop goes on).
fn is_bad_frame(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<flint_sensors::SensorError>(),
        Some(flint_sensors::SensorError::Media(_))
    )
}

/// OCR settings of the loop: RapidOCR's, but camera frames are not scaled up for the detector (a 640x480 frame
/// goes in at its size rather than at 981x736: about 2.4 times fewer pixels).
pub fn ocr_config(backend: &flint_onnx::Backend) -> flint_onnx::OcrConfig {
    flint_onnx::OcrConfig {
        min_det_side: 480,
        backend: backend.clone(),
        ..Default::default()
    }
}

fn open_source(source: &Source) -> Result<Inputs> {
    Ok(match source {
        Source::Recording { dir, speed, looped } => {
            let recording = flint_sensors::Recording::open(dir)
                .with_context(|| format!("opening the recording {}", dir.display()))?;
            Inputs::Recording(recording.player(*speed, *looped))
        }
        Source::Devices { camera, mic } => Inputs::devices(
            camera.as_ref().map(|(d, c)| (d.as_str(), *c)),
            (mic.0.as_str(), mic.1),
        )?,
    })
}
