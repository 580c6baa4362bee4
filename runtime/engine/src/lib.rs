//! Flint as a library: load a model, hold a conversation, add text, images and audio to a turn, and stream the
//! answer with its reasoning and its boxes, under a grammar or a thinking budget if asked. `flint run` is built
//! on it; an app embeds it the same way.
//!
//! ```no_run
//! use flint_engine::{Event, Flint};
//! let flint = Flint::open("model.flint")?;
//! let mut chat = flint.chat();
//! let reply = chat
//!     .turn("What is in front of me?")
//!     .image("frame.jpg")
//!     .max_tokens(64)
//!     .run(|e| {
//!         if let Event::Answer(t) = e {
//!             print!("{t}");
//!         }
//!     })?;
//! println!("\n{} tokens, {:.1} tok/s", reply.stats.generated, reply.stats.decode_tok_s());
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! - [`Flint`]: the model (memory-mapped), its tokenizer and chat template, and its towers (bound on first use).
//! - [`Chat`]: one conversation. Its KV cache stays between turns; each turn renders the whole history with the
//!   chat template and prefills only past the longest common prefix.
//! - [`Turn`]: one user message and how to answer it: media ([`Turn::image`], [`Turn::audio`]), sampling, a JSON
//!   Schema or a grammar ([`Turn::json_schema`], [`Turn::grammar`]: the answer always keeps to it), a reasoning
//!   budget ([`Turn::think_budget`]) and effort, a box format for the overlays ([`Turn::boxes`]).
//! - [`Event`]s stream while the model writes: answer text, reasoning text, each box or point once complete.

use anyhow::{bail, Context};
use flint_answer::{BoxParser, Reasoner};
use flint_constrain::{Constraint, Vocab};
use flint_model::multimodal::{EncodeCache, MediaPrompt, Towers};
use flint_model::{ChatOptions, Message, Model, Sampler, Session, Step, Text, TextStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub use flint_answer::{Format as BoxFormat, Frame, Overlay, ReasoningFormat, Shape};
pub use flint_constrain::Grammar;
pub use flint_media::RgbImage;
pub use flint_model::{GenStats, KvDtype, KvOptions, SamplerConfig};
pub use flint_prompt::{EncodedAudio, Frames, ImageTokens, MediaFiles, Picture};

/// A loaded model.
#[derive(Debug)]
pub struct Flint {
    model: Model,
    text: Text,
    towers: OnceLock<Towers>,
}

impl Flint {
    /// Maps a `.flint` file (its kernels use the threads [`set_threads`] gave, 1 by default).
    pub fn open(path: impl AsRef<Path>) -> anyhow::Result<Flint> {
        let path = path.as_ref();
        let model = Model::open(path).with_context(|| format!("loading {}", path.display()))?;
        Flint::from_model(model)
    }

    /// Wraps a model already loaded.
    pub fn from_model(model: Model) -> anyhow::Result<Flint> {
        let text = Text::from_file(model.file())?.with_context(|| {
            format!(
                "{} has no tokenizer: it cannot take text",
                model.file().path().display()
            )
        })?;
        Ok(Flint {
            model,
            text,
            towers: OnceLock::new(),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn text(&self) -> &Text {
        &self.text
    }

    /// The tokens that end a turn: the config's end tokens, and with `chat` the end-of-turn tokens of the usual
    /// chat formats.
    pub fn stop_ids(&self, chat: bool) -> Vec<u32> {
        flint_model::stop_ids(&self.model, &self.text, chat)
    }

    fn towers(&self) -> anyhow::Result<&Towers> {
        if let Some(t) = self.towers.get() {
            return Ok(t);
        }
        let t = Towers::load(&self.model)?;
        Ok(self.towers.get_or_init(|| t))
    }

    /// Whether the model has a vision tower (it takes images and video).
    pub fn sees(&self) -> bool {
        self.model.config.vision.is_some()
    }

    /// The most tokens the image processor gives an image (its `max_image_tokens`), for a model that sees.
    pub fn image_token_cap(&self) -> Option<usize> {
        self.sees()
            .then(|| flint_prompt::image_config(&self.model).ok())
            .flatten()
            .map(|c| c.max_tokens)
    }

    /// Whether the model has an audio tower (it takes speech itself, without a recogniser).
    pub fn hears(&self) -> bool {
        self.model.config.audio.is_some()
    }

    /// Audio arriving at `rate` Hz (a microphone), encoded by the audio tower as it comes: resampled to the
    /// tower's rate and run through its causal stream on `threads` threads of its own, so that at the end only the
    /// last token is left. Equal to [`Turn::audio`] of the same samples; [`Listener::finish`] gives the clip for
    /// [`Turn::encoded_audio`].
    pub fn listen(&self, rate: u32, threads: usize) -> anyhow::Result<Listener<'_>> {
        let cfg = flint_prompt::audio_config(&self.model)?;
        if cfg.pad_left || cfg.padding_value != 0.0 {
            bail!(
                "{}: the feature extractor pads {} with {}: a stream pads the right with zeros",
                self.model.file().path().display(),
                if cfg.pad_left { "left" } else { "right" },
                cfg.padding_value
            );
        }
        let tower = self.towers()?.audio.as_ref().context("no audio tower")?;
        let name = Path::new("microphone");
        Ok(Listener {
            resampler: flint_media::resample::Stream::new(name, rate, cfg.sampling_rate)?,
            stream: tower.stream(&flint_kernels::Exec::with_threads(threads.max(1))),
            rows: Vec::new(),
            valid: 0,
            secs: 0.0,
        })
    }

    /// A conversation in the model's chat template.
    pub fn chat(&self) -> Chat<'_> {
        self.chat_with(KvOptions::default())
    }

    /// A conversation with its own KV cache layout.
    pub fn chat_with(&self, kv: KvOptions) -> Chat<'_> {
        Chat {
            flint: self,
            session: Session::new(&self.model, kv),
            history: Vec::new(),
            media: MediaFiles::default(),
            encoded: EncodeCache::default(),
            raw: false,
        }
    }

    /// Prompts as they are, without a chat template (the tokenizer adds its own special tokens); each turn is
    /// one prompt, and the cache keeps what a next prompt shares with it.
    pub fn raw(&self, kv: KvOptions) -> Chat<'_> {
        Chat {
            raw: true,
            ..self.chat_with(kv)
        }
    }
}

