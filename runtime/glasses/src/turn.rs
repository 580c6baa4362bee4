//! One turn: from the end of speech to the answer on the display.
//!
//! 1. The utterance is transcribed by Whisper, while (on a second thread)
//! 2. the sharpest frame of those in view while the wearer spoke is chosen; when it is a near-duplicate of the
//!    frame read last turn, that turn's text is reused. PP-OCRv4 reads the text in it.
//! 3. The answer model gets the transcript and the words in view (with their positions, top to bottom), and its
//!    answer streams into the display's panel, redrawn at each word; the words read are boxed on the display.
//!
//! With an answer model that has towers, its towers take what Whisper and OCR would: a vision tower gets the
//! sharpest frame (encoded and prefilled at speech start, while the wearer speaks, and reused at speech end when
//! the scene has not changed) or, with `--video`, the last second of frames; an audio tower gets the speech
//! itself, encoded while it arrives ([`flint_engine::Listener`]), so at speech end only its last token is left.
//!
//! Times are measured from the moment the voice-activity detector declared the end of speech.

use crate::layout::{self, FrameBox, Geometry, Scene};
use anyhow::{Context, Result};
use flint_media::RgbImage;
use flint_onnx::OcrWord;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The system message of every turn.
pub const SYSTEM: &str = "You are the voice of a pair of camera glasses. The wearer asks about what they see and \
hear. Answer in one or two short sentences. When the question is about text in view, quote that text.";

/// Most characters of OCR text put into the prompt.
const MAX_OCR_CHARS: usize = 600;

/// What the loop keeps between turns.
#[derive(Debug, Default)]
pub struct Memory {
    last_thumb: Option<flint_sensors::select::Thumbnail>,
    last_words: Vec<OcrWord>,
    last_frame_size: Option<(u32, u32)>,
    /// The frame last sent to a vision tower (a near-duplicate is sent as this one, so its rows stay cached).
    last_picture: Option<(flint_sensors::select::Thumbnail, Arc<RgbImage>)>,
}

/// The user message: the question, and the text the camera sees when there is any.
pub fn prompt(transcript: &str, words: &[OcrWord]) -> String {
    if words.is_empty() {
        return transcript.trim().to_string();
    }
    let mut seen = String::new();
    for w in words {
        if seen.len() + w.text.len() + 3 > MAX_OCR_CHARS {
            break;
        }
        if !seen.is_empty() {
            seen.push_str(" / ");
        }
        seen.push_str(w.text.trim());
    }
    format!(
        "The camera sees this text (read by OCR, top to bottom): \"{seen}\"\nQuestion: {}",
        transcript.trim()
    )
}

/// Words in reading order: by line (top edge, within half a line height), then left to right.
pub fn reading_order(mut words: Vec<OcrWord>) -> Vec<OcrWord> {
    let top = |w: &OcrWord| w.quad.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let left = |w: &OcrWord| w.quad.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
    let height = |w: &OcrWord| {
        let ys = w.quad.iter().map(|p| p[1]);
        ys.clone().fold(f32::NEG_INFINITY, f32::max) - ys.fold(f32::INFINITY, f32::min)
    };
    words.sort_by(|a, b| top(a).total_cmp(&top(b)));
    let mut lines: Vec<Vec<OcrWord>> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(line) if (top(&w) - top(&line[0])).abs() < 0.5 * height(&line[0]).max(1.0) => {
                line.push(w)
            }
            _ => lines.push(vec![w]),
        }
    }
    lines
        .into_iter()
        .flat_map(|mut l| {
            l.sort_by(|a, b| left(a).total_cmp(&left(b)));
            l
        })
        .collect()
}

fn bounds(w: &OcrWord) -> [f32; 4] {
    let xs = w.quad.iter().map(|p| p[0]);
    let ys = w.quad.iter().map(|p| p[1]);
    [
        xs.clone().fold(f32::INFINITY, f32::min),
        ys.clone().fold(f32::INFINITY, f32::min),
        xs.fold(f32::NEG_INFINITY, f32::max),
        ys.fold(f32::NEG_INFINITY, f32::max),
    ]
}

/// The models a turn uses.
pub struct Models<'a> {
    pub flint: &'a flint_engine::Flint,
    /// None: the answer model hears the question itself (its audio tower).
    pub asr: Option<&'a flint_asr::Whisper>,
    pub ocr: Option<&'a flint_onnx::Ocr>,
    /// The answer model sees: frames go to its vision tower.
    pub sees: bool,
    /// With `sees`: the last second of frames as a video.
    pub video: bool,
}

