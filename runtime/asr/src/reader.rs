//! A strict reader for CTranslate2's `model.bin` (binary versions 4 to 6, what `ModelSpec._serialize` writes
//! and `models::Model::load` reads), memory-mapped.
//!
//! Layout, all integers little-endian:
//! - `u32` binary version; a string spec name (e.g. `WhisperSpec`); `u32` spec revision;
//! - `u32` variable count, then per variable: a string name, `u8` rank, `rank` × `u32` dimensions, `u8` dtype id
//!   (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), `u32` payload bytes, then the payload (row-major, unaligned);
//! - `u32` alias count, then per alias two strings: the alias and the variable it stands for
//!   (e.g. `decoder/projection/weight` → `decoder/embeddings/weight` for tied embeddings).
//!
//! A string is a `u16` length counting a trailing NUL, then that many bytes.
//!
//! Every header field is checked against the bytes that are left before it is used: the payload size must equal
//! `product(shape) × dtype size` (computed with overflow checks) and fit in the file, so a corrupt header can
//! neither allocate nor index past the end. Nothing is allocated from a count until the bytes behind it exist.
//! Trailing bytes after the aliases are an error. Payloads are copied out on request ([`ModelBin::floats`],
//! [`ModelBin::matrix`]); the map can be dropped once the model is built.
//!
//! The file must not change while it is mapped (a file truncated under the map faults the process, as with any
//! memory-mapped reader); [`crate::Whisper::open`] drops the map before it returns.

use crate::error::AsrError;
use half::{bf16, f16};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Binary versions this reader understands (4 added the dtype byte; 6 is the current one).
pub const BINARY_VERSIONS: std::ops::RangeInclusive<u32> = 4..=6;
/// Dimensions a variable may have; CTranslate2 models use at most 4.
pub const MAX_RANK: usize = 8;

/// Element type of a variable, by CTranslate2's type id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable's header: shape, type and where its payload is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarInfo {
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// Byte offset of the payload.
    pub offset: usize,
    /// Payload bytes (`product(shape) * dtype.size()`).
    pub bytes: usize,
}

impl VarInfo {
    /// Number of elements.
    pub fn elems(&self) -> usize {
        self.bytes / self.dtype.size()
    }
}

/// A float matrix copied out of the file in its stored type (no rounding), for the matmul kernels.
#[derive(Clone, Debug)]
pub enum Matrix {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

impl Matrix {
    /// The weight as the kernels take it.
    pub fn view(&self) -> flint_kernels::WeightRef<'_> {
        match self {
            Matrix::F32(v) => flint_kernels::WeightRef::F32(v),
            Matrix::F16(v) => flint_kernels::WeightRef::F16(v),
            Matrix::BF16(v) => flint_kernels::WeightRef::BF16(v),
        }
    }
}

/// A parsed, memory-mapped `model.bin`.
#[derive(Debug)]
pub struct ModelBin {
    path: PathBuf,
    map: Mmap,
    /// Binary version of the file.
    pub version: u32,
    /// Spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    vars: HashMap<String, VarInfo>,
}

/// A bounds-checked cursor over the file's bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, field: &str, why: impl Into<String>) -> AsrError {
        AsrError::Format {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            offset: self.pos as u64,
            why: why.into(),
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], AsrError> {
        if n > self.left() {
            return Err(self.err(
                field,
                format!(
                    "needs {n} bytes but only {} are left (truncated file?)",
                    self.left()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, field: &str) -> Result<u8, AsrError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &str) -> Result<u16, AsrError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &str) -> Result<u32, AsrError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, field: &str) -> Result<String, AsrError> {
        let at = self.pos;
        let n = self.u16(field)? as usize;
        if n == 0 {
            self.pos = at;
            return Err(self.err(field, "string length 0 (it counts the trailing NUL)"));
        }
        let b = self.take(n, field)?;
        let (text, nul) = b.split_at(n - 1);
        if nul != [0] || text.contains(&0) {
            self.pos = at;
            return Err(self.err(field, "string is not NUL-terminated"));
        }
        String::from_utf8(text.to_vec()).map_err(|_| {
            self.pos = at;
            self.err(field, "string is not UTF-8")
        })
    }
}

