//! The matcher: llama.cpp's stack-set algorithm, run as a lazily built DFA.
//!
//! A parse is a stack of grammar positions (top = the next element to match, below it the places to return to);
//! the matcher's state is the deduplicated set of stacks whose top is a character class (an empty stack means
//! `root` may end here), plus the code point being read when input stopped inside a UTF-8 sequence. Stacks are
//! hash-consed into a tree of nodes (`(position, parent)` pairs), so a stack is one node id and a state is a
//! sorted list of ids; states are interned, and each state's transitions on a byte are memoised in a 256-entry
//! table. Walking the vocabulary trie then costs one table lookup per trie node once the states are known.
//!
//! Partial code points: after a lead byte, stacks whose class holds no code point with the bytes so far are
//! dropped; when every remaining class holds every such code point, the exact bits are forgotten (a *uniform*
//! partial), so the thousands of CJK prefixes inside a JSON string all share a handful of states.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::class::Coverage;
use crate::error::Error;
use crate::grammar::{Elem, Grammar};
use crate::hash::FxBuild;
use crate::vocab::{Bitset, Vocab};

/// The empty stack (also the parent of every bottom node).
pub(crate) const EMPTY: u32 = 0;
/// Step results that are not states.
pub(crate) const DEAD: u32 = u32::MAX - 1;
pub(crate) const AMBIGUOUS: u32 = u32::MAX - 2;
const UNKNOWN: u32 = u32::MAX;

/// At most this many parses at once; more is "too ambiguous".
pub(crate) const MAX_STACKS: usize = 4096;
/// At most this many (position, parent) expansions in one step.
const MAX_VISITS: usize = 1 << 16;
/// Parses nested deeper than this many frames are dropped (documented limit on nesting).
pub(crate) const MAX_DEPTH: u32 = 1024;
/// Cache bounds: beyond these the whole cache is cleared at the next call.
const MAX_MASKS: usize = 1024;
const MAX_STATES: usize = 1 << 15;
const MAX_NODES: usize = 1 << 21;
/// Transition tables (1 KiB each) kept at most.
const MAX_TABLES: usize = 1 << 14;

#[inline]
pub(crate) fn is_state(v: u32) -> bool {
    v < AMBIGUOUS
}

/// The UTF-8 sequence being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Partial {
    None,
    /// The code point's bits so far, the continuation bytes still needed, the sequence's length, and the range the
    /// next byte must be in.
    Exact {
        bits: u32,
        need: u8,
        len: u8,
        lo: u8,
        hi: u8,
    },
    /// Every stack accepts whatever code point completes the sequence.
    Uniform {
        need: u8,
        lo: u8,
        hi: u8,
    },
}

#[derive(Clone, Copy, Debug)]
struct Node {
    pos: u32,
    parent: u32,
    depth: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    tops: Box<[u32]>,
    partial: Partial,
}

#[derive(Debug)]
struct DState {
    key: Key,
    /// All tokens allowed here, and whether the ambiguity bound cut some off.
    mask: Option<(Arc<Bitset>, bool)>,
    /// The short tokens (the trie) allowed here; kept in canonical states.
    short: Option<(Arc<Bitset>, bool)>,
}

/// The lazily built DFA: the cache shared by a constraint and its clones.
#[derive(Debug)]
pub(crate) struct Matcher {
    pub(crate) epoch: u64,
    nodes: Vec<Node>,
    node_ids: HashMap<(u32, u32), u32, FxBuild>,
    states: Vec<DState>,
    state_ids: HashMap<Key, u32, FxBuild>,
    /// Transition tables, 256 entries per state, for the first `tables` states (all of them up to the bound).
    trans: Vec<u32>,
    tables: usize,
    masks: usize,
    work: Vec<(u32, u32)>,
    visited: HashSet<(u32, u32), FxBuild>,
    out: Vec<u32>,
}

/// The initial stacks of a grammar (bottom first), or an error if expanding `root` is already too ambiguous.
pub(crate) fn initial_stacks(g: &Grammar) -> Result<Vec<Vec<u32>>, Error> {
    let mut m = Matcher::new();
    m.out.clear();
    m.visited.clear();
    for &alt in &g.alts[g.root as usize] {
        if m.expand(g, alt, EMPTY).is_err() {
            return Err(Error::Ambiguous("the start of `root`".into()));
        }
    }
    match m.finish(Partial::None) {
        s if is_state(s) => Ok(m.concrete(s).0),
        AMBIGUOUS => Err(Error::Ambiguous("the start of `root`".into())),
        _ => Err(Error::Grammar(
            "`root` cannot start: every parse nests too deeply".into(),
        )),
    }
}

