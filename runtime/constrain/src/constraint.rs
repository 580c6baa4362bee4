//! The live state of one constrained generation: masks logits, takes tokens, forks on clone.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{show_bytes, Error};
use crate::grammar::{print_class, push_escaped, Elem, Grammar};
use crate::matcher::{is_state, Matcher, Partial, AMBIGUOUS, DEAD, MAX_STACKS};
use crate::vocab::Vocab;

/// The live state of one constrained generation. `Clone` forks it (the server forks n choices from one prompt);
/// clones share the mask cache, so a pristine constraint kept per grammar and cloned per request also shares it
/// across requests.
#[derive(Clone)]
pub struct Constraint {
    grammar: Arc<Grammar>,
    vocab: Arc<Vocab>,
    cache: Arc<Mutex<Matcher>>,
    phase: Phase,
    /// Bytes taken so far (for messages).
    taken: usize,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Lazy, before a trigger: the last bytes, which may begin a trigger.
    Waiting {
        triggers: Arc<Triggers>,
        tail: Vec<u8>,
    },
    Active(Active),
    Finished,
}

#[derive(Debug)]
struct Triggers {
    list: Vec<Vec<u8>>,
    /// Bytes of output worth keeping: the longest trigger less one.
    keep: usize,
    /// Tokens that could complete a trigger (sorted): only these are ever masked before the trigger.
    candidates: Vec<u32>,
}

#[derive(Clone, Debug)]
struct Active {
    stacks: Arc<Vec<Vec<u32>>>,
    partial: Partial,
    complete: bool,
    more: bool,
    /// The state's id in the shared cache, valid for that epoch.
    id: Option<(u64, u32)>,
}

impl fmt::Debug for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.phase {
            Phase::Waiting { .. } => "waiting for a trigger",
            Phase::Active(a) if a.complete => "active, complete",
            Phase::Active(_) => "active",
            Phase::Finished => "finished",
        };
        f.debug_struct("Constraint")
            .field("phase", &phase)
            .field("taken_bytes", &self.taken)
            .finish()
    }
}

fn lock(cache: &Mutex<Matcher>) -> MutexGuard<'_, Matcher> {
    match cache.lock() {
        Ok(m) => m,
        Err(poisoned) => {
            cache.clear_poison();
            let mut m = poisoned.into_inner();
            m.clear();
            m
        }
    }
}

impl Active {
    fn new(stacks: Vec<Vec<u32>>, partial: Partial) -> Active {
        let complete = partial == Partial::None && stacks.iter().any(Vec::is_empty);
        let more = partial != Partial::None || stacks.iter().any(|s| !s.is_empty());
        Active {
            stacks: Arc::new(stacks),
            partial,
            complete,
            more,
            id: None,
        }
    }

    fn at(m: &Matcher, s: u32) -> Active {
        let (stacks, partial) = m.concrete(s);
        let mut a = Active::new(stacks, partial);
        a.id = Some((m.epoch, s));
        a
    }

    fn state(&mut self, m: &mut Matcher) -> u32 {
        if let Some((epoch, id)) = self.id {
            if epoch == m.epoch {
                return id;
            }
        }
        let id = m.intern_stacks(&self.stacks, self.partial);
        self.id = Some((m.epoch, id));
        id
    }
}

/// Runs bytes through the grammar from state `s`: the state after them, or the offset of the byte that fails and
/// why (`DEAD` or `AMBIGUOUS`).
fn run(m: &mut Matcher, g: &Grammar, mut s: u32, bytes: &[u8]) -> Result<u32, (usize, u32, u32)> {
    for (i, &b) in bytes.iter().enumerate() {
        let t = m.step(g, s, b);
        if !is_state(t) {
            return Err((i, t, s));
        }
        s = t;
    }
    Ok(s)
}

/// What the grammar expects in state `s`, for messages.
fn expected(m: &Matcher, g: &Grammar, s: u32) -> String {
    let (stacks, partial) = m.concrete(s);
    if partial != Partial::None {
        return "the rest of a UTF-8 character".into();
    }
    let mut items: Vec<String> = Vec::new();
    for stack in &stacks {
        let item = match stack.last() {
            None => "the end".to_string(),
            Some(&pos) => match g.elems[pos as usize] {
                Elem::Class(c) => {
                    let class = &g.classes[c as usize];
                    let mut s = String::new();
                    match class.as_single() {
                        Some(cp) => {
                            s.push('"');
                            push_escaped(cp, false, &mut s);
                            s.push('"');
                        }
                        None => print_class(class, &mut s),
                    }
                    s
                }
                _ => continue,
            },
        };
        if !items.contains(&item) {
            items.push(item);
        }
    }
    let more = items.len() > 8;
    items.truncate(8);
    format!(
        "expected {}{}",
        items.join(" or "),
        if more { " or ..." } else { "" }
    )
}

