//! Zero-copy handles on a mapped file's tensors, checked against the shapes the config implies.

use crate::{ModelConfig, ModelError};
use flint_format::{DType, FlintFile};
use flint_kernels::WeightRef;
use memmap2::Mmap;
use std::sync::Arc;

/// A 2-D weight matrix `[rows, cols]` living in the map.
#[derive(Clone)]
pub struct Weight {
    map: Arc<Mmap>,
    off: usize,
    len: usize,
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
}

impl std::fmt::Debug for Weight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Weight({} [{}, {}])", self.dtype, self.rows, self.cols)
    }
}

impl Weight {
    /// The kernel view of the bytes.
    pub fn view(&self) -> WeightRef<'_> {
        weight_ref(self.dtype, &self.map[self.off..self.off + self.len])
    }

    /// Where the matrix lies in the file: its offset and length in bytes.
    pub(crate) fn range(&self) -> (u64, usize) {
        (self.off as u64, self.len)
    }

    /// The kernel view of the same matrix read into memory by the expert pager (`r` holds its file range).
    pub(crate) fn view_in<'a>(&self, r: &'a crate::paging::Resident) -> WeightRef<'a> {
        weight_ref(self.dtype, r.bytes(self.off as u64, self.len))
    }

    /// Whether the matrix holds quant blocks (so it takes activations quantized by `quantize_acts`).
    pub fn is_quantized(&self) -> bool {
        self.dtype.is_quantized()
    }

    /// Bytes a full pass over the matrix reads.
    pub fn bytes(&self) -> usize {
        self.len
    }

    /// Dequantizes row `r` into `out` (`cols` values).
    pub fn row_to_f32(&self, r: usize, out: &mut [f32]) {
        self.view().row_to_f32(self.cols, r, out)
    }
}

/// The kernel view of `b`, the bytes of a matrix of type `dtype`.
fn weight_ref(dtype: DType, b: &[u8]) -> WeightRef<'_> {
    // The reader checked that offsets are 64-byte aligned inside a page-aligned map and that the byte length
    // matches the type and shape (the pager's buffers keep the file's alignment), so these casts cannot fail.
    match dtype {
        DType::F32 => WeightRef::F32(bytemuck::cast_slice(b)),
        DType::F16 => WeightRef::F16(bytemuck::cast_slice(b)),
        DType::BF16 => WeightRef::BF16(bytemuck::cast_slice(b)),
        DType::Q8 => WeightRef::Q8(bytemuck::cast_slice(b)),
        DType::Q4 => WeightRef::Q4(bytemuck::cast_slice(b)),
        DType::Q4M => WeightRef::Q4M(bytemuck::cast_slice(b)),
        DType::Q2M => WeightRef::Q2M(bytemuck::cast_slice(b)),
        DType::Q8X8 => WeightRef::Q8x8(bytemuck::cast_slice(b)),
        DType::Q4X8 => WeightRef::Q4x8(bytemuck::cast_slice(b)),
        _ => unreachable!("DType added without a kernel mapping"),
    }
}

/// A 1-D f32 vector (norm weights, biases) living in the map.
#[derive(Clone)]
pub struct Vector {
    map: Arc<Mmap>,
    off: usize,
    len: usize,
}

impl std::fmt::Debug for Vector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vector([{}])", self.len / 4)
    }
}

impl Vector {
    pub fn get(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[self.off..self.off + self.len])
    }
}

/// Looks tensors up in a file and checks their shapes.
#[derive(Debug)]
pub struct Loader<'a> {
    pub file: &'a FlintFile,
    map: Arc<Mmap>,
}

impl<'a> Loader<'a> {
    pub fn new(file: &'a FlintFile) -> Self {
        Loader {
            file,
            map: file.map(),
        }
    }

    /// The file's `model.config`, parsed and validated ([`ModelConfig::validate`]); errors name the file and key.
    pub fn config(&self) -> Result<ModelConfig, ModelError> {
        let meta_err = |msg: String| ModelError::Metadata {
            path: self.file.path().display().to_string(),
            key: "model.config",
            msg,
        };
        let raw = self
            .file
            .meta("model.config")
            .ok_or_else(|| meta_err("missing".into()))?;
        let config: ModelConfig =
            serde_json::from_value(raw.clone()).map_err(|e| meta_err(e.to_string()))?;
        config.validate().map_err(meta_err)?;
        Ok(config)
    }

