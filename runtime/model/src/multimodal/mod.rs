//! A prompt with media: the towers' rows put where the processor put their placeholders.
//!
//! The processor (transformers' `MuseSparkProcessor`, and Flint's `flint-media` with
//! [`expand_placeholders`]) writes one placeholder token per tower row: `<|patch|>` for an image's merged tokens,
//! `<|video|>` for a video's, `<|audio|>` for each 80 ms of audio. [`MediaPrompt::encode`] runs each tower once
//! over all its inputs and pairs the rows, in order, with the placeholders of its id; a count that differs is an
//! error naming the placeholder. [`MediaPrompt::push`] then lays the prompt into a [`Batch`]: token rows, and
//! `Input::Embed` rows at the placeholders.

pub mod mrope;
pub mod placeholders;

use crate::audio::mel::{MelAudioTower, MelClip};
use crate::audio::AudioTower;
use crate::batch::{Batch, Input, LayerHook, Logits, Pos, Row};
use crate::kv::SeqId;
use crate::vision::{VisionOutput, VisionTower};
use crate::{Model, ModelError};
use flint_kernels::Exec;

/// Metadata key of the processors' settings (an object: `image_processor`, `video_processor`,
/// `feature_extractor`, as the checkpoint's processor_config.json has them).
pub const KEY_PROCESSOR: &str = "processor";

/// Patchified pixels of images or of video frames, as the image / video processor makes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pixels {
    /// `[patches, patch_temporal · 3 · patch_size²]`, every grid's patches in order.
    pub values: Vec<f32>,
    /// `(t, h, w)` in patches, one per image or video.
    pub grids: Vec<[usize; 3]>,
}

/// A clip as the feature extractor makes it: mono 24 kHz samples, of which the first `valid` are real audio.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clip {
    pub samples: Vec<f32>,
    pub valid: usize,
}

/// The media of one prompt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Media {
    pub images: Option<Pixels>,
    pub videos: Option<Pixels>,
    /// Seconds between the starts of two temporal grids, one per video (`video_second_per_grid`): the Omni
    /// thinkers' M-RoPE times a video by it.
    pub video_second_per_grid: Vec<f64>,
    pub audio: Vec<Clip>,
    /// Clips the audio tower already encoded as they arrived (an [`crate::audio::AudioStream`]'s rows,
    /// `[tokens, hidden]` each), after `audio` in prompt order.
    pub encoded_audio: Vec<Vec<f32>>,
    /// Log-mel clips for a mel audio encoder (Qwen3-Omni), in prompt order.
    pub mel_audio: Vec<MelClip>,
}

impl Media {
    pub fn is_empty(&self) -> bool {
        self.images.is_none()
            && self.videos.is_none()
            && self.audio.is_empty()
            && self.encoded_audio.is_empty()
            && self.mel_audio.is_empty()
    }
}

/// The towers a model file holds (bound zero-copy, like the decoder).
#[derive(Debug)]
pub struct Towers {
    pub vision: Option<VisionTower>,
    pub audio: Option<AudioTower>,
    pub mel_audio: Option<MelAudioTower>,
}

impl Towers {
    /// Binds the towers `model`'s file describes (none for a text-only model).
    pub fn load(model: &Model) -> Result<Towers, ModelError> {
        let c = &model.config;
        Ok(Towers {
            vision: c
                .vision
                .as_ref()
                .map(|_| VisionTower::load(model.file(), c))
                .transpose()?,
            audio: c
                .audio
                .as_ref()
                .map(|_| AudioTower::load(model.file()))
                .transpose()?,
            mel_audio: c
                .mel_audio
                .as_ref()
                .map(|_| MelAudioTower::load(model.file()))
                .transpose()?,
        })
    }
}

/// Token ids with the tower rows that replace their placeholders.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPrompt {
    pub ids: Vec<u32>,
    hidden: usize,
    /// Per placeholder id, its rows in prompt order.
    rows: Vec<TowerRows>,
    /// A model with M-RoPE: every row's (t, h, w) position, and where decoding continues.
    mrope: Option<(Vec<[u32; 3]>, u32)>,
}