impl ModelBin {
    /// Maps and parses `path`. Any structural problem is an [`AsrError::Format`] naming the field and offset.
    pub fn open(path: &Path) -> Result<ModelBin, AsrError> {
        let io = |source| AsrError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this value; the file is not modified by this process. A file
        // changed by another process while mapped is outside what a reader can defend against (module docs).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (version, spec, revision, vars) = parse(path, &map)?;
        Ok(ModelBin {
            path: path.to_path_buf(),
            map,
            version,
            spec,
            revision,
            vars,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Variable and alias names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether a variable (or alias) of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// An error about variable `name`.
    pub fn var_err(&self, name: &str, why: impl Into<String>) -> AsrError {
        AsrError::Variable {
            path: self.path.clone(),
            name: name.to_string(),
            why: why.into(),
        }
    }

    /// The header of variable `name` (aliases resolved); an error if it is missing.
    pub fn info(&self, name: &str) -> Result<&VarInfo, AsrError> {
        self.vars
            .get(name)
            .ok_or_else(|| self.var_err(name, "missing from the file"))
    }

    fn with_shape(&self, name: &str, shape: &[usize]) -> Result<&VarInfo, AsrError> {
        let v = self.info(name)?;
        if v.shape != shape {
            return Err(self.var_err(name, format!("shape {:?}, expected {shape:?}", v.shape)));
        }
        Ok(v)
    }

    fn payload(&self, v: &VarInfo) -> &[u8] {
        &self.map[v.offset..v.offset + v.bytes]
    }

    /// A float variable of exactly `shape`, converted to f32 (f16 and bf16 widen exactly).
    pub fn floats(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, AsrError> {
        let v = self.with_shape(name, shape)?;
        let b = self.payload(v);
        Ok(match v.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            d => return Err(self.var_err(name, format!("dtype {d:?}, expected a float type"))),
        })
    }

    /// A float matrix `[rows, cols]` in its stored type. Quantized (int8/int16) weights are refused.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, AsrError> {
        let v = self.with_shape(name, &[rows, cols])?;
        let b = self.payload(v);
        Ok(match v.dtype {
            DType::F32 => Matrix::F32(self.floats(name, &[rows, cols])?),
            DType::F16 => Matrix::F16(
                b.chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            DType::BF16 => Matrix::BF16(
                b.chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            d => {
                return Err(self.var_err(
                    name,
                    format!(
                        "dtype {d:?}: quantized weights are not supported (convert with float16)"
                    ),
                ))
            }
        })
    }

    /// An integer scalar (rank 0, or a single element), any integer dtype.
    pub fn int(&self, name: &str) -> Result<i64, AsrError> {
        let v = self.info(name)?;
        if v.elems() != 1 {
            return Err(self.var_err(name, format!("shape {:?}, expected a scalar", v.shape)));
        }
        let b = self.payload(v);
        Ok(match v.dtype {
            DType::I8 => i64::from(b[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            d => return Err(self.var_err(name, format!("dtype {d:?}, expected an integer"))),
        })
    }
}

type Parsed = (u32, String, u32, HashMap<String, VarInfo>);

fn parse(path: &Path, buf: &[u8]) -> Result<Parsed, AsrError> {
    let mut c = Cursor { buf, pos: 0, path };
    let at = c.pos;
    let version = c.u32("binary version")?;
    if !BINARY_VERSIONS.contains(&version) {
        c.pos = at;
        return Err(c.err(
            "binary version",
            format!("version {version}; versions {BINARY_VERSIONS:?} are supported"),
        ));
    }
    let spec = c.string("spec name")?;
    let revision = c.u32("spec revision")?;
    let count = c.u32("variable count")? as usize;
    // The smallest variable header: name (2 + 1), rank, dtype, size: 9 bytes.
    if count > c.left() / 9 {
        return Err(c.err(
            "variable count",
            format!(
                "{count} variables cannot fit in the {} bytes left",
                c.left()
            ),
        ));
    }
    let mut vars = HashMap::with_capacity(count);
    for i in 0..count {
        let name = c.string(&format!("name of variable {i}"))?;
        let field = |what: &str| format!("{what} of variable `{name}`");
        let rank_at = c.pos;
        let rank = c.u8(&field("rank"))? as usize;
        if rank > MAX_RANK {
            c.pos = rank_at;
            return Err(c.err(&field("rank"), format!("rank {rank} is over {MAX_RANK}")));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(c.u32(&field("dimension"))? as usize);
        }
        let dt_at = c.pos;
        let id = c.u8(&field("dtype"))?;
        let dtype = DType::from_id(id).ok_or_else(|| {
            c.pos = dt_at;
            c.err(&field("dtype"), format!("unknown dtype id {id}"))
        })?;
        let size_at = c.pos;
        let bytes = c.u32(&field("byte size"))? as usize;
        let expect = shape
            .iter()
            .try_fold(dtype.size(), |a, &d| a.checked_mul(d));
        if expect != Some(bytes) {
            c.pos = size_at;
            let want = expect.map_or("more than usize holds".to_string(), |b| {
                format!("{b} bytes")
            });
            return Err(c.err(
                &field("byte size"),
                format!("{bytes} bytes, but shape {shape:?} of {dtype:?} needs {want}"),
            ));
        }
        let offset = c.pos;
        c.take(bytes, &field("data"))?;
        let info = VarInfo {
            shape,
            dtype,
            offset,
            bytes,
        };
        if vars.insert(name.clone(), info).is_some() {
            return Err(c.err(&field("name"), "a second variable with this name"));
        }
    }
    let n_alias = c.u32("alias count")? as usize;
    if n_alias > c.left() / 6 {
        return Err(c.err(
            "alias count",
            format!(
                "{n_alias} aliases cannot fit in the {} bytes left",
                c.left()
            ),
        ));
    }
    for i in 0..n_alias {
        let alias = c.string(&format!("alias {i}"))?;
        let target = c.string(&format!("target of alias `{alias}`"))?;
        let info = vars.get(&target).cloned().ok_or_else(|| {
            c.err(
                &format!("alias `{alias}`"),
                format!("stands for `{target}`, which is not in the file"),
            )
        })?;
        if vars.insert(alias.clone(), info).is_some() {
            return Err(c.err(
                &format!("alias `{alias}`"),
                "a variable or alias of this name already exists",
            ));
        }
    }
    if c.left() != 0 {
        return Err(c.err("end of file", format!("{} trailing bytes", c.left())));
    }
    Ok((version, spec, revision, vars))
}
