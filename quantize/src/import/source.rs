//! Where tensors come from: a folder of safetensors files (with or without an index), or a GGUF file.

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
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError>;
    /// The names of every tensor, in no particular order.
    fn names(&self) -> Vec<String>;
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
            let st = SafeTensors::deserialize(&map)
                .map_err(|e| ImportError::parse(&p, e.to_string()))?;
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

    fn load_f32(&self, key: &str) -> Result<Vec<f32>, ImportError> {
        let (fi, _, _) = self
            .index
            .get(key)
            .ok_or_else(|| ImportError::MissingTensor {
                path: self.dir.display().to_string(),
                name: key.into(),
            })?;
        let (p, map) = &self.files[*fi];
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