/// One tower's rows for one placeholder id.
#[derive(Clone, Debug, PartialEq)]
struct TowerRows {
    id: u32,
    /// `[count, hidden]`.
    rows: Vec<f32>,
    /// Deepstack rows (Qwen3-VL) added after decoder layer 0, 1, … at these rows' positions.
    deepstack: Vec<Vec<f32>>,
}

/// Adds prompts' deepstack rows into the decoder's hidden states after the first layers, at the rows that came
/// from their vision towers ([`MediaPrompt::deepstack`], [`Deepstack::of`]).
#[derive(Debug)]
pub struct Deepstack<'a> {
    prompts: Vec<&'a MediaPrompt>,
}

impl<'a> Deepstack<'a> {
    /// The hook for a batch holding rows of `prompts` (None when none has deepstack rows).
    pub fn of(prompts: impl IntoIterator<Item = &'a MediaPrompt>) -> Option<Deepstack<'a>> {
        let prompts: Vec<&MediaPrompt> = prompts
            .into_iter()
            .filter(|p| p.rows.iter().any(|t| !t.deepstack.is_empty()))
            .collect();
        (!prompts.is_empty()).then_some(Deepstack { prompts })
    }

    /// As the forward pass takes it.
    pub fn as_hook<'b>(
        this: &'b mut Option<Deepstack<'a>>,
    ) -> Option<&'b mut (dyn LayerHook + 'b)> {
        this.as_mut().map(|d| d as &mut dyn LayerHook)
    }
}

impl LayerHook for Deepstack<'_> {
    fn after_layer(&mut self, layer: usize, batch: &Batch<'_>, hidden: &mut [f32]) {
        for (r, row) in batch.rows.iter().enumerate() {
            let Input::Embed(e) = row.input else { continue };
            // A row is found by where its embedding lives: inside one tower entry's buffer.
            let p = e.as_ptr();
            for (t, h) in self
                .prompts
                .iter()
                .flat_map(|m| m.rows.iter().map(move |t| (t, m.hidden)))
            {
                let Some(ds) = t.deepstack.get(layer) else {
                    continue;
                };
                if !t.rows.as_ptr_range().contains(&p) {
                    continue;
                }
                let i = (p as usize - t.rows.as_ptr() as usize) / std::mem::size_of::<f32>() / h;
                let add = &ds[i * h..(i + 1) * h];
                hidden[r * h..(r + 1) * h]
                    .iter_mut()
                    .zip(add)
                    .for_each(|(x, a)| *x += a);
            }
        }
    }
}

/// Stage timings and row counts of [`MediaPrompt::encode`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodeStats {
    pub vision_rows: usize,
    pub vision_secs: f64,
    pub audio_rows: usize,
    pub audio_secs: f64,
}

/// The vision tower's rows of the last pixels it encoded, by a hash of the pixels and grids: a conversation asks
/// again for the frame it prefilled (the glasses loop encodes it at speech start and answers with it at speech
/// end), and gets the rows without a second encode.
#[derive(Clone, Debug, Default)]
pub struct EncodeCache {
    entries: Vec<(u64, VisionOutput)>,
    /// Encodes the cache spared.
    pub hits: usize,
}

/// Pixel sets an [`EncodeCache`] keeps.
const CACHED: usize = 2;

impl EncodeCache {
    fn key(px: &Pixels) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        px.grids.hash(&mut h);
        px.values.iter().for_each(|v| v.to_bits().hash(&mut h));
        h.finish()
    }

    fn get_or_encode(
        &mut self,
        px: &Pixels,
        encode: impl FnOnce() -> Result<VisionOutput, ModelError>,
    ) -> Result<VisionOutput, ModelError> {
        let k = Self::key(px);
        if let Some(i) = self.entries.iter().position(|(e, _)| *e == k) {
            self.hits += 1;
            let hit = self.entries.remove(i);
            let rows = hit.1.clone();
            self.entries.push(hit);
            return Ok(rows);
        }
        let rows = encode()?;
        if self.entries.len() == CACHED {
            self.entries.remove(0);
        }
        self.entries.push((k, rows.clone()));
        Ok(rows)
    }
}

