//! Streaming, atomic writer: tensors go to a temp file beside the target as they are added; `finish` appends the
//! metadata and the directory, writes the header, syncs and renames. A writer dropped before `finish` removes its
//! temp file, so a failed run never leaves a half-written model under the target name.

use crate::layout::{self, align_up, Header, HEADER_LEN, PAGE_ALIGN, TENSOR_ALIGN};
use crate::{DType, FormatError};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

struct Entry {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    offset: u64,
    length: u64,
    crc: u32,
    group: u32,
}

/// Writes one `.flint` file. See the module docs.
pub struct Writer {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    pos: u64,
    entries: Vec<Entry>,
    names: HashSet<String>,
    metadata: serde_json::Value,
    group: u32,
    in_group: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("target", &self.target)
            .field("tensors", &self.entries.len())
            .finish()
    }
}

impl Writer {
    /// Starts a file that will appear at `target` when [`Writer::finish`] succeeds.
    pub fn create(target: impl AsRef<Path>) -> Result<Writer, FormatError> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| FormatError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // The header is written last; reserve its page now so data starts page aligned.
        out.write_all(&[0u8; PAGE_ALIGN as usize])
            .map_err(|e| FormatError::io(&tmp, e))?;
        Ok(Writer {
            target,
            tmp,
            out: Some(out),
            pos: PAGE_ALIGN,
            entries: Vec::new(),
            names: HashSet::new(),
            metadata: serde_json::Value::Object(Default::default()),
            group: 0,
            in_group: false,
        })
    }

    /// Sets the metadata object (replacing any earlier one). Must be a JSON object.
    pub fn set_metadata(&mut self, metadata: serde_json::Value) {
        self.metadata = metadata;
    }

    /// Mutable access to the metadata object, for adding keys.
    pub fn metadata_mut(&mut self) -> &mut serde_json::Value {
        &mut self.metadata
    }

    /// Starts a paging group (one expert): the next tensor starts on a page boundary and the group's tensors are
    /// contiguous until the next `begin_group`/`end_group`.
    pub fn begin_group(&mut self) -> Result<(), FormatError> {
        self.group += 1;
        self.in_group = true;
        self.pad_to(PAGE_ALIGN)
    }

    /// Ends the current group; later tensors belong to no group.
    pub fn end_group(&mut self) {
        self.in_group = false;
    }

    /// Appends a tensor. `data` must be exactly the byte size of `dtype` and `shape`.
    pub fn add(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        data: &[u8],
    ) -> Result<(), FormatError> {
        let err = |msg: String| FormatError::Write {
            name: name.to_string(),
            msg,
        };
        if name.is_empty() || name.len() > layout::MAX_NAME_LEN {
            return Err(err(format!(
                "name length {} is outside 1..={}",
                name.len(),
                layout::MAX_NAME_LEN
            )));
        }
        if shape.len() > layout::MAX_NDIM {
            return Err(err(format!(
                "{} dimensions, at most {}",
                shape.len(),
                layout::MAX_NDIM
            )));
        }
        if !self.names.insert(name.to_string()) {
            return Err(err("duplicate tensor name".into()));
        }
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let want = dtype.byte_size(&shape).ok_or_else(|| {
            err(format!(
                "shape {shape:?} does not fit type {dtype} (block of {})",
                dtype.block_elems()
            ))
        })?;
        if want != data.len() as u64 {
            return Err(err(format!(
                "{} bytes given, {dtype} {shape:?} needs {want}",
                data.len()
            )));
        }
        self.pad_to(TENSOR_ALIGN)?;
        let offset = self.pos;
        self.write(data)?;
        let group = if self.in_group { self.group } else { 0 };
        self.entries.push(Entry {
            name: name.to_string(),
            dtype,
            shape,
            offset,
            length: data.len() as u64,
            crc: crc32fast::hash(data),
            group,
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        let out = self.out.as_mut().expect("writer used after finish");
        out.write_all(bytes)
            .map_err(|e| FormatError::io(&self.tmp, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> Result<(), FormatError> {
        let pad = (align_up(self.pos, align) - self.pos) as usize;
        const ZEROS: [u8; PAGE_ALIGN as usize] = [0; PAGE_ALIGN as usize];
        self.write(&ZEROS[..pad])
    }

    /// Writes the index and header, syncs, and renames the temp file onto the target.
    pub fn finish(mut self) -> Result<PathBuf, FormatError> {
        let result = self.finish_inner();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    fn finish_inner(&mut self) -> Result<PathBuf, FormatError> {
        let data_len = self.pos - PAGE_ALIGN;
        let meta = serde_json::to_vec(&self.metadata).map_err(|e| FormatError::Write {
            name: "<metadata>".into(),
            msg: e.to_string(),
        })?;
        let mut dir = Vec::with_capacity(self.entries.len() * 64);
        for e in &self.entries {
            dir.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            dir.extend_from_slice(e.name.as_bytes());
            dir.push(e.dtype.id());
            dir.push(e.shape.len() as u8);
            for d in &e.shape {
                dir.extend_from_slice(&d.to_le_bytes());
            }
            dir.extend_from_slice(&e.offset.to_le_bytes());
            dir.extend_from_slice(&e.length.to_le_bytes());
            dir.extend_from_slice(&e.crc.to_le_bytes());
            dir.extend_from_slice(&e.group.to_le_bytes());
        }
        let meta_off = self.pos;
        self.write(&meta)?;
        let dir_off = self.pos;
        self.write(&dir)?;
        let mut header = Header {
            version: layout::VERSION,
            flags: 0,
            data_off: PAGE_ALIGN,
            data_len,
            meta_off,
            meta_len: meta.len() as u64,
            dir_off,
            dir_len: dir.len() as u64,
            tensor_count: self.entries.len() as u64,
            index_crc: 0,
        };
        header.index_crc = layout::index_crc(&header.encode(), &meta, &dir);
        let tmp = self.tmp.clone();
        let io = |e| FormatError::io(&tmp, e);
        let out = self.out.take().expect("writer used after finish");
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header.encode()[..HEADER_LEN]).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(|e| FormatError::io(&self.target, e))?;
        Ok(self.target.clone())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
