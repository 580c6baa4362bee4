//! `flint-quantize quantize --calib DIR`: a calibration folder of text, a photo with its question and a WAV, through
//! the binary. On the tiny Muse Spark (with the stand-in tokenizer and the fixture's processors) the report measures
//! image and audio prompts beside the text and the importance pass reaches the tower matrices; a text-only model
//! skips the media and says why; folders that cannot be a calibration set are refused naming the file.
//!
//! Needs the `flint-quantize` binary beside the test executable (`cargo test --workspace` builds it).

use flint_format::{DType, FlintFile};
use flint_tests::muse::{muse_spark_with_processors, write_fixture_clip};
use flint_tests::{fixtures, import, read_safetensors, root, run_bin};
use serde_json::Value;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A calibration folder: 300 characters of the bench text, the fixture's coffee photo with a question, and the
/// fixture's audio clip without one.
fn calib_dir(dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    let text = std::fs::read_to_string(root().join("bench/calibration.txt")).unwrap();
    std::fs::write(
        dir.join("a.txt"),
        text.chars().take(300).collect::<String>(),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("processors/images/coffee.png"),
        dir.join("coffee.png"),
    )
    .unwrap();
    std::fs::write(dir.join("coffee.prompt"), "What is on the table?\n").unwrap();
    let io = read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
    write_fixture_clip(&io, &dir.join("question.wav"));
}