fn why(m: &Matcher, g: &Grammar, byte: u8, code: u32, at: u32) -> String {
    if code == AMBIGUOUS {
        format!("more than {MAX_STACKS} parses at once")
    } else {
        format!("byte 0x{byte:02X} does not fit: {}", expected(m, g, at))
    }
}

fn count_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// The earliest end of a trigger in `buf`.
fn find_trigger(triggers: &[Vec<u8>], buf: &[u8]) -> Option<usize> {
    triggers
        .iter()
        .filter_map(|t| {
            if t.is_empty() {
                return Some(0);
            }
            buf.windows(t.len())
                .position(|w| w == t.as_slice())
                .map(|p| p + t.len())
        })
        .min()
}

impl Constraint {
    /// A constraint active from the first generated token.
    pub fn new(grammar: Arc<Grammar>, vocab: Arc<Vocab>) -> Constraint {
        let active = Active::new(grammar.initial.clone(), Partial::None);
        Constraint {
            grammar,
            vocab,
            cache: Arc::new(Mutex::new(Matcher::new())),
            phase: Phase::Active(active),
            taken: 0,
        }
    }

    /// A lazy constraint: unconstrained until the generated bytes contain one of `triggers` (e.g.
    /// `b"<tool_call>"`); from the byte after the trigger on, the grammar applies. Before that every token is
    /// allowed, except one that would complete a trigger with bytes after it that the grammar rejects. An empty
    /// trigger makes the constraint active at once; no triggers at all, never.
    pub fn lazy(grammar: Arc<Grammar>, vocab: Arc<Vocab>, triggers: Vec<Vec<u8>>) -> Constraint {
        let mut c = Constraint::new(grammar, vocab);
        if triggers.iter().any(Vec::is_empty) {
            return c;
        }
        let candidates = (0..c.vocab.len() as u32)
            .filter(|&id| {
                let Some(b) = c.vocab.bytes(id) else {
                    return false;
                };
                !c.vocab.is_end(id)
                    && triggers.iter().any(|t| {
                        b.windows(t.len()).any(|w| w == t.as_slice())
                            || (1..t.len()).any(|k| b.starts_with(&t[k..]))
                    })
            })
            .collect();
        let keep = triggers
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(1)
            .saturating_sub(1);
        c.phase = Phase::Waiting {
            triggers: Arc::new(Triggers {
                list: triggers,
                keep,
                candidates,
            }),
            tail: Vec::new(),
        };
        c
    }

    pub fn grammar(&self) -> &Arc<Grammar> {
        &self.grammar
    }

    pub fn vocab(&self) -> &Arc<Vocab> {
        &self.vocab
    }

