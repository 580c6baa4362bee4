//! Processor outputs as model inputs: a safetensors file holding tensors under their Hugging Face names
//! (`input_ids`, `pixel_values`, `image_grid_thw`, `pixel_values_videos`, `video_grid_thw`, `input_values`,
//! `input_values_mask`, the log-mel `input_features` with `feature_attention_mask`, and the Omni processors'
//! `video_second_per_grid`; an `in.` prefix is accepted). Integer tensors may be int32 or int64, float tensors float32
//! or float64. Keys that are no model input are ignored, with a note on stderr.

use anyhow::{bail, Context};
use flint_model::audio::mel::MelClip;
use flint_model::multimodal::{Clip, Media, Pixels};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Largest inputs file read (a 4096-token image's pixel values are about 20 MB; a whole batch of frames more).
pub const MAX_INPUTS_BYTES: u64 = 2 << 30;

const KNOWN: [&str; 11] = [
    "input_ids",
    "attention_mask",
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "input_values",
    "input_values_mask",
    "input_features",
    "feature_attention_mask",
    "video_second_per_grid",
];

/// The prompt's token ids (one sequence) and its media.
pub fn read(path: &Path) -> anyhow::Result<(Vec<u32>, Media)> {
    let p = path.display();
    let len = std::fs::metadata(path)
        .with_context(|| format!("{p}: cannot read"))?
        .len();
    if len > MAX_INPUTS_BYTES {
        bail!("{p}: {len} bytes, more than the {MAX_INPUTS_BYTES} an inputs file may have");
    }
    let bytes = std::fs::read(path).with_context(|| format!("{p}: cannot read"))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{p}: not a safetensors file: {e}"))?;
    let get = |name: &str| -> Option<(String, safetensors::tensor::TensorView<'_>)> {
        [name.to_string(), format!("in.{name}")]
            .into_iter()
            .find_map(|k| st.tensor(&k).ok().map(|t| (k, t)))
    };
    let mut ignored: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|k| !KNOWN.contains(&k.strip_prefix("in.").unwrap_or(k)))
        .collect();
    if !ignored.is_empty() {
        ignored.sort_unstable();
        let shown = ignored
            .iter()
            .take(6)
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>();
        let more = ignored.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        eprintln!(
            "note: {p}: ignored {} keys that are no model input: {}{tail}",
            ignored.len(),
            shown.join(", ")
        );
    }
    let (k, t) = get("input_ids").with_context(|| format!("{p}: no `input_ids`"))?;
    let shape = t.shape().to_vec();
    if shape.iter().product::<usize>() == 0
        || (shape.len() == 2 && shape[0] != 1)
        || shape.len() > 2
    {
        bail!("{p}: `{k}` has shape {shape:?}; one sequence ([n] or [1, n]) is supported");
    }
    let ids = ints(&k, &t, path)?
        .into_iter()
        .map(|v| {
            u32::try_from(v).map_err(|_| anyhow::anyhow!("{p}: `{k}` holds {v}, not a token id"))
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    if let Some((k, t)) = get("attention_mask") {
        if ints(&k, &t, path)?.iter().any(|&m| m != 1) {
            bail!("{p}: `{k}` masks tokens; give the unpadded sequence");
        }
    }
    let pixels = |vals: &str, grid: &str| -> anyhow::Result<Option<Pixels>> {
        match (get(vals), get(grid)) {
            (None, None) => Ok(None),
            (Some((k, _)), None) => bail!("{p}: `{k}` without `{grid}`"),
            (None, Some((k, _))) => bail!("{p}: `{k}` without `{vals}`"),
            (Some((kv, v)), Some((kg, g))) => {
                if g.shape().len() != 2 || g.shape()[1] != 3 {
                    bail!("{p}: `{kg}` has shape {:?}, not [n, 3]", g.shape());
                }
                let gi = ints(&kg, &g, path)?;
                let grids = gi
                    .chunks_exact(3)
                    .map(|c| {
                        let d = |v: i64| {
                            usize::try_from(v)
                                .map_err(|_| anyhow::anyhow!("{p}: `{kg}` holds {v}, not a size"))
                        };
                        Ok([d(c[0])?, d(c[1])?, d(c[2])?])
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(Some(Pixels {
                    values: floats(&kv, &v, path)?,
                    grids,
                }))
            }
        }
    };
    let images = pixels("pixel_values", "image_grid_thw")?;
    let videos = pixels("pixel_values_videos", "video_grid_thw")?;
    let video_second_per_grid = match get("video_second_per_grid") {
        None => Vec::new(),
        Some((k, t)) => {
            let v = floats(&k, &t, path)?
                .into_iter()
                .map(f64::from)
                .collect::<Vec<_>>();
            let n = videos.as_ref().map_or(0, |p| p.grids.len());
            if v.len() != n || v.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
                bail!(
                    "{p}: `{k}` holds {v:?}: one finite, non-negative value per video ({n} videos)"
                );
            }
            v
        }
    };
    let mut audio = Vec::new();
    if let Some((k, t)) = get("input_values") {
        let s = t.shape().to_vec();
        let (clips, n) = match s.as_slice() {
            [n] => (1, *n),
            [c, n] => (*c, *n),
            _ => bail!("{p}: `{k}` has shape {s:?}, not [samples] or [clips, samples]"),
        };
        let x = floats(&k, &t, path)?;
        let valid = valid_counts(get("input_values_mask"), (&k, &s), clips, n, path)?;
        for (c, v) in x.chunks_exact(n.max(1)).zip(valid) {
            audio.push(Clip {
                samples: c.to_vec(),
                valid: v,
            });
        }
    }
    let mut mel_audio = Vec::new();
    if let Some((k, t)) = get("input_features") {
        let s = t.shape().to_vec();
        let (clips, mels, n) = match s.as_slice() {
            [m, n] => (1, *m, *n),
            [c, m, n] => (*c, *m, *n),
            _ => bail!("{p}: `{k}` has shape {s:?}, not [mels, frames] or [clips, mels, frames]"),
        };
        let x = floats(&k, &t, path)?;
        let frames = valid_counts(get("feature_attention_mask"), (&k, &s), clips, n, path)?;
        // The valid frames are the first ones of each clip (the extractor pads on the right).
        for (c, f) in x.chunks_exact((mels * n).max(1)).zip(frames) {
            let features = c
                .chunks_exact(n.max(1))
                .flat_map(|row| row[..f].to_vec())
                .collect();
            mel_audio.push(MelClip {
                features,
                frames: f,
            });
        }
    }
    Ok((
        ids,
        Media {
            images,
            videos,
            video_second_per_grid,
            audio,
            encoded_audio: Vec::new(),
            mel_audio,
        },
    ))
}

/// The valid entries of each of `clips` rows of `n` by a mask (`(key, tensor)`; `(k, s)` the masked tensor's key
/// and shape), or all `n` without one.
fn valid_counts(
    mask: Option<(String, safetensors::tensor::TensorView<'_>)>,
    (k, s): (&str, &[usize]),
    clips: usize,
    n: usize,
    path: &Path,
) -> anyhow::Result<Vec<usize>> {
    let Some((km, m)) = mask else {
        return Ok(vec![n; clips]);
    };
    if m.shape().iter().product::<usize>() != clips * n {
        bail!(
            "{}: `{km}` has shape {:?}, `{k}` {s:?}",
            path.display(),
            m.shape()
        );
    }
    let m = ints(&km, &m, path)?;
    Ok(m.chunks_exact(n.max(1))
        .map(|r| r.iter().filter(|&&v| v != 0).count())
        .collect())
}

fn ints(k: &str, t: &safetensors::tensor::TensorView<'_>, path: &Path) -> anyhow::Result<Vec<i64>> {
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()) as i64)
            .collect(),
        Dtype::BOOL | Dtype::U8 => d.iter().map(|&b| b as i64).collect(),
        other => bail!(
            "{}: `{k}` is {other:?}; an integer tensor must be int32 or int64",
            path.display()
        ),
    })
}

fn floats(
    k: &str,
    t: &safetensors::tensor::TensorView<'_>,
    path: &Path,
) -> anyhow::Result<Vec<f32>> {
    let d = t.data();
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()) as f32)
            .collect(),
        other => bail!(
            "{}: `{k}` is {other:?}; a float tensor must be float32 or float64",
            path.display()
        ),
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        bail!("{}: `{k}` holds a non-finite value at {i}", path.display());
    }
    Ok(v)
}