fn quantize(input: &Path, calib: &Path, out: &Path) -> (bool, String, String) {
    let o = run_bin(
        "flint-quantize",
        &[
            "quantize",
            s(input),
            "-o",
            s(out),
            "--weights",
            "q8",
            "--ctx",
            "128",
            "--calib",
            s(calib),
        ],
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn report(path: &Path) -> Value {
    FlintFile::open(path).unwrap().metadata()["quantization"].clone()
}

#[test]
fn a_folder_with_a_photo_and_a_clip_measures_each_modality() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_with_processors(tmp.path());
    let calib = tmp.path().join("calib");
    calib_dir(&calib);
    let out = tmp.path().join("m.q8.flint");
    let (ok, stdout, stderr) = quantize(&model, &calib, &out);
    assert!(ok, "{stdout}\n{stderr}");
    let r = report(&out);
    let e = &r["eval"];
    assert_eq!(e["token_source"], "tokenizer", "{e}");
    assert!(e["positions"].as_u64().unwrap() > 100, "{e}");
    let media = e["media"].as_array().unwrap();
    assert_eq!(media.len(), 2, "{e}");
    for (m, kind) in media.iter().zip(["image", "audio"]) {
        assert_eq!(m["modality"], kind, "{m}");
        let (n, kl) = (
            m["positions"].as_u64().unwrap(),
            m["kl_mean"].as_f64().unwrap(),
        );
        assert!(
            n as usize == m["tokens"].as_u64().unwrap() as usize && n > 10,
            "{m}"
        );
        // q8 of random weights: close to the f32 reference, but not equal to it.
        assert!(kl > 0.0 && kl < 0.05, "{m}");
        let agg = &e["modalities"][kind];
        assert_eq!(agg["positions"].as_u64().unwrap(), n, "{e}");
    }
    assert!(media[0]["file"].as_str().unwrap().ends_with("coffee.png"));
    assert!(
        stdout.contains("image prompts (") && stdout.contains("audio prompts ("),
        "{stdout}"
    );
    // The importance pass ran the media: every vision and audio tower matrix got statistics, which the text alone
    // does not give them.
    let towers_uniform = |r: &Value| -> Vec<String> {
        r["imatrix"]["uniform"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .filter(|n| n.starts_with("v.") || n.starts_with("audio."))
            .collect()
    };
    assert_eq!(towers_uniform(&r), Vec::<String>::new());
    assert!(r["calibration"].as_str().unwrap().ends_with("calib"), "{r}");
    // Routing statistics: Muse Spark's MoE layers 1 and 3 (8 experts, top 2), per modality; every routed row
    // chose two experts, and the image and audio rows are the prompts' placeholder rows.
    let routing = e["routing"]["layers"].as_array().unwrap();
    assert_eq!(
        routing
            .iter()
            .map(|l| l["layer"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3]
    );
    for l in routing {
        let m = &l["modalities"];
        for kind in ["text", "image", "audio"] {
            let tokens = m[kind]["tokens"].as_u64().unwrap();
            let count: u64 = m[kind]["count"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert!(tokens > 0 && count == 2 * tokens, "{kind}: {l}");
        }
        let media_rows: u64 = media.iter().map(|m| m["tokens"].as_u64().unwrap()).sum();
        let all: u64 = ["text", "image", "audio"]
            .iter()
            .map(|k| m[*k]["tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(all, e["positions"].as_u64().unwrap() + media_rows, "{l}");
    }
    // `flint info --experts` shows them, and --plot draws them.
    let png = tmp.path().join("routing.png");
    let o = run_bin("flint", &["info", s(&out), "--experts", "--plot", s(&png)]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        table.contains("image") && table.contains("audio") && table.contains("e"),
        "{table}"
    );
    let img = flint_media::decode_image_file(&png).unwrap();
    // 8 experts of 12 pixels; 3 panels of 2 layers, 6 pixels apart.
    assert_eq!((img.width, img.height), (96, 3 * 2 * 12 + 2 * 6));
    let out_text = tmp.path().join("m.text.q8.flint");
    let (ok, stdout, stderr) = quantize(&model, &calib.join("a.txt"), &out_text);
    assert!(ok, "{stdout}\n{stderr}");
    let r = report(&out_text);
    assert!(towers_uniform(&r).len() >= 5, "{}", r["imatrix"]);
    assert!(r["eval"].get("media").is_none());
}

#[test]
fn a_text_only_model_skips_the_media_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.flint");
    import(&fixtures().join("hf/llama/model"), &input, DType::F32);
    let calib = tmp.path().join("calib");
    calib_dir(&calib);
    let out = tmp.path().join("out.flint");
    let (ok, stdout, stderr) = quantize(&input, &calib, &out);
    assert!(ok, "{stdout}\n{stderr}");
    let e = &report(&out)["eval"];
    let skipped = e["media_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{e}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no image tower"),
        "{e}"
    );
    assert!(
        skipped[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no audio tower"),
        "{e}"
    );
    assert!(e.get("media").is_none(), "{e}");
    assert!(stdout.contains("skipped"), "{stdout}");
    // A dense model records no routing, and `flint info --experts` says so.
    assert!(e.get("routing").is_none(), "{e}");
    let o = run_bin("flint", &["info", s(&out), "--experts"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no routing statistics"),
        "{err}"
    );
}

#[test]
fn folders_that_are_no_calibration_set_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.flint");
    import(&fixtures().join("hf/llama/model"), &input, DType::F32);
    let out = tmp.path().join("out.flint");
    // (folder name, how it is spoiled, the file the error names, what it says)
    type Case<'a> = (&'a str, &'a dyn Fn(&Path), &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            "unknown",
            &|d| std::fs::write(d.join("notes.md"), "x").unwrap(),
            "notes.md",
            "not a calibration file",
        ),
        (
            "orphan",
            &|d| std::fs::write(d.join("cat.prompt"), "Which cat?").unwrap(),
            "cat.prompt",
            "without an image",
        ),
        (
            "no_text",
            &|d| {
                std::fs::remove_file(d.join("a.txt")).unwrap();
            },
            "no_text",
            "holds no text",
        ),
        (
            "not_utf8",
            &|d| std::fs::write(d.join("b.txt"), [b'a', 0xff, 0xfe]).unwrap(),
            "b.txt",
            "not UTF-8",
        ),
    ];
    for (name, edit, culprit, what) in cases {
        let dir = tmp.path().join(name);
        calib_dir(&dir);
        edit(&dir);
        let (ok, stdout, stderr) = quantize(&input, &dir, &out);
        assert!(!ok, "{name}: {stdout}");
        assert!(
            stderr.contains(culprit) && stderr.contains(what),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: output left behind");
    }
}