    /// Which experts of MoE layer `l` the file leaves out: metadata `moe.pruned_experts`, `{"layer": [expert, ...]}`
    /// (written by `flint-quantize --experts auto` for experts its calibration set never routed to; absent means
    /// none). Each listed expert must be below `experts`, listed once, and leave at least `top_k` experts in the
    /// layer; errors name the file and key.
    pub fn pruned_experts(
        &self,
        l: usize,
        experts: usize,
        top_k: usize,
    ) -> Result<Vec<bool>, ModelError> {
        const KEY: &str = "moe.pruned_experts";
        let bad = |msg: String| ModelError::Metadata {
            path: self.file.path().display().to_string(),
            key: KEY,
            msg,
        };
        let mut out = vec![false; experts];
        let Some(v) = self.file.meta(KEY) else {
            return Ok(out);
        };
        let map = v
            .as_object()
            .ok_or_else(|| bad("not an object of layer -> [expert]".into()))?;
        let Some(list) = map.get(&l.to_string()) else {
            return Ok(out);
        };
        let list = list
            .as_array()
            .ok_or_else(|| bad(format!("layer {l}: not an array of expert indices")))?;
        for e in list {
            let e = e
                .as_u64()
                .filter(|&e| (e as usize) < experts)
                .ok_or_else(|| bad(format!("layer {l}: {e} is not an expert below {experts}")))?
                as usize;
            if std::mem::replace(&mut out[e], true) {
                return Err(bad(format!("layer {l}: expert {e} is listed twice")));
            }
        }
        if experts - list.len() < top_k.max(1) {
            return Err(bad(format!(
                "layer {l}: {} of {experts} experts pruned leaves fewer than the {top_k} each token is routed to",
                list.len()
            )));
        }
        Ok(out)
    }

    fn mismatch(&self, name: &str, expected: String, found: String) -> ModelError {
        ModelError::Tensor {
            path: self.file.path().display().to_string(),
            name: name.to_string(),
            expected,
            found,
        }
    }

    /// A matrix `[rows, cols]` of any weight type.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight, ModelError> {
        let t = self.file.tensor(name)?;
        if t.info.shape != [rows, cols] {
            return Err(self.mismatch(
                name,
                format!("shape [{rows}, {cols}]"),
                format!("{:?}", t.info.shape),
            ));
        }
        Ok(Weight {
            map: self.map.clone(),
            off: t.info.offset,
            len: t.info.length,
            dtype: t.info.dtype,
            rows,
            cols,
        })
    }

    /// An f32 vector of `len` values.
    pub fn vector(&self, name: &str, len: usize) -> Result<Vector, ModelError> {
        let t = self.file.tensor(name)?;
        if t.info.shape != [len] || t.info.dtype != DType::F32 {
            return Err(self.mismatch(
                name,
                format!("f32 [{len}]"),
                format!("{} {:?}", t.info.dtype, t.info.shape),
            ));
        }
        Ok(Vector {
            map: self.map.clone(),
            off: t.info.offset,
            len: t.info.length,
        })
    }

    /// An f32 tensor of exactly `shape`, copied (small kernels the convolutions read as slices).
    pub fn f32_copy(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let t = self.file.tensor(name)?;
        match t.as_f32() {
            Some(v) if t.info.shape == shape => Ok(v.to_vec()),
            _ => Err(self.mismatch(
                name,
                format!("f32 {shape:?}"),
                format!("{} {:?}", t.info.dtype, t.info.shape),
            )),
        }
    }

    /// Whether the file has a tensor `name`.
    pub fn has(&self, name: &str) -> bool {
        self.file.has(name)
    }

    /// An optional vector: absent is fine, present must be right.
    pub fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vector>, ModelError> {
        if self.file.has(name) {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }
}