impl MediaPrompt {
    /// Encodes `media` with `towers` on `exec` and checks that each tower's rows match its placeholders in `ids`.
    pub fn encode(
        model: &Model,
        towers: &Towers,
        exec: &Exec,
        ids: Vec<u32>,
        media: &Media,
    ) -> Result<(MediaPrompt, EncodeStats), ModelError> {
        Self::encode_cached(model, towers, exec, ids, media, &mut EncodeCache::default())
    }

    /// [`MediaPrompt::encode`], taking the vision rows of pixels encoded before from `cache`.
    pub fn encode_cached(
        model: &Model,
        towers: &Towers,
        exec: &Exec,
        ids: Vec<u32>,
        media: &Media,
        cache: &mut EncodeCache,
    ) -> Result<(MediaPrompt, EncodeStats), ModelError> {
        let hidden = model.config.hidden_size;
        let mut stats = EncodeStats::default();
        let mut rows = Vec::new();
        for (what, px) in [("image", &media.images), ("video", &media.videos)] {
            let Some(px) = px else { continue };
            let v = towers.vision.as_ref().ok_or_else(|| {
                ModelError::Invalid(format!(
                    "the prompt has {what}s but the model has no vision tower"
                ))
            })?;
            let id = if what == "image" {
                v.config.image_token_id
            } else {
                v.config.video_token_id
            };
            let t = std::time::Instant::now();
            let r =
                cache.get_or_encode(px, || v.encode_traced(exec, &px.values, &px.grids, None))?;
            stats.vision_secs += t.elapsed().as_secs_f64();
            stats.vision_rows += r.rows.len() / hidden;
            rows.push(TowerRows {
                id,
                rows: r.rows,
                deepstack: r.deepstack,
            });
        }
        if !media.audio.is_empty() || !media.encoded_audio.is_empty() {
            let a = towers.audio.as_ref().ok_or_else(|| {
                ModelError::Invalid("the prompt has audio but the model has no audio tower".into())
            })?;
            let t = std::time::Instant::now();
            let mut all = Vec::new();
            for clip in &media.audio {
                all.extend(a.encode(exec, &clip.samples, clip.valid)?);
            }
            stats.audio_secs = t.elapsed().as_secs_f64();
            stats.audio_rows = all.len() / hidden;
            for rows in &media.encoded_audio {
                if rows.len() % hidden != 0 {
                    return Err(ModelError::Invalid(format!(
                        "encoded audio: {} values are not rows of {hidden}",
                        rows.len()
                    )));
                }
                all.extend_from_slice(rows);
            }
            rows.push(TowerRows {
                id: a.config().token_id,
                rows: all,
                deepstack: Vec::new(),
            });
        }
        if !media.mel_audio.is_empty() {
            let a = towers.mel_audio.as_ref().ok_or_else(|| {
                ModelError::Invalid(
                    "the prompt has log-mel audio but the model has no mel audio encoder".into(),
                )
            })?;
            let t = std::time::Instant::now();
            let r = a.encode(exec, &media.mel_audio)?;
            stats.audio_secs += t.elapsed().as_secs_f64();
            stats.audio_rows += r.len() / hidden;
            rows.push(TowerRows {
                id: a.config.token_id,
                rows: r,
                deepstack: Vec::new(),
            });
        }
        for TowerRows { id, rows: r, .. } in &rows {
            let want = r.len() / hidden;
            let have = ids.iter().filter(|&&t| t == *id).count();
            if have != want {
                return Err(ModelError::Invalid(format!(
                    "the prompt has {have} placeholders of token {id} but its media give {want} rows \
                     (the processor writes one placeholder per row)"
                )));
            }
        }
        let mrope = match (&model.config.mrope, &towers.vision) {
            (Some(m), Some(v)) => {
                let grids =
                    |p: &Option<Pixels>| p.as_ref().map(|p| p.grids.clone()).unwrap_or_default();
                let c = &v.config;
                let steps: Vec<f64>;
                let time = match m.video_seconds {
                    None => mrope::VideoTime::Frames,
                    Some(s) => {
                        steps = media
                            .video_second_per_grid
                            .iter()
                            .map(|&spg| spg * f64::from(s.per_second))
                            .collect();
                        mrope::VideoTime::Seconds {
                            steps: &steps,
                            truncate: s.truncate,
                        }
                    }
                };
                Some(mrope::positions(
                    &ids,
                    (c.image_token_id, c.video_token_id),
                    &grids(&media.images),
                    &grids(&media.videos),
                    c.merge_size,
                    time,
                )?)
            }
            _ => None,
        };
        Ok((
            MediaPrompt {
                ids,
                hidden,
                rows,
                mrope,
            },
            stats,
        ))
    }

