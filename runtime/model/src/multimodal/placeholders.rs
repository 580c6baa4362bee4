//! The processor's placeholder expansion (transformers' `MuseSparkProcessor.replace_*_token`), on the prompt text:
//! each `<|patch|>` the chat template wrote for an image becomes `<|image_start|>`, one `<|patch|>` per merged
//! token, `<|image_end|>`; each `<|video|>` becomes `<|vid_start|>` then, per temporal group, its timestamp
//! (`Time: 1.0s`) and one `<|video|>` per token, separated by `<|vid_frame_separator|>` and closed by
//! `<|vid_end|>`; each `<|audio|>` becomes `<|soft_audio_start|>`, one `<|audio|>` per 80 ms, `<|soft_audio_end|>`.
//! The i-th placeholder takes the i-th medium of its kind; a count that differs is an error.

use crate::ModelError;

/// The placeholder strings (MuseSparkProcessor's defaults; a tokenizer may rename them).
#[derive(Clone, Debug, PartialEq)]
pub struct Placeholders {
    pub image: String,
    pub image_start: String,
    pub image_end: String,
    pub video: String,
    pub video_start: String,
    pub video_sep: String,
    pub video_end: String,
    pub audio: String,
    pub audio_start: String,
    pub audio_end: String,
}

impl Default for Placeholders {
    fn default() -> Placeholders {
        let s = |x: &str| x.to_string();
        Placeholders {
            image: s("<|patch|>"),
            image_start: s("<|image_start|>"),
            image_end: s("<|image_end|>"),
            video: s("<|video|>"),
            video_start: s("<|vid_start|>"),
            video_sep: s("<|vid_frame_separator|>"),
            video_end: s("<|vid_end|>"),
            audio: s("<|audio|>"),
            audio_start: s("<|soft_audio_start|>"),
            audio_end: s("<|soft_audio_end|>"),
        }
    }
}

/// A video's share of the prompt: one timestamp (seconds) per temporal group, and the tokens of each group.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoTokens {
    pub timestamps: Vec<f64>,
    pub tokens_per_group: usize,
}

/// The media counts of one prompt: tokens per image, per video, per audio clip, in prompt order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaTokens {
    pub images: Vec<usize>,
    pub videos: Vec<VideoTokens>,
    pub audio: Vec<usize>,
}

/// `text` with every placeholder expanded as the processor does.
pub fn expand(text: &str, p: &Placeholders, m: &MediaTokens) -> Result<String, ModelError> {
    // One pass over the text, so an expansion's own `<|patch|>` / `<|video|>` / `<|audio|>` are not expanded again.
    let kinds: [(&str, usize); 3] = [
        (&p.image, m.images.len()),
        (&p.video, m.videos.len()),
        (&p.audio, m.audio.len()),
    ];
    let mut used = [0usize; 3];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = kinds
            .iter()
            .enumerate()
            .filter(|(_, (tok, _))| !tok.is_empty())
            .filter_map(|(k, (tok, _))| rest.find(tok).map(|i| (i, k)))
            .min();
        let Some((i, k)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..i]);
        rest = &rest[i + kinds[k].0.len()..];
        let n = used[k];
        used[k] += 1;
        if n >= kinds[k].1 {
            continue; // counted below
        }
        match k {
            0 => {
                out.push_str(&p.image_start);
                out.push_str(&p.image.repeat(m.images[n]));
                out.push_str(&p.image_end);
            }
            1 => {
                let v = &m.videos[n];
                out.push_str(&p.video_start);
                for (g, ts) in v.timestamps.iter().enumerate() {
                    out.push_str(&format!("Time: {ts:.1}s"));
                    out.push_str(&p.video.repeat(v.tokens_per_group));
                    out.push_str(if g + 1 < v.timestamps.len() {
                        &p.video_sep
                    } else {
                        &p.video_end
                    });
                }
            }
            _ => {
                out.push_str(&p.audio_start);
                out.push_str(&p.audio.repeat(m.audio[n]));
                out.push_str(&p.audio_end);
            }
        }
    }
    for (k, what) in ["image", "video", "audio clip"].iter().enumerate() {
        if used[k] != kinds[k].1 {
            return Err(ModelError::Invalid(format!(
                "the prompt has {} `{}` placeholders for {} {what}s",
                used[k], kinds[k].0, kinds[k].1
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_in_order_and_counts() {
        let p = Placeholders::default();
        let m = MediaTokens {
            images: vec![2, 1],
            videos: vec![VideoTokens {
                timestamps: vec![0.0, 1.0],
                tokens_per_group: 2,
            }],
            audio: vec![3],
        };
        let got = expand("a<|patch|>b<|audio|><|video|><|patch|>", &p, &m).unwrap();
        assert_eq!(
            got,
            "a<|image_start|><|patch|><|patch|><|image_end|>b<|soft_audio_start|><|audio|><|audio|><|audio|>\
             <|soft_audio_end|><|vid_start|>Time: 0.0s<|video|><|video|><|vid_frame_separator|>Time: 1.0s\
             <|video|><|video|><|vid_end|><|image_start|><|patch|><|image_end|>"
        );
        let e = expand("<|patch|>", &p, &MediaTokens::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("1 `<|patch|>` placeholders for 0 images"),
            "{e}"
        );
        let e = expand("no media", &p, &m).unwrap_err();
        assert!(
            e.to_string()
                .contains("0 `<|patch|>` placeholders for 2 images"),
            "{e}"
        );
    }
}