impl std::fmt::Debug for Models<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("ocr", &self.ocr.is_some())
            .field("asr", &self.asr.is_some())
            .field("sees", &self.sees)
            .field("video", &self.video)
            .finish_non_exhaustive()
    }
}

/// How a turn answers (the loop lowers these under heat or a low battery).
#[derive(Debug, Clone)]
pub struct Budget {
    pub max_tokens: usize,
    /// Threads of the answer model.
    pub threads: usize,
    /// Threads of the speech recogniser (the OCR runs beside it on its own thread).
    pub encoder_threads: usize,
    /// Image tokens at most per frame, for a model that sees.
    pub image_tokens: Option<usize>,
    /// Said on the display's status line.
    pub status: String,
}

/// What OCR returns on its thread: the words, the milliseconds it took, when it finished.
pub type OcrOutcome = (Result<Vec<OcrWord>, flint_onnx::OnnxError>, f64, Instant);

/// What the speech-start thread did before the prompt was known: how many tokens of it it prefilled, in how
/// long, and when it finished.
#[derive(Debug, Clone, Copy)]
pub struct Prefilled {
    pub tokens: usize,
    pub ms: f64,
    pub at: Instant,
}

/// What the speech-start thread hands back: its OCR (if it ran), the conversation, the prefill.
pub type EarlyOutcome<'f> = (
    Option<OcrOutcome>,
    flint_engine::Chat<'f>,
    Result<Prefilled>,
);

/// Work started at speech start on its own thread, while the wearer speaks: PP-OCRv4 on the sharpest frame of the
/// last second (its text is in view while they speak, so it is read by the time they stop), then the answer
/// model's prefill of everything the prompt holds before the question (the system message and the text in view:
/// [`prompt_prefix`]). At speech end only the transcript is left to prefill.
#[derive(Debug)]
pub struct Early<'s, 'f> {
    /// The frame OCR reads: its time, size and thumbnail (none: no OCR ran, the last turn's words stand). For
    /// a model that sees: the frame prefilled.
    pub frame: Option<(u64, (usize, usize), flint_sensors::select::Thumbnail)>,
    /// For a model that sees: the frame encoded and prefilled.
    pub picture: Option<Arc<RgbImage>>,
    pub job: std::thread::ScopedJoinHandle<'s, EarlyOutcome<'f>>,
}

impl<'f> Early<'_, 'f> {
    /// Waits for the thread; a panic on it becomes an error (the conversation is lost with it).
    pub fn join(self) -> Result<EarlyOutcome<'f>> {
        self.job
            .join()
            .map_err(|_| anyhow::anyhow!("the speech-start thread (OCR, prefill) panicked"))
    }
}

/// The prompt's text before the transcript (see [`prompt`]).
pub fn prompt_prefix(words: &[OcrWord]) -> String {
    let p = prompt("\u{0}", words);
    p[..p.find('\u{0}').unwrap_or(p.len())].to_string()
}

