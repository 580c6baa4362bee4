//! How long `Constraint::mask` takes over JSON generations, on a real vocabulary.
//!
//! `cargo run --release -p flint-constrain --example mask_bench [tokenizer.json]`
//!
//! The vocabulary comes from a byte-level BPE `tokenizer.json` (SmolLM2's, 49152 tokens, by default the shared
//! fixture); without one, a synthetic vocabulary of the same size. Each scenario drives a generation: "scripted"
//! takes, each step, the longest allowed token that continues a target JSON text (as a model that knows the
//! answer would); "random" takes random allowed tokens (many distinct states: the cache's worst case).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use flint_constrain::{Constraint, Grammar, Vocab};

const DEFAULT_TOKENIZERS: &[&str] = &[
    "/work/shared/fixtures/real/smollm2-135m-instruct/tokenizer.json",
    "../shared/fixtures/real/smollm2-135m-instruct/tokenizer.json",
    "shared/fixtures/real/smollm2-135m-instruct/tokenizer.json",
];

/// GPT-2's byte-to-character map, inverted.
fn byte_decoder() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter()
        .zip(&cs)
        .map(|(&b, &c)| (char::from_u32(c).unwrap(), b as u8))
        .collect()
}

fn load_vocab(path: &str) -> Option<(Vocab, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let t: serde_json::Value = serde_json::from_str(&text).ok()?;
    let vocab = t.pointer("/model/vocab")?.as_object()?;
    let dec = byte_decoder();
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; vocab.len()];
    for (s, id) in vocab {
        let id = id.as_u64()? as usize;
        if id >= tokens.len() {
            tokens.resize(id + 1, None);
        }
        tokens[id] = s.chars().map(|c| dec.get(&c).copied()).collect();
    }
    let mut end = Vec::new();
    for a in t.get("added_tokens")?.as_array()? {
        let id = a.get("id")?.as_u64()? as usize;
        if a.get("special").and_then(|s| s.as_bool()) == Some(true) && id < tokens.len() {
            tokens[id] = None;
            let content = a.get("content")?.as_str()?;
            if content == "<|im_end|>" || content == "<|endoftext|>" {
                end.push(id as u32);
            }
        }
    }
    Some((
        Vocab::new(tokens, end),
        format!("{path} ({} tokens)", vocab.len()),
    ))
}

/// 49152 tokens: bytes, then pseudo-random 2..8-byte ASCII pieces plus some UTF-8, like a BPE vocabulary.
fn synthetic_vocab() -> Vocab {
    let mut tokens: Vec<Option<Vec<u8>>> = (0..=255u8).map(|b| Some(vec![b])).collect();
    let pieces = [
        "e", "th", "in", " ", "\"", ":", "{", "}", ",", "a", "o", "r", "s", "t", "中", "é", "1",
        "0", "n",
    ];
    let mut x = 0x1234_5678u64;
    while tokens.len() < 49151 {
        let mut t = Vec::new();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for k in 0..(2 + x % 4) {
            t.extend_from_slice(pieces[((x >> (8 * k)) % pieces.len() as u64) as usize].as_bytes());
        }
        tokens.push(Some(t));
    }
    tokens.push(None);
    Vocab::new(tokens, vec![49151])
}

struct Stats {
    name: String,
    times: Vec<f64>,
}

impl Stats {
    fn report(&mut self) {
        let n = self.times.len();
        if n == 0 {
            return;
        }
        let first = self.times[0];
        let total: f64 = self.times.iter().sum();
        self.times.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| self.times[((n as f64 - 1.0) * p) as usize];
        println!(
            "{:<44} {:>4} steps  mean {:>7.1} µs  p50 {:>7.1}  p90 {:>7.1}  max {:>8.1}  first {:>8.1}  = {:>5.1}% of a 5 ms step",
            self.name,
            n,
            total / n as f64,
            pct(0.5),
            pct(0.9),
            self.times[n - 1],
            first,
            total / n as f64 / 5000.0 * 100.0
        );
    }
}

fn mask_timed(c: &mut Constraint, logits: &mut [f32], stats: &mut Stats) {
    logits.iter_mut().for_each(|l| *l = 0.0);
    let t = Instant::now();
    c.mask(logits).expect("mask");
    stats.times.push(t.elapsed().as_secs_f64() * 1e6);
}

/// Follows `target` with the longest allowed token each step; returns the tokens taken.
fn scripted(mut c: Constraint, vocab: &Vocab, target: &str, name: &str) -> usize {
    let mut stats = Stats {
        name: name.to_string(),
        times: Vec::new(),
    };
    let mut logits = vec![0.0f32; vocab.len()];
    let mut rest = target.as_bytes();
    while !rest.is_empty() {
        mask_timed(&mut c, &mut logits, &mut stats);
        let best = (0..vocab.len() as u32)
            .filter(|&i| logits[i as usize].is_finite())
            .filter_map(|i| {
                vocab
                    .bytes(i)
                    .filter(|b| rest.starts_with(b))
                    .map(|b| (b.len(), i))
            })
            .max()
            .expect("some allowed token continues the target");
        c.accept(best.1).expect("accept");
        rest = &rest[best.0..];
    }
    mask_timed(&mut c, &mut logits, &mut stats);
    assert!(c.is_complete());
    let n = stats.times.len();
    stats.report();
    n
}

