//! The placeholder strings MuseSparkProcessor (and MuseGlimmerProcessor) put into the prompt for each image,
//! video and clip (`replace_image_token`, `replace_video_token`, `replace_audio_token` of transformers 5.23):
//!
//! - image: `<|image_start|>` + `<|patch|>` x (t h w / merge^2) + `<|image_end|>`;
//! - video: `<|vid_start|>`, then per temporal group its timestamp (`frame_timestamp_format`) and
//!   `<|video|>` x (h w / merge^2), groups separated by `<|vid_frame_separator|>`, closed by `<|vid_end|>`;
//! - audio: `<|soft_audio_start|>` + `<|audio|>` x ceil(real samples / samples_per_token) +
//!   `<|soft_audio_end|>`.

/// The placeholder a chat template writes per image, and the processor repeats per merged token.
pub const IMAGE_TOKEN: &str = "<|patch|>";
/// The placeholder per video, repeated per token of each temporal group.
pub const VIDEO_TOKEN: &str = "<|video|>";
/// The placeholder per audio clip, repeated per 80 ms token.
pub const AUDIO_TOKEN: &str = "<|audio|>";

/// The image placeholder for an image of `grid_thw` with `merge_size`.
pub fn image_prompt(grid_thw: [usize; 3], merge_size: usize) -> String {
    let n = grid_thw[0] * grid_thw[1] * grid_thw[2] / (merge_size * merge_size);
    format!("<|image_start|>{}<|image_end|>", IMAGE_TOKEN.repeat(n))
}

/// The placeholder tokens of a Qwen processor, `[start, pad, end]` for images and for audio: the chat template
/// writes start, pad and end once per medium and the processor repeats the pad once per tower row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QwenTokens {
    pub image: [&'static str; 3],
    pub video: [&'static str; 3],
    pub audio: [&'static str; 3],
}

/// Qwen3-VL's and Qwen3-Omni's.
pub const QWEN3_TOKENS: QwenTokens = QwenTokens {
    image: ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>"],
    video: ["<|vision_start|>", "<|video_pad|>", "<|vision_end|>"],
    audio: ["<|audio_start|>", "<|audio_pad|>", "<|audio_end|>"],
};

/// Qwen2.5-Omni's.
pub const QWEN25_TOKENS: QwenTokens = QwenTokens {
    image: ["<|vision_bos|>", "<|IMAGE|>", "<|vision_eos|>"],
    video: ["<|vision_bos|>", "<|VIDEO|>", "<|vision_eos|>"],
    audio: ["<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"],
};

/// `start` + `pad` x `rows` + `end` (Qwen's processors' replacement of one medium).
pub fn qwen_prompt([start, pad, end]: [&str; 3], rows: usize) -> String {
    format!("{start}{}{end}", pad.repeat(rows))
}

/// The video placeholder: `group_timestamps` has one entry per temporal group (`grid_thw[0]`).
pub fn video_prompt(
    grid_thw: [usize; 3],
    merge_size: usize,
    group_timestamps: &[f64],
    timestamp_format: &str,
) -> Result<String, String> {
    let per_group = grid_thw[1] * grid_thw[2] / (merge_size * merge_size);
    let n = grid_thw[0];
    let mut s = String::from("<|vid_start|>");
    for g in 0..n {
        let ts = group_timestamps
            .get(g)
            .or(group_timestamps.last())
            .copied()
            .unwrap_or(0.0);
        s += &format_timestamp(timestamp_format, ts)?;
        s += &VIDEO_TOKEN.repeat(per_group);
        s += if g + 1 < n {
            "<|vid_frame_separator|>"
        } else {
            "<|vid_end|>"
        };
    }
    Ok(s)
}

/// The audio placeholder for a clip of `real_samples` (the mask's sum).
pub fn audio_prompt(real_samples: usize, samples_per_token: usize) -> String {
    let n = real_samples.div_ceil(samples_per_token);
    format!(
        "<|soft_audio_start|>{}<|soft_audio_end|>",
        AUDIO_TOKEN.repeat(n)
    )
}

/// python's `fmt.format(timestamp=ts)` for the formats a processor config uses: literal text with `{{` / `}}`
/// escapes and fields `{timestamp}` or `{timestamp:.Nf}` (N <= 9). Anything else is an error.
pub fn format_timestamp(fmt: &str, ts: f64) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(i) = rest.find(['{', '}']) {
        out += &rest[..i];
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push(tail.as_bytes()[0] as char);
            rest = &tail[2..];
            continue;
        }
        let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) else {
            return Err(format!("{fmt:?}: unmatched brace"));
        };
        let field = &tail[1..end];
        match field.strip_prefix("timestamp") {
            // python's repr of a float; timestamps are frame / fps, printed shortest round-trip as Rust does,
            // with python's trailing ".0" for integral values.
            Some("") => {
                let r = format!("{ts:?}");
                out += &r;
            }
            Some(spec) => {
                let digits = spec
                    .strip_prefix(":.")
                    .and_then(|d| d.strip_suffix('f'))
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|&d| d <= 9)
                    .ok_or_else(|| format!("{fmt:?}: unsupported format spec {spec:?}"))?;
                out += &format!("{ts:.digits$}");
            }
            None => {
                return Err(format!(
                    "{fmt:?}: unknown field {field:?} (only `timestamp`)"
                ))
            }
        }
        rest = &tail[end + 1..];
    }
    out += rest;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats() {
        assert_eq!(
            format_timestamp("Time: {timestamp:.1f}s", 1.0).unwrap(),
            "Time: 1.0s"
        );
        assert_eq!(
            format_timestamp("Time: {timestamp:.1f}s", 0.25).unwrap(),
            "Time: 0.2s"
        );
        assert_eq!(
            format_timestamp("{{t}} {timestamp}", 1.5).unwrap(),
            "{t} 1.5"
        );
        assert!(format_timestamp("{other}", 1.0).is_err());
        assert!(format_timestamp("{timestamp:x}", 1.0).is_err());
        assert!(format_timestamp("{timestamp", 1.0).is_err());
    }
}
