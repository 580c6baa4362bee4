//! `flint logits --inputs` at the CLI boundary: Muse Spark's processor outputs (a photo, a clip and text; a video)
//! through both towers and the decoder, against transformers' logits; the same inputs under other names and
//! integer types; and inputs that do not fit the model, each refused with an error naming the file.

use flint_format::DType;
use flint_tests::muse::{char_of, muse_spark_with_processors, write_fixture_clip};
use flint_tests::{fixtures, import, read_npy, read_safetensors, rel_err, run_bin};
use safetensors::tensor::TensorView;
use safetensors::{serialize_to_file, Dtype};
use std::path::Path;

const TOL: f32 = 1e-4;

use flint_tests::logits_of_inputs as logits;

#[test]
fn image_audio_and_video_prompts_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    // Muse Spark (image + audio + text; a video) and Muse Glimmer (its dense decoder; image + text).
    for (case, ckpt) in [
        ("muse_spark", "muse_spark"),
        ("muse_spark_video", "muse_spark"),
        ("muse_glimmer", "muse_glimmer"),
    ] {
        let model = tmp.path().join(format!("{ckpt}.flint"));
        if !model.exists() {
            import(
                &fixtures().join(format!("hf/{ckpt}/model")),
                &model,
                DType::F32,
            );
        }
        let io_path = fixtures().join(format!("hf/{case}/io.safetensors"));
        let io = read_safetensors(&io_path);
        let out = tmp.path().join(format!("{case}.npy"));
        let o = logits(&model, &io_path, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{case}: {err}");
        assert!(
            err.contains("no model input"),
            "{case}: the ignored keys are noted: {err}"
        );
        let (shape, got) = read_npy(&std::fs::read(&out).unwrap());
        let want = &io["out.logits"];
        assert_eq!(shape, [want.shape[1], want.shape[2]], "{case}");
        let e = rel_err(&got, &want.data);
        eprintln!("{case}: flint logits --inputs: max error {e:.3e}");
        assert!(e < TOL, "{case}: logits differ by {e:e}");
    }
}

