//! The model's vocabulary as bytes, with a byte trie over it for walking the mask.

use std::fmt;

/// Tokens of at most this many bytes go into the trie; longer ones are checked one by one (see
/// `Grammar::canon`).
pub(crate) const SHORT: usize = 16;

/// A fixed-size set of token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    pub(crate) fn new(len: usize) -> Bitset {
        Bitset {
            words: vec![0; len.div_ceil(64)],
        }
    }

    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i >> 6) {
            *w |= 1 << (i & 63);
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.words
            .get(i >> 6)
            .is_some_and(|w| w & (1 << (i & 63)) != 0)
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

/// One trie node, in depth-first (pre-order) position: the byte leading to it, its depth (1 for a first byte),
/// the index just past its subtree, and where its tokens start in `Trie::tokens`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrieNode {
    pub skip: u32,
    pub tokens: u32,
    pub depth: u32,
    pub byte: u8,
}

#[derive(Debug)]
pub(crate) struct Trie {
    /// The nodes, then one sentinel (so `nodes[i + 1]` exists for every real node `i < len`).
    pub nodes: Vec<TrieNode>,
    pub len: usize,
    /// Token ids, grouped by the node they end at (node `i` owns `tokens[nodes[i].tokens..nodes[i+1].tokens]`).
    tokens: Vec<u32>,
    pub max_depth: usize,
    /// Tokens longer than [`SHORT`] bytes (not in the trie).
    pub long: Vec<u32>,
}

impl Trie {
    #[inline]
    pub(crate) fn tokens_at(&self, i: usize) -> &[u32] {
        let start = self.nodes[i].tokens as usize;
        let end = self.nodes[i + 1].tokens as usize;
        &self.tokens[start..end]
    }

    fn build(vocab: &Vocab) -> Trie {
        let (mut ids, long): (Vec<u32>, Vec<u32>) = (0..vocab.len() as u32)
            .filter(|&id| !vocab.is_end(id) && vocab.bytes(id).is_some_and(|b| !b.is_empty()))
            .partition(|&id| vocab.bytes(id).is_some_and(|b| b.len() <= SHORT));
        ids.sort_by(|&a, &b| vocab.bytes(a).cmp(&vocab.bytes(b)));
        let mut nodes: Vec<TrieNode> = Vec::new();
        let mut tokens = Vec::with_capacity(ids.len());
        let mut path: Vec<usize> = Vec::new();
        let mut prev: &[u8] = &[];
        let mut max_depth = 0;
        for &id in &ids {
            let b = vocab.bytes(id).unwrap_or_default();
            let common = prev.iter().zip(b).take_while(|(x, y)| x == y).count();
            path.truncate(common);
            for (d, &byte) in b.iter().enumerate().skip(common) {
                path.push(nodes.len());
                nodes.push(TrieNode {
                    skip: 0,
                    tokens: tokens.len() as u32,
                    depth: d as u32 + 1,
                    byte,
                });
            }
            // Sorted order: a token's node is the last one created (or it repeats the previous token).
            tokens.push(id);
            max_depth = max_depth.max(b.len());
            prev = b;
        }
        // skip: the next node at the same or a lower depth.
        let mut open: Vec<usize> = Vec::new();
        for i in 0..nodes.len() {
            while let Some(&j) = open.last() {
                if nodes[j].depth >= nodes[i].depth {
                    nodes[j].skip = i as u32;
                    open.pop();
                } else {
                    break;
                }
            }
            open.push(i);
        }
        for j in open {
            nodes[j].skip = nodes.len() as u32;
        }
        let len = nodes.len();
        nodes.push(TrieNode {
            skip: len as u32,
            tokens: tokens.len() as u32,
            depth: 0,
            byte: 0,
        });
        Trie {
            nodes,
            len,
            tokens,
            max_depth,
            long,
        }
    }
}

