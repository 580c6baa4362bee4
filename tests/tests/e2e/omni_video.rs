//! A video in an Omni thinker's prompt (the tiny Qwen3-Omni-MoE and Qwen2.5-Omni thinkers) against transformers
//! 5.23 + torchvision 0.29.2 (tests/refs/<case>_video.safetensors, made by tests/refs/gen_omni_video.py from three
//! real photos as frames at 0, 500 and 1000 ms):
//! - `flint preprocess --video` gives Qwen2VLVideoProcessor's `pixel_values_videos`, `video_grid_thw` and
//!   `video_second_per_grid`, and the prompt's placeholder expands to the family's vision start, one video pad
//!   per merged token and vision end;
//! - the M-RoPE positions (the time axis in seconds: `video_second_per_grid · position_id_per_seconds`, 13 a
//!   second for Qwen3-Omni, 25 truncated for Qwen2.5-Omni) are `get_rope_index`'s;
//! - `flint logits --inputs` on the reference's inputs and on what preprocess wrote gives transformers' logits
//!   within 1e-4 of their largest magnitude;
//! - `flint run --video` answers with the argmax of the last row, showing its video stages.

use crate::qwen3_omni::with_processors;
use flint_model::multimodal::mrope;
use flint_model::Model;
use flint_tests::muse::char_of;
use flint_tests::{fixtures, logits_of_inputs, read_npy, read_safetensors, rel_err, root, run_bin};
use std::path::Path;

const TOL: f32 = 1e-4;
const PROMPT: &str = "see <|video|> what?";

/// `dir/rec/frames/{0,500,1000}.jpg`: the photos the reference used, as a recording.
fn recording(dir: &Path) -> std::path::PathBuf {
    let rec = dir.join("rec");
    std::fs::create_dir_all(rec.join("frames")).unwrap();
    for (name, ms) in [("coffee", 0), ("chelsea", 500), ("astronaut", 1000)] {
        std::fs::copy(
            fixtures().join(format!("processors/images/{name}_640x480_q90.jpg")),
            rec.join(format!("frames/{ms}.jpg")),
        )
        .unwrap();
    }
    rec
}

fn logits(model: &Path, inputs: &Path, dir: &Path) -> Vec<f32> {
    let npy = dir.join("logits.npy");
    let o = logits_of_inputs(model, inputs, &npy);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_npy(&std::fs::read(&npy).unwrap()).1
}

fn video_case(case: &str) {
    let refs = root().join(format!("tests/refs/{case}_video.safetensors"));
    let want = read_safetensors(&refs);
    let tmp = tempfile::tempdir().unwrap();
    let processor = serde_json::json!({"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 8,
        "temporal_patch_size": 2, "merge_size": 2, "size": {"shortest_edge": 256, "longest_edge": 2048},
        "fps": 2});
    let model = with_processors(
        tmp.path(),
        case,
        &[("video_preprocessor_config.json", processor)],
    );
    let rec = recording(tmp.path());
    let (m, r) = (model.to_str().unwrap(), rec.to_str().unwrap());

    // The processor, through the CLI.
    let pre = tmp.path().join("pre.safetensors");
    let o = run_bin(
        "flint",
        &[
            "preprocess",
            "-m",
            m,
            "--video",
            r,
            "-p",
            PROMPT,
            "-o",
            pre.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = read_safetensors(&pre);
    for k in ["input_ids", "video_grid_thw", "video_second_per_grid"] {
        assert_eq!(got[k].data, want[&format!("in.{k}")].data, "{case}: {k}");
    }
    let (px, want_px) = (&got["pixel_values_videos"], &want["in.pixel_values_videos"]);
    assert_eq!(px.shape, want_px.shape, "{case}: pixel_values_videos shape");
    let worst = px
        .data
        .iter()
        .zip(&want_px.data)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("{case}: pixel_values_videos differ by at most {worst:e}");
    assert!(
        worst < 1e-6,
        "{case}: pixel_values_videos differ by {worst}"
    );

    // The positions, in seconds on the time axis.
    let model_f = Model::open(&model).unwrap();
    let c = &model_f.config;
    let v = c.vision.as_ref().unwrap();
    let secs = c.mrope.as_ref().unwrap().video_seconds.unwrap();
    let ids: Vec<u32> = want["in.input_ids"]
        .data
        .iter()
        .map(|&x| x as u32)
        .collect();
    let g = &want["in.video_grid_thw"].data;
    let steps = [want["in.video_second_per_grid"].data[0] as f64 * secs.per_second as f64];
    let (pos, _) = mrope::positions(
        &ids,
        (v.image_token_id, v.video_token_id),
        &[],
        &[[g[0] as usize, g[1] as usize, g[2] as usize]],
        v.merge_size,
        mrope::VideoTime::Seconds {
            steps: &steps,
            truncate: secs.truncate,
        },
    )
    .unwrap();
    let wp = &want["out.position_ids"].data;
    let n = ids.len();
    for (row, p) in pos.iter().enumerate() {
        let w: Vec<u32> = (0..3).map(|a| wp[a * n + row] as u32).collect();
        assert_eq!(&p[..], &w[..], "{case}: position of row {row}");
    }

    // The decoder, on the reference's inputs and on ours.
    let want_logits = &want["out.logits"].data;
    for (what, inputs) in [("the reference's inputs", &refs), ("preprocess's", &pre)] {
        let lg = logits(&model, inputs, tmp.path());
        let e = rel_err(&lg, want_logits);
        eprintln!("{case}: logits on {what}: max error {e:.3e} of the largest magnitude");
        assert!(e < TOL, "{case}: logits on {what} differ by {e:e}");
    }

    // `flint run --video` answers with the last row's argmax.
    let vocab = c.vocab_size;
    let last = &want_logits[(n - 1) * vocab..];
    let argmax = (0..vocab)
        .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        .unwrap() as u32;
    let o = run_bin(
        "flint",
        &[
            "run", "-m", m, "--kv", "f32", "--video", r, "-p", PROMPT, "-n", "1",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for stage in ["decode video:", "preprocess video:", "vision encode:"] {
        assert!(err.contains(stage), "{case}: stderr shows `{stage}`: {err}");
    }
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim_end_matches('\n'),
        char_of(argmax).to_string(),
        "{case}: the greedy answer"
    );
}

#[test]
fn qwen3_omni_video_matches_transformers() {
    video_case("qwen3_omni_moe_thinker");
}

#[test]
fn qwen2_5_omni_video_matches_transformers() {
    video_case("qwen2_5_omni_thinker");
}
