//! The `.flint` container (spec: docs/FORMAT.md).
//!
//! One little-endian file: a fixed header, the tensor data (each tensor 64-byte aligned, each paging group such as
//! one expert page aligned and contiguous), then JSON metadata and a binary tensor directory. The header, metadata and
//! directory are covered by one CRC-32; each tensor's data has its own CRC-32, checked by [`FlintFile::verify`].

mod dtype;
mod error;
pub mod layout;
mod reader;
mod writer;

pub use dtype::DType;
pub use error::FormatError;
pub use reader::{map_copy, FlintFile, TensorInfo, TensorView};
pub use writer::Writer;