/// A tensor to write with the safetensors crate.
struct T {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn f32s(shape: &[usize], v: &[f32]) -> T {
    T {
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn i32s(shape: &[usize], v: &[f32]) -> T {
    T {
        dtype: Dtype::I32,
        shape: shape.to_vec(),
        data: v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
    }
}

/// An edit of the inputs a test writes.
type Edit = dyn FnOnce(&mut Vec<(String, T)>);

/// The fixture's inputs without the `in.` prefix, integers as int32, and edits.
fn write_inputs(path: &Path, edit: impl FnOnce(&mut Vec<(String, T)>)) {
    let io = read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
    let mut t: Vec<(String, T)> = Vec::new();
    for k in ["input_ids", "image_grid_thw", "input_values_mask"] {
        let r = &io[&format!("in.{k}")];
        t.push((k.into(), i32s(&r.shape, &r.data)));
    }
    for k in ["pixel_values", "input_values"] {
        let r = &io[&format!("in.{k}")];
        t.push((k.into(), f32s(&r.shape, &r.data)));
    }
    edit(&mut t);
    let views = t.iter().map(|(k, v)| {
        (
            k.as_str(),
            TensorView::new(v.dtype, v.shape.clone(), &v.data).unwrap(),
        )
    });
    serialize_to_file(views, None, path).unwrap();
}

#[test]
fn plain_names_and_int32_give_the_same_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.flint");
    import(&fixtures().join("hf/muse_spark/model"), &model, DType::F32);
    let inputs = tmp.path().join("in.safetensors");
    write_inputs(&inputs, |_| {});
    let out = tmp.path().join("o.npy");
    let o = logits(&model, &inputs, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let io = read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
    let e = rel_err(
        &read_npy(&std::fs::read(&out).unwrap()).1,
        &io["out.logits"].data,
    );
    assert!(e < TOL, "logits differ by {e:e}");
}

#[test]
fn inputs_that_do_not_fit_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.flint");
    import(&fixtures().join("hf/muse_spark/model"), &model, DType::F32);
    let cases: Vec<(&str, Box<Edit>, &str)> = vec![
        (
            "no_grid",
            Box::new(|t| t.retain(|(k, _)| k != "image_grid_thw")),
            "without `image_grid_thw`",
        ),
        (
            "one_placeholder_less",
            Box::new(|t| {
                let ids = &mut t.iter_mut().find(|(k, _)| k == "input_ids").unwrap().1;
                // The first `<|patch|>` (id 3) becomes a text token.
                let i = ids
                    .data
                    .chunks_exact(4)
                    .position(|c| c == 3i32.to_le_bytes())
                    .unwrap();
                ids.data[i * 4..i * 4 + 4].copy_from_slice(&100i32.to_le_bytes());
            }),
            "placeholders of token 3",
        ),
        (
            "float_ids",
            Box::new(|t| {
                let ids = t.iter_mut().find(|(k, _)| k == "input_ids").unwrap();
                ids.1 = f32s(&ids.1.shape.clone(), &[1.0; 36]);
            }),
            "must be int32 or int64",
        ),
        (
            "nan_pixels",
            Box::new(|t| {
                let px = &mut t.iter_mut().find(|(k, _)| k == "pixel_values").unwrap().1;
                px.data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
            "non-finite",
        ),
        (
            "bad_grid",
            Box::new(|t| {
                let g = &mut t.iter_mut().find(|(k, _)| k == "image_grid_thw").unwrap().1;
                g.data[4..8].copy_from_slice(&7i32.to_le_bytes());
            }),
            "grid",
        ),
    ];
    for (name, edit, want) in cases {
        let inputs = tmp.path().join(format!("{name}.safetensors"));
        write_inputs(&inputs, edit);
        let o = logits(&model, &inputs, &tmp.path().join("o.npy"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: accepted");
        assert!(
            err.contains(want) && !err.contains("panicked"),
            "{name}: error should say `{want}`: {err}"
        );
        assert!(
            err.contains(&format!("{name}.safetensors")),
            "{name}: names the file: {err}"
        );
    }
    // Not a safetensors file at all.
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
    let o = logits(&model, &junk, &tmp.path().join("o.npy"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("junk.safetensors"),
        "{err}"
    );
    // Media for a tower the model does not have: a text-only model.
    let text = tmp.path().join("text.flint");
    import(&fixtures().join("hf/llama/model"), &text, DType::F32);
    let inputs = tmp.path().join("ok.safetensors");
    write_inputs(&inputs, |_| {});
    let o = logits(&text, &inputs, &tmp.path().join("o.npy"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no vision tower"),
        "{err}"
    );
}

/// `flint preprocess` and `flint run` with `--image` and `--audio` on the tiny Muse Spark: the photo and a WAV of
/// the fixture's clip give the fixture's `input_ids`, pixel values and audio input, `flint logits --inputs` on
/// what preprocess wrote gives transformers' logits, and `flint run` answers with their argmax, showing its stages.
#[test]
fn run_and_preprocess_with_an_image_and_audio_give_the_fixture() {
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let (model, specials) = muse_spark_with_processors(tmp.path());
    let io = read_safetensors(&fx.join("hf/muse_spark/io.safetensors"));
    let wav = tmp.path().join("clip.wav");
    write_fixture_clip(&io, &wav);
    // The prompt text that the stand-in tokenizer reads as the fixture's ids (bos comes from the tokenizer).
    let ids: Vec<u32> = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
    let (patch, audio) = (
        specials["<|patch|>"].as_u64().unwrap() as u32,
        specials["<|audio|>"].as_u64().unwrap() as u32,
    );
    let mut prompt = String::new();
    let mut i = 1;
    while i < ids.len() {
        match ids[i] {
            6 => {
                prompt += "<|patch|>";
                while ids[i] != 7 {
                    i += 1;
                }
            }
            11 => {
                prompt += "<|audio|>";
                while ids[i] != 12 {
                    i += 1;
                }
            }
            id => prompt.push(char_of(id)),
        }
        i += 1;
    }
    let image = fx.join("processors/images/coffee.png");
    let (m, im, au) = (
        model.to_str().unwrap(),
        image.to_str().unwrap(),
        wav.to_str().unwrap(),
    );
    let pre = tmp.path().join("pre.safetensors");
    let o = run_bin(
        "flint",
        &[
            "preprocess",
            "-m",
            m,
            "--image",
            im,
            "--audio",
            au,
            "-p",
            &prompt,
            "-o",
            pre.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = read_safetensors(&pre);
    assert_eq!(got["input_ids"].data, io["in.input_ids"].data, "input_ids");
    assert_eq!(
        got["image_grid_thw"].data, io["in.image_grid_thw"].data,
        "image_grid_thw"
    );
    let e = rel_err(&got["pixel_values"].data, &io["in.pixel_values"].data);
    assert!(e < 1e-6, "pixel_values differ by {e:e}");
    assert_eq!(
        got["input_values"].data, io["in.input_values"].data,
        "input_values"
    );
    assert_eq!(
        got["input_values_mask"].data, io["in.input_values_mask"].data,
        "input_values_mask"
    );
    assert!(ids.contains(&patch) && ids.contains(&audio));
    // Their logits.
    let out = tmp.path().join("o.npy");
    let o = logits(&model, &pre, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lg = read_npy(&std::fs::read(&out).unwrap()).1;
    let e = rel_err(&lg, &io["out.logits"].data);
    assert!(e < TOL, "logits from preprocess differ by {e:e}");
    // flint run: one greedy token, the argmax of the last position, and the stages on stderr.
    let o = run_bin(
        "flint",
        &[
            "run", "-m", m, "--kv", "f32", "--image", im, "--audio", au, "-p", &prompt, "-n", "1",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for stage in [
        "decode image:",
        "preprocess:",
        "read audio:",
        "vision encode:",
        "audio encode:",
        "prompt 36 tok",
    ] {
        assert!(err.contains(stage), "stderr shows `{stage}`: {err}");
    }
    let last = &io["out.logits"].data[(ids.len() - 1) * 512..];
    let argmax = (0..512)
        .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        .unwrap() as u32;
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.trim_end_matches('\n'),
        char_of(argmax).to_string(),
        "the greedy answer"
    );
    // `--image-tokens auto` says what it chose (here the tiny processor's 15-token cap is below its floor), and a
    // cap that is neither `auto` nor a count is refused naming the option.
    let cap = |v: &str| {
        run_bin(
            "flint",
            &[
                "preprocess",
                "-m",
                m,
                "--image",
                im,
                "--image-tokens",
                v,
                "-o",
                pre.to_str().unwrap(),
            ],
        )
    };
    let o = cap("auto");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success()
            && err.contains("image tokens auto:")
            && err.contains("at most 15 of 15"),
        "{err}"
    );
    // A board profile's `camera.image_tokens_max` is auto's ceiling, and the grid keeps to it.
    let host = std::fs::read_to_string(flint_tests::root().join("targets/boards/x86_64-host.toml"))
        .unwrap();
    let board = tmp.path().join("small-board.toml");
    std::fs::write(
        &board,
        host.replace("name = \"x86_64-host\"", "name = \"small-board\"")
            .replace("aliases = [\"host\", \"x86_64\"]", "aliases = []")
            .replace("[camera]\n", "[camera]\nimage_tokens_max = 6\n"),
    )
    .unwrap();
    let o = run_bin(
        "flint",
        &[
            "--board",
            board.to_str().unwrap(),
            "preprocess",
            "-m",
            m,
            "--image",
            im,
            "--image-tokens",
            "auto",
            "-o",
            pre.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("at most 6 of 15 (board ceiling 6)"),
        "{err}"
    );
    let g = &read_safetensors(&pre)["image_grid_thw"].data;
    assert!(g[0] * g[1] * g[2] / 4.0 <= 6.0, "grid {g:?}");
    let o = cap("lots");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--image-tokens"),
        "{err}"
    );
    // Contemplating mode takes the same prompt: the towers run once, the prompt is prefilled once for 2 agents.
    let o = run_bin(
        "flint",
        &[
            "run", "-m", m, "--image", im, "--audio", au, "-p", &prompt, "-n", "2", "--agents", "2",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("2 agents, prompt 36 tok prefilled once"),
        "{err}"
    );
}
