//! Shared helpers of the media tests: where the fixtures are, reading their safetensors and manifests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `../shared/fixtures` relative to the workspace root (override with `FLINT_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Ok(p) = std::env::var("FLINT_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

pub fn processors() -> PathBuf {
    fixtures().join("processors")
}

pub fn json(path: &Path) -> serde_json::Value {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A stored tensor: shape and raw little-endian bytes.
pub struct Raw {
    pub shape: Vec<usize>,
    pub dtype: safetensors::Dtype,
    pub bytes: Vec<u8>,
}

impl Raw {
    pub fn f32(&self) -> Vec<f32> {
        assert_eq!(self.dtype, safetensors::Dtype::F32);
        self.bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub fn i64(&self) -> Vec<i64> {
        assert_eq!(self.dtype, safetensors::Dtype::I64);
        self.bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub fn i32(&self) -> Vec<i32> {
        assert_eq!(self.dtype, safetensors::Dtype::I32);
        self.bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

pub fn read_st(path: &Path) -> HashMap<String, Raw> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                Raw {
                    shape: v.shape().to_vec(),
                    dtype: v.dtype(),
                    bytes: v.data().to_vec(),
                },
            )
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
