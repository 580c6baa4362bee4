//! A model's prompt from files: image, video and audio files through the checkpoint's processors (flint-media) into
//! the towers' inputs and the placeholder text of the prompt, each stage timed; then the chat template and the
//! tokenizer. `flint run`, `flint preprocess` and `flint-quantize quantize --calib DIR` share it.
//!
//! The processors' settings come from the model file (`processor` metadata, from the checkpoint's
//! processor_config.json); a file without them uses the processor classes' defaults with the patch sizes of the
//! vision tower. Where the media go in the prompt: each medium is one placeholder the chat template (or the raw
//! prompt) carries (`<|patch|>` per image, `<|video|>` per video, `<|audio|>` per clip); a prompt without
//! placeholders gets them in front of its text, images first, then the video, then audio. The Muse processor has
//! no documented place for audio in a chat turn: Flint puts it where the user's content puts it, by this rule.

use anyhow::{bail, Context};
use flint_media::{
    GlimmerImageConfig, GlimmerVideoConfig, Qwen2VlConfig, RgbImage, SparkAudioConfig,
};
use flint_model::config::vision::VisionKind;
use flint_model::multimodal::placeholders::{expand, Kind};
use flint_model::multimodal::{Clip, Media, Pixels, KEY_PROCESSOR};
use flint_model::{ChatOptions, Message, Model, Text};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

mod omni_video;

/// The media files of a prompt.
#[derive(Clone, Debug, Default)]
pub struct MediaFiles {
    /// Images (JPEG or PNG), in prompt order.
    pub images: Vec<PathBuf>,
    /// WAV clips (any rate; resampled to the model's).
    pub audio: Vec<PathBuf>,
    /// A recording's camera frames as one video: DIR/frames/<ms>.jpg or .png (the glasses loop's layout).
    pub video: Option<PathBuf>,
    /// Image tokens at most per image (the processor's max_image_tokens), or `auto`.
    pub image_tokens: Option<ImageTokens>,
    /// The most `auto` may give an image (a board profile's `camera.image_tokens_max`); `None`: what the
    /// processor would give it.
    pub auto_ceiling: Option<usize>,
    /// Images already decoded (camera frames, kept in memory), after `images` in prompt order.
    pub pictures: Vec<Picture>,
    /// Camera frames already decoded, as the video (instead of `video`).
    pub frames: Option<Frames>,
    /// Clips the audio tower encoded as they arrived ([`Listener`]), after `audio` in prompt order.
    pub encoded_audio: Vec<EncodedAudio>,
}

/// A decoded image and the name its errors and reports use.
#[derive(Clone, Debug)]
pub struct Picture {
    pub name: String,
    pub image: Arc<RgbImage>,
}

/// Decoded camera frames as one video: each frame and its time in milliseconds, in order.
#[derive(Clone, Debug)]
pub struct Frames {
    pub name: String,
    pub times: Vec<u64>,
    pub images: Arc<Vec<RgbImage>>,
}

impl Frames {
    /// One time per frame.
    fn check(&self) -> anyhow::Result<()> {
        if self.times.len() != self.images.len() {
            bail!(
                "{}: {} frames but {} times",
                self.name,
                self.images.len(),
                self.times.len()
            );
        }
        Ok(())
    }
}

/// A clip the audio tower encoded while it arrived: `valid` samples at the tower's rate, the rows of its
/// `ceil(valid / samples_per_token)` tokens, and the seconds spent encoding.
#[derive(Clone, Debug, Default)]
pub struct EncodedAudio {
    pub valid: usize,
    pub rows: Arc<Vec<f32>>,
    pub secs: f64,
}

impl MediaFiles {
    pub fn is_empty(&self) -> bool {
        self.images() == 0 && self.audios() == 0 && !self.has_video()
    }

    /// Images, from files and decoded.
    pub fn images(&self) -> usize {
        self.images.len() + self.pictures.len()
    }

    /// Clips, from files and encoded.
    pub fn audios(&self) -> usize {
        self.audio.len() + self.encoded_audio.len()
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some() || self.frames.is_some()
    }