    /// The hook that adds the prompt's deepstack rows (None when its towers gave none).
    pub fn deepstack(&self) -> Option<Deepstack<'_>> {
        Deepstack::of([self])
    }

    /// Where decoding continues after the prompt minus its length: 0, or with M-RoPE how far one past its largest
    /// position lies from its row count (negative when images take fewer positions than rows; transformers'
    /// `rope_deltas`). A row generated at slot `s` sits at position `s + shift`.
    pub fn position_shift(&self) -> i64 {
        match &self.mrope {
            Some((_, next)) => *next as i64 - self.ids.len() as i64,
            None => 0,
        }
    }

    /// A text-only prompt.
    pub fn text(model: &Model, ids: Vec<u32>) -> MediaPrompt {
        MediaPrompt {
            ids,
            hidden: model.config.hidden_size,
            rows: Vec::new(),
            mrope: None,
        }
    }

    /// Rows of the prompt.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// One key per row, equal for equal rows: the token id for a text row, a hash of the embedding for a tower
    /// row (so a session reuses a cached image only if it is the same image).
    pub fn keys(&self) -> Vec<u64> {
        use std::hash::{Hash, Hasher};
        let mut out = Vec::with_capacity(self.ids.len());
        self.for_each_row(|_, id, e| {
            out.push(match e {
                None => id as u64,
                Some(e) => {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    id.hash(&mut h);
                    e.iter().for_each(|v| v.to_bits().hash(&mut h));
                    h.finish() | 1 << 63
                }
            })
        });
        out
    }

    /// Appends rows `from ..` of the prompt to `batch` as sequence `seq` (row `t` at position `t`, or at its M-RoPE
    /// position). A model with deepstack rows needs [`MediaPrompt::deepstack`] as the forward pass's hook.
    pub fn push<'a>(&'a self, batch: &mut Batch<'a>, seq: SeqId, from: usize, logits: Logits) {
        let (h, n) = (self.hidden, self.ids.len());
        self.for_each_row(|t, id, e| {
            if t < from {
                return;
            }
            let lg = match logits {
                Logits::All => Logits::All,
                Logits::Last if t + 1 == n => Logits::All,
                _ => Logits::None,
            };
            match (e, &self.mrope) {
                (e, Some((pos, _))) => batch.rows.push(Row {
                    seq,
                    pos: Pos::Mrope(pos[t]),
                    input: e.map_or(Input::Token(id), Input::Embed),
                    logits: lg == Logits::All,
                }),
                (Some(e), None) => batch.push_embeds(seq, t, e, h, lg),
                (None, None) => batch.push_text(seq, t, &[id], lg),
            }
        });
    }

    /// Calls `f(t, id, embedding row or None)` for every row in order.
    fn for_each_row<'a>(&'a self, mut f: impl FnMut(usize, u32, Option<&'a [f32]>)) {
        let mut next: Vec<(u32, std::slice::ChunksExact<'a, f32>)> = self
            .rows
            .iter()
            .map(|t| (t.id, t.rows.chunks_exact(self.hidden)))
            .collect();
        for (t, &id) in self.ids.iter().enumerate() {
            // `encode` checked that every placeholder has its row.
            let e = next
                .iter_mut()
                .find(|(p, _)| *p == id)
                .and_then(|(_, r)| r.next());
            f(t, id, e);
        }
    }
}