fn random(mut c: Constraint, vocab: &Vocab, seed: u64, name: &str) {
    let mut stats = Stats {
        name: name.to_string(),
        times: Vec::new(),
    };
    let mut logits = vec![0.0f32; vocab.len()];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for step in 0..200 {
        mask_timed(&mut c, &mut logits, &mut stats);
        let allowed: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&i| logits[i as usize].is_finite() && (step > 150 || !vocab.is_end(i)))
            .collect();
        if allowed.is_empty() {
            break;
        }
        let closers: Vec<u32> = allowed
            .iter()
            .copied()
            .filter(|&i| {
                vocab
                    .bytes(i)
                    .is_some_and(|b| matches!(b, b"\"" | b"}" | b"]" | b"\"}" | b"}," | b"\","))
            })
            .collect();
        let end = allowed.iter().copied().find(|&i| vocab.is_end(i));
        let pick = if let Some(end) = end.filter(|_| step > 150) {
            end
        } else if !closers.is_empty() && (step > 120 || rnd(4) == 0) {
            closers[rnd(closers.len())]
        } else {
            allowed[rnd(allowed.len())]
        };
        c.accept(pick).expect("accept");
        if c.is_finished() {
            break;
        }
    }
    stats.report();
}

fn main() {
    let arg = std::env::args().nth(1);
    let loaded = arg
        .iter()
        .map(String::as_str)
        .chain(DEFAULT_TOKENIZERS.iter().copied())
        .find_map(load_vocab);
    let (vocab, what) = match loaded {
        Some(v) => v,
        None => (
            synthetic_vocab(),
            "a synthetic vocabulary (49152 tokens)".to_string(),
        ),
    };
    let vocab = Arc::new(vocab);
    println!("vocabulary: {what}; {vocab:?}");

    let schema_text = r#"{"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"},
            "zip": {"type": "string", "maxLength": 10}}, "required": ["city"]},
        "score": {"type": "number", "minimum": -100, "maximum": 100}},
        "required": ["name", "age", "tags"]}"#;
    let t = Instant::now();
    let schema = Arc::new(Grammar::from_json_schema_str(schema_text).expect("schema"));
    println!(
        "schema compiled in {:.2} ms ({} rules)",
        t.elapsed().as_secs_f64() * 1e3,
        schema.rule_count()
    );
    let target = r#"{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org", "tags": ["mathematician", "writer", "the first programmer"], "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH"}, "score": 99.5}"#;
    let pretty = "{\n  \"name\": \"Grace Hopper\",\n  \"age\": 85,\n  \"tags\": [\"admiral\", \"COBOL\"],\n  \"address\": {\n    \"city\": \"Arlington\"\n  }\n}";

    let t = Instant::now();
    let pristine = Constraint::new(schema.clone(), vocab.clone());
    println!(
        "constraint created in {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    scripted(
        pristine.clone(),
        &vocab,
        target,
        "schema, scripted, cold cache",
    );
    scripted(
        pristine.clone(),
        &vocab,
        target,
        "schema, scripted, same again (warm)",
    );
    scripted(
        pristine.clone(),
        &vocab,
        pretty,
        "schema, scripted, other text (warm)",
    );
    scripted(
        Constraint::new(schema.clone(), vocab.clone()),
        &vocab,
        pretty,
        "schema, scripted, other text (cold)",
    );

    // Bounded strings: every character is a new matcher state (the count), so the cache cannot help.
    let bounded = Arc::new(
        Grammar::from_json_schema_str(r#"{"type": "string", "maxLength": 300}"#).expect("schema"),
    );
    let sentence = r#""The quick brown fox jumps over the lazy dog, then writes a long sentence about it: naïve café, 中文, done.""#;
    scripted(
        Constraint::new(bounded, vocab.clone()),
        &vocab,
        sentence,
        "string with maxLength 300 (worst case)",
    );

    let any = Arc::new(Grammar::json_value());
    scripted(
        Constraint::new(any.clone(), vocab.clone()),
        &vocab,
        target,
        "any JSON, scripted, cold cache",
    );
    for seed in 1..=3 {
        random(
            Constraint::new(any.clone(), vocab.clone()),
            &vocab,
            seed,
            &format!("any JSON, random walk {seed}, cold"),
        );
    }
    random(
        Constraint::new(schema.clone(), vocab.clone()),
        &vocab,
        7,
        "schema, random walk, cold",
    );

    let t = Instant::now();
    let lazy = Constraint::lazy(any, vocab.clone(), vec![b"<tool_call>".to_vec()]);
    println!(
        "lazy constraint created in {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut lazy = lazy;
    let mut logits = vec![0.0f32; vocab.len()];
    let t = Instant::now();
    for _ in 0..20 {
        lazy.mask(&mut logits).expect("mask");
    }
    println!(
        "lazy mask before the trigger: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / 20.0
    );
}