/// Sets the kernels' worker threads for every model of the process (0: one per CPU).
pub fn set_threads(n: usize) {
    flint_kernels::set_threads(n);
}

/// One conversation.
#[derive(Debug)]
pub struct Chat<'f> {
    flint: &'f Flint,
    session: Session<'f>,
    history: Vec<Message>,
    /// Every medium of the conversation so far, in order (the template renders them all each turn; the
    /// processors take one video per prompt).
    media: MediaFiles,
    /// The vision rows of the last frames encoded (a prefilled frame is not encoded twice).
    encoded: EncodeCache,
    raw: bool,
}

impl<'f> Chat<'f> {
    /// Sets the system message (before the first turn).
    pub fn system(&mut self, text: &str) -> &mut Self {
        self.history.retain(|m| m.role != "system");
        self.history.insert(0, Message::new("system", text));
        self
    }

    /// The messages so far.
    pub fn history(&self) -> &[Message] {
        &self.history
    }

    /// Forgets the turns (and their media), keeping the system message and the KV cache: the next turn starts a
    /// new conversation but reuses the cached system prompt, as the common prefix.
    pub fn forget_turns(&mut self) {
        self.history.retain(|m| m.role == "system");
        self.media = MediaFiles::default();
    }

    /// Prefills what the next turn's prompt will start with, before the rest of it is known: the history and a
    /// user message beginning with `start` (the glasses loop does it with the text in view while the wearer is
    /// still speaking). Nothing joins the conversation; the next turn whose message begins with `start` reuses
    /// those tokens as the common prefix. Returns the tokens prefilled (those not already cached).
    pub fn prefill_start(&mut self, start: &str) -> anyhow::Result<usize> {
        self.prefill_start_with(start, &MediaFiles::default())
    }

