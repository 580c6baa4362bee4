//! M-RoPE positions of a prompt (transformers' Qwen3-VL and Qwen-Omni `get_rope_index`): text rows count up on
//! all three axes; an image's or video frame's rows, `(t, h / merge, w / merge)` of them in raster order, sit at
//! `start + (t, row, col)` where `start` is the position after the text before them; the text after resumes one
//! past the largest position the medium took. Qwen3-VL splits a video into its frames (a timestamp in text
//! before each), each a grid of `t = 1`; the Omni thinkers keep a video as one run whose temporal grid `tt` sits
//! at `start + tt · video_second_per_grid · position_id_per_seconds` ([`VideoTime::Seconds`]). An audio clip's
//! rows (Qwen-Omni) count up like text.

use crate::ModelError;

/// How a video's temporal grids advance the time axis.
#[derive(Clone, Copy, Debug)]
pub enum VideoTime<'a> {
    /// Qwen3-VL: every frame its own run of placeholders, at `t = 0` of its grid.
    Frames,
    /// The Omni thinkers: one run per video; `steps[i]` is video i's `video_second_per_grid ·
    /// position_id_per_seconds`; a fractional time position is truncated (`truncate`, Qwen2.5-Omni) or refused
    /// (Qwen3-Omni keeps floats, which these integer positions cannot hold).
    Seconds { steps: &'a [f64], truncate: bool },
}