/// Starts [`Early`] work: OCR on the sharpest of `frames`, unless there is no OCR, no frame, or the frame shows
/// what the last turn's did (its words stand then), and the prefill of the prompt's start in `chat`.
pub fn start<'s, 'f: 's>(
    scope: &'s std::thread::Scope<'s, '_>,
    models: &Models<'s>,
    frames: &[(u64, &RgbImage)],
    memory: &Memory,
    mut chat: flint_engine::Chat<'f>,
    budget: &Budget,
) -> Early<'s, 'f> {
    let threads = budget.threads;
    if models.sees {
        // The sharpest recent frame to the vision tower (a video is the last second before speech end: not known
        // yet, so only the system prompt is prefilled then).
        let best = flint_sensors::select::pick_sharpest(frames.iter().map(|(_, f)| *f))
            .filter(|_| !models.video);
        let (frame, picture) = match best {
            Some(i) => {
                let (t, f) = frames[i];
                let (thumb, pic) = picture_for(f, memory);
                (Some((t, (f.width, f.height), thumb)), Some(pic))
            }
            None => (None, None),
        };
        let mut media = flint_engine::MediaFiles {
            image_tokens: budget.image_tokens.map(flint_engine::ImageTokens::Cap),
            ..Default::default()
        };
        if let (Some(p), Some((t, ..))) = (&picture, &frame) {
            media.pictures.push(flint_engine::Picture {
                name: frame_name(*t),
                image: p.clone(),
            });
        }
        let job = scope.spawn(move || {
            chat.forget_turns();
            flint_engine::set_threads(threads);
            let t0 = Instant::now();
            let pre = chat.prefill_start_with("", &media).map(|tokens| Prefilled {
                tokens,
                ms: t0.elapsed().as_secs_f64() * 1e3,
                at: Instant::now(),
            });
            (None, chat, pre)
        });
        return Early {
            frame,
            picture,
            job,
        };
    }
    let ocr = models.ocr;
    let best = ocr.and(flint_sensors::select::pick_sharpest(
        frames.iter().map(|(_, f)| *f),
    ));
    let mut frame = None;
    let mut img = None;
    let mut standing = Vec::new();
    if let Some(best) = best {
        let (t_ms, f) = frames[best];
        let thumb = flint_sensors::select::Thumbnail::of(f);
        if memory.last_thumb.as_ref().is_some_and(|last| {
            last.difference(&thumb) < flint_sensors::select::DEFAULT_DUPLICATE_THRESHOLD
        }) {
            standing = memory.last_words.clone();
        } else {
            frame = Some((t_ms, (f.width, f.height), thumb));
            img = Some(f.clone());
        }
    }
    let job = scope.spawn(move || {
        let read = img.zip(ocr).map(|(img, ocr)| {
            let t0 = Instant::now();
            let words = ocr.read(&img.data, img.width as u32, img.height as u32);
            (words, t0.elapsed().as_secs_f64() * 1e3, Instant::now())
        });
        let words = match &read {
            Some((Ok(w), _, _)) => reading_order(w.clone()),
            _ => standing,
        };
        chat.forget_turns();
        flint_engine::set_threads(threads);
        let t0 = Instant::now();
        let pre = chat
            .prefill_start(&prompt_prefix(&words))
            .map(|tokens| Prefilled {
                tokens,
                ms: t0.elapsed().as_secs_f64() * 1e3,
                at: Instant::now(),
            });
        (read, chat, pre)
    });
    Early {
        frame,
        picture: None,
        job,
    }
}

/// A camera frame's name in errors and reports.
fn frame_name(t_ms: u64) -> String {
    format!("camera frame at {t_ms} ms")
}

/// The picture to send for `f`: the last one sent when `f` is a near-duplicate of it (the same pixels give the
/// same rows, which the conversation's cache still holds), else `f`.
fn picture_for(f: &RgbImage, memory: &Memory) -> (flint_sensors::select::Thumbnail, Arc<RgbImage>) {
    let thumb = flint_sensors::select::Thumbnail::of(f);
    match &memory.last_picture {
        Some((last, pic))
            if last.difference(&thumb) < flint_sensors::select::DEFAULT_DUPLICATE_THRESHOLD =>
        {
            (last.clone(), pic.clone())
        }
        _ => (thumb, Arc::new(f.clone())),
    }
}

/// Where a turn's conversation is: at hand, or on the speech-start thread (one per turn: its size is no matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ChatSource<'s, 'f> {
    Ready(flint_engine::Chat<'f>),
    Early(Early<'s, 'f>),
}

/// What the wearer said: Whisper's text, or the speech itself as the audio tower encoded it (and how many of
/// its tokens were encoded before speech end).
enum Heard {
    Text(flint_asr::Transcript),
    Audio(flint_engine::EncodedAudio, usize),
}

