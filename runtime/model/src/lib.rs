//! Flint's model layer: the decoder (dense and Mixture-of-Experts), the KV cache, sampling, the tokenizer and the
//! chat template, over a memory-mapped `.flint` file.

pub mod agents;
pub mod audio;
pub mod batch;
pub mod config;
mod decoder;
pub mod engine;
mod error;
pub mod generate;
pub mod kv;
pub mod moe;
pub mod multimodal;
pub mod ops;
pub mod paging;
pub mod sampler;
pub mod text;
pub mod vision;
mod weights;

pub use audio::{AudioStage, AudioStream, AudioTower};
pub use batch::{Batch, Input, LayerHook, Logits, Pos, Row};
pub use config::vision::VisionConfig;
pub use config::{
    AttnKind, AudioConfig, FfnAct, ModelConfig, MoeConfig, MropeConfig, QkNorm, Router,
    SandwichConfig, SandwichKind, VideoSeconds,
};
pub use decoder::{KvCache, Model, Trace};
pub use engine::{Engine, ReqId, Session, Step};
pub use error::ModelError;
pub use generate::{generate, stop_ids, GenStats, TextStream};
pub use kv::{KvDtype, KvOptions, KvStore, SeqId};
pub use paging::{PagingOptions, PagingStats, Policy};
pub use sampler::{Sampler, SamplerConfig};
pub use text::{ChatOptions, Message, Text};
pub use weights::{Vector, Weight};