    /// [`Chat::prefill_start`] with media at the message's start (their placeholders go in front of `start`, as
    /// a turn puts them): a camera frame is encoded and prefilled while the wearer speaks, and a next turn with
    /// the same frame first (and more media after it) reuses it.
    pub fn prefill_start_with(&mut self, start: &str, media: &MediaFiles) -> anyhow::Result<usize> {
        let f = self.flint;
        let text = &f.text;
        let content = media.placeholders() + start;
        let rendered = if self.raw {
            content
        } else {
            // A marker after `start` shows where the user's text ends in the rendered template.
            const MARK: &str = "\u{1}flint-prefill-end\u{1}";
            let mut msgs = self.history.clone();
            msgs.push(Message::new("user", format!("{content}{MARK}")));
            let r = text.apply_chat_template_with(&msgs, &ChatOptions::default())?;
            let end = r
                .find(MARK)
                .context("the chat template dropped the user's message")?;
            r[..end].to_string()
        };
        let mut files = self.media.clone();
        files.extend(media)?;
        files.image_tokens = media.image_tokens;
        let prompt = if files.is_empty() {
            MediaPrompt::text(&f.model, text.encode(&rendered, self.raw)?)
        } else {
            let p = flint_prompt::prepare(&f.model, &files)?;
            let ids = text.encode(&p.expand(&rendered)?, self.raw)?;
            MediaPrompt::encode_cached(
                &f.model,
                f.towers()?,
                f.model.exec(),
                ids,
                &p.media,
                &mut self.encoded,
            )?
            .0
        };
        if prompt.is_empty() {
            return Ok(0);
        }
        let (_, reused) = self.session.prefill_prompt(&prompt)?;
        Ok(prompt.len() - reused)
    }

    /// A new user turn.
    pub fn turn<'c>(&'c mut self, text: &str) -> Turn<'c, 'f> {
        Turn {
            chat: self,
            content: text.to_string(),
            files: Default::default(),
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            grammar: None,
            think_budget: None,
            reasoning: None,
            effort: None,
            boxes: None,
            confidence: false,
            stop: None,
        }
    }
}

/// Audio encoded as it arrives ([`Flint::listen`]).
#[derive(Debug)]
pub struct Listener<'f> {
    resampler: flint_media::resample::Stream,
    stream: flint_model::AudioStream<'f>,
    rows: Vec<f32>,
    /// Samples at the tower's rate.
    valid: usize,
    secs: f64,
}

impl Listener<'_> {
    /// Adds samples (mono, at the rate given to [`Flint::listen`]) and encodes the tokens they complete.
    pub fn push(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        let t = std::time::Instant::now();
        let x = self.resampler.push(samples)?;
        self.valid += x.len();
        self.rows.extend(self.stream.push(&x)?);
        self.secs += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Tokens encoded so far.
    pub fn tokens(&self) -> usize {
        self.stream.tokens()
    }

    /// Seconds spent encoding so far.
    pub fn secs(&self) -> f64 {
        self.secs
    }

    /// Ends the clip: the resampler's tail and the last token are encoded.
    pub fn finish(mut self) -> anyhow::Result<EncodedAudio> {
        let t = std::time::Instant::now();
        let x = self.resampler.finish()?;
        self.valid += x.len();
        if self.valid == 0 {
            bail!("microphone: no audio to encode");
        }
        self.rows.extend(self.stream.push(&x)?);
        self.rows.extend(self.stream.finish(self.valid)?);
        self.secs += t.elapsed().as_secs_f64();
        Ok(EncodedAudio {
            valid: self.valid,
            rows: Arc::new(self.rows),
            secs: self.secs,
        })
    }
}

