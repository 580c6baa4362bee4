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