/// The positions of every row of `ids`, and where decoding continues: one past the largest.
///
/// `images` and `videos` are the grids `(t, h, w)` in patches, in prompt order; each run of consecutive
/// `image_token` (`video_token`) ids takes the next image grid (video frame, or whole video with
/// [`VideoTime::Seconds`]) and must hold exactly its merged tokens.
pub fn positions(
    ids: &[u32],
    (image_token, video_token): (u32, u32),
    images: &[[usize; 3]],
    videos: &[[usize; 3]],
    merge: usize,
    time: VideoTime,
) -> Result<(Vec<[u32; 3]>, u32), ModelError> {
    let bad = |m: String| ModelError::Invalid(format!("M-RoPE positions: {m}"));
    // Each run's grid and the time step between its temporal grids.
    let image_runs: Vec<([usize; 3], f64)> = images.iter().map(|&g| (g, 1.0)).collect();
    let video_runs: Vec<([usize; 3], f64)> = match time {
        VideoTime::Frames => videos
            .iter()
            .flat_map(|&[t, h, w]| std::iter::repeat_n(([1, h, w], 1.0), t))
            .collect(),
        VideoTime::Seconds { steps, .. } => {
            if steps.len() != videos.len() {
                return Err(bad(format!(
                    "{} videos but {} video_second_per_grid values",
                    videos.len(),
                    steps.len()
                )));
            }
            videos.iter().copied().zip(steps.iter().copied()).collect()
        }
    };
    let truncate = matches!(time, VideoTime::Seconds { truncate: true, .. });
    let offset = |tt: usize, step: f64| -> Result<u64, ModelError> {
        let x = tt as f64 * step;
        if !(x.is_finite() && (0.0..u32::MAX as f64).contains(&x)) {
            return Err(bad(format!("a video time position {x} out of range")));
        }
        if !truncate && (x - x.round()).abs() > 1e-6 {
            return Err(bad(format!(
                "a video time position {x} is fractional (video_second_per_grid x position_id_per_seconds                  must give whole positions)"
            )));
        }
        Ok(if truncate { x.trunc() } else { x.round() } as u64)
    };
    let mut grids = [image_runs.iter(), video_runs.iter()];
    let mut out = Vec::with_capacity(ids.len());
    let mut next = 0u64;
    let mut i = 0;
    while i < ids.len() {
        let kind = [image_token, video_token].iter().position(|&t| t == ids[i]);
        let run = ids[i..].iter().take_while(|&&t| t == ids[i]).count();
        let Some(k) = kind else {
            // Text, and audio rows (Qwen-Omni): one row at a time (a run of equal ids is still text).
            let p = u32::try_from(next).map_err(|_| bad("past u32::MAX".into()))?;
            out.push([p; 3]);
            next += 1;
            i += 1;
            continue;
        };
        let what = [["image", "image"], ["video frame", "video"]][k]
            [usize::from(k == 1 && matches!(time, VideoTime::Seconds { .. }))];
        let Some(&([t, h, w], step)) = grids[k].next() else {
            return Err(bad(format!(
                "the prompt has more {what} placeholder runs than {what}s"
            )));
        };
        let (gh, gw) = (h / merge.max(1), w / merge.max(1));
        if t * gh * gw != run {
            return Err(bad(format!(
                "a run of {run} {what} placeholders at row {i} for a grid of {} merged tokens",
                t * gh * gw
            )));
        }
        let last_t = offset(t.saturating_sub(1), step)?;
        let largest = last_t
            .max(gh.saturating_sub(1) as u64)
            .max(gw.saturating_sub(1) as u64);
        if next + largest >= u32::MAX as u64 {
            return Err(bad("past u32::MAX".into()));
        }
        for tt in 0..t {
            let tp = next + offset(tt, step)?;
            for r in 0..gh {
                for c in 0..gw {
                    out.push([
                        tp as u32,
                        (next + r as u64) as u32,
                        (next + c as u64) as u32,
                    ]);
                }
            }
        }
        next += largest + 1;
        i += run;
    }
    for (k, what) in ["image", "video"].iter().enumerate() {
        if grids[k].next().is_some() {
            return Err(bad(format!("more {what}s than {what} placeholder runs")));
        }
    }
    Ok((
        out,
        next.try_into().map_err(|_| bad("past u32::MAX".into()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::{positions, VideoTime};

    const F: VideoTime = VideoTime::Frames;

    const T: (u32, u32) = (9, 8);

    #[test]
    fn image_rows_sit_on_their_grid_and_text_resumes_after_it() {
        // 2 text, a 1x4x6 grid merged 2x2 (2x3 tokens), 2 text.
        let ids = [1, 2, 9, 9, 9, 9, 9, 9, 3, 4];
        let (p, next) = positions(&ids, T, &[[1, 4, 6]], &[], 2, F).unwrap();
        assert_eq!(&p[..2], &[[0; 3], [1; 3]]);
        assert_eq!(p[2], [2, 2, 2]);
        assert_eq!(p[7], [2, 3, 4]);
        assert_eq!(&p[8..], &[[5; 3], [6; 3]]);
        assert_eq!(next, 7);
    }

    #[test]
    fn counts_that_do_not_fit_are_refused() {
        assert!(positions(&[9, 9, 9], T, &[[1, 4, 4]], &[], 2, F).is_err());
        assert!(positions(&[1, 9], T, &[], &[], 2, F).is_err());
        assert!(positions(&[1], T, &[[1, 2, 2]], &[], 2, F).is_err());
        // A video of two frames, each its own run.
        let (p, _) = positions(&[8, 1, 8], T, &[], &[[2, 2, 2]], 2, F).unwrap();
        assert_eq!(p, [[0; 3], [1; 3], [2; 3]]);
        // Audio rows (5) count like text.
        let (p, next) = positions(&[5, 5, 9, 5], T, &[[1, 2, 2]], &[], 2, F).unwrap();
        assert_eq!(p, [[0; 3], [1; 3], [2; 3], [3; 3]]);
        assert_eq!(next, 4);
    }

    #[test]
    fn omni_video_grids_sit_at_their_seconds() {
        // Qwen3-Omni as transformers gives it: 1 text, a (2, 4, 6) video merged 2x2 (2 grids of 2x3), 1 text;
        // video_second_per_grid 1.0 x position_id_per_seconds 13: the second grid 13 after the first.
        let ids = [1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 2];
        let steps = [13.0];
        let time = VideoTime::Seconds {
            steps: &steps,
            truncate: false,
        };
        let (p, next) = positions(&ids, T, &[], &[[2, 4, 6]], 2, time).unwrap();
        assert_eq!(p[1], [1, 1, 1]);
        assert_eq!(p[6], [1, 2, 3]);
        assert_eq!(p[7], [14, 1, 1]);
        assert_eq!(p[12], [14, 2, 3]);
        assert_eq!(p[13], [15; 3]);
        assert_eq!(next, 16);
        // A fractional step: refused for Qwen3-Omni, truncated for Qwen2.5-Omni (12.5 -> 12).
        let half = [12.5];
        let time = VideoTime::Seconds {
            steps: &half,
            truncate: false,
        };
        assert!(positions(&ids, T, &[], &[[2, 4, 6]], 2, time).is_err());
        let time = VideoTime::Seconds {
            steps: &half,
            truncate: true,
        };
        let (p, _) = positions(&ids, T, &[], &[[2, 4, 6]], 2, time).unwrap();
        assert_eq!(p[7], [13, 1, 1]);
        // One step per video.
        let time = VideoTime::Seconds {
            steps: &[],
            truncate: false,
        };
        assert!(positions(&ids, T, &[], &[[2, 4, 6]], 2, time).is_err());
    }
}
