//! `flint logits --inputs` at the CLI boundary: Muse Spark's processor outputs (a photo, a clip and text; a video)
//! through both towers and the decoder, against transformers' logits; the same inputs under other names and
//! integer types; and inputs that do not fit the model, each refused with an error naming the file.

use flint_format::DType;
use flint_tests::{fixtures, import, read_npy, read_safetensors, rel_err, run_bin};
use safetensors::{serialize_to_file, Dtype, View};
use std::borrow::Cow;
use std::path::Path;

const TOL: f32 = 1e-4;

fn logits(model: &Path, inputs: &Path, out: &Path) -> std::process::Output {
    run_bin(
        "flint",
        &[
            "logits",
            "-m",
            model.to_str().unwrap(),
            "--kv",
            "f32",
            "--inputs",
            inputs.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    )
}

#[test]
fn image_audio_and_video_prompts_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.flint");
    import(&fixtures().join("hf/muse_spark/model"), &model, DType::F32);
    for case in ["muse_spark", "muse_spark_video"] {
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

impl View for &T {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
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
    serialize_to_file(t.iter().map(|(k, v)| (k.as_str(), v)), None, path).unwrap();
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
    let cases: Vec<(&str, Box<dyn FnOnce(&mut Vec<(String, T)>)>, &str)> = vec![
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
