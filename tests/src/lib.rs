//! Helpers for Flint's end-to-end tests: where the shared fixtures are, reading reference tensors, importing
//! checkpoints into temporary `.flint` files, and running the built binaries (under `FLINT_TEST_RUNNER`, e.g.
//! `qemu-aarch64-static -cpu max`, when the tests themselves run under an emulator).

pub mod audio;
pub mod fuzz_targets;
pub mod hostile;
pub mod muse;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared/fixtures` relative to the workspace root (override with `FLINT_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Ok(p) = std::env::var("FLINT_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A reference tensor: shape and f32 values (i64 inputs are converted).
#[derive(Debug)]
pub struct Ref {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads every tensor of a safetensors file.
pub fn read_safetensors(path: &Path) -> std::collections::HashMap<String, Ref> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let b = v.data();
            let data = match v.dtype() {
                safetensors::Dtype::F32 => b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => b
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                safetensors::Dtype::I32 => b
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("{k}: unexpected dtype {d:?}"),
            };
            (
                k,
                Ref {
                    shape: v.shape().to_vec(),
                    data,
                },
            )
        })
        .collect()
}

/// Largest |a - b| relative to the largest |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Imports `src` (folder or GGUF) into `out` with matrices in `dtype`.
pub fn import(src: &Path, out: &Path, dtype: flint_format::DType) {
    let ck = flint_quantize::import::open(src)
        .unwrap_or_else(|e| panic!("import {}: {e}", src.display()));
    flint_quantize::import::write(&ck, out, dtype, |_, _| {})
        .unwrap_or_else(|e| panic!("write: {e}"));
}

/// Path of a binary built by this workspace (next to the test executable's parent).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    dir.join(name)
}

/// A command for one of the workspace's binaries with `args`, under `FLINT_TEST_RUNNER` if set.
pub fn bin_command(name: &str, args: &[&str]) -> Command {
    let runner = std::env::var("FLINT_TEST_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    let mut cmd = match parts.next() {
        Some(r) => {
            let mut c = Command::new(r);
            c.args(parts).arg(bin(name));
            c
        }
        None => Command::new(bin(name)),
    };
    cmd.args(args);
    cmd
}

/// `flint logits -m model --kv f32 --inputs inputs -o out`: processor outputs in, every position's logits out.
pub fn logits_of_inputs(model: &Path, inputs: &Path, out: &Path) -> Output {
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

/// Runs one of the workspace's binaries with `args`, under `FLINT_TEST_RUNNER` if set.
pub fn run_bin(name: &str, args: &[&str]) -> Output {
    bin_command(name, args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

/// The SmolLM2 GGUF fetched by the setup command, if present (`FLINT_SMOLLM2_GGUF` overrides the path).
pub fn smollm2_gguf() -> Option<PathBuf> {
    let p = std::env::var("FLINT_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    p.exists().then_some(p)
}

/// Parses a float32 little-endian C-order .npy (version 1.0): shape and values.
/// SmolLM2 as q8 (plain rounding, no importance pass: fast enough for tests that run it many times) in `dir`.
pub fn smollm2_q8(dir: &Path) -> PathBuf {
    let gguf = smollm2_gguf().expect(
        "SmolLM2 GGUF missing: run bench/fetch_models.sh (the README's setup does) or set FLINT_SMOLLM2_GGUF",
    );
    let f16 = dir.join("smollm2.f16.flint");
    import(&gguf, &f16, flint_format::DType::F16);
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

/// The venv's Python (`scripts/python-env.sh`: the `openai` client and `jsonschema`), or FLINT_TEST_PYTHON.
pub fn python() -> PathBuf {
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

/// A running `flint serve` on a free port of 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `flint serve -m MODEL --port 0 EXTRA...` and waits until it listens.
pub fn serve(model: &Path, extra: &[&str]) -> Server {
    use std::io::{BufRead, BufReader};
    let mut args = vec!["serve", "-m", model.to_str().unwrap(), "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = bin_command("flint", &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting flint serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref().map_while(Result::ok) {
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

/// llama.cpp's llama-server (built by bench/build_llama.sh) on a GGUF file, on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct LlamaServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LlamaServer {
    /// Starts llama-server on `gguf` (2 threads, a 2048-token context) at `port` and waits until it answers;
    /// `None` when llama.cpp is not built here (the caller skips the comparison; this says so).
    pub fn start(gguf: &Path, port: u16) -> Option<LlamaServer> {
        let bin = root().join(".cache/llama.cpp/bin/llama-server");
        if !bin.exists() {
            eprintln!(
                "llama.cpp is not built (bench/build_llama.sh): the comparison with llama-server is skipped"
            );
            return None;
        }
        let port_s = port.to_string();
        let child = Command::new(&bin)
            .args(["-m", gguf.to_str().unwrap(), "-t", "2", "-c", "2048"])
            .args(["--port", &port_s, "--host", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting llama-server");
        let srv = LlamaServer { child, port };
        for _ in 0..300 {
            let up = Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{port}/health")])
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return Some(srv);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("llama-server did not come up on port {port}");
    }

    /// POSTs `body` to `route` (e.g. `/completion`) and returns the JSON answer, `None` on any failure.
    pub fn post(&self, route: &str, body: &serde_json::Value) -> Option<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}{route}", self.port);
        let o = Command::new("curl")
            .args(["-sf", &url, "-d", &body.to_string()])
            .output()
            .ok()?;
        serde_json::from_slice(&o.stdout).ok()
    }
}

/// Runs a Python script of tests/serve with the venv's interpreter and `env`; asserts that it succeeded and that
/// its last line is `ok`.
pub fn python_script(script: &str, env: &[(&str, &str)]) {
    let out = Command::new(python())
        .arg(root().join("tests/serve").join(script))
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn read_npy(bytes: &[u8]) -> (Vec<usize>, Vec<f32>) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "npy magic and version");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, data)
}