impl Matcher {
    pub(crate) fn new() -> Matcher {
        let mut m = Matcher {
            epoch: 0,
            nodes: Vec::new(),
            node_ids: HashMap::default(),
            states: Vec::new(),
            state_ids: HashMap::default(),
            trans: Vec::new(),
            tables: 0,
            masks: 0,
            work: Vec::new(),
            visited: HashSet::default(),
            out: Vec::new(),
        };
        m.reset();
        m
    }

    fn reset(&mut self) {
        self.nodes.clear();
        self.nodes.push(Node {
            pos: u32::MAX,
            parent: EMPTY,
            depth: 0,
        });
        self.node_ids.clear();
        self.states.clear();
        self.state_ids.clear();
        self.trans.clear();
        self.tables = 0;
        self.masks = 0;
    }

    /// Drops everything (state ids of the old epoch become invalid).
    pub(crate) fn clear(&mut self) {
        self.reset();
        self.epoch += 1;
    }

    /// Clears the cache if it grew past its bounds. Call only between operations.
    pub(crate) fn trim(&mut self) {
        if self.masks > MAX_MASKS || self.states.len() > MAX_STATES || self.nodes.len() > MAX_NODES
        {
            self.clear();
        }
    }

    fn node(&mut self, pos: u32, parent: u32) -> Option<u32> {
        if let Some(&id) = self.node_ids.get(&(pos, parent)) {
            return Some(id);
        }
        let depth = self.nodes[parent as usize].depth + 1;
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node { pos, parent, depth });
        self.node_ids.insert((pos, parent), id);
        Some(id)
    }

    fn intern(&mut self, key: Key) -> u32 {
        if let Some(&id) = self.state_ids.get(&key) {
            return id;
        }
        let id = self.states.len() as u32;
        self.states.push(DState {
            key: key.clone(),
            mask: None,
            short: None,
        });
        self.state_ids.insert(key, id);
        if self.tables == id as usize && self.tables < MAX_TABLES {
            self.trans.resize(self.trans.len() + 256, UNKNOWN);
            self.tables += 1;
        }
        id
    }

    /// The state of concrete stacks (bottom first).
    pub(crate) fn intern_stacks(&mut self, stacks: &[Vec<u32>], partial: Partial) -> u32 {
        let mut tops = Vec::with_capacity(stacks.len());
        'stacks: for stack in stacks {
            let mut parent = EMPTY;
            for &pos in stack {
                match self.node(pos, parent) {
                    Some(n) => parent = n,
                    None => continue 'stacks,
                }
            }
            tops.push(parent);
        }
        tops.sort_unstable();
        tops.dedup();
        self.intern(Key {
            tops: tops.into(),
            partial,
        })
    }

    /// A state's stacks (bottom first) and partial code point.
    pub(crate) fn concrete(&self, s: u32) -> (Vec<Vec<u32>>, Partial) {
        let key = &self.states[s as usize].key;
        let mut stacks = Vec::with_capacity(key.tops.len());
        for &top in key.tops.iter() {
            let mut stack = Vec::new();
            let mut n = top;
            while n != EMPTY {
                let node = self.nodes[n as usize];
                stack.push(node.pos);
                n = node.parent;
            }
            stack.reverse();
            stacks.push(stack);
        }
        (stacks, key.partial)
    }

    /// One byte of input. Returns the next state, `DEAD`, or `AMBIGUOUS`.
    #[inline]
    pub(crate) fn step(&mut self, g: &Grammar, s: u32, byte: u8) -> u32 {
        if (s as usize) < self.tables {
            let v = self.trans[(s as usize) << 8 | byte as usize];
            if v != UNKNOWN {
                return v;
            }
        }
        self.step_slow(g, s, byte)
    }

    #[cold]
    #[inline(never)]
    fn step_slow(&mut self, g: &Grammar, s: u32, byte: u8) -> u32 {
        let v = self.compute(g, s, byte);
        if (s as usize) < self.tables {
            let base = (s as usize) << 8;
            match self.states[s as usize].key.partial {
                // Bytes alike for every class go the same way.
                Partial::None if byte < 0x80 => {
                    for &b in &g.ascii_members[g.ascii_class[byte as usize] as usize] {
                        self.trans[base | b as usize] = v;
                    }
                }
                Partial::Uniform { lo, hi, .. } if (lo..=hi).contains(&byte) => {
                    self.trans[base | lo as usize..=base | hi as usize].fill(v);
                }
                _ => self.trans[base | byte as usize] = v,
            }
        }
        v
    }

    fn compute(&mut self, g: &Grammar, s: u32, b: u8) -> u32 {
        let key = &self.states[s as usize].key;
        let partial = key.partial;
        let tops: Vec<u32> = key.tops.to_vec();
        match partial {
            Partial::None => {
                if b < 0x80 {
                    return self.advance(g, &tops, Some(u32::from(b)));
                }
                let (len, bits, lo, hi) = match b {
                    0xC2..=0xDF => (2, b & 0x1F, 0x80, 0xBF),
                    0xE0 => (3, 0, 0xA0, 0xBF),
                    0xE1..=0xEC | 0xEE..=0xEF => (3, b & 0x0F, 0x80, 0xBF),
                    0xED => (3, 0x0D, 0x80, 0x9F),
                    0xF0 => (4, 0, 0x90, 0xBF),
                    0xF1..=0xF3 => (4, b & 0x07, 0x80, 0xBF),
                    0xF4 => (4, 4, 0x80, 0x8F),
                    _ => return DEAD,
                };
                self.partial(g, &tops, u32::from(bits), len - 1, len, lo, hi)
            }
            Partial::Exact {
                bits,
                need,
                len,
                lo,
                hi,
            } => {
                if b < lo || b > hi {
                    return DEAD;
                }
                let bits = bits << 6 | u32::from(b & 0x3F);
                if need == 1 {
                    self.advance(g, &tops, Some(bits))
                } else {
                    self.partial(g, &tops, bits, need - 1, len, 0x80, 0xBF)
                }
            }
            Partial::Uniform { need, lo, hi } => {
                if b < lo || b > hi {
                    return DEAD;
                }
                if need == 1 {
                    self.advance(g, &tops, None)
                } else {
                    self.intern(Key {
                        tops: tops.into(),
                        partial: Partial::Uniform {
                            need: need - 1,
                            lo: 0x80,
                            hi: 0xBF,
                        },
                    })
                }
            }
        }
    }

    /// Inside a UTF-8 sequence: keep the stacks whose class may still match.
    #[allow(clippy::too_many_arguments)]
    fn partial(
        &mut self,
        g: &Grammar,
        tops: &[u32],
        bits: u32,
        need: u8,
        len: u8,
        lo: u8,
        hi: u8,
    ) -> u32 {
        const MIN: [u32; 5] = [0, 0, 0x80, 0x800, 0x10000];
        let shift = 6 * u32::from(need);
        let first = (bits << shift).max(MIN[len as usize]);
        let last = ((bits << shift) | ((1 << shift) - 1)).min(0x10FFFF);
        let mut kept = Vec::with_capacity(tops.len());
        let mut uniform = true;
        for &t in tops {
            if t == EMPTY {
                continue;
            }
            let Elem::Class(c) = g.elems[self.nodes[t as usize].pos as usize] else {
                continue;
            };
            match g.classes[c as usize].coverage(first, last) {
                Coverage::None => {}
                Coverage::All => kept.push(t),
                Coverage::Some => {
                    kept.push(t);
                    uniform = false;
                }
            }
        }
        if kept.is_empty() {
            return DEAD;
        }
        let partial = if uniform {
            Partial::Uniform { need, lo, hi }
        } else {
            Partial::Exact {
                bits,
                need,
                len,
                lo,
                hi,
            }
        };
        self.intern(Key {
            tops: kept.into(),
            partial,
        })
    }

    /// A whole code point (`None`: one that every top is known to accept).
    fn advance(&mut self, g: &Grammar, tops: &[u32], cp: Option<u32>) -> u32 {
        self.out.clear();
        self.visited.clear();
        for &t in tops {
            if t == EMPTY {
                continue;
            }
            let n = self.nodes[t as usize];
            if let Some(cp) = cp {
                let Elem::Class(c) = g.elems[n.pos as usize] else {
                    continue;
                };
                if !g.classes[c as usize].contains(cp) {
                    continue;
                }
            }
            if self.expand(g, n.pos + 1, n.parent).is_err() {
                return AMBIGUOUS;
            }
        }
        self.finish(Partial::None)
    }

    fn finish(&mut self, partial: Partial) -> u32 {
        if self.out.is_empty() {
            return DEAD;
        }
        self.out.sort_unstable();
        self.out.dedup();
        if self.out.len() > MAX_STACKS {
            return AMBIGUOUS;
        }
        let tops: Box<[u32]> = self.out.as_slice().into();
        self.intern(Key { tops, partial })
    }

    /// Expands the stack `pos` over `parent` until every top is a class (or the stack is empty), into `out`.
    fn expand(&mut self, g: &Grammar, pos: u32, parent: u32) -> Result<(), ()> {
        self.work.push((pos, parent));
        while let Some((pos, parent)) = self.work.pop() {
            if !self.visited.insert((pos, parent)) {
                continue;
            }
            if self.visited.len() > MAX_VISITS {
                self.work.clear();
                return Err(());
            }
            match g.elems[pos as usize] {
                Elem::Class(_) => {
                    if let Some(n) = self.node(pos, parent) {
                        self.out.push(n);
                    }
                }
                Elem::End => {
                    if parent == EMPTY {
                        self.out.push(EMPTY);
                    } else {
                        let n = self.nodes[parent as usize];
                        self.work.push((n.pos, n.parent));
                    }
                }
                Elem::Rule(r) => {
                    // A reference last in its alternative returns straight to the caller (no frame).
                    let cont = if g.elems[pos as usize + 1] == Elem::End {
                        parent
                    } else {
                        match self.node(pos + 1, parent) {
                            Some(n) => n,
                            None => continue,
                        }
                    };
                    for &alt in g.alts[r as usize].iter().rev() {
                        self.work.push((alt, cont));
                    }
                }
            }
        }
        Ok(())
    }

    /// The tokens allowed in state `s` (end tokens not included), and whether the bound on ambiguity cut any
    /// token off. Cached per state; the short tokens' part per canonical state.
    pub(crate) fn allowed(&mut self, g: &Grammar, vocab: &Vocab, s: u32) -> (Arc<Bitset>, bool) {
        if let Some((bits, ambiguous)) = &self.states[s as usize].mask {
            return (bits.clone(), *ambiguous);
        }
        let c = self.canonical(g, s);
        let (mut short, mut ambiguous) = self.short_tokens(g, vocab, c);
        if ambiguous && c != s {
            (short, ambiguous) = self.short_tokens(g, vocab, s);
        }
        let long = &vocab.trie().long;
        let bits = if long.is_empty() {
            short
        } else {
            let mut bits = (*short).clone();
            'tokens: for &id in long {
                let mut at = s;
                for &b in vocab.bytes(id).unwrap_or_default() {
                    at = self.step(g, at, b);
                    if !is_state(at) {
                        ambiguous |= at == AMBIGUOUS;
                        continue 'tokens;
                    }
                }
                bits.set(id as usize);
            }
            Arc::new(bits)
        };
        self.states[s as usize].mask = Some((bits.clone(), ambiguous));
        self.masks += 1;
        (bits, ambiguous)
    }

    /// The state that behaves like `s` on the next [`crate::vocab::SHORT`] bytes (see `Grammar::canon`).
    fn canonical(&mut self, g: &Grammar, s: u32) -> u32 {
        let Some(canon) = &g.canon else { return s };
        let (stacks, partial) = self.concrete(s);
        let mapped: Vec<Vec<u32>> = stacks
            .iter()
            .map(|st| st.iter().map(|&p| canon[p as usize]).collect())
            .collect();
        if mapped == stacks {
            return s;
        }
        self.intern_stacks(&mapped, partial)
    }

    /// The short tokens (those in the trie) allowed in state `s`, by walking the trie. Cached per state.
    fn short_tokens(&mut self, g: &Grammar, vocab: &Vocab, s: u32) -> (Arc<Bitset>, bool) {
        if let Some((bits, ambiguous)) = &self.states[s as usize].short {
            return (bits.clone(), *ambiguous);
        }
        let trie = vocab.trie();
        let mut bits = Bitset::new(vocab.len());
        let mut ambiguous = false;
        let mut path = vec![s; trie.max_depth + 1];
        let nodes = &trie.nodes[..trie.len + 1];
        let mut i = 0;
        while i < trie.len {
            // The fast loop: every transition already in a table.
            let trans = &self.trans[..];
            let tables = self.tables;
            let mut missed = None;
            while i < trie.len {
                let n = nodes[i];
                let d = n.depth as usize;
                let from = path[d - 1] as usize;
                let to = if from < tables {
                    trans[from << 8 | n.byte as usize]
                } else {
                    UNKNOWN
                };
                if to == UNKNOWN {
                    missed = Some(from as u32);
                    break;
                }
                if !is_state(to) {
                    ambiguous |= to == AMBIGUOUS;
                    i = n.skip as usize;
                    continue;
                }
                path[d] = to;
                for &t in trie.tokens_at(i) {
                    bits.set(t as usize);
                }
                i += 1;
            }
            // A transition to compute.
            let Some(from) = missed else { break };
            let n = nodes[i];
            let to = self.step_slow(g, from, n.byte);
            if !is_state(to) {
                ambiguous |= to == AMBIGUOUS;
                i = n.skip as usize;
                continue;
            }
            path[n.depth as usize] = to;
            for &t in trie.tokens_at(i) {
                bits.set(t as usize);
            }
            i += 1;
        }
        let bits = Arc::new(bits);
        self.states[s as usize].short = Some((bits.clone(), ambiguous));
        self.masks += 1;
        (bits, ambiguous)
    }
}