    /// Adds `later`'s media after these (a conversation's, turn after turn); a prompt holds one video.
    pub fn extend(&mut self, later: &MediaFiles) -> anyhow::Result<()> {
        if self.has_video() && later.has_video() {
            bail!("a prompt holds one video: this would be its second");
        }
        self.images.extend_from_slice(&later.images);
        self.pictures.extend_from_slice(&later.pictures);
        self.audio.extend_from_slice(&later.audio);
        self.encoded_audio.extend_from_slice(&later.encoded_audio);
        if later.has_video() {
            self.video.clone_from(&later.video);
            self.frames.clone_from(&later.frames);
        }
        Ok(())
    }

    /// Placeholders for these media, in the order [`prepare`] processes them (images, the video, audio).
    pub fn placeholders(&self) -> String {
        let mut s = IMAGE.repeat(self.images());
        s += &VIDEO.repeat(usize::from(self.has_video()));
        s + &AUDIO.repeat(self.audios())
    }
}

/// `--image-tokens`: a fixed cap, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ImageTokens {
    Cap(usize),
    Auto,
}

impl std::str::FromStr for ImageTokens {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(ImageTokens::Auto);
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("`{s}` is neither `auto` nor a token count"))?;
        let max = flint_media::limits::MAX_IMAGE_TOKENS as usize;
        if n == 0 || n > max {
            return Err(format!("{n}: must be 1..={max}"));
        }
        Ok(ImageTokens::Cap(n))
    }
}

/// The fewest tokens `--image-tokens auto` gives an image.
pub const AUTO_FLOOR: usize = 64;

use flint_media::prompt::{AUDIO_TOKEN as AUDIO, IMAGE_TOKEN as IMAGE, VIDEO_TOKEN as VIDEO};
/// The placeholder each medium is in a prompt's content, before the processor expands it.
pub use flint_media::prompt::{AUDIO_TOKEN, IMAGE_TOKEN, VIDEO_TOKEN};

