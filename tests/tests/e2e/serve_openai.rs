//! `flint serve` against the official `openai` Python client (PyPI; `scripts/python-env.sh` makes its venv), on
//! SmolLM2's real weights: chat, streaming, n choices, stop and length, refusals, 200 concurrent requests, a
//! client that disconnects, memory back to idle, the API key; json_schema and tool calls. x86_64 only (real weights and a Python client).
#![cfg(target_arch = "x86_64")]

use flint_tests::muse::{muse_spark_with_processors, write_fixture_clip};
use flint_tests::{fixtures, python, python_script, read_safetensors, root, run_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

fn model(dir: &Path) -> PathBuf {
    flint_tests::smollm2_q8(dir)
}

fn start(model: &Path, extra: &[&str]) -> flint_tests::Server {
    flint_tests::serve(model, extra)
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
    python_script(
        "openai_client.py",
        &[
            ("FLINT_URL", &open.url),
            ("FLINT_URL_KEYED", &keyed.url),
            ("FLINT_KEY", "test-key-123"),
        ],
    );
}

/// JSON answers and tool calls through the openai client (tests/serve/openai_shapes.py): every value validates
/// against its schema with the `jsonschema` package.
#[test]
fn json_schemas_and_tool_calls_through_the_openai_client() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let server = start(&model, &[]);
    python_script("openai_shapes.py", &[("FLINT_URL", &server.url)]);
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
    media_answers_as_flint_run(&model, &wav);
}

/// The same on the tiny Qwen3-Omni thinker (M-RoPE positions, deepstack, the Qwen2-VL image processor and the
/// Whisper feature extractor at 16 kHz), with a ChatML template: the server's answers equal `flint run --chat`.
#[test]
fn qwen3_omni_images_and_audio_in_requests_answer_as_flint_run() {
    let tmp = tempfile::tempdir().unwrap();
    let image = serde_json::json!({"image_processor_type": "Qwen2VLImageProcessor", "patch_size": 8,
        "temporal_patch_size": 2, "merge_size": 2, "size": {"shortest_edge": 1024, "longest_edge": 16384}});
    let model = crate::qwen3_omni::with_processors(
        tmp.path(),
        "qwen3_omni_moe_thinker",
        &[("preprocessor_config.json", image)],
    );
    media_answers_as_flint_run(
        &model,
        &fixtures().join("processors/audio/sign_question_16k.wav"),
    );
}

/// Runs tests/serve/openai_media.py against `flint serve -m model` with a photo and `wav`: the image as a data URL
/// and as a file answer as `flint run --chat --image`, image + audio as `--image --audio`, and both refusals come
/// back naming the part.
fn media_answers_as_flint_run(model: &Path, wav: &Path) {
    let images = std::fs::canonicalize(fixtures().join("processors/images")).unwrap();
    let image = images.join("coffee.png");
    let prompt = "What is this?";
    let server = start(model, &["--allow-path", images.to_str().unwrap()]);
    let out = Command::new(python())
        .arg(root().join("tests/serve/openai_media.py"))
        .env("FLINT_URL", &server.url)
        .env("FLINT_IMAGE", &image)
        .env("FLINT_WAV", wav)
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
