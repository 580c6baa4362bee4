//! `flint serve` against the official `openai` Python client (PyPI; `scripts/python-env.sh` makes its venv), on
//! SmolLM2's real weights: chat, streaming, n choices, stop and length, refusals, 200 concurrent requests, a
//! client that disconnects, memory back to idle, the API key. x86_64 only (real weights and a Python client).
#![cfg(target_arch = "x86_64")]

use flint_format::DType;
use flint_tests::muse::{muse_spark_with_processors, write_fixture_clip};
use flint_tests::{bin_command, fixtures, import, read_safetensors, root, run_bin, smollm2_gguf};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// SmolLM2 as q8 (plain rounding, no importance pass: fast enough for 200 requests in the test build) in `dir`.
fn model(dir: &Path) -> PathBuf {
    let gguf = smollm2_gguf().expect(
        "SmolLM2 GGUF missing: run bench/fetch_models.sh (the README's setup does) or set FLINT_SMOLLM2_GGUF",
    );
    let f16 = dir.join("smollm2.f16.flint");
    import(&gguf, &f16, DType::F16);
    let calib = dir.join("calib.txt");
    std::fs::write(&calib, "The quick brown fox jumps over the lazy dog.\n").unwrap();
    let out = dir.join("smollm2.q8.flint");
    let (f, o, c) = (
        f16.to_str().unwrap(),
        out.to_str().unwrap(),
        calib.to_str().unwrap(),
    );
    let q = run_bin(
        "flint-quantize",
        &[
            "quantize",
            f,
            "-o",
            o,
            "--weights",
            "q8",
            "--no-imatrix",
            "--calib",
            c,
        ],
    );
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    out
}

/// A running `flint serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(model: &Path, extra: &[&str]) -> Server {
    let m = model.to_str().unwrap();
    let mut args = vec!["serve", "-m", m, "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = bin_command("flint", &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting flint serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_string);
            break;
        }
        eprintln!("serve: {line}");
    }
    let url = url.expect("flint serve exited before listening");
    // Keep reading its stderr, so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, url }
}

fn python() -> PathBuf {
    let p = std::env::var("FLINT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".cache/venv-openai/bin/python"));
    assert!(
        p.exists(),
        "{} missing: run scripts/python-env.sh (scripts/test.sh does) or set FLINT_TEST_PYTHON",
        p.display()
    );
    p
}

#[test]
fn openai_client_against_flint_serve() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let open = start(&model, &["--parallel", "16"]);
    let keyed = start(
        &model,
        &["--api-key", "test-key-123", "--prefix-cache", "0"],
    );
    let out = Command::new(python())
        .arg(root().join("tests/serve/openai_client.py"))
        .env("FLINT_URL", &open.url)
        .env("FLINT_URL_KEYED", &keyed.url)
        .env("FLINT_KEY", "test-key-123")
        .output()
        .expect("running the openai client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "openai client run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refuses_to_listen_beyond_loopback_without_a_key() {
    let o = run_bin(
        "flint",
        &[
            "serve",
            "-m",
            "/nonexistent.flint",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--api-key"), "{err}");
}

/// Images and audio as content parts (a data URL, a file under --allow-path, a WAV), on the tiny Muse Spark: each
/// answer equals `flint run --chat` with the same files and text; a file outside the folder and bytes that are no
/// image are refused.
#[test]
fn images_and_audio_in_requests_answer_as_flint_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_with_processors(tmp.path());
    let io = read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
    let wav = tmp.path().join("clip.wav");
    write_fixture_clip(&io, &wav);
    let images = std::fs::canonicalize(fixtures().join("processors/images")).unwrap();
    let image = images.join("coffee.png");
    let prompt = "What is this?";
    let server = start(&model, &["--allow-path", images.to_str().unwrap()]);
    let out = Command::new(python())
        .arg(root().join("tests/serve/openai_media.py"))
        .env("FLINT_URL", &server.url)
        .env("FLINT_IMAGE", &image)
        .env("FLINT_WAV", &wav)
        .env("FLINT_PROMPT", prompt)
        .output()
        .expect("running the openai client");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{got}");
    let run = |media: &[&str]| {
        let mut args = vec![
            "run",
            "-m",
            model.to_str().unwrap(),
            "--chat",
            "-n",
            "8",
            "-p",
            prompt,
        ];
        args.extend_from_slice(media);
        let o = run_bin("flint", &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // `flint run` ends the answer with a newline.
        String::from_utf8(o.stdout)
            .unwrap()
            .strip_suffix('\n')
            .unwrap()
            .to_string()
    };
    let (im, au) = (image.to_str().unwrap(), wav.to_str().unwrap());
    let alone = run(&["--image", im]);
    assert!(!alone.is_empty());
    assert_eq!(got["image_data_url"], alone.as_str());
    assert_eq!(got["image_path"], alone.as_str());
    assert_eq!(
        got["image_audio"],
        run(&["--image", im, "--audio", au]).as_str()
    );
    assert_eq!(got["refused"].as_array().unwrap().len(), 2);
}
