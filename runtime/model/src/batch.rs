//! What one forward pass runs: a batch of rows, each naming its sequence, its position and its input.
//!
//! Rows of several sequences may be mixed in one batch (prefill of one, decode steps of others); a sequence's rows
//! enter its KV cache in the order they appear. The position is the row's own (what RoPE sees), independent of its
//! slot in the cache (what masks see): an image's M-RoPE positions repeat and jump, a text row's do not.

use crate::kv::SeqId;

/// A row's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// One index, for 1-D RoPE (and ignored by NoPE layers).
    Text(u32),
    /// Temporal, height and width indices, for M-RoPE (Qwen2-VL, Qwen-Omni).
    Mrope([u32; 3]),
}

/// A row's input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input<'a> {
    /// A token id, looked up in the embedding table.
    Token(u32),
    /// An embedding produced by an encoder (`hidden_size` values), used as is.
    Embed(&'a [f32]),
}

/// One row of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    pub seq: SeqId,
    pub pos: Pos,
    pub input: Input<'a>,
    /// Whether the forward pass returns this row's logits.
    pub logits: bool,
}

/// Rows for one forward pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch<'a> {
    pub rows: Vec<Row<'a>>,
}

impl<'a> Batch<'a> {
    pub fn new() -> Batch<'a> {
        Batch { rows: Vec::new() }
    }

    /// Appends `tokens` of `seq` at text positions `start ..`; `logits` says which rows return logits.
    pub fn push_text(&mut self, seq: SeqId, start: usize, tokens: &[u32], logits: Logits) {
        let n = tokens.len();
        for (t, &id) in tokens.iter().enumerate() {
            self.rows.push(Row {
                seq,
                pos: Pos::Text((start + t).min(u32::MAX as usize) as u32),
                input: Input::Token(id),
                logits: logits.wants(t, n),
            });
        }
    }

    /// Appends `[n, hidden]` embedding rows of `seq` at text positions `start ..`.
    pub fn push_embeds(
        &mut self,
        seq: SeqId,
        start: usize,
        embeds: &'a [f32],
        hidden: usize,
        logits: Logits,
    ) {
        let n = embeds.len() / hidden.max(1);
        for (t, e) in embeds.chunks_exact(hidden.max(1)).enumerate() {
            self.rows.push(Row {
                seq,
                pos: Pos::Text((start + t).min(u32::MAX as usize) as u32),
                input: Input::Embed(e),
                logits: logits.wants(t, n),
            });
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Which rows of a pushed run return logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    All,
    Last,
    None,
}

impl Logits {
    /// Whether row `t` of a run of `n` returns logits.
    fn wants(self, t: usize, n: usize) -> bool {
        match self {
            Logits::All => true,
            Logits::Last => t + 1 == n,
            Logits::None => false,
        }
    }
}

/// Lets a model add per-layer inputs: called after each decoder layer with the batch and its hidden states
/// `[rows, hidden]` (Qwen3-VL's deepstack adds vision features into the first layers at the image rows).
pub trait LayerHook {
    fn after_layer(&mut self, layer: usize, batch: &Batch<'_>, hidden: &mut [f32]);
}
