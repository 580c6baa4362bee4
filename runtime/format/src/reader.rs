//! Validating reader over a memory map. `open` checks the header, the index checksum, the metadata and every
//! directory entry (type, shape, byte size, alignment, bounds, overlap) before any view is handed out; views borrow
//! the map, so nothing is copied at load.

// Sizes here come from outside the process: no unchecked arithmetic or indexing.
#![warn(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::layout::{
    self, Header, HEADER_LEN, MAX_METADATA_LEN, MAX_NAME_LEN, MAX_NDIM, MAX_TENSORS, TENSOR_ALIGN,
};
use crate::{DType, FormatError};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One directory entry, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Absolute byte offset in the file (a multiple of 64).
    pub offset: usize,
    pub length: usize,
    pub crc: u32,
    /// Paging group (one expert), 0 for none.
    pub group: u32,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A zero-copy view of one tensor's bytes inside the map.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The data as `f32` values; errors unless the tensor is f32.
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        (self.info.dtype == DType::F32).then(|| bytemuck::cast_slice(self.bytes))
    }
}

/// An open, validated `.flint` file. Cheap to clone (the map is shared).
#[derive(Clone)]
pub struct FlintFile {
    path: PathBuf,
    map: Arc<Mmap>,
    header: Header,
    metadata: Arc<serde_json::Value>,
    tensors: Arc<Vec<TensorInfo>>,
    by_name: Arc<HashMap<String, usize>>,
}

impl std::fmt::Debug for FlintFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlintFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

#[cfg(target_endian = "big")]
compile_error!(
    "the .flint reader hands out little-endian views in place and needs a little-endian host"
);

