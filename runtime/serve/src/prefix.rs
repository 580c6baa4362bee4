//! Prompt prefixes kept in the KV cache between requests, so a request that starts like an earlier one (the same
//! system prompt, or the next turn of a chat, which re-sends the whole history) prefills only what is new.
//!
//! An entry is a sequence the cache owns and the keys of the rows it holds ([`flint_model::multimodal::MediaPrompt::keys`]:
//! a token id, or a hash of a tower row, so an image is reused only if it is the same image): a finished choice's
//! prompt and answer. A lookup
//! forks the entry with the longest common prefix (no copy: the blocks are shared) and truncates the fork to that
//! prefix. Entries are evicted least recently used first, beyond a token budget.

use flint_model::{Engine, SeqId};

#[derive(Debug)]
struct Entry {
    seq: SeqId,
    tokens: Vec<u64>,
    used: u64,
}

#[derive(Debug)]
pub struct PrefixCache {
    entries: Vec<Entry>,
    /// Tokens held at most, over all entries (0: no caching).
    budget: usize,
    clock: u64,
}

fn common(a: &[u64], b: &[u64]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    pub fn new(budget: usize) -> PrefixCache {
        PrefixCache {
            entries: Vec::new(),
            budget,
            clock: 0,
        }
    }

    /// Tokens held.
    pub fn tokens(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// A new sequence holding the longest cached prefix of `prompt` and its length, if that prefix has at least
    /// `min` tokens. At most `prompt.len() - 1` are reused: the last prompt token must run to give logits.
    pub fn lookup(
        &mut self,
        eng: &mut Engine<'_>,
        prompt: &[u64],
        min: usize,
    ) -> Option<(SeqId, usize)> {
        let cap = prompt.len().saturating_sub(1);
        let (i, l) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, common(&e.tokens, prompt).min(cap)))
            .max_by_key(|&(_, l)| l)?;
        if l < min.max(1) {
            return None;
        }
        let s = eng.fork(self.entries[i].seq).ok()?;
        if !eng.truncate(s, l).unwrap_or(false) {
            // A sliding layer no longer holds what the prefix needs.
            eng.free(s);
            return None;
        }
        self.clock += 1;
        self.entries[i].used = self.clock;
        Some((s, l))
    }

    /// Keeps `seq`, which holds `tokens`, for later requests (the cache owns it from here).
    pub fn insert(&mut self, eng: &mut Engine<'_>, seq: SeqId, tokens: Vec<u64>) {
        self.clock += 1;
        if tokens.is_empty() || tokens.len() > self.budget {
            eng.free(seq);
            return;
        }
        // An entry that already holds all of these tokens covers the new one.
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.tokens.starts_with(&tokens))
        {
            e.used = self.clock;
            eng.free(seq);
            return;
        }
        // Entries the new one covers go.
        let mut i = 0;
        while i < self.entries.len() {
            if tokens.starts_with(&self.entries[i].tokens) {
                eng.free(self.entries.swap_remove(i).seq);
            } else {
                i += 1;
            }
        }
        self.entries.push(Entry {
            seq,
            tokens,
            used: self.clock,
        });
        while self.tokens() > self.budget {
            let lru = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].used)
                .expect("over budget means non-empty");
            eng.free(self.entries.swap_remove(lru).seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::common;

    #[test]
    fn common_prefix() {
        assert_eq!(common(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common(&[1, 2], &[1, 2, 3]), 2);
        assert_eq!(common(&[], &[1]), 0);
    }
}