/// The processed media, with the replacement text of each placeholder.
pub struct Prepared {
    pub media: Media,
    images: Vec<String>,
    videos: Vec<String>,
    audio: Vec<String>,
    /// (stage, seconds, detail) for stderr.
    pub stages: Vec<(&'static str, f64, String)>,
    /// Each image as the processor resized it, in order.
    pub resized: Vec<RgbImage>,
    /// Each image's own (width, height), before the processor resized it.
    pub sizes: Vec<(u32, u32)>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("images", &self.images.len())
            .field("videos", &self.videos.len())
            .field("audio", &self.audio.len())
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// A video's placeholder `text`, its decode stage (seconds, what was decoded), its preprocess seconds and
    /// its pixels.
    fn push_video(&mut self, text: String, (dec, decoded): (f64, String), pre: f64, px: Pixels) {
        self.videos.push(text);
        self.stages.push(("decode video", dec, decoded));
        self.stages
            .push(("preprocess video", pre, format!("grid {:?}", px.grids[0])));
        self.media.videos = Some(px);
    }

    /// `content` with a placeholder per medium in front when it has none.
    pub fn content(&self, content: &str) -> String {
        if [IMAGE, VIDEO, AUDIO].iter().any(|p| content.contains(p)) {
            return content.to_string();
        }
        let mut s = IMAGE.repeat(self.images.len());
        s += &VIDEO.repeat(self.videos.len());
        s += &AUDIO.repeat(self.audio.len());
        s + content
    }

    /// The rendered prompt with every placeholder expanded as the processor does.
    pub fn expand(&self, rendered: &str) -> anyhow::Result<String> {
        let kinds = [
            Kind {
                token: IMAGE,
                what: "image",
                replacements: self.images.clone(),
            },
            Kind {
                token: VIDEO,
                what: "video",
                replacements: self.videos.clone(),
            },
            Kind {
                token: AUDIO,
                what: "audio clip",
                replacements: self.audio.clone(),
            },
        ];
        Ok(expand(rendered, &kinds)?)
    }
}

/// The token ids of `prompt` with the media of `p`: the content gets its placeholders, the chat template (with
/// `chat`) renders it, the placeholders expand as the processor does, and the tokenizer reads the result (adding
/// its own special tokens for a raw prompt).
pub fn prompt_ids(text: &Text, chat: bool, p: &Prepared, prompt: &str) -> anyhow::Result<Vec<u32>> {
    prompt_ids_with(text, chat, p, prompt, &ChatOptions::default())
}

/// [`prompt_ids`] with the chat template's options (tools, reasoning effort).
pub fn prompt_ids_with(
    text: &Text,
    chat: bool,
    p: &Prepared,
    prompt: &str,
    opts: &ChatOptions,
) -> anyhow::Result<Vec<u32>> {
    let rendered = render_with(text, chat, &p.content(prompt), opts)?;
    Ok(text.encode(&p.expand(&rendered)?, !chat)?)
}

/// `content` as the prompt text: one user turn of the chat template with `chat`, else as is.
pub fn render(text: &Text, chat: bool, content: &str) -> anyhow::Result<String> {
    render_with(text, chat, content, &ChatOptions::default())
}

/// [`render`] with the chat template's options.
pub fn render_with(
    text: &Text,
    chat: bool,
    content: &str,
    opts: &ChatOptions,
) -> anyhow::Result<String> {
    Ok(if chat {
        let msgs = [Message::new("user", content)];
        text.apply_chat_template_with(&msgs, opts)?
    } else {
        content.to_string()
    })
}

/// One processor's settings from the model file, as JSON text, named for errors.
fn processor(model: &Model, part: &str) -> Option<(PathBuf, Vec<u8>)> {
    let v = model.file().meta(KEY_PROCESSOR)?.get(part)?;
    let name = PathBuf::from(format!(
        "{}: {KEY_PROCESSOR}.{part}",
        model.file().path().display()
    ));
    Some((name, serde_json::to_vec(v).ok()?))
}

/// Reads and processes every medium of `a` for `model` (`--image-tokens auto` shows its choice on stderr).
pub fn prepare(model: &Model, a: &MediaFiles) -> anyhow::Result<Prepared> {
    let c = &model.config;
    let mut p = Prepared {
        media: Media::default(),
        images: Vec::new(),
        videos: Vec::new(),
        audio: Vec::new(),
        stages: Vec::new(),
        resized: Vec::new(),
        sizes: Vec::new(),
    };
    let vision = c.vision.as_ref();
    if (a.images() > 0 || a.has_video()) && vision.is_none() {
        bail!(
            "{} has no vision tower: it cannot take --image or --video",
            model.file().path().display()
        );
    }
    // The defaults follow the tower's own patch sizes.
    let tower_sizes = |mut g: GlimmerImageConfig| {
        if let Some(v) = vision {
            g.patch_size = v.patch_size;
            g.temporal_patch_size = v.patch_temporal;
            g.merge_size = v.merge_size;
        }
        g
    };
    let qwen = vision.is_some_and(|v| v.kind != VisionKind::Muse);
    let omni = qwen && c.mel_audio.is_some();
    if qwen && !omni && a.has_video() {
        bail!(
            "{}: video for a Qwen3-VL tower is not supported yet",
            model.file().path().display()
        );
    }
    if a.images() > 0 && qwen {
        qwen_images(model, a, &mut p)?;
    } else if a.images() > 0 {
        let mut cfg = image_config(model)?;
        if let Some(ImageTokens::Cap(n)) = a.image_tokens {
            cfg.max_tokens = n;
        }
        process_images(a, &mut p, |path, img| {
            let mut cfg = cfg.clone();
            if a.image_tokens == Some(ImageTokens::Auto) {
                // What the processor would give this image, then the share its detail asks for.
                let (th, tw) = cfg.target_size(img.height, img.width);
                let side = cfg.patch_size * cfg.merge_size;
                let native = (th / side) * (tw / side);
                let ceiling = a.auto_ceiling.map_or(native, |c| c.min(native)).max(1);
                let b = flint_media::budget::auto_tokens(img, AUTO_FLOOR, ceiling);
                let board = match a.auto_ceiling {
                    Some(c) if c < native => format!(" (board ceiling {c})"),
                    _ => String::new(),
                };
                eprintln!(
                    "image tokens auto: {}: detail {:.3} -> at most {} of {native}{board}",
                    path.display(),
                    b.detail,
                    b.tokens
                );
                cfg.max_tokens = b.tokens;
            }
            let g = flint_media::preprocess_image(&cfg, path, img)?;
            Ok(Processed {
                prompt: flint_media::prompt::image_prompt(g.grid_thw, cfg.merge_size),
                pixel_values: g.pixel_values,
                grid_thw: g.grid_thw,
                tokens: g.tokens,
                resized: g.resized,
            })
        })?;
    }
    if a.has_video() && omni {
        omni_video::prepare(model, a, &mut p)?;
    } else if a.has_video() {
        let cfg = match processor(model, "video_processor") {
            Some((name, json)) => GlimmerVideoConfig::from_json(&name, &json)?,
            None => {
                let mut v = GlimmerVideoConfig::default_video();
                v.image = tower_sizes(v.image);
                v
            }
        };
        let t = Instant::now();
        let (name, read);
        let (frames, fps): (&[RgbImage], Option<f64>) = match (&a.frames, &a.video) {
            (Some(f), _) => {
                name = PathBuf::from(&f.name);
                f.check()?;
                (&f.images, fps_of(&f.times))
            }
            (None, Some(dir)) => {
                name = dir.clone();
                read = read_frames(dir)?;
                (&read.0, read.1)
            }
            (None, None) => bail!("internal: a video without frames"),
        };
        let dec = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let v = flint_media::preprocess_video(&cfg, &name, frames, fps)?;
        let text = flint_media::prompt::video_prompt(
            v.grid_thw,
            cfg.image.merge_size,
            &v.group_timestamps,
            &cfg.frame_timestamp_format,
        )
        .map_err(|e| anyhow::anyhow!("{}: frame_timestamp_format: {e}", name.display()))?;
        let px = Pixels {
            values: v.pixel_values_videos,
            grids: vec![v.grid_thw],
        };
        let decoded = (dec, format!("{} frames", frames.len()));
        p.push_video(text, decoded, t.elapsed().as_secs_f64(), px);
    }
    if a.audios() > 0 && model.config.mel_audio.is_some() {
        mel_audio(model, a, &mut p)?;
    } else if a.audios() > 0 {
        let cfg = audio_config(model)?;
        let t = Instant::now();
        for path in &a.audio {
            let x = read_wav_at(path, cfg.sampling_rate)?;
            let padded = flint_media::extract(&cfg, path, &[&x])?;
            p.audio.push(flint_media::prompt::audio_prompt(
                x.len(),
                cfg.samples_per_token,
            ));
            p.media.audio.push(Clip {
                samples: padded.input_values,
                valid: x.len(),
            });
        }
        let mut secs: f64 =
            p.media.audio.iter().map(|c| c.valid as f64).sum::<f64>() / cfg.sampling_rate as f64;
        let mut encoding = 0.0;
        for e in &a.encoded_audio {
            p.audio.push(flint_media::prompt::audio_prompt(
                e.valid,
                cfg.samples_per_token,
            ));
            p.media.encoded_audio.push(e.rows.to_vec());
            secs += e.valid as f64 / cfg.sampling_rate as f64;
            encoding += e.secs;
        }
        p.stages.push((
            "read audio",
            t.elapsed().as_secs_f64(),
            format!("{secs:.2} s of audio"),
        ));
        if !a.encoded_audio.is_empty() {
            p.stages.push((
                "audio encoded while it arrived",
                encoding,
                format!("{} clips", a.encoded_audio.len()),
            ));
        }
    }
    Ok(p)
}

/// The images of `a` through the Qwen2-VL image processor (a Qwen3-VL tower): its settings from the `processor`
/// metadata, else the processor's defaults at the tower's patch sizes; `--image-tokens N` caps the pixels at N
/// merged tokens.
fn qwen_images(model: &Model, a: &MediaFiles, p: &mut Prepared) -> anyhow::Result<()> {
    let v = model.config.vision.as_ref().expect("checked by prepare");
    let mut cfg = match processor(model, "image_processor") {
        Some((name, json)) => {
            let c = Qwen2VlConfig::from_json(&name, &json)?;
            let (ours, theirs) = (
                (c.patch_size, c.temporal_patch_size, c.merge_size),
                (v.patch_size, v.patch_temporal, v.merge_size),
            );
            if ours != theirs {
                bail!(
                    "{}: the processor's patch, temporal patch and merge sizes {ours:?} are not the tower's \
                     {theirs:?}",
                    name.display()
                );
            }
            c
        }
        None => Qwen2VlConfig {
            patch_size: v.patch_size,
            temporal_patch_size: v.patch_temporal,
            merge_size: v.merge_size,
            ..Qwen2VlConfig::default()
        },
    };
    let tokens = qwen_tokens(model).image;
    match a.image_tokens {
        Some(ImageTokens::Cap(n)) => {
            let f = cfg.factor();
            cfg.max_pixels = n.saturating_mul(f * f);
            cfg.min_pixels = cfg.min_pixels.min(cfg.max_pixels);
        }
        Some(ImageTokens::Auto) => {
            bail!("--image-tokens auto is not supported for a Qwen3-VL tower yet")
        }
        None => {}
    }
    process_images(a, p, |path, img| {
        let g = flint_media::qwen2_vl::preprocess_named(path, img, &cfg)?;
        Ok(Processed {
            prompt: flint_media::prompt::qwen_prompt(tokens, g.tokens),
            pixel_values: g.pixel_values,
            grid_thw: g.grid_thw,
            tokens: g.tokens,
            resized: g.resized,
        })
    })
}

/// The mono samples of the WAV at `path`, resampled to `rate`.
fn read_wav_at(path: &Path, rate: u32) -> anyhow::Result<Vec<f32>> {
    let clip = flint_media::read_wav_file(path)?;
    Ok(flint_media::resample::resample(
        path,
        &clip.samples,
        clip.sample_rate,
        rate,
    )?)
}

/// The placeholder tokens of a Qwen model's processor (by its architecture).
fn qwen_tokens(model: &Model) -> flint_media::prompt::QwenTokens {
    if model.config.arch == "qwen2_5_omni_thinker" {
        flint_media::prompt::QWEN25_TOKENS
    } else {
        flint_media::prompt::QWEN3_TOKENS
    }
}

/// The WAVs of `a` through WhisperFeatureExtractor for a log-mel audio encoder (Qwen-Omni): 16 kHz, the features
/// of each clip's first 30 s, the frames the clip covers kept.
fn mel_audio(model: &Model, a: &MediaFiles, p: &mut Prepared) -> anyhow::Result<()> {
    let m = model.config.mel_audio.as_ref().expect("checked by prepare");
    let cfg = match processor(model, "feature_extractor") {
        Some((name, json)) => flint_media::whisper::WhisperConfig::from_json(&name, &json)?,
        None => flint_media::whisper::WhisperConfig::with_bins(m.num_mel_bins),
    };
    if cfg.feature_size != m.num_mel_bins {
        bail!(
            "{}: the feature extractor's {} mel bins are not the audio encoder's {}",
            model.file().path().display(),
            cfg.feature_size,
            m.num_mel_bins
        );
    }
    if !a.encoded_audio.is_empty() {
        bail!("audio encoded while it arrived needs a streaming audio tower (Muse Spark)");
    }
    let tokens = qwen_tokens(model).audio;
    let t = Instant::now();
    let mut secs = 0.0;
    for path in &a.audio {
        let x = read_wav_at(path, cfg.sampling_rate)?;
        let features = flint_media::whisper::log_mel(&cfg, path, &x)?;
        let (all, frames) = (cfg.frames(), cfg.valid_frames(x.len()));
        let kept = features
            .chunks_exact(all)
            .flat_map(|row| row[..frames].to_vec())
            .collect();
        p.audio
            .push(flint_media::prompt::qwen_prompt(tokens, m.rows(frames)));
        p.media.mel_audio.push(flint_model::audio::mel::MelClip {
            features: kept,
            frames,
        });
        secs += x.len() as f64 / cfg.sampling_rate as f64;
    }
    p.stages.push((
        "read audio",
        t.elapsed().as_secs_f64(),
        format!("{secs:.2} s of audio"),
    ));
    Ok(())
}

/// One image through its processor.
struct Processed {
    /// The replacement of its placeholder.
    prompt: String,
    pixel_values: Vec<f32>,
    grid_thw: [usize; 3],
    tokens: usize,
    resized: RgbImage,
}

/// Runs `process` over the images of `a` (the files, decoded, then the decoded pictures) and keeps the results and
/// the stages' timings in `p`.
fn process_images(
    a: &MediaFiles,
    p: &mut Prepared,
    mut process: impl FnMut(&Path, &RgbImage) -> anyhow::Result<Processed>,
) -> anyhow::Result<()> {
    let (mut dec, mut pre) = (0f64, 0f64);
    let mut px = Pixels::default();
    let mut tokens = 0;
    let mut one = |path: &Path, img: &RgbImage| -> anyhow::Result<()> {
        let t = Instant::now();
        let g = process(path, img)?;
        pre += t.elapsed().as_secs_f64();
        p.images.push(g.prompt);
        px.values.extend_from_slice(&g.pixel_values);
        px.grids.push(g.grid_thw);
        tokens += g.tokens;
        p.resized.push(g.resized);
        p.sizes.push((img.width as u32, img.height as u32));
        Ok(())
    };
    for path in &a.images {
        let t = Instant::now();
        let img = flint_media::decode_image_file(path)?;
        dec += t.elapsed().as_secs_f64();
        one(path, &img)?;
    }
    for pic in &a.pictures {
        one(Path::new(&pic.name), &pic.image)?;
    }
    p.stages
        .push(("decode image", dec, format!("{} files", a.images.len())));
    p.stages
        .push(("preprocess", pre, format!("{tokens} image tokens")));
    p.media.images = Some(px);
    Ok(())
}

/// The image processor's settings of `model` (its `processor` metadata, else the processor's defaults at the
/// vision tower's patch sizes).
pub fn image_config(model: &Model) -> anyhow::Result<GlimmerImageConfig> {
    Ok(match processor(model, "image_processor") {
        Some((name, json)) => GlimmerImageConfig::from_json(&name, &json)?,
        None => {
            let mut g = GlimmerImageConfig::default_image();
            if let Some(v) = model.config.vision.as_ref() {
                g.patch_size = v.patch_size;
                g.temporal_patch_size = v.patch_temporal;
                g.merge_size = v.merge_size;
            }
            g
        }
    })
}

/// The feature extractor's settings of `model`'s audio tower (its `processor` metadata, else the defaults at the
/// tower's token size); an error for a model without one.
pub fn audio_config(model: &Model) -> anyhow::Result<SparkAudioConfig> {
    let Some(ac) = model.config.audio.as_ref() else {
        bail!(
            "{} has no audio tower: it cannot take --audio",
            model.file().path().display()
        );
    };
    let cfg = match processor(model, "feature_extractor") {
        Some((name, json)) => SparkAudioConfig::from_json(&name, &json)?,
        None => SparkAudioConfig {
            samples_per_token: ac.samples_per_token(),
            ..SparkAudioConfig::default()
        },
    };
    if cfg.samples_per_token != ac.samples_per_token() {
        bail!(
            "{}: the feature extractor's samples_per_token ({}) is not the audio tower's ({})",
            model.file().path().display(),
            cfg.samples_per_token,
            ac.samples_per_token()
        );
    }
    Ok(cfg)
}

/// The frame rate of frames at `times` (ms, in order): from the first and last; None for one frame.
fn fps_of(times: &[u64]) -> Option<f64> {
    let span = (times.last()? - times.first()?) as f64 / 1000.0;
    (times.len() > 1 && span > 0.0).then(|| (times.len() - 1) as f64 / span)
}

/// The frames of a recording, `DIR/frames/<ms>.jpg|png`, in time order, and their rate (from the first and last
/// timestamps; None for one frame).
fn read_frames(dir: &Path) -> anyhow::Result<(Vec<RgbImage>, Option<f64>)> {
    let named = list_frames(dir)?;
    let fps = fps_of(&named.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    let frames = named
        .iter()
        .map(|(_, p)| flint_media::decode_image_file(p).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((frames, fps))
}

/// The frame files of a recording, `DIR/frames/<ms>.jpg|png`, with their times, in time order.
fn list_frames(dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let fdir = dir.join("frames");
    let mut named: Vec<(u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&fdir).with_context(|| format!("{}: cannot list", fdir.display()))? {
        let path = e
            .with_context(|| format!("{}: cannot list", fdir.display()))?
            .path();
        let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
        if !matches!(ext, "jpg" | "jpeg" | "png") {
            continue;
        }
        let ms = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .with_context(|| {
                format!(
                    "{}: a frame is named <milliseconds>.jpg|png",
                    path.display()
                )
            })?;
        named.push((ms, path));
        if named.len() > flint_media::limits::MAX_VIDEO_FRAMES as usize {
            bail!(
                "{}: more than {} frames",
                fdir.display(),
                flint_media::limits::MAX_VIDEO_FRAMES
            );
        }
    }
    if named.is_empty() {
        bail!("{}: no frames (<ms>.jpg or .png)", fdir.display());
    }
    named.sort();
    Ok(named)
}