/// Runs one turn and reports its events. `frames`: the frames in view while the wearer spoke (time, image);
/// `chat`: the conversation, or the speech-start work holding it; `listener`: the speech as the answer model's
/// audio tower encoded it while it arrived (for a model that hears). Returns the conversation for the next turn.
#[allow(clippy::too_many_arguments)]
pub fn run<'f>(
    n: u64,
    utterance: &[f32],
    frames: &[(u64, &RgbImage)],
    chat: ChatSource<'_, 'f>,
    listener: Option<flint_engine::Listener<'f>>,
    speech_end: Instant,
    models: &Models<'_>,
    budget: &Budget,
    memory: &mut Memory,
    display: &mut crate::display::Display,
    report: &mut crate::events::Reporter,
) -> Result<flint_engine::Chat<'f>> {
    let ms = |t: Instant| t.duration_since(speech_end).as_secs_f64() * 1e3;
    flint_engine::set_threads(budget.encoder_threads);

    // 1 and 2 at once, on their own threads: speech to text (Whisper takes at most 30 s: the end of a longer
    // utterance), and the frame with the text in it. OCR started at speech start is used when the sharpest frame
    // now still shows the same scene; otherwise (or without it) OCR runs now, beside Whisper.
    let clip = &utterance[utterance.len().saturating_sub(30 * 16_000)..];
    let best = models.ocr.and(flint_sensors::select::pick_sharpest(
        frames.iter().map(|(_, f)| *f),
    ));
    let mut frame_t = None;
    let mut fresh = None;
    let mut use_early = false;
    let (early_frame, early_picture) = match &chat {
        ChatSource::Early(e) => (e.frame.clone(), e.picture.clone()),
        ChatSource::Ready(_) => (None, None),
    };
    if let Some(best) = best {
        let (t, img) = frames[best];
        frame_t = Some(t);
        let thumb = flint_sensors::select::Thumbnail::of(img);
        let same = |a: &flint_sensors::select::Thumbnail| {
            a.difference(&thumb) < flint_sensors::select::DEFAULT_DUPLICATE_THRESHOLD
        };
        match &early_frame {
            Some((t_ms, _, thumb)) if same(thumb) => {
                frame_t = Some(*t_ms);
                use_early = true;
            }
            _ if memory.last_thumb.as_ref().is_some_and(same) => {}
            _ => fresh = Some((img, thumb)),
        }
    }
    let (heard, read) = std::thread::scope(|s| {
        let ocr_job = fresh.as_ref().zip(models.ocr).map(|((img, _), ocr)| {
            s.spawn(move || {
                let t0 = Instant::now();
                let words = ocr.read(&img.data, img.width as u32, img.height as u32);
                (words, t0.elapsed().as_secs_f64() * 1e3, Instant::now())
            })
        });
        let streamed = listener.as_ref().map_or(0, |l| l.tokens());
        let heard = match (models.asr, listener) {
            (Some(asr), _) => asr
                .transcribe(clip)
                .map(|h| (Heard::Text(h), Instant::now()))
                .with_context(|| {
                    format!("turn {n}: transcribing {} ms of speech", clip.len() / 16)
                }),
            (None, Some(l)) => l
                .finish()
                .map(|a| (Heard::Audio(a, streamed), Instant::now()))
                .with_context(|| format!("turn {n}: encoding the speech")),
            (None, None) => Err(anyhow::anyhow!(
                "internal: no speech recogniser and no audio stream"
            )),
        };
        let read = ocr_job.map(|j| {
            let (w, ms, at) = j
                .join()
                .unwrap_or_else(|_| (Ok(Vec::new()), 0.0, Instant::now()));
            let (img, thumb) = fresh
                .as_ref()
                .map(|(i, t)| ((i.width, i.height), t.clone()))
                .unwrap();
            (w, ms, at, img, thumb)
        });
        (heard, read)
    });
    // The speech-start thread gives the conversation back (with the prompt's start prefilled) and its OCR.
    let (mut chat, early_read, prefilled) = match chat {
        ChatSource::Ready(c) => (c, None, None),
        ChatSource::Early(e) => {
            let meta = e.frame.clone();
            let (read, chat, pre) = e.join()?;
            let pre = pre.with_context(|| format!("turn {n}: prefilling the prompt's start"))?;
            let read = read
                .zip(meta)
                .filter(|_| use_early)
                .map(|((w, ms, at), (_, size, thumb))| (w, ms, at, size, thumb));
            (chat, read, Some(pre))
        }
    };
    let read = read.or(early_read);
    let (heard, asr_done) = heard?;
    let (question, spoken) = match heard {
        Heard::Text(h) => {
            report.event(
                "transcript",
                json!({"turn": n, "text": h.text.trim(), "speech_ms": utterance.len() / 16,
                       "encode_ms": h.encode_ms, "decode_ms": h.decode_ms}),
            );
            (h.text.trim().to_string(), None)
        }
        Heard::Audio(a, streamed) => {
            let hidden = models.flint.model().config.hidden_size;
            report.event(
                "audio",
                json!({"turn": n, "tokens": a.rows.len() / hidden.max(1), "streamed_tokens": streamed,
                       "speech_ms": utterance.len() / 16, "encode_ms": a.secs * 1e3,
                       "finish_ms": ms(asr_done)}),
            );
            (String::new(), Some(a))
        }
    };
    let mut ocr_ms = 0.0;
    let mut ocr_done = asr_done;
    if let (Some((words, ms_, at, (w, h), thumb)), Some(t)) = (read, frame_t) {
        let words =
            words.with_context(|| format!("turn {n}: reading text in the frame at {t} ms"))?;
        ocr_ms = ms_;
        // OCR finished before the end of speech counts as done then.
        ocr_done = at.max(speech_end);
        memory.last_words = reading_order(words);
        memory.last_frame_size = Some((w as u32, h as u32));
        memory.last_thumb = Some(thumb);
    }
    if let Some(t) = frame_t {
        report.event(
            "ocr",
            json!({"turn": n, "frame_t_ms": t, "reused": ocr_ms == 0.0, "ms": ocr_ms,
                   "words": memory.last_words.iter().map(|w| json!({
                       "text": w.text, "score": w.score, "box": bounds(w)})).collect::<Vec<_>>()}),
        );
    }
    let words: &[OcrWord] = if frame_t.is_some() {
        &memory.last_words
    } else {
        &[]
    };
    let encode_done = asr_done.max(ocr_done);

    // For a model that sees: the frame (or the last second of frames) for its vision tower.
    let mut picture = None;
    let mut video = None;
    if models.sees {
        let same = |a: &flint_sensors::select::Thumbnail, b: &flint_sensors::select::Thumbnail| {
            a.difference(b) < flint_sensors::select::DEFAULT_DUPLICATE_THRESHOLD
        };
        if models.video {
            let last = frames.iter().map(|(t, _)| *t).max().unwrap_or(0);
            let recent: Vec<&(u64, &RgbImage)> =
                frames.iter().filter(|(t, _)| *t + 1000 >= last).collect();
            if !recent.is_empty() {
                report.event(
                    "vision",
                    json!({"turn": n, "video_frames": recent.len(),
                           "frames_t_ms": recent.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
                           "image_tokens": budget.image_tokens}),
                );
                video = Some(flint_engine::Frames {
                    name: format!("the camera's last second (to {last} ms)"),
                    times: recent.iter().map(|(t, _)| *t).collect(),
                    images: Arc::new(recent.iter().map(|(_, f)| (*f).clone()).collect()),
                });
            }
        } else if let Some(i) = flint_sensors::select::pick_sharpest(frames.iter().map(|(_, f)| *f))
        {
            let (t, f) = frames[i];
            let thumb = flint_sensors::select::Thumbnail::of(f);
            // The frame prefilled at speech start when the scene is the same, else this one (or the last sent).
            let (t, thumb, pic, how) = match (&early_frame, &early_picture) {
                (Some((et, _, eth)), Some(p)) if same(eth, &thumb) => {
                    (*et, eth.clone(), p.clone(), "prefilled at speech start")
                }
                _ => {
                    let (th, p) = picture_for(f, memory);
                    let again = memory
                        .last_picture
                        .as_ref()
                        .is_some_and(|(_, l)| Arc::ptr_eq(l, &p));
                    (t, th, p, if again { "the last turn's" } else { "new" })
                }
            };
            report.event(
                "vision",
                json!({"turn": n, "frame_t_ms": t, "frame": how, "size": [pic.width, pic.height],
                       "image_tokens": budget.image_tokens}),
            );
            memory.last_picture = Some((thumb, pic.clone()));
            picture = Some((t, pic));
        }
    }

    // 3. The answer, streamed onto the display.
    let mut scene = Scene {
        status: format!("turn {n}{}", budget.status),
        question: if question.is_empty() {
            "(asked aloud)".to_string()
        } else {
            question.clone()
        },
        boxes: words
            .iter()
            .map(|w| FrameBox {
                label: String::new(),
                rect: bounds(w),
            })
            .collect(),
        frame: match &picture {
            Some((_, p)) => Some((p.width as u32, p.height as u32)),
            None => memory.last_frame_size.filter(|_| !words.is_empty()),
        },
        ..Default::default()
    };
    let geometry: Geometry = display.geometry;
    flint_engine::set_threads(budget.threads);
    let stop = Arc::new(AtomicBool::new(false));
    let mut pressed = None;
    chat.forget_turns();
    let mut first_token = None;
    let mut first_pixel = None;
    let mut shown_words = 0usize;
    let mut display_err = None;
    let user = if question.is_empty() {
        String::new()
    } else {
        prompt(&question, words)
    };
    let mut turn = chat
        .turn(&user)
        .max_tokens(budget.max_tokens)
        .stop_on(stop.clone());
    if let Some(cap) = budget.image_tokens {
        turn = turn.image_tokens(flint_engine::ImageTokens::Cap(cap));
    }
    if let Some((t, pic)) = &picture {
        turn = turn.picture(&frame_name(*t), pic.clone());
        if let Some(f) =
            flint_engine::BoxFormat::for_architecture(&models.flint.model().config.arch)
        {
            turn = turn.boxes(f);
        }
    }
    if let Some(v) = video {
        turn = turn.frames(v);
    }
    if let Some(a) = spoken {
        turn = turn.encoded_audio(a);
    }
    let reply = turn
        .run(|e| {
            // A button press on the glasses ends the answer at this token.
            if pressed.is_none() {
                if let Some(b) = display.take_press() {
                    pressed = Some((b, Instant::now()));
                    stop.store(true, Ordering::Relaxed);
                }
            }
            // Boxes and points of the answer, in the frame's pixels, drawn with the answer.
            if let flint_engine::Event::Overlay(o) = e {
                let rect = match o.shape {
                    flint_engine::Shape::Box { x1, y1, x2, y2 } => [x1, y1, x2, y2],
                    flint_engine::Shape::Point { x, y } => [x - 4.0, y - 4.0, x + 4.0, y + 4.0],
                };
                scene.boxes.push(FrameBox {
                    label: o.label.clone().unwrap_or_default(),
                    rect,
                });
            }
            if let flint_engine::Event::Answer(t) = e {
                first_token.get_or_insert_with(Instant::now);
                report.stream(t);
                scene.answer.push_str(t);
                // Redraw when a word is complete (or at the first token, so the panel appears at once).
                let words_now = scene.answer.split_whitespace().count();
                let boundary = t.contains(char::is_whitespace) || t.ends_with(['.', ',', '!', '?']);
                if display_err.is_none()
                    && (first_pixel.is_none() || (boundary && words_now != shown_words))
                {
                    shown_words = words_now;
                    match display.show(&layout::draw(&scene, geometry).0) {
                        Ok(at) => {
                            first_pixel.get_or_insert(at);
                        }
                        Err(e) => display_err = Some(e),
                    }
                }
            }
        })
        .with_context(|| format!("turn {n}: answering"))?;
    if let Some((b, at)) = &pressed {
        report.event(
            "button",
            json!({"turn": n, "message": format!("{b:?}: answer stopped"), "at_ms": ms(*at)}),
        );
        scene.status.push_str(" | stopped");
    }
    if display_err.is_none() {
        scene.answer = reply.answer.clone();
        if let Err(e) = display.show(&layout::draw(&scene, geometry).0) {
            display_err = Some(e);
        }
    }
    let done = Instant::now();
    for note in display.take_notes() {
        report.event("device", json!({"device": "display", "message": note}));
    }
    if let Some(e) = display_err {
        report.event(
            "device",
            json!({"device": "display", "message": format!("{e:#}")}),
        );
    }
    report.event(
        "answer",
        json!({"turn": n, "text": reply.answer.trim(), "stopped": reply.stopped}),
    );
    report.event(
        "timings",
        json!({
            "turn": n,
            "asr_ms": models.asr.map(|_| ms(asr_done)),
            "audio_ms": models.asr.is_none().then(|| ms(asr_done)),
            "ocr_ms": ocr_ms,
            "encode_done_ms": ms(encode_done),
            "first_token_ms": first_token.map(ms),
            "first_pixel_ms": first_pixel.map(ms),
            "answer_done_ms": ms(done),
            "prompt_tokens": reply.stats.prompt_tokens,
            "tokens": reply.stats.generated,
            "decode_tok_s": reply.stats.decode_tok_s(),
            "rss_mib": crate::memory::rss_mib(),
            "prefilled_early": prefilled.map(|p| p.tokens),
            "early_prefill_ms": prefilled.map(|p| p.ms),
            "early_prefill_done_ms": prefilled.map(|p| ms(p.at)),
        }),
    );
    Ok(chat)
}