impl FlintFile {
    /// Maps and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<FlintFile, FormatError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| FormatError::io(&path, e))?;
        // Mapping a directory fails with ENODEV ("No such device"), which says nothing useful.
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            let e = std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, not a .flint file",
            );
            return Err(FormatError::io(&path, e));
        }
        // SAFETY: the map is read-only. Flint never writes a model in place (the writer renames a new file over the
        // old one), so the mapped bytes do not change under us unless another process truncates the file, which
        // the OS reports as SIGBUS; that is the documented contract of every mmap-based loader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| FormatError::io(&path, e))?;
        Self::from_map(path, map)
    }

    /// Validates a copy of `bytes` as if it were the file at `path` (an anonymous map: for tests and fuzzing,
    /// which have bytes rather than a file).
    pub fn from_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<FlintFile, FormatError> {
        let path = path.as_ref().to_path_buf();
        let map = map_copy(bytes).map_err(|e| FormatError::io(&path, e))?;
        Self::from_map(path, map)
    }

    // Indexing here is into the header after the length check, and into the sections `section` checked against
    // the file's length: it cannot go out of bounds.
    #[allow(clippy::indexing_slicing)]
    fn from_map(path: PathBuf, map: Mmap) -> Result<FlintFile, FormatError> {
        let bytes: &[u8] = &map;
        let hdr_err = |field: &'static str, msg: String| FormatError::Header {
            path: path.clone(),
            field,
            msg,
        };
        if bytes.len() < HEADER_LEN {
            return Err(hdr_err(
                "length",
                format!(
                    "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
                    bytes.len()
                ),
            ));
        }
        if bytes[..8] != layout::MAGIC {
            return Err(FormatError::BadMagic { path });
        }
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&bytes[..HEADER_LEN]);
        let header = Header::decode(&hb);
        if header.version != layout::VERSION {
            return Err(FormatError::Version {
                path,
                found: header.version,
                supported: layout::VERSION,
            });
        }
        if hb[76..80] != [0; 4] || header.flags != 0 {
            return Err(hdr_err("flags", "reserved header bits are set".into()));
        }
        let file_len = bytes.len() as u64;
        let section = |field: &'static str,
                       off: u64,
                       len: u64|
         -> Result<std::ops::Range<usize>, FormatError> {
            let end = off
                .checked_add(len)
                .filter(|&e| e <= file_len)
                .ok_or_else(|| {
                    hdr_err(
                        field,
                        format!(
                            "section {off}+{len} runs past the end of the {file_len}-byte file"
                        ),
                    )
                })?;
            if off < HEADER_LEN as u64 {
                return Err(hdr_err(
                    field,
                    format!("section offset {off} overlaps the header"),
                ));
            }
            Ok(off as usize..end as usize)
        };
        if header.meta_len > MAX_METADATA_LEN {
            return Err(hdr_err(
                "meta_len",
                format!(
                    "{} bytes exceeds the cap of {MAX_METADATA_LEN}",
                    header.meta_len
                ),
            ));
        }
        if header.tensor_count > MAX_TENSORS {
            return Err(hdr_err(
                "tensor_count",
                format!("{} exceeds the cap of {MAX_TENSORS}", header.tensor_count),
            ));
        }
        let data = section("data_off", header.data_off, header.data_len)?;
        let meta = section("meta_off", header.meta_off, header.meta_len)?;
        let dir = section("dir_off", header.dir_off, header.dir_len)?;
        let computed = layout::index_crc(&hb, &bytes[meta.clone()], &bytes[dir.clone()]);
        if computed != header.index_crc {
            return Err(FormatError::IndexChecksum {
                path,
                stored: header.index_crc,
                computed,
            });
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&bytes[meta]).map_err(|e| FormatError::Metadata {
                path: path.clone(),
                msg: format!("not valid JSON: {e}"),
            })?;
        if !metadata.is_object() {
            return Err(FormatError::Metadata {
                path,
                msg: "must be a JSON object".into(),
            });
        }
        let tensors = parse_directory(&path, &bytes[dir], header.tensor_count as usize, data)?;
        let by_name = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(FlintFile {
            path,
            header,
            metadata: Arc::new(metadata),
            tensors: Arc::new(tensors),
            by_name: Arc::new(by_name),
            map: Arc::new(map),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The metadata object.
    pub fn metadata(&self) -> &serde_json::Value {
        &self.metadata
    }

    /// A metadata value by key.
    pub fn meta(&self, key: &str) -> Option<&serde_json::Value> {
        self.metadata.get(key)
    }

    /// All tensors in directory order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Size of the mapped file in bytes.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// The mapped bytes of the whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A shared handle to the map, for structures that outlive a borrow of `self`.
    pub fn map(&self) -> Arc<Mmap> {
        Arc::clone(&self.map)
    }

    /// The view of a tensor, or an error naming it.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, FormatError> {
        let info = self
            .by_name
            .get(name)
            .and_then(|&i| self.tensors.get(i))
            .ok_or_else(|| FormatError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        Ok(TensorView {
            info,
            bytes: self.data(info),
        })
    }

    /// A tensor's bytes. Its range was checked against the data section at open, so `get` always succeeds.
    fn data(&self, t: &TensorInfo) -> &[u8] {
        let end = t.offset.saturating_add(t.length);
        self.map.get(t.offset..end).unwrap_or_default()
    }

    /// Whether a tensor exists.
    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Checks every tensor's data checksum. Returns the first mismatch.
    pub fn verify(&self) -> Result<(), FormatError> {
        for t in self.tensors.iter() {
            let computed = crc32fast::hash(self.data(t));
            if computed != t.crc {
                return Err(FormatError::DataChecksum {
                    path: self.path.clone(),
                    name: t.name.clone(),
                    stored: t.crc,
                    computed,
                });
            }
        }
        Ok(())
    }
}

/// A read-only anonymous map holding a copy of `bytes` (at least one byte long): what a parser that takes a map
/// can be given in tests and fuzzing instead of a file.
pub fn map_copy(bytes: &[u8]) -> std::io::Result<Mmap> {
    let mut anon = memmap2::MmapMut::map_anon(bytes.len().max(1))?;
    if let Some(d) = anon.get_mut(..bytes.len()) {
        d.copy_from_slice(bytes);
    }
    anon.make_read_only()
}

/// A bounds-checked little-endian cursor over the directory bytes.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.arr().map(u8::from_le_bytes)
    }
    fn u16(&mut self) -> Option<u16> {
        self.arr().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.arr().map(u64::from_le_bytes)
    }
}