/// What streams out of a turn.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Answer text (whole characters).
    Answer(&'a str),
    /// Reasoning text (kept apart from the answer).
    Reasoning(&'a str),
    /// A box or point of the answer, in the pixels of the turn's first image.
    Overlay(&'a Overlay),
}

/// A finished turn.
#[derive(Debug, Clone)]
pub struct Reply {
    pub answer: String,
    pub reasoning: String,
    pub overlays: Vec<Overlay>,
    pub stats: GenStats,
    /// Reasoning tokens spent, and whether the budget closed the section.
    pub reasoning_tokens: usize,
    pub budget_closed: bool,
    /// With a grammar: whether the answer is complete under it (`false`: `max_tokens` ran out first).
    pub complete: bool,
    /// With [`Turn::confidence`]: the mean probability the model gave its own tokens.
    pub confidence: Option<f64>,
    /// With a grammar: seconds spent masking logits and advancing the grammar (inside `stats.decode_time`, plus
    /// the first token's).
    pub constraint_secs: f64,
    /// Each image of the turn: its size, and the size the processor resized it to (boxes map between them).
    pub frames: Vec<Frame>,
    /// Seconds per preprocessing and encoding stage, for reports.
    pub stages: Vec<(String, f64, String)>,
    /// The answer was ended by [`Turn::stop_on`]'s flag.
    pub stopped: bool,
}

/// One user turn and how to answer it.
#[derive(Debug)]
pub struct Turn<'c, 'f> {
    chat: &'c mut Chat<'f>,
    content: String,
    /// This turn's media (images, clips, a video folder, the image-token cap).
    files: flint_prompt::MediaFiles,
    max_tokens: usize,
    sampler: SamplerConfig,
    grammar: Option<Grammar>,
    think_budget: Option<usize>,
    reasoning: Option<ReasoningFormat>,
    effort: Option<String>,
    boxes: Option<BoxFormat>,
    confidence: bool,
    stop: Option<Arc<AtomicBool>>,
}

impl Turn<'_, '_> {
    /// An image (JPEG or PNG) for this turn, processed as the checkpoint's processor does.
    pub fn image(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.images.push(path.into());
        self
    }

    /// A WAV clip for this turn.
    pub fn audio(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.audio.push(path.into());
        self
    }

    /// A decoded image (a camera frame) for this turn, after its image files; `name` names it in errors.
    pub fn picture(mut self, name: &str, image: Arc<RgbImage>) -> Self {
        self.files.pictures.push(Picture {
            name: name.to_string(),
            image,
        });
        self
    }

    /// Decoded camera frames as this turn's video.
    pub fn frames(mut self, frames: Frames) -> Self {
        self.files.frames = Some(frames);
        self
    }

    /// A clip the audio tower already encoded ([`Flint::listen`]).
    pub fn encoded_audio(mut self, clip: EncodedAudio) -> Self {
        self.files.encoded_audio.push(clip);
        self
    }

    /// Image tokens at most per image (or `auto`), as `--image-tokens`.
    pub fn image_tokens(mut self, t: ImageTokens) -> Self {
        self.files.image_tokens = Some(t);
        self
    }

    /// This turn's media as `flint run` takes them (images, clips, a recording's frames as a video, image-token
    /// caps); replaces what [`Turn::image`] and [`Turn::audio`] added.
    pub fn media(mut self, files: flint_prompt::MediaFiles) -> Self {
        self.files = files;
        self
    }

    pub fn max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n;
        self
    }

    /// Temperature, top-k, top-p and seed (greedy by default).
    pub fn sampling(mut self, s: SamplerConfig) -> Self {
        self.sampler = s;
        self
    }

    /// The answer is a JSON value of `schema` (flint-constrain's subset; anything it cannot enforce is an error
    /// here, before generation).
    pub fn json_schema(self, schema: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(self.grammar(Grammar::from_json_schema(schema)?))
    }

    /// The answer keeps to `g`.
    pub fn grammar(mut self, g: Grammar) -> Self {
        self.grammar = Some(g);
        self
    }

    /// Reasoning tokens at most (0: none); the format is the chat template's unless [`Turn::reasoning_format`]
    /// says.
    pub fn think_budget(mut self, n: usize) -> Self {
        self.think_budget = Some(n);
        self
    }

    /// Where reasoning goes (default: what the chat template renders, if anything).
    pub fn reasoning_format(mut self, f: ReasoningFormat) -> Self {
        self.reasoning = Some(f);
        self
    }

    /// `low`, `medium` or `high`, for the template's reasoning control.
    pub fn reasoning_effort(mut self, e: &str) -> Self {
        self.effort = Some(e.to_string());
        self
    }

    /// Finds boxes and points in the answer, written in `f`, as it streams ([`Event::Overlay`]).
    pub fn boxes(mut self, f: BoxFormat) -> Self {
        self.boxes = Some(f);
        self
    }

    /// Keeps the mean token probability ([`Reply::confidence`]).
    pub fn confidence(mut self) -> Self {
        self.confidence = true;
        self
    }

    /// Ends the answer at the next token once `flag` is set (a button press, a client that went away); the
    /// reply then says [`Reply::stopped`]. The flag may be set from the streaming callback or another thread.
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Generates the answer, calling `on` as it streams; the turn and its answer join the conversation.
    pub fn run(mut self, mut on: impl FnMut(Event<'_>)) -> anyhow::Result<Reply> {
        let f = self.chat.flint;
        let (model, text) = (&f.model, &f.text);
        let raw = self.chat.raw;
        let reasoning = match (self.reasoning, self.think_budget) {
            (Some(r), _) => Some(r),
            (None, Some(_)) => Some(
                text.template()
                    .and_then(ReasoningFormat::for_template)
                    .context(
                        "a thinking budget: the chat template has no reasoning section: name its format \
                         (Turn::reasoning_format, --reasoning-format)",
                    )?,
            ),
            (None, None) => None,
        };
        if raw && (reasoning.is_some() || self.effort.is_some()) {
            bail!("reasoning budgets and efforts apply to a chat turn, not to a raw prompt");
        }
        let skip = reasoning
            .filter(|_| self.think_budget == Some(0))
            .map_or("", |r| r.skip());
        // The conversation's media so far plus this turn's; each medium is a placeholder in its message.
        let mine = &self.files;
        let mut files = MediaFiles {
            image_tokens: mine.image_tokens,
            auto_ceiling: mine.auto_ceiling,
            ..self.chat.media.clone()
        };
        files
            .extend(mine)
            .context("a conversation holds one video")?;
        let prepared = (!files.is_empty())
            .then(|| flint_prompt::prepare(model, &files))
            .transpose()?;
        let (img, vid, aud) = (
            flint_prompt::IMAGE_TOKEN,
            flint_prompt::VIDEO_TOKEN,
            flint_prompt::AUDIO_TOKEN,
        );
        let placeholders = mine.placeholders();
        let has_own = [img, vid, aud].iter().any(|p| self.content.contains(p));
        let content = if has_own {
            self.content.clone()
        } else {
            placeholders + &self.content
        };
        let rendered = if raw {
            content.clone()
        } else {
            let mut msgs = self.chat.history.clone();
            msgs.push(Message::new("user", content.clone()));
            let opts = ChatOptions {
                reasoning_effort: self.effort.clone(),
                ..Default::default()
            };
            text.apply_chat_template_with(&msgs, &opts)? + skip
        };
        let (prompt, stages, resized) = match &prepared {
            None => (
                MediaPrompt::text(model, text.encode(&rendered, raw)?),
                Vec::new(),
                Vec::new(),
            ),
            Some(p) => {
                let ids = text.encode(&p.expand(&rendered)?, raw)?;
                let (mp, st) = MediaPrompt::encode_cached(
                    model,
                    f.towers()?,
                    model.exec(),
                    ids,
                    &p.media,
                    &mut self.chat.encoded,
                )?;
                let mut stages: Vec<(String, f64, String)> = p
                    .stages
                    .iter()
                    .map(|(s, t, w)| (s.to_string(), *t, w.clone()))
                    .collect();
                if st.vision_rows > 0 {
                    stages.push((
                        "vision encode".into(),
                        st.vision_secs,
                        format!("{} tokens", st.vision_rows),
                    ));
                }
                if st.audio_rows > 0 {
                    stages.push((
                        "audio encode".into(),
                        st.audio_secs,
                        format!("{} tokens", st.audio_rows),
                    ));
                }
                let earlier = self.chat.media.images();
                let resized: Vec<Frame> = p
                    .resized
                    .iter()
                    .zip(&p.sizes)
                    .skip(earlier)
                    .map(|(r, &(width, height))| Frame {
                        width,
                        height,
                        resized_width: r.width as u32,
                        resized_height: r.height as u32,
                    })
                    .collect();
                (mp, stages, resized)
            }
        };
        let stop = f.stop_ids(!raw);
        let mut sampler = Sampler::new(self.sampler.clone());
        if self.confidence {
            sampler = sampler.track_confidence();
        }
        if let Some(g) = self.grammar.take() {
            sampler = sampler.with_constraint(constraint(
                text,
                g,
                &stop,
                reasoning.filter(|_| self.think_budget != Some(0)),
            )?);
        }
        let frame = match (self.boxes, resized.first()) {
            (Some(fmt), Some(&fr)) => Some(BoxParser::new(fmt, fr)),
            (Some(_), None) => {
                bail!("boxes are found in the pixels of the turn's first image: add one")
            }
            _ => None,
        };
        let mut gen = Generation {
            text,
            stream: TextStream::new(text),
            reasoner: reasoning.map(|r| Reasoner::new(r, self.think_budget)),
            boxes: frame,
            answer: String::new(),
            reasoning: String::new(),
            overlays: Vec::new(),
            error: None,
        };
        let stop_flag = self.stop.take();
        let mut stopped = false;
        let (_, stats, _) = self.chat.session.generate_with(
            &prompt,
            self.max_tokens,
            &mut sampler,
            &stop,
            |id| {
                let step = gen.token(id, &mut on);
                match &stop_flag {
                    Some(f) if f.load(Ordering::Relaxed) => {
                        stopped = true;
                        Step::Stop
                    }
                    _ => step,
                }
            },
        )?;
        gen.finish(&mut on);
        if let Some(e) = gen.error {
            return Err(e);
        }
        let (spent, closed) = gen
            .reasoner
            .as_ref()
            .map_or((0, false), |r| (r.spent(), r.forced()));
        let complete = sampler.constraint().is_none_or(|c| c.is_complete());
        if !raw {
            self.chat.history.push(Message::new("user", content));
            self.chat
                .history
                .push(Message::new("assistant", gen.answer.trim()));
            self.chat.media.extend(&self.files)?;
        }
        Ok(Reply {
            answer: gen.answer,
            reasoning: gen.reasoning,
            overlays: gen.overlays,
            stats,
            reasoning_tokens: spent,
            budget_closed: closed,
            complete,
            confidence: sampler.mean_prob(),
            constraint_secs: sampler.constraint_time().as_secs_f64(),
            frames: resized,
            stages,
            stopped,
        })
    }
}

/// The constraint of a turn's grammar; with a reasoning section still to come, it waits for the answer to open
/// (and lets a little whitespace through first).
pub fn constraint(
    text: &Text,
    g: Grammar,
    stop: &[u32],
    reasoning: Option<ReasoningFormat>,
) -> anyhow::Result<Constraint> {
    let Some(r) = reasoning else {
        let vocab = Arc::new(Vocab::new(text.vocab_bytes(&[]), stop.to_vec()));
        return Ok(Constraint::new(Arc::new(g), vocab));
    };
    let gbnf = format!(
        "root ::= [ \\t\\n]{{0,4}} u-root\n{}",
        flint_answer::tools::prefix_rules(&g.to_gbnf(), "u-")
    );
    let g = Grammar::from_gbnf(&gbnf)?;
    let (trigger, keep): (&str, &[&str]) = match r {
        ReasoningFormat::Think => ("</think>", &[]),
        ReasoningFormat::Muse => ("to=user<|message|>", &["<|message|>"]),
    };
    let vocab = Arc::new(Vocab::new(text.vocab_bytes(keep), stop.to_vec()));
    Ok(Constraint::lazy(
        Arc::new(g),
        vocab,
        vec![trigger.as_bytes().to_vec()],
    ))
}

/// The state of one streaming answer.
struct Generation<'t> {
    text: &'t Text,
    stream: TextStream<'t>,
    reasoner: Option<Reasoner>,
    boxes: Option<BoxParser>,
    answer: String,
    reasoning: String,
    overlays: Vec<Overlay>,
    error: Option<anyhow::Error>,
}

impl Generation<'_> {
    fn token(&mut self, id: u32, on: &mut impl FnMut(Event<'_>)) -> Step {
        let piece = match self.stream.push(id) {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e.into());
                return Step::Stop;
            }
        };
        let (answer, reasoning, force) = match &mut self.reasoner {
            Some(r) => {
                let s = r.push(&piece);
                (s.answer, s.reasoning, s.force)
            }
            None => (piece, String::new(), None),
        };
        self.emit(&answer, &reasoning, on);
        match force.map(|f| self.text.encode(f, false)) {
            None => Step::Continue,
            Some(Ok(ids)) => Step::Force(ids),
            Some(Err(e)) => {
                self.error = Some(e.into());
                Step::Stop
            }
        }
    }

    fn emit(&mut self, answer: &str, reasoning: &str, on: &mut impl FnMut(Event<'_>)) {
        if !reasoning.is_empty() {
            self.reasoning.push_str(reasoning);
            on(Event::Reasoning(reasoning));
        }
        if !answer.is_empty() {
            self.answer.push_str(answer);
            on(Event::Answer(answer));
            if let Some(b) = &mut self.boxes {
                for o in b.push(answer) {
                    on(Event::Overlay(&o));
                    self.overlays.push(o);
                }
            }
        }
    }

    fn finish(&mut self, on: &mut impl FnMut(Event<'_>)) {
        if let Some(r) = &mut self.reasoner {
            let s = r.finish();
            self.emit(&s.answer, &s.reasoning, on);
        }
        if let Some(b) = &mut self.boxes {
            for o in b.finish() {
                on(Event::Overlay(&o));
                self.overlays.push(o);
            }
        }
    }
}