    /// False for a lazy constraint before its trigger (and after an end token).
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active(_))
    }

    /// Root may end here (an end token is allowed). True before a lazy trigger and once finished.
    pub fn is_complete(&self) -> bool {
        match &self.phase {
            Phase::Active(a) => a.complete,
            Phase::Waiting { .. } | Phase::Finished => true,
        }
    }

    /// Some non-end byte could still follow.
    pub fn can_continue(&self) -> bool {
        match &self.phase {
            Phase::Active(a) => a.more,
            Phase::Waiting { .. } => true,
            Phase::Finished => false,
        }
    }

    /// An end token was taken.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Sets `logits[id] = -inf` for every token not allowed now (ids beyond the vocabulary too, while active).
    /// Err, leaving `logits` untouched, if no token at all is allowed (dead end).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), Error> {
        let Constraint {
            grammar,
            vocab,
            cache,
            phase,
            taken,
        } = self;
        let n = logits.len();
        match phase {
            Phase::Finished => Err(Error::Finished),
            Phase::Waiting { triggers, tail } => {
                let mut m = lock(cache);
                m.trim();
                let banned: Vec<u32> = triggers
                    .candidates
                    .iter()
                    .copied()
                    .filter(|&id| {
                        (id as usize) < n
                            && !waiting_allows(&mut m, grammar, vocab, triggers, tail, id)
                    })
                    .collect();
                if banned.len() == n {
                    return Err(Error::DeadEnd(format!(
                        "every token would complete a trigger the grammar rejects (after {})",
                        count_bytes(*taken)
                    )));
                }
                for id in banned {
                    logits[id as usize] = f32::NEG_INFINITY;
                }
                Ok(())
            }
            Phase::Active(a) => {
                let (bits, ambiguous) = {
                    let mut m = lock(cache);
                    m.trim();
                    let s = a.state(&mut m);
                    m.allowed(grammar, vocab, s)
                };
                let vlen = vocab.len().min(n);
                let complete = a.complete;
                let ends = vocab.end_bits().words();
                let mut allowed = 0usize;
                for (w, &word) in bits.words().iter().enumerate() {
                    let base = w * 64;
                    if base >= vlen {
                        break;
                    }
                    let mut word = if complete { word | ends[w] } else { word };
                    if vlen - base < 64 {
                        word &= (1u64 << (vlen - base)) - 1;
                    }
                    allowed += word.count_ones() as usize;
                }
                let ends_beyond = |id: usize| complete && vocab.is_end(id as u32);
                if complete {
                    allowed += vocab
                        .end_tokens()
                        .iter()
                        .filter(|&&e| (e as usize) >= vlen && (e as usize) < n)
                        .count();
                }
                if allowed == 0 {
                    if ambiguous {
                        return Err(Error::Ambiguous(format!(
                            "byte {taken} of the output: every continuation needs more than {MAX_STACKS} parses"
                        )));
                    }
                    let msg = if complete && !a.more {
                        format!(
                            "the grammar is complete after {} but no end token is among the logits",
                            count_bytes(*taken)
                        )
                    } else {
                        let mut m = lock(cache);
                        let s = a.state(&mut m);
                        let what = expected(&m, grammar, s);
                        format!(
                            "no token of the vocabulary continues the output after {} ({what})",
                            count_bytes(*taken)
                        )
                    };
                    return Err(Error::DeadEnd(msg));
                }
                for (w, &word) in bits.words().iter().enumerate() {
                    let base = w * 64;
                    if base >= vlen {
                        break;
                    }
                    let word = if complete { word | ends[w] } else { word };
                    if word == 0 {
                        logits[base..vlen.min(base + 64)].fill(f32::NEG_INFINITY);
                        continue;
                    }
                    let mut zeros = !word;
                    while zeros != 0 {
                        let id = base + zeros.trailing_zeros() as usize;
                        if id >= vlen {
                            break;
                        }
                        logits[id] = f32::NEG_INFINITY;
                        zeros &= zeros - 1;
                    }
                }
                for (id, l) in logits.iter_mut().enumerate().skip(vlen) {
                    if !ends_beyond(id) {
                        *l = f32::NEG_INFINITY;
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether a token is allowed now.
    pub fn allows(&mut self, id: u32) -> bool {
        let Constraint {
            grammar,
            vocab,
            cache,
            phase,
            ..
        } = self;
        match phase {
            Phase::Finished => false,
            Phase::Waiting { triggers, tail } => {
                if triggers.candidates.binary_search(&id).is_err() {
                    return true;
                }
                let mut m = lock(cache);
                m.trim();
                waiting_allows(&mut m, grammar, vocab, triggers, tail, id)
            }
            Phase::Active(a) => {
                if vocab.is_end(id) {
                    return a.complete;
                }
                let Some(bytes) = vocab.bytes(id).filter(|b| !b.is_empty()) else {
                    return false;
                };
                let mut m = lock(cache);
                m.trim();
                let s = a.state(&mut m);
                run(&mut m, grammar, s, bytes).is_ok()
            }
        }
    }

    /// Advances by the taken token. Err (naming the token) if it is not allowed; the state is then unchanged. An
    /// end token when complete marks the constraint finished.
    pub fn accept(&mut self, id: u32) -> Result<(), Error> {
        let text = |vocab: &Vocab| match vocab.bytes(id) {
            Some(b) => show_bytes(b),
            None if vocab.is_end(id) => "(end)".to_string(),
            None => "(special)".to_string(),
        };
        let rejected = |vocab: &Vocab, why: String| Error::TokenRejected {
            id,
            text: text(vocab),
            why,
        };
        if matches!(self.phase, Phase::Finished) {
            return Err(Error::Finished);
        }
        if self.vocab.is_end(id) {
            return match &self.phase {
                Phase::Active(a) if !a.complete => {
                    let mut m = lock(&self.cache);
                    m.trim();
                    let mut a = a.clone();
                    let s = a.state(&mut m);
                    let msg = format!(
                        "the output is not complete after {}: {}",
                        count_bytes(self.taken),
                        expected(&m, &self.grammar, s)
                    );
                    Err(rejected(&self.vocab, msg))
                }
                _ => {
                    self.phase = Phase::Finished;
                    Ok(())
                }
            };
        }
        let vocab = self.vocab.clone();
        if self.is_active() {
            let bytes = match vocab.bytes(id) {
                Some([]) => return Err(rejected(&vocab, "it has no bytes".into())),
                Some(b) => b,
                None if id as usize >= vocab.len() => {
                    return Err(rejected(
                        &vocab,
                        format!("it is outside the vocabulary of {} tokens", vocab.len()),
                    ))
                }
                None => {
                    return Err(rejected(
                        &vocab,
                        "special tokens are never allowed inside constrained output".into(),
                    ))
                }
            };
            return self.feed(bytes).map_err(|(i, code, why)| {
                if code == AMBIGUOUS {
                    Error::Ambiguous(format!("token {id} {}: {why}", text(&vocab)))
                } else {
                    rejected(&vocab, format!("at its byte {i}, {why}"))
                }
            });
        }
        // Waiting: every token is allowed (special tokens carry no bytes).
        let bytes = vocab.bytes(id).unwrap_or_default();
        self.feed(bytes).map_err(|(_, code, why)| {
            if code == AMBIGUOUS {
                Error::Ambiguous(format!("token {id} {}: {why}", text(&vocab)))
            } else {
                rejected(
                    &vocab,
                    format!("the bytes after the trigger break the grammar: {why}"),
                )
            }
        })
    }

    /// Advances by raw bytes (forced text, e.g. a prompt suffix); Err if they break the grammar (the state is then
    /// unchanged). Before a lazy trigger, the bytes are searched for the trigger like generated ones.
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if matches!(self.phase, Phase::Finished) {
            return Err(Error::Finished);
        }
        self.feed(bytes).map_err(|(offset, code, why)| {
            if code == AMBIGUOUS {
                Error::Ambiguous(format!("byte {offset} of forced text: {why}"))
            } else {
                Error::BytesRejected { offset, why }
            }
        })
    }

    /// Feeds bytes; on failure, the offset in `bytes`, the step's code (`DEAD` or `AMBIGUOUS`) and why, with the
    /// state unchanged.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), (usize, u32, String)> {
        let Constraint {
            grammar,
            cache,
            phase,
            taken,
            ..
        } = self;
        match phase {
            Phase::Finished => Err((0, DEAD, "generation already finished".into())),
            Phase::Active(a) => {
                let mut m = lock(cache);
                m.trim();
                let s = a.state(&mut m);
                match run(&mut m, grammar, s, bytes) {
                    Ok(s) => {
                        *a = Active::at(&m, s);
                        *taken += bytes.len();
                        Ok(())
                    }
                    Err((i, code, at)) => {
                        let why = why(&m, grammar, bytes[i], code, at);
                        Err((
                            i,
                            code,
                            format!("{why} (after {} of output)", count_bytes(*taken + i)),
                        ))
                    }
                }
            }
            Phase::Waiting { triggers, tail } => {
                let mut buf = tail.clone();
                buf.extend_from_slice(bytes);
                let Some(end) = find_trigger(&triggers.list, &buf) else {
                    let cut = buf.len().saturating_sub(triggers.keep);
                    *tail = buf.split_off(cut);
                    *taken += bytes.len();
                    return Ok(());
                };
                let mut m = lock(cache);
                m.trim();
                let mut a = Active::new(grammar.initial.clone(), Partial::None);
                let s = a.state(&mut m);
                match run(&mut m, grammar, s, &buf[end..]) {
                    Ok(s) => {
                        *phase = Phase::Active(Active::at(&m, s));
                        *taken = buf.len() - end;
                        Ok(())
                    }
                    Err((i, code, at)) => {
                        let offset = (end + i).saturating_sub(tail.len());
                        Err((offset, code, why(&m, grammar, buf[end + i], code, at)))
                    }
                }
            }
        }
    }
}

/// Before the trigger: whether token `id` is allowed (it is, unless it completes a trigger and the bytes after it
/// break the grammar).
fn waiting_allows(
    m: &mut Matcher,
    g: &Grammar,
    vocab: &Vocab,
    triggers: &Triggers,
    tail: &[u8],
    id: u32,
) -> bool {
    let Some(bytes) = vocab.bytes(id) else {
        return true;
    };
    let mut buf = tail.to_vec();
    buf.extend_from_slice(bytes);
    let Some(end) = find_trigger(&triggers.list, &buf) else {
        return true;
    };
    if end == buf.len() {
        return true;
    }
    let mut a = Active::new(g.initial.clone(), Partial::None);
    let s = a.state(m);
    run(m, g, s, &buf[end..]).is_ok()
}
