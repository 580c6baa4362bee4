//! What a model's answer text holds beyond its words: boxes and points ([`boxes`]), found while the text streams,
//! in the formats of the model families that point (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, PaliGemma, Florence-2), in
//! frame coordinates.

pub mod boxes;

pub use boxes::{BoxParser, Format, Frame, Overlay, Shape};
