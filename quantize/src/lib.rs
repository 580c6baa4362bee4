//! flint-quantize: import checkpoints (Hugging Face safetensors folders, GGUF files) into `.flint` files.

mod error;
pub mod import;
pub mod quant;

pub use error::ImportError;
