//! The paged KV cache: fixed-size blocks of key/value slots, a block table per sequence, reference-counted blocks
//! so that sequences forked from one prompt share its prefix without copying, and eviction of the blocks that fall
//! out of a sliding window.
//!
//! Layers are grouped by how much history they keep: all full-attention layers form one group, the layers of each
//! sliding-window size another. A block of a group holds [`KvOptions::block`] consecutive slots of keys and values
//! for every layer of the group, so one block table per group and sequence serves all its layers. A sliding group
//! frees a sequence's blocks once every slot in them is older than the window (Muse Spark's sliding layers never
//! hold more than `window + block` slots, whatever the context).
//!
//! A slot is the order in which a row entered its sequence; masks work on slots, RoPE on the row's own position.
//! Writing into a block that another sequence shares copies it first (copy on write), so forks never see each
//! other's tokens.
//!
//! Rows are stored as f32, f16 (the default) or q8 ([`KvDtype`]); a q8 group keeps its scales beside the values,
//! `kv_dim.div_ceil(32)` per row, laid out like the rows so a block's scales move with it.

use crate::ModelError;
use flint_kernels::{KvChunk, KvRows};
use half::f16;

/// Element type of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvDtype {
    /// Exact; what conformance tests use.
    F32,
    /// Half the memory and bandwidth; the default.
    #[default]
    F16,
    /// 8-bit values with an f16 scale per 32 (`flint_kernels::KvRows::Q8`): about a quarter of f32.
    Q8,
}

impl std::str::FromStr for KvDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(KvDtype::F32),
            "f16" => Ok(KvDtype::F16),
            "q8" => Ok(KvDtype::Q8),
            _ => Err(format!("unknown KV type `{s}` (expected f32, f16 or q8)")),
        }
    }
}

/// How a cache is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvOptions {
    pub dtype: KvDtype,
    /// Slots per block.
    pub block: usize,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            dtype: KvDtype::F16,
            block: 16,
        }
    }
}

impl KvOptions {
    pub fn with_dtype(dtype: KvDtype) -> KvOptions {
        KvOptions {
            dtype,
            ..KvOptions::default()
        }
    }
}

/// A sequence in a [`KvStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub u32);

#[derive(Debug)]
enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Values, and a scale per block of each row (`row_blocks` per row).
    Q8 {
        q: Vec<i8>,
        d: Vec<f16>,
    },
}

/// The blocks of one layer group.
#[derive(Debug)]
struct Group {
    /// Sliding window of these layers (`None`: full attention, nothing is evicted).
    window: Option<usize>,
    /// Layers in the group.
    layers: usize,
    data: Data,
    refs: Vec<u32>,
    free: Vec<u32>,
}

/// One sequence's blocks in one group: `blocks[i]` holds slots `first + i * block ..`.
#[derive(Debug, Clone, Default)]
struct Table {
    blocks: Vec<u32>,
    first: usize,
}

#[derive(Debug, Clone)]
struct Seq {
    len: usize,
    tables: Vec<Table>,
}

/// Keys and values of many sequences, paged (see the module doc).
#[derive(Debug)]
pub struct KvStore {
    kv_dim: usize,
    block: usize,
    groups: Vec<Group>,
    /// Per layer: its group and its index within the group.
    layer: Vec<(usize, usize)>,
    seqs: Vec<Option<Seq>>,
}

