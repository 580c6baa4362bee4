//! M-RoPE positions of a prompt (transformers' Qwen3-VL `get_rope_index`): text rows count up on all three axes;
//! an image's or video frame's rows, `(t, h / merge, w / merge)` of them in raster order, sit at `start + (t, row,
//! col)` where `start` is the position after the text before them; the text after an image resumes at `start +
//! max(h, w) / merge`. A video is split into its frames (Qwen3-VL puts a timestamp before each), each a grid of
//! `t = 1`. An audio clip's rows (Qwen3-Omni) count up like text.

use crate::ModelError;

/// The positions of every row of `ids`, and where decoding continues: one past the largest.
///
/// `images` and `videos` are the grids `(t, h, w)` in patches, in prompt order; each run of consecutive
/// `image_token` (`video_token`) ids takes the next image grid (video frame) and must hold exactly its merged
/// tokens.
pub fn positions(
    ids: &[u32],
    (image_token, video_token): (u32, u32),
    images: &[[usize; 3]],
    videos: &[[usize; 3]],
    merge: usize,
) -> Result<(Vec<[u32; 3]>, u32), ModelError> {
    let bad = |m: String| ModelError::Invalid(format!("M-RoPE positions: {m}"));
    let frames: Vec<[usize; 3]> = videos
        .iter()
        .flat_map(|&[t, h, w]| std::iter::repeat_n([1, h, w], t))
        .collect();
    let mut grids = [images.iter(), frames.iter()];
    let mut out = Vec::with_capacity(ids.len());
    let mut next = 0u64;
    let mut i = 0;
    while i < ids.len() {
        let kind = [image_token, video_token].iter().position(|&t| t == ids[i]);
        let run = ids[i..].iter().take_while(|&&t| t == ids[i]).count();
        let Some(k) = kind else {
            // Text, and audio rows (Qwen3-Omni): one row at a time (a run of equal ids is still text).
            let p = u32::try_from(next).map_err(|_| bad("past u32::MAX".into()))?;
            out.push([p; 3]);
            next += 1;
            i += 1;
            continue;
        };
        let what = ["image", "video frame"][k];
        let Some(&[t, h, w]) = grids[k].next() else {
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
        let limit = next + (t.max(gh).max(gw) as u64);
        if limit > u32::MAX as u64 {
            return Err(bad("past u32::MAX".into()));
        }
        for tt in 0..t {
            for r in 0..gh {
                for c in 0..gw {
                    out.push([tt, r, c].map(|x| (next + x as u64) as u32));
                }
            }
        }
        next += gh.max(gw) as u64;
        i += run;
    }
    for (k, what) in ["image", "video frame"].iter().enumerate() {
        if grids[k].next().is_some() {
            return Err(bad(format!("more {what}s than {what} placeholder runs")));
        }
    }
    // Decoding continues after the largest position (transformers' `rope_deltas`).
    let after = out
        .iter()
        .flatten()
        .map(|&p| p as u64 + 1)
        .max()
        .unwrap_or(0);
    let after = u32::try_from(after).map_err(|_| bad("past u32::MAX".into()))?;
    Ok((out, after))
}

#[cfg(test)]
mod tests {
    use super::positions;

    const T: (u32, u32) = (9, 8);

    #[test]
    fn image_rows_sit_on_their_grid_and_text_resumes_after_it() {
        // 2 text, a 1x4x6 grid merged 2x2 (2x3 tokens), 2 text.
        let ids = [1, 2, 9, 9, 9, 9, 9, 9, 3, 4];
        let (p, next) = positions(&ids, T, &[[1, 4, 6]], &[], 2).unwrap();
        assert_eq!(&p[..2], &[[0; 3], [1; 3]]);
        assert_eq!(p[2], [2, 2, 2]);
        assert_eq!(p[7], [2, 3, 4]);
        assert_eq!(&p[8..], &[[5; 3], [6; 3]]);
        assert_eq!(next, 7);
    }

    #[test]
    fn counts_that_do_not_fit_are_refused() {
        assert!(positions(&[9, 9, 9], T, &[[1, 4, 4]], &[], 2).is_err());
        assert!(positions(&[1, 9], T, &[], &[], 2).is_err());
        assert!(positions(&[1], T, &[[1, 2, 2]], &[], 2).is_err());
        // A video of two frames, each its own run.
        let (p, _) = positions(&[8, 1, 8], T, &[], &[[2, 2, 2]], 2).unwrap();
        assert_eq!(p, [[0; 3], [1; 3], [2; 3]]);
        // Audio rows (5) count like text.
        let (p, next) = positions(&[5, 5, 9, 5], T, &[[1, 2, 2]], &[], 2).unwrap();
        assert_eq!(p, [[0; 3], [1; 3], [2; 3], [3; 3]]);
        assert_eq!(next, 4);
    }
}
