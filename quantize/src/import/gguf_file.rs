//! A bounds-checked GGUF (v2/v3) reader: metadata key/values, tensor infos, and dequantization (`gguf_quants.rs`:
//! F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K). Every count and length is checked against the file size before
//! anything is allocated.

// Sizes here come from outside the process: no unchecked arithmetic or indexing.
#![warn(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::ImportError;
use memmap2::Mmap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GValue {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<GValue>),
}

impl GValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GValue::UInt(v) => Some(v),
            GValue::Int(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GValue::Float(v) => Some(v),
            GValue::UInt(v) => Some(v as f64),
            GValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[GValue]> {
        match self {
            GValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's info. `dims` are in GGUF order (fastest first).
#[derive(Debug, Clone)]
pub struct GTensor {
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
}

use super::gguf_quants::TYPES;

pub fn type_name(t: u32) -> String {
    TYPES
        .iter()
        .find(|x| x.0 == t)
        .map(|x| x.1.to_string())
        .unwrap_or_else(|| format!("ggml type {t}"))
}

/// An open GGUF file.
pub struct GgufFile {
    pub path: PathBuf,
    map: Mmap,
    pub kv: HashMap<String, GValue>,
    pub tensors: HashMap<String, GTensor>,
    data_start: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cur<'a> {
    fn err(&self, what: &str) -> ImportError {
        ImportError::parse(self.path, format!("GGUF: {what} at byte {}", self.pos))
    }
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], ImportError> {
        let end = (self.pos as u64)
            .checked_add(n)
            .and_then(|e| usize::try_from(e).ok());
        let s = end
            .and_then(|e| Some((e, self.b.get(self.pos..e)?)))
            .ok_or_else(|| self.err(&format!("{what} runs past the end of the file")))?;
        self.pos = s.0;
        Ok(s.1)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ImportError> {
        let s = self.take(N as u64, what)?;
        s.try_into()
            .map_err(|_| self.err(&format!("{what} runs past the end of the file")))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ImportError> {
        self.arr(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> Result<u64, ImportError> {
        self.arr(what).map(u64::from_le_bytes)
    }
    fn string(&mut self, what: &str) -> Result<String, ImportError> {
        let n = self.u64(what)?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| self.err(&format!("{what} is not UTF-8")))
    }
    fn value(&mut self, ty: u32, depth: u32) -> Result<GValue, ImportError> {
        Ok(match ty {
            0 => GValue::UInt(u8::from_le_bytes(self.arr("u8")?) as u64),
            1 => GValue::Int(i8::from_le_bytes(self.arr("i8")?) as i64),
            2 => GValue::UInt(u16::from_le_bytes(self.arr("u16")?) as u64),
            3 => GValue::Int(i16::from_le_bytes(self.arr("i16")?) as i64),
            4 => GValue::UInt(self.u32("u32")? as u64),
            5 => GValue::Int(self.u32("i32")? as i32 as i64),
            6 => GValue::Float(f32::from_bits(self.u32("f32")?) as f64),
            7 => GValue::Bool(self.arr::<1>("bool")? != [0]),
            8 => GValue::Str(self.string("string")?),
            9 => {
                if depth > 2 {
                    return Err(self.err("arrays nested too deep"));
                }
                let et = self.u32("array type")?;
                let n = self.u64("array length")?;
                // Every element takes at least one byte: a longer array cannot fit in the file.
                if n > self.b.len().saturating_sub(self.pos) as u64 {
                    return Err(self.err(&format!("array of {n} elements cannot fit in the file")));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(et, depth.saturating_add(1))?);
                }
                GValue::Array(v)
            }
            10 => GValue::UInt(self.u64("u64")?),
            11 => GValue::Int(self.u64("i64")? as i64),
            12 => GValue::Float(f64::from_bits(self.u64("f64")?)),
            t => return Err(self.err(&format!("unknown value type {t}"))),
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile, ImportError> {
        let f = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
        if f.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(ImportError::parse(path, "is a directory, not a GGUF file"));
        }
        // SAFETY: read-only map of an input file nothing in this process writes.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| ImportError::io(path, e))?;
        Self::parse(path, map)
    }

    /// Parses a copy of `bytes` as if it were the file at `path` (for tests and fuzzing).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<GgufFile, ImportError> {
        let map = flint_format::map_copy(bytes).map_err(|e| ImportError::io(path, e))?;
        Self::parse(path, map)
    }

    fn parse(path: &Path, map: Mmap) -> Result<GgufFile, ImportError> {
        let mut c = Cur {
            b: &map,
            pos: 0,
            path,
        };
        if c.take(4, "magic")? != b"GGUF" {
            return Err(ImportError::parse(
                path,
                "not a GGUF file (bad magic) and not a folder",
            ));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(ImportError::parse(
                path,
                format!("GGUF version {version} is not supported (2 or 3)"),
            ));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        let room = map.len() as u64;
        if n_tensors > room / 24 || n_kv > room / 12 {
            return Err(ImportError::parse(
                path,
                format!("GGUF: {n_tensors} tensors / {n_kv} keys cannot fit in the file"),
            ));
        }
        let mut kv = HashMap::new();
        for _ in 0..n_kv {
            let k = c.string("key")?;
            let t = c.u32("value type")?;
            let v = c.value(t, 0)?;
            if kv.contains_key(&k) {
                return Err(c.err(&format!("duplicate metadata key `{k}`")));
            }
            kv.insert(k, v);
        }
        let mut tensors = HashMap::new();
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let nd = c.u32("tensor dims")?;
            if nd == 0 || nd > 4 {
                return Err(ImportError::parse(
                    path,
                    format!("GGUF tensor `{name}`: {nd} dimensions"),
                ));
            }
            let dims = (0..nd)
                .map(|_| c.u64("tensor dim"))
                .collect::<Result<Vec<_>, _>>()?;
            let ggml_type = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            if tensors.contains_key(&name) {
                return Err(ImportError::parse(
                    path,
                    format!("GGUF: duplicate tensor name `{name}`"),
                ));
            }
            tensors.insert(
                name,
                GTensor {
                    dims,
                    ggml_type,
                    offset,
                },
            );
        }
        let align = kv
            .get("general.alignment")
            .and_then(GValue::as_u64)
            .unwrap_or(32);
        if align == 0 || !align.is_power_of_two() || align > 1 << 20 {
            return Err(ImportError::parse(
                path,
                format!("GGUF: general.alignment {align} is not a power of two"),
            ));
        }
        let data_start = (c.pos as u64)
            .div_ceil(align)
            .checked_mul(align)
            .ok_or_else(|| c.err("data start overflows"))?;
        let g = GgufFile {
            path: path.to_path_buf(),
            kv,
            tensors,
            data_start,
            map,
        };
        for name in g.tensors.keys() {
            g.byte_range(name)?;
        }
        Ok(g)
    }

    /// Shape in row-major order (slowest first), as transformers would show it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors
            .get(name)
            .map(|t| t.dims.iter().rev().map(|&d| d as usize).collect())
    }

    fn byte_range(&self, name: &str) -> Result<(std::ops::Range<usize>, u32, u64), ImportError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ImportError::MissingTensor {
                path: self.path.display().to_string(),
                name: name.into(),
            })?;
        let bad =
            |msg: String| ImportError::parse(&self.path, format!("GGUF tensor `{name}`: {msg}"));
        let (_, _, be, bb) =
            *TYPES
                .iter()
                .find(|x| x.0 == t.ggml_type)
                .ok_or_else(|| ImportError::DType {
                    path: self.path.display().to_string(),
                    name: name.into(),
                    dtype: type_name(t.ggml_type),
                })?;
        let n = t
            .dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("size overflows".into()))?;
        let row = t.dims.first().copied().unwrap_or(0);
        if row.checked_rem(be as u64) != Some(0) {
            return Err(bad(format!(
                "row length {row} is not a multiple of the block size {be}"
            )));
        }
        let len = (n.checked_div(be as u64).unwrap_or(0))
            .checked_mul(bb as u64)
            .ok_or_else(|| bad("size overflows".into()))?;
        let start = self
            .data_start
            .checked_add(t.offset)
            .ok_or_else(|| bad("offset overflows".into()))?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.map.len() as u64);
        let end =
            end.ok_or_else(|| bad(format!("data {start}+{len} runs past the end of the file")))?;
        Ok((start as usize..end as usize, t.ggml_type, n))
    }

    /// The tensor dequantized to f32.
    pub fn load_f32(&self, name: &str) -> Result<Vec<f32>, ImportError> {
        let (r, ty, n) = self.byte_range(name)?;
        let b = self.map.get(r).unwrap_or_default();
        let mut out = Vec::with_capacity(n as usize);
        super::gguf_quants::dequantize(ty, b, &mut out);
        Ok(out)
    }
}
