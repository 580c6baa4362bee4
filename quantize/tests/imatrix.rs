//! Importance weighting at the binary's boundary, on the tiny llama fixture: the report records it (and its absence
//! under `--no-imatrix`), and the weighted file has the lower activation-weighted weight error — measured here with
//! importance collected independently through the library's own tap and reference pass.

use flint_format::{DType, FlintFile};
use flint_kernels::WeightRef;
use flint_model::Model;
use flint_quantize::quant::{eval, imatrix};
use serde_json::Value;
use std::path::Path;

mod common;

use common::quantize_cmd;

fn run(args: &[&str]) {
    let o = quantize_cmd().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn report(f: &FlintFile) -> Value {
    f.meta("quantization")
        .expect("quantization metadata")
        .clone()
}

#[test]
fn imatrix_is_recorded_and_lowers_the_weighted_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/hf/llama/model");
    run(&["import", fixture.to_str().unwrap(), "-o", &p("in.flint")]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/calibration.txt"),
    )
    .unwrap();
    let text: String = text.chars().take(384).collect();
    std::fs::write(p("calib.txt"), &text).unwrap();
    let common = [
        "--weights",
        "q4",
        "--calib",
        &p("calib.txt"),
        "--ctx",
        "128",
    ];
    run(&[
        &["quantize", &p("in.flint"), "-o", &p("w.flint")],
        &common[..],
    ]
    .concat());
    run(&[
        &[
            "quantize",
            &p("in.flint"),
            "-o",
            &p("u.flint"),
            "--no-imatrix",
        ],
        &common[..],
    ]
    .concat());
    let (w, u) = (
        FlintFile::open(p("w.flint")).unwrap(),
        FlintFile::open(p("u.flint")).unwrap(),
    );

    // The report says what weighted the blocks, and says nothing did under --no-imatrix.
    let (rw, ru) = (report(&w), report(&u));
    let m = &rw["imatrix"];
    assert_eq!(m["text"].as_str(), Some(p("calib.txt").as_str()), "{m}");
    assert_eq!(m["tokens"].as_u64(), Some(384), "{m}");
    // The fixture's embedding table is not tied to its head: a lookup, no matmul reads it, so uniform importance.
    let matrices = w.tensors().iter().filter(|t| t.shape.len() == 2).count();
    assert_eq!(m["weighted"].as_u64(), Some(matrices as u64 - 1), "{m}");
    assert_eq!(m["uniform"], serde_json::json!(["tok_embd"]), "{m}");
    assert!(ru["imatrix"].is_null(), "{}", ru["imatrix"]);

    // Statistics from another text are recorded as such; turning weighting off and naming a text conflict.
    std::fs::write(
        p("other.txt"),
        "Another text entirely, for the statistics only.",
    )
    .unwrap();
    let (inp, out) = (p("in.flint"), p("o.flint"));
    let other = [&["quantize", &inp, "-o", &out], &common[..]].concat();
    run(&[&other[..], &["--imatrix-text", &p("other.txt")]].concat());
    let ro = report(&FlintFile::open(p("o.flint")).unwrap());
    assert_eq!(
        ro["imatrix"]["text"].as_str(),
        Some(p("other.txt").as_str())
    );
    assert_eq!(
        ro["imatrix"]["tokens"].as_u64(),
        Some(47),
        "{}",
        ro["imatrix"]
    );
    assert_eq!(
        ro["eval"]["tokens"].as_u64(),
        Some(384),
        "measured on the calibration text"
    );
    let o = quantize_cmd()
        .args(
            [
                &other[..],
                &["--no-imatrix", "--imatrix-text", &p("other.txt")],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--imatrix-text"));

    // Importance as the quantizer collects it: the reference run over the same ids and chunks, tap on.
    let src = FlintFile::open(p("in.flint")).unwrap();
    let model = Model::load(src.clone()).unwrap();
    let (tokens, _) = eval::calibration_tokens(&model, &text).unwrap();
    let (pass, imp) = imatrix::collect(&src, || {
        eval::reference_pass(&model, &tokens, 128, 0, None, |_, _| {})
    });
    pass.unwrap();
    let (mut ew, mut eu) = (0f64, 0f64);
    for (i, t) in src
        .tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| t.shape.len() == 2)
    {
        let Some(imp) = imp.get(i) else {
            assert_eq!(t.name, "tok_embd");
            continue;
        };
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let orig = src.tensor(&t.name).unwrap().as_f32().unwrap();
        let err = |f: &FlintFile| {
            let q = f.tensor(&t.name).unwrap();
            let q = match q.info.dtype {
                DType::Q4X8 => WeightRef::Q4x8(bytemuck::cast_slice(q.bytes)),
                DType::Q4 => WeightRef::Q4(bytemuck::cast_slice(q.bytes)),
                d => panic!("{} is {d}", t.name),
            };
            let mut row = vec![0f32; cols];
            let mut e = 0f64;
            for r in 0..rows {
                q.row_to_f32(cols, r, &mut row);
                for ((a, b), c) in orig[r * cols..][..cols].iter().zip(&row).zip(imp) {
                    e += *c as f64 * ((a - b) as f64).powi(2);
                }
            }
            e
        };
        ew += err(&w);
        eu += err(&u);
    }
    // The fixture's weights are random and its activations fairly even, so the gain is modest (measured: 0.964x).
    assert!(
        ew < 0.985 * eu,
        "weighted error with imatrix {ew} vs without {eu}"
    );
}
