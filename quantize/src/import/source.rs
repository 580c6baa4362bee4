//! Where tensors come from: a folder of safetensors files (with or without an index), or a GGUF file.

// Sizes here come from outside the process: no unchecked arithmetic or indexing.
#![warn(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::ImportError;
use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A named set of tensors that can be read as f32.
pub trait TensorSource {
    /// The file (or folder) the tensors come from, for error messages.
    fn path(&self) -> &Path;
    /// The shape of a tensor, if present.
    fn shape(&self, key: &str) -> Option<Vec<usize>>;
    /// The tensor's values converted to f32, row-major.
    // The indexing below is into fixed-size `chunks_exact` pieces: it cannot go out of bounds.
    #[allow(clippy::indexing_slicing)]
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError>;
    /// The names of every tensor, in no particular order.
    fn names(&self) -> Vec<String>;
}

/// The tensors of `inner` whose names start with `prefix`, named without it: the thinker (`thinker.…`) of a
/// full Omni release, whose talker and speech decoder (`talker.…`, `code2wav.…`, `token2wav.…`) are not read.
#[allow(missing_debug_implementations)]
pub struct Part<S> {
    pub inner: S,
    pub prefix: &'static str,
}

impl<S: TensorSource> TensorSource for Part<S> {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.inner.shape(&format!("{}{key}", self.prefix))
    }

    /// Errors name the tensor as the files do (with the prefix).
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError> {
        self.inner.load_f32(&format!("{}{key}", self.prefix))
    }

    fn names(&self) -> Vec<String> {
        let names = self.inner.names();
        names
            .into_iter()
            .filter_map(|n| n.strip_prefix(self.prefix).map(str::to_string))
            .collect()
    }
}

/// Every `*.safetensors` file of a Hugging Face folder, memory-mapped.
#[allow(missing_debug_implementations)]
pub struct SafetensorsDir {
    dir: PathBuf,
    files: Vec<(PathBuf, Mmap)>,
    /// tensor name -> (file index, shape, dtype)
    index: HashMap<String, (usize, Vec<usize>, Dtype)>,
}

impl SafetensorsDir {
    /// Opens the files named by `model.safetensors.index.json` if present, else every `*.safetensors` in `dir`.
    pub fn open(dir: &Path) -> Result<SafetensorsDir, ImportError> {
        let idx_path = dir.join("model.safetensors.index.json");
        let mut names: Vec<String> = if idx_path.exists() {
            let raw = std::fs::read(&idx_path).map_err(|e| ImportError::io(&idx_path, e))?;
            let v: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| ImportError::parse(&idx_path, e.to_string()))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ImportError::parse(&idx_path, "no `weight_map` object"))?;
            let mut f: Vec<String> = map
                .values()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            f.sort();
            f.dedup();
            f
        } else {
            let rd = std::fs::read_dir(dir).map_err(|e| ImportError::io(dir, e))?;
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".safetensors"))
                .collect()
        };
        names.sort();
        if names.is_empty() {
            return Err(ImportError::parse(dir, "no *.safetensors files"));
        }
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if name.contains('/') || name.contains("..") {
                return Err(ImportError::parse(
                    &idx_path,
                    format!("file name `{name}` leaves the folder"),
                ));
            }
            let p = dir.join(name);
            let f = std::fs::File::open(&p).map_err(|e| ImportError::io(&p, e))?;
            // SAFETY: read-only map of a checkpoint that nothing in this process writes.
            let map = unsafe { Mmap::map(&f) }.map_err(|e| ImportError::io(&p, e))?;
            let st = SafeTensors::deserialize(&map).map_err(|e| {
                let why = name_bad_tensor(&map).map_or(String::new(), |w| format!(": {w}"));
                ImportError::parse(&p, format!("{e}{why}"))
            })?;
            for (k, v) in st.tensors() {
                index.insert(k, (i, v.shape().to_vec(), v.dtype()));
            }
            files.push((p, map));
        }
        Ok(SafetensorsDir {
            dir: dir.to_path_buf(),
            files,
            index,
        })
    }
}

impl TensorSource for SafetensorsDir {
    fn path(&self) -> &Path {
        &self.dir
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.index.get(key).map(|(_, s, _)| s.clone())
    }

    fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    // The indexing below is into fixed-size `chunks_exact` pieces: it cannot go out of bounds.
    #[allow(clippy::indexing_slicing)]
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError> {
        let (p, map) = self
            .index
            .get(key)
            .and_then(|(fi, _, _)| self.files.get(*fi))
            .ok_or_else(|| ImportError::MissingTensor {
                path: self.dir.display().to_string(),
                name: key.into(),
            })?;
        let st = SafeTensors::deserialize(map).map_err(|e| ImportError::parse(p, e.to_string()))?;
        let t = st
            .tensor(key)
            .map_err(|e| ImportError::parse(p, e.to_string()))?;
        let b = t.data();
        let bad = || ImportError::DType {
            path: p.display().to_string(),
            name: key.into(),
            dtype: format!("{:?}", t.dtype()),
        };
        // Safetensors data is little-endian and not necessarily aligned: decode byte-wise.
        Ok(match t.dtype() {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => return Err(bad()),
        })
    }
}

/// Bytes per element of the safetensors dtypes, by header name.
fn dtype_bytes(d: &str) -> Option<u64> {
    Some(match d {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// When the safetensors crate refuses a header without saying which tensor is at fault ("invalid shape, data
/// type, or offset for tensor"), finds the first tensor whose offsets, shape and dtype do not agree, and says why.
fn name_bad_tensor(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = usize::try_from(n).ok()?.checked_add(8)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..end)?).ok()?;
    let data_len = bytes.len().saturating_sub(end) as u64;
    let mut spans = Vec::new();
    for (name, t) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let (dtype, shape, offsets) = (t.get("dtype")?, t.get("shape")?, t.get("data_offsets")?);
        let dims: Option<Vec<u64>> = shape.as_array()?.iter().map(|d| d.as_u64()).collect();
        let Some(dims) = dims else {
            return Some(format!(
                "tensor `{name}`: shape {shape} is not a list of sizes"
            ));
        };
        let o: Option<Vec<u64>> = offsets.as_array()?.iter().map(|d| d.as_u64()).collect();
        let Some([s, e]) = o.as_deref().and_then(|o| <[u64; 2]>::try_from(o).ok()) else {
            return Some(format!(
                "tensor `{name}`: data_offsets {offsets} is not [start, end]"
            ));
        };
        let Some(bpe) = dtype.as_str().and_then(dtype_bytes) else {
            return Some(format!("tensor `{name}`: unknown dtype {dtype}"));
        };
        let need = dims.iter().try_fold(bpe, |a, &d| a.checked_mul(d));
        if need.is_none() || e.checked_sub(s) != need {
            let need = need.map_or("more than 2^64".to_string(), |b| b.to_string());
            return Some(format!(
                "tensor `{name}`: shape {dims:?} of {dtype} needs {need} bytes, data_offsets [{s}, {e}] hold {}",
                e.saturating_sub(s)
            ));
        }
        if e > data_len {
            return Some(format!(
                "tensor `{name}`: data_offsets [{s}, {e}] run past the {data_len} bytes of data"
            ));
        }
        spans.push((s, e, name));
    }
    spans.sort();
    spans.windows(2).find_map(|w| match w {
        [a, b] if b.0 != a.1 => Some(format!(
            "tensor `{}` does not start where `{}` ends",
            b.2, a.2
        )),
        _ => None,
    })
}
