//! A video in an Omni thinker's prompt (Qwen3-Omni, Qwen2.5-Omni): the recording's frames sampled at the video
//! processor's `fps` (2 by default: the frame nearest each half second), then `Qwen2VLVideoProcessor`
//! ([`flint_media::qwen2_vl_video`]); the prompt takes the vision start, a video placeholder per merged token and
//! the vision end, and the M-RoPE time axis `video_second_per_grid = temporal_patch_size / fps`.

use super::{list_frames, processor, qwen_tokens, Prepared};
use crate::MediaFiles;
use anyhow::bail;
use flint_media::{Qwen2VlVideoConfig, RgbImage};
use flint_model::multimodal::Pixels;
use flint_model::Model;
use std::path::PathBuf;
use std::time::Instant;

/// The indices of the frames at `times` (ms, in order) nearest each step of `1000 / fps` ms from the first,
/// each frame taken once: all of them when they are that far apart already.
pub(crate) fn sample_at(times: &[u64], fps: f64) -> Vec<usize> {
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Vec::new();
    };
    let period = 1000.0 / fps;
    let mut out: Vec<usize> = Vec::new();
    let mut j = 0;
    let mut k = 0.0f64;
    // Each pass either takes the next frame or moves to the slot before it (see `ahead`): a few per frame.
    for _ in 0..4 * times.len() + 4 {
        let slot = first as f64 + k * period;
        if slot > last as f64 + period / 2.0 {
            break;
        }
        // The nearest frame to the slot, at or after the previous pick.
        while j + 1 < times.len()
            && (times[j + 1] as f64 - slot).abs() <= (times[j] as f64 - slot).abs()
        {
            j += 1;
        }
        if out.last() != Some(&j) {
            out.push(j);
        }
        // The slots before the one just short of the next frame pick this frame or the next one: skip them,
        // so a long gap costs no time.
        let ahead = times
            .get(j + 1)
            .map_or(0.0, |&t| ((t - first) as f64 / period - 1.0).floor());
        k = (k + 1.0).max(ahead);
    }
    out
}

/// The video of `a` through the model's Qwen2-VL video processor (its settings from the file, else the Omni
/// processors' defaults at the tower's patch sizes) into `p`.
pub(crate) fn prepare(model: &Model, a: &MediaFiles, p: &mut Prepared) -> anyhow::Result<()> {
    let v = model.config.vision.as_ref().expect("checked by prepare");
    let theirs = (v.patch_size, v.patch_temporal, v.merge_size);
    let cfg = match processor(model, "video_processor") {
        Some((name, json)) => {
            let c = Qwen2VlVideoConfig::from_json(&name, &json)?;
            let f = &c.frame;
            let ours = (f.patch_size, f.temporal_patch_size, f.merge_size);
            if ours != theirs {
                bail!(
                    "{}: the video processor's patch, temporal patch and merge sizes {ours:?} are not the \
                     tower's {theirs:?}",
                    name.display()
                );
            }
            c
        }
        None => Qwen2VlVideoConfig::omni_default(theirs.0, theirs.1, theirs.2),
    };
    let t = Instant::now();
    let (name, frames, given): (PathBuf, Vec<RgbImage>, usize) = match (&a.frames, &a.video) {
        (Some(f), _) => {
            f.check()?;
            let keep = sample_at(&f.times, cfg.fps);
            let frames = keep.iter().map(|&i| f.images[i].clone()).collect();
            (PathBuf::from(&f.name), frames, f.images.len())
        }
        (None, Some(dir)) => {
            let named = list_frames(dir)?;
            let times: Vec<u64> = named.iter().map(|(t, _)| *t).collect();
            let frames = sample_at(&times, cfg.fps)
                .into_iter()
                .map(|i| flint_media::decode_image_file(&named[i].1).map_err(anyhow::Error::from))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (dir.clone(), frames, named.len())
        }
        (None, None) => bail!("internal: a video without frames"),
    };
    let dec = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = flint_media::qwen2_vl_video::preprocess_video(&cfg, &name, &frames)?;
    let text = flint_media::prompt::qwen_prompt(qwen_tokens(model).video, out.tokens);
    let decoded = format!("{} of {given} frames, at {} fps", frames.len(), cfg.fps);
    let px = Pixels {
        values: out.pixel_values_videos,
        grids: vec![out.grid_thw],
    };
    p.push_video(text, (dec, decoded), t.elapsed().as_secs_f64(), px);
    p.media.video_second_per_grid = vec![out.second_per_grid];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sample_at;

    #[test]
    fn frames_are_taken_nearest_each_half_second() {
        // Already 2 fps: all of them.
        assert_eq!(sample_at(&[0, 500, 1000], 2.0), [0, 1, 2]);
        // 15 fps with jitter: the nearest to 0, 500, 1000.
        let times: Vec<u64> = (0..16).map(|i| i * 66 + (i % 2)).collect();
        assert_eq!(sample_at(&times, 2.0), [0, 8, 15]);
        // Sparser than the rate: each frame once.
        assert_eq!(sample_at(&[0, 2000], 2.0), [0, 1]);
        assert_eq!(sample_at(&[7], 2.0), [0]);
        assert!(sample_at(&[], 2.0).is_empty());
        // A gap of centuries is crossed at once.
        assert_eq!(sample_at(&[0, 500, u64::MAX / 2], 2.0), [0, 1, 2]);
    }
}