impl KvStore {
    /// A cache for layers with the given sliding windows (`None`: full attention), each keeping rows of
    /// `kv_dim` values for keys and as many for values.
    pub fn new(windows: &[Option<usize>], kv_dim: usize, opts: KvOptions) -> KvStore {
        let block = opts.block.max(1);
        let mut groups: Vec<Group> = Vec::new();
        let layer = windows
            .iter()
            .map(|&w| {
                let g = match groups.iter().position(|g| g.window == w) {
                    Some(g) => g,
                    None => {
                        groups.push(Group {
                            window: w,
                            layers: 0,
                            data: match opts.dtype {
                                KvDtype::F32 => Data::F32(Vec::new()),
                                KvDtype::F16 => Data::F16(Vec::new()),
                                KvDtype::Q8 => Data::Q8 {
                                    q: Vec::new(),
                                    d: Vec::new(),
                                },
                            },
                            refs: Vec::new(),
                            free: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                groups[g].layers += 1;
                (g, groups[g].layers - 1)
            })
            .collect();
        KvStore {
            kv_dim,
            block,
            groups,
            layer,
            seqs: Vec::new(),
        }
    }

    /// Values per block of a group (keys and values of every layer).
    fn block_len(&self, g: usize) -> usize {
        self.groups[g].layers * 2 * self.block * self.kv_dim
    }

    /// A new, empty sequence.
    pub fn new_seq(&mut self) -> SeqId {
        let s = Seq {
            len: 0,
            tables: vec![Table::default(); self.groups.len()],
        };
        match self.seqs.iter().position(Option::is_none) {
            Some(i) => {
                self.seqs[i] = Some(s);
                SeqId(i as u32)
            }
            None => {
                self.seqs.push(Some(s));
                SeqId(self.seqs.len() as u32 - 1)
            }
        }
    }

    fn seq(&self, id: SeqId) -> Result<&Seq, ModelError> {
        self.seqs
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| ModelError::Invalid(format!("no sequence {} in the KV cache", id.0)))
    }

    /// Slots the sequence holds (including any evicted from sliding layers).
    pub fn len(&self, id: SeqId) -> Result<usize, ModelError> {
        Ok(self.seq(id)?.len)
    }

    /// A new sequence that shares every block of `id` (no copy; a write to a shared block copies it first).
    pub fn fork(&mut self, id: SeqId) -> Result<SeqId, ModelError> {
        let s = self.seq(id)?.clone();
        for (g, t) in s.tables.iter().enumerate() {
            for &b in &t.blocks {
                self.groups[g].refs[b as usize] += 1;
            }
        }
        let new = self.new_seq();
        self.seqs[new.0 as usize] = Some(s);
        Ok(new)
    }

    /// Drops the sequence and releases its blocks.
    pub fn free(&mut self, id: SeqId) {
        if let Some(s) = self.seqs.get_mut(id.0 as usize).and_then(Option::take) {
            for (g, t) in s.tables.iter().enumerate() {
                for &b in &t.blocks {
                    self.release(g, b);
                }
            }
        }
    }

    fn release(&mut self, g: usize, b: u32) {
        let r = &mut self.groups[g].refs[b as usize];
        *r -= 1;
        if *r == 0 {
            self.groups[g].free.push(b);
        }
    }

    /// Forgets every slot from `len` on. Returns `false` (and changes nothing) when a sliding layer has already
    /// evicted history that a query at slot `len` would need: the caller must start the sequence again.
    pub fn truncate(&mut self, id: SeqId, len: usize) -> Result<bool, ModelError> {
        let s = self.seq(id)?;
        if len >= s.len {
            return Ok(true);
        }
        for (g, t) in s.tables.iter().enumerate() {
            let need = self.groups[g]
                .window
                .map_or(0, |w| (len + 1).saturating_sub(w));
            if t.first > need {
                return Ok(false);
            }
        }
        let block = self.block;
        let mut s = self.seqs[id.0 as usize].take().expect("checked above");
        for (g, t) in s.tables.iter_mut().enumerate() {
            let keep = (len.saturating_sub(t.first)).div_ceil(block);
            for b in t.blocks.split_off(keep.min(t.blocks.len())) {
                self.release(g, b);
            }
        }
        s.len = len;
        self.seqs[id.0 as usize] = Some(s);
        Ok(true)
    }

    /// Makes room for `n` more slots of `id` in every group: allocates blocks, and copies a shared block that the
    /// new slots would write into.
    pub fn reserve(&mut self, id: SeqId, n: usize) -> Result<(), ModelError> {
        let len = self.seq(id)?.len;
        let block = self.block;
        let mut s = self.seqs[id.0 as usize].take().expect("checked above");
        for (g, t) in s.tables.iter_mut().enumerate() {
            // A partly filled last block that is shared gets a private copy before the first write.
            let used = len - t.first;
            if used % block != 0 {
                let last = *t.blocks.last().expect("a partial block exists");
                if self.groups[g].refs[last as usize] > 1 {
                    let copy = self.alloc(g);
                    self.copy_block(g, last, copy);
                    self.release(g, last);
                    *t.blocks.last_mut().expect("non-empty") = copy;
                }
            }
            while t.first + t.blocks.len() * block < len + n {
                let b = self.alloc(g);
                t.blocks.push(b);
            }
        }
        self.seqs[id.0 as usize] = Some(s);
        Ok(())
    }

    fn alloc(&mut self, g: usize) -> u32 {
        let bl = self.block_len(g);
        let (kvd, rb) = (self.kv_dim, self.row_blocks());
        let gr = &mut self.groups[g];
        if let Some(b) = gr.free.pop() {
            gr.refs[b as usize] = 1;
            return b;
        }
        let b = gr.refs.len() as u32;
        gr.refs.push(1);
        match &mut gr.data {
            Data::F32(d) => d.resize(d.len() + bl, 0.0),
            Data::F16(d) => d.resize(d.len() + bl, f16::ZERO),
            Data::Q8 { q, d } => {
                q.resize(q.len() + bl, 0);
                d.resize(d.len() + bl / kvd * rb, f16::ZERO);
            }
        }
        b
    }

    fn copy_block(&mut self, g: usize, from: u32, to: u32) {
        let bl = self.block_len(g);
        let (a, b) = (from as usize * bl, to as usize * bl);
        let sl = bl / self.kv_dim * self.row_blocks();
        match &mut self.groups[g].data {
            Data::F32(d) => d.copy_within(a..a + bl, b),
            Data::F16(d) => d.copy_within(a..a + bl, b),
            Data::Q8 { q, d } => {
                q.copy_within(a..a + bl, b);
                let (a, b) = (from as usize * sl, to as usize * sl);
                d.copy_within(a..a + sl, b);
            }
        }
    }

    /// Q8 scales per row.
    fn row_blocks(&self) -> usize {
        self.kv_dim.div_ceil(flint_kernels::KV_Q8_BLOCK)
    }

    /// Where slot `slot` of layer `l`'s keys (`sel` 0) or values (1) lives in its group's data.
    fn offset(&self, l: usize, t: &Table, slot: usize, sel: usize) -> usize {
        let (g, li) = self.layer[l];
        let rel = slot - t.first;
        let b = t.blocks[rel / self.block] as usize;
        b * self.block_len(g) + ((li * 2 + sel) * self.block + rel % self.block) * self.kv_dim
    }

    /// Stores layer `l`'s key and value rows (`[rows, kv_dim]` each) at slots `len(id) ..` (after [`reserve`]).
    ///
    /// [`reserve`]: KvStore::reserve
    pub fn write(&mut self, l: usize, id: SeqId, k: &[f32], v: &[f32]) -> Result<(), ModelError> {
        let s = self.seq(id)?;
        let (g, _) = self.layer[l];
        let t = &s.tables[g];
        let kvd = self.kv_dim;
        let mut at = Vec::with_capacity(k.len() / kvd);
        for r in 0..k.len() / kvd {
            at.push((
                self.offset(l, t, s.len + r, 0),
                self.offset(l, t, s.len + r, 1),
            ));
        }
        let rb = self.row_blocks();
        let data = &mut self.groups[g].data;
        for (r, (ko, vo)) in at.into_iter().enumerate() {
            let (kr, vr) = (&k[r * kvd..(r + 1) * kvd], &v[r * kvd..(r + 1) * kvd]);
            match data {
                Data::F32(d) => {
                    d[ko..ko + kvd].copy_from_slice(kr);
                    d[vo..vo + kvd].copy_from_slice(vr);
                }
                Data::F16(d) => {
                    use half::slice::HalfFloatSliceExt;
                    d[ko..ko + kvd].convert_from_f32_slice(kr);
                    d[vo..vo + kvd].convert_from_f32_slice(vr);
                }
                Data::Q8 { q, d } => {
                    // Offsets are whole rows, so a row's scales are at its row index times `rb`.
                    for (o, x) in [(ko, kr), (vo, vr)] {
                        let ds = o / kvd * rb;
                        flint_kernels::quantize_kv_q8(x, &mut q[o..o + kvd], &mut d[ds..ds + rb]);
                    }
                }
            }
        }
        Ok(())
    }

    /// Layer `l`'s keys and values of `id`, block by block, for the slots `..end` it still holds.
    pub fn chunks(&self, l: usize, id: SeqId, end: usize) -> Result<Vec<KvChunk<'_>>, ModelError> {
        let s = self.seq(id)?;
        let (g, li) = self.layer[l];
        let t = &s.tables[g];
        let (bl, kvd, block, rb) = (
            self.block_len(g),
            self.kv_dim,
            self.block,
            self.row_blocks(),
        );
        let mut out = Vec::with_capacity(t.blocks.len());
        for (i, &b) in t.blocks.iter().enumerate() {
            let start = t.first + i * block;
            if start >= end {
                break;
            }
            let rows = (end - start).min(block);
            let k0 = b as usize * bl + li * 2 * block * kvd;
            let v0 = k0 + block * kvd;
            let (k, v) = match &self.groups[g].data {
                Data::F32(d) => (
                    KvRows::F32(&d[k0..k0 + rows * kvd]),
                    KvRows::F32(&d[v0..v0 + rows * kvd]),
                ),
                Data::F16(d) => (
                    KvRows::F16(&d[k0..k0 + rows * kvd]),
                    KvRows::F16(&d[v0..v0 + rows * kvd]),
                ),
                Data::Q8 { q, d } => {
                    let (ks, vs) = (k0 / kvd * rb, v0 / kvd * rb);
                    (
                        KvRows::Q8 {
                            q: &q[k0..k0 + rows * kvd],
                            d: &d[ks..ks + rows * rb],
                        },
                        KvRows::Q8 {
                            q: &q[v0..v0 + rows * kvd],
                            d: &d[vs..vs + rows * rb],
                        },
                    )
                }
            };
            out.push(KvChunk { start, k, v });
        }
        Ok(out)
    }

    /// Counts `n` written slots into `id`'s length, then frees the blocks its sliding groups no longer need (every
    /// slot older than the window of the next query).
    pub fn advance(&mut self, id: SeqId, n: usize) -> Result<(), ModelError> {
        self.seq(id)?;
        let block = self.block;
        let mut s = self.seqs[id.0 as usize].take().expect("checked above");
        s.len += n;
        for (g, t) in s.tables.iter_mut().enumerate() {
            if let Some(w) = self.groups[g].window {
                let keep = (s.len + 1).saturating_sub(w);
                while t.first + block <= keep && !t.blocks.is_empty() {
                    let b = t.blocks.remove(0);
                    t.first += block;
                    self.release(g, b);
                }
            }
        }
        self.seqs[id.0 as usize] = Some(s);
        Ok(())
    }

    /// Blocks in use (referenced by at least one sequence) per group, with the group's window.
    pub fn blocks_in_use(&self) -> Vec<(Option<usize>, usize)> {
        self.groups
            .iter()
            .map(|g| (g.window, g.refs.iter().filter(|&&r| r > 0).count()))
            .collect()
    }

    /// Bytes of cache memory allocated (in use or free for reuse).
    pub fn bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|g| match &g.data {
                Data::F32(d) => d.len() * 4,
                Data::F16(d) => d.len() * 2,
                Data::Q8 { q, d } => q.len() + d.len() * 2,
            })
            .sum()
    }

