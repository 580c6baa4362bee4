//! `flint preprocess`: what the processors make of the media (and, with `-p`, of the prompt), written as a
//! safetensors file under the Hugging Face names: `input_ids` and `attention_mask` (int64 [1, n]), `pixel_values`
//! and `image_grid_thw` (int64), `pixel_values_videos` and `video_grid_thw` (with an Omni thinker's
//! `video_second_per_grid`, float32), `input_values` and
//! `input_values_mask` (int32) — the inputs `flint logits --inputs` reads.

use crate::common::{load, ModelArgs};
use crate::media::MediaArgs;
use anyhow::{bail, Context};
use flint_model::Text;
use flint_prompt::{prepare, prompt_ids};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PreprocessArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    /// The prompt text: adds `input_ids` (with the media's placeholders expanded).
    #[arg(short, long)]
    pub prompt: Option<String>,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Output .safetensors file (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write each image as the processor resized it: DIR/image<i>.png.
    #[arg(long)]
    pub save_resized: Option<PathBuf>,
}

struct T {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn f32s(shape: Vec<usize>, v: &[f32]) -> T {
    T {
        dtype: Dtype::F32,
        shape,
        data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn ints<I: Copy>(dtype: Dtype, shape: Vec<usize>, v: &[I], le: impl Fn(I) -> Vec<u8>) -> T {
    T {
        dtype,
        shape,
        data: v.iter().flat_map(|&x| le(x)).collect(),
    }
}

fn i64s(shape: Vec<usize>, v: &[i64]) -> T {
    ints(Dtype::I64, shape, v, |x| x.to_le_bytes().to_vec())
}

pub fn run(a: PreprocessArgs, board: Option<&str>) -> anyhow::Result<()> {
    if a.media.is_empty() && a.prompt.is_none() {
        bail!("nothing to preprocess: give --image, --audio, --video or -p");
    }
    let (model, _) = load(&a.model, board)?;
    let p = prepare(&model, &a.media.files(board)?)?;
    let mut out: Vec<(String, T)> = Vec::new();
    if let Some(prompt) = &a.prompt {
        let text = Text::from_file(model.file())?
            .with_context(|| format!("{} has no tokenizer", a.model.model.display()))?;
        let ids: Vec<i64> = prompt_ids(&text, a.chat, &p, prompt)?
            .into_iter()
            .map(i64::from)
            .collect();
        out.push(("input_ids".into(), i64s(vec![1, ids.len()], &ids)));
        out.push((
            "attention_mask".into(),
            i64s(vec![1, ids.len()], &vec![1; ids.len()]),
        ));
    }
    let grids = |g: &[[usize; 3]]| -> Vec<i64> { g.iter().flatten().map(|&v| v as i64).collect() };
    for (vals, grid, px) in [
        ("pixel_values", "image_grid_thw", &p.media.images),
        ("pixel_values_videos", "video_grid_thw", &p.media.videos),
    ] {
        if let Some(px) = px {
            let patches: usize = px.grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
            let width = px.values.len() / patches.max(1);
            out.push((vals.into(), f32s(vec![patches, width], &px.values)));
            out.push((
                grid.into(),
                i64s(vec![px.grids.len(), 3], &grids(&px.grids)),
            ));
        }
    }
    let spg = &p.media.video_second_per_grid;
    if !spg.is_empty() {
        let v: Vec<f32> = spg.iter().map(|&x| x as f32).collect();
        out.push(("video_second_per_grid".into(), f32s(vec![v.len()], &v)));
    }
    if !p.media.audio.is_empty() {
        let len = p
            .media
            .audio
            .iter()
            .map(|c| c.samples.len())
            .max()
            .unwrap_or(0);
        let (mut x, mut m) = (Vec::new(), Vec::new());
        for c in &p.media.audio {
            x.extend_from_slice(&c.samples);
            x.resize(x.len() + len - c.samples.len(), 0.0);
            m.extend((0..len).map(|i| i32::from(i < c.valid)));
        }
        let n = p.media.audio.len();
        out.push(("input_values".into(), f32s(vec![n, len], &x)));
        out.push((
            "input_values_mask".into(),
            ints(Dtype::I32, vec![n, len], &m, |v| v.to_le_bytes().to_vec()),
        ));
    }
    for (stage, secs, what) in &p.stages {
        eprintln!("{stage}: {secs:.3} s ({what})");
    }
    let views = out
        .iter()
        .map(|(k, v)| {
            Ok((
                k.as_str(),
                TensorView::new(v.dtype, v.shape.clone(), &v.data)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow::anyhow!("serializing {}: {e}", a.output.display()))?;
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| anyhow::anyhow!("serializing {}: {e}", a.output.display()))?;
    crate::common::write_atomic(&a.output, &bytes)?;
    if let Some(dir) = &a.save_resized {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, img) in p.resized.iter().enumerate() {
            let path = dir.join(format!("image{i}.png"));
            crate::common::write_atomic(&path, &flint_media::decode::encode_png(img))?;
        }
    }
    Ok(())
}