/// The model's vocabulary as bytes, built once per model; `Send + Sync`.
pub struct Vocab {
    len: usize,
    /// `starts[id]..starts[id + 1]` in `bytes`; `None` tokens are marked in `special`.
    starts: Vec<usize>,
    bytes: Vec<u8>,
    special: Bitset,
    end: Vec<u32>,
    end_bits: Bitset,
    trie: Trie,
}

impl fmt::Debug for Vocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vocab")
            .field("len", &self.len)
            .field("end", &self.end)
            .field("trie_nodes", &self.trie.len)
            .field("long_tokens", &self.trie.long.len())
            .finish()
    }
}

impl Vocab {
    /// `tokens[id]`: the bytes the token stands for, or `None` for a token never allowed inside constrained output
    /// (special/control tokens; a token of no bytes counts as one too). `end`: ids that end generation (EOS, end
    /// of turn); they are allowed exactly when the grammar is complete, whatever their bytes, and may lie beyond
    /// `tokens`.
    pub fn new(tokens: Vec<Option<Vec<u8>>>, end: Vec<u32>) -> Vocab {
        let len = tokens.len();
        let mut starts = Vec::with_capacity(len + 1);
        let mut bytes = Vec::new();
        let mut special = Bitset::new(len);
        for (id, t) in tokens.into_iter().enumerate() {
            starts.push(bytes.len());
            match t {
                Some(t) => bytes.extend_from_slice(&t),
                None => special.set(id),
            }
        }
        starts.push(bytes.len());
        let mut end = end;
        end.sort_unstable();
        end.dedup();
        let mut end_bits = Bitset::new(len);
        for &e in &end {
            end_bits.set(e as usize);
        }
        let mut v = Vocab {
            len,
            starts,
            bytes,
            special,
            end,
            end_bits,
            trie: Trie {
                nodes: Vec::new(),
                len: 0,
                tokens: Vec::new(),
                max_depth: 0,
                long: Vec::new(),
            },
        };
        v.trie = Trie::build(&v);
        v
    }

    /// How many tokens `tokens` had.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A token's bytes (`None` for special tokens and ids beyond the vocabulary).
    pub fn bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        if i >= self.len || self.special.get(i) {
            return None;
        }
        Some(&self.bytes[self.starts[i]..self.starts[i + 1]])
    }

    /// Whether `id` ends generation.
    pub fn is_end(&self, id: u32) -> bool {
        self.end.binary_search(&id).is_ok()
    }

    /// The end ids, sorted.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end
    }

    pub(crate) fn end_bits(&self) -> &Bitset {
        &self.end_bits
    }

    pub(crate) fn trie(&self) -> &Trie {
        &self.trie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_is_preorder_with_skips() {
        let toks = [
            "ab",
            "a",
            "b",
            "abc",
            "ab",
            "",
            "ba",
            "a-very-long-token-indeed",
        ];
        let mut t: Vec<Option<Vec<u8>>> =
            toks.iter().map(|s| Some(s.as_bytes().to_vec())).collect();
        t.push(None);
        let v = Vocab::new(t, vec![2]);
        let trie = v.trie();
        let shown: Vec<(u8, u32, u32, Vec<u32>)> = (0..trie.len)
            .map(|i| {
                (
                    trie.nodes[i].byte,
                    trie.nodes[i].depth,
                    trie.nodes[i].skip,
                    trie.tokens_at(i).to_vec(),
                )
            })
            .collect();
        // "b" (id 2) is an end token: not in the trie; "" never is.
        assert_eq!(
            shown,
            vec![
                (b'a', 1, 3, vec![1]),
                (b'b', 2, 3, vec![0, 4]),
                (b'c', 3, 3, vec![3]),
                (b'b', 1, 5, vec![]),
                (b'a', 2, 5, vec![6]),
            ]
        );
        assert_eq!(trie.max_depth, 3);
        assert_eq!(trie.long, vec![7]);
        assert_eq!(v.bytes(8), None);
        assert_eq!(v.bytes(99), None);
        assert!(v.is_end(2) && !v.is_end(1));
    }
}