    /// Slots per block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Moves the blocks in use to the front of each group and gives the memory of the free ones back (a server
    /// calls it when idle). Block ids change; every sequence keeps its contents.
    pub fn compact(&mut self) {
        for g in 0..self.groups.len() {
            let refs = std::mem::take(&mut self.groups[g].refs);
            let mut map = vec![u32::MAX; refs.len()];
            let mut n = 0u32;
            for (b, &r) in refs.iter().enumerate() {
                if r > 0 {
                    // Ascending, and n <= b: a copy never overwrites a block still to be moved.
                    if n as usize != b {
                        self.copy_block(g, b as u32, n);
                    }
                    map[b] = n;
                    n += 1;
                }
            }
            let (bl, sl) = (
                self.block_len(g) * n as usize,
                self.block_len(g) / self.kv_dim * self.row_blocks() * n as usize,
            );
            let gr = &mut self.groups[g];
            gr.refs = refs.into_iter().filter(|&r| r > 0).collect();
            gr.free.clear();
            match &mut gr.data {
                Data::F32(d) => (d.truncate(bl), d.shrink_to_fit()),
                Data::F16(d) => (d.truncate(bl), d.shrink_to_fit()),
                Data::Q8 { q, d } => {
                    q.truncate(bl);
                    q.shrink_to_fit();
                    (d.truncate(sl), d.shrink_to_fit())
                }
            };
            for s in self.seqs.iter_mut().flatten() {
                for b in &mut s.tables[g].blocks {
                    *b = map[*b as usize];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layer's keys and values of `id`, slot by slot, as f32.
    fn contents(kv: &KvStore, id: SeqId, layers: usize) -> Vec<Vec<f32>> {
        let len = kv.len(id).unwrap();
        (0..layers)
            .map(|l| {
                kv.chunks(l, id, len)
                    .unwrap()
                    .iter()
                    .flat_map(|c| {
                        let f = |r: KvRows<'_>| -> Vec<f32> {
                            match r {
                                KvRows::F32(x) => x.to_vec(),
                                KvRows::F16(x) => x.iter().map(|v| v.to_f32()).collect(),
                                KvRows::Q8 { q, d } => q
                                    .iter()
                                    .map(|&v| v as f32)
                                    .chain(d.iter().map(|v| v.to_f32()))
                                    .collect(),
                            }
                        };
                        let mut v = f(c.k);
                        v.extend(f(c.v));
                        v
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn compact_keeps_contents_and_frees_memory() {
        for dtype in [KvDtype::F32, KvDtype::F16, KvDtype::Q8] {
            let (kvd, layers) = (32, 3);
            let windows = [None, Some(8), None];
            let mut kv = KvStore::new(&windows, kvd, KvOptions { dtype, block: 4 });
            let mut seqs = Vec::new();
            for s in 0..4 {
                let id = kv.new_seq();
                let n = 5 + 3 * s;
                kv.reserve(id, n).unwrap();
                for l in 0..layers {
                    let k: Vec<f32> = (0..n * kvd)
                        .map(|i| ((i * 7 + s * 13 + l) % 19) as f32 - 9.0)
                        .collect();
                    let v: Vec<f32> = k.iter().map(|x| -x * 0.5).collect();
                    kv.write(l, id, &k, &v).unwrap();
                }
                kv.advance(id, n).unwrap();
                seqs.push(id);
            }
            let fork = kv.fork(seqs[3]).unwrap();
            kv.free(seqs[0]);
            kv.free(seqs[2]);
            let keep = [seqs[1], seqs[3], fork];
            let before: Vec<_> = keep.iter().map(|&id| contents(&kv, id, layers)).collect();
            let (bytes, used) = (kv.bytes(), kv.blocks_in_use());
            kv.compact();
            assert!(kv.bytes() < bytes, "{dtype:?}: {} -> {}", bytes, kv.bytes());
            assert_eq!(kv.blocks_in_use(), used);
            let after: Vec<_> = keep.iter().map(|&id| contents(&kv, id, layers)).collect();
            assert_eq!(before, after, "{dtype:?}");
            // Still a working cache: a shared block is copied before the fork writes into it.
            kv.reserve(fork, 1).unwrap();
            assert_eq!(contents(&kv, seqs[3], layers), before[1]);
        }
    }
}