fn parse_directory(
    path: &Path,
    dir: &[u8],
    count: usize,
    data: std::ops::Range<usize>,
) -> Result<Vec<TensorInfo>, FormatError> {
    let mut cur = Cursor { b: dir, pos: 0 };
    let mut out: Vec<TensorInfo> = Vec::with_capacity(count.min(4096));
    let mut seen = std::collections::HashSet::new();
    for index in 0..count {
        let mut name: Option<String> = None;
        let err =
            |name: &Option<String>, field: &'static str, msg: String| FormatError::Directory {
                path: path.to_path_buf(),
                index,
                name: name.clone(),
                field,
                msg,
            };
        let short = |name: &Option<String>, field| {
            err(name, field, "directory ends inside this entry".into())
        };
        let name_len = cur.u16().ok_or_else(|| short(&name, "name_len"))? as usize;
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(err(
                &name,
                "name_len",
                format!("{name_len} is outside 1..={MAX_NAME_LEN}"),
            ));
        }
        let raw = cur.take(name_len).ok_or_else(|| short(&name, "name"))?;
        let s = std::str::from_utf8(raw).map_err(|_| err(&name, "name", "not UTF-8".into()))?;
        name = Some(s.to_string());
        if !seen.insert(s.to_string()) {
            return Err(err(&name, "name", "duplicate name".into()));
        }
        let type_id = cur.u8().ok_or_else(|| short(&name, "dtype"))?;
        let dtype = DType::from_id(type_id)
            .ok_or_else(|| err(&name, "dtype", format!("unknown type id {type_id}")))?;
        let ndim = cur.u8().ok_or_else(|| short(&name, "ndim"))? as usize;
        if ndim > MAX_NDIM {
            return Err(err(
                &name,
                "ndim",
                format!("{ndim} dimensions, at most {MAX_NDIM}"),
            ));
        }
        let mut shape64 = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            shape64.push(cur.u64().ok_or_else(|| short(&name, "shape"))?);
        }
        let offset = cur.u64().ok_or_else(|| short(&name, "offset"))?;
        let length = cur.u64().ok_or_else(|| short(&name, "length"))?;
        let crc = cur.u32().ok_or_else(|| short(&name, "checksum"))?;
        let group = cur.u32().ok_or_else(|| short(&name, "group"))?;
        let want = dtype.byte_size(&shape64).ok_or_else(|| {
            err(
                &name,
                "shape",
                format!("{shape64:?} does not fit type {dtype} or overflows"),
            )
        })?;
        if want != length {
            return Err(err(
                &name,
                "length",
                format!("{length} bytes, but {dtype} {shape64:?} needs {want}"),
            ));
        }
        if offset % TENSOR_ALIGN != 0 {
            return Err(err(
                &name,
                "offset",
                format!("{offset} is not a multiple of {TENSOR_ALIGN}"),
            ));
        }
        let end = offset.checked_add(length);
        if offset < data.start as u64 || end.is_none_or(|e| e > data.end as u64) {
            return Err(err(
                &name,
                "offset",
                format!(
                    "{offset}+{length} lies outside the data section {}..{}",
                    data.start, data.end
                ),
            ));
        }
        out.push(TensorInfo {
            name: s.to_string(),
            dtype,
            shape: shape64.iter().map(|&d| d as usize).collect(),
            offset: offset as usize,
            length: length as usize,
            crc,
            group,
        });
    }
    if cur.pos != dir.len() {
        return Err(FormatError::Header {
            path: path.to_path_buf(),
            field: "dir_len",
            msg: format!(
                "{} bytes of directory left after {count} entries",
                dir.len().saturating_sub(cur.pos)
            ),
        });
    }
    // Tensors must not overlap: a crafted directory could otherwise alias one tensor's bytes as another's.
    let mut spans: Vec<(usize, usize, usize)> = out
        .iter()
        .enumerate()
        .map(|(i, t)| (t.offset, t.length, i))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        let &[a, b] = w else { continue };
        // Each entry's offset + length was checked against the data section, so the sum does not overflow.
        if a.0.saturating_add(a.1) > b.0 && a.1 > 0 && b.1 > 0 {
            let name = |i: usize| out.get(i).map(|t| t.name.clone());
            return Err(FormatError::Directory {
                path: path.to_path_buf(),
                index: b.2,
                name: name(b.2),
                field: "offset",
                msg: format!("overlaps tensor `{}`", name(a.2).unwrap_or_default()),
            });
        }
    }
    Ok(out)
}
