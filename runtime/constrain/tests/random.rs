//! Randomized walks: pick random allowed tokens from a synthetic vocabulary until an end token, then check the
//! output parses as JSON and satisfies the schema (with a checker of its own, independent of the compiler).

mod common;

use std::sync::Arc;

use common::Rng;

use flint_constrain::{Constraint, Grammar, Vocab};
use serde_json::{json, Value};

/// Every single byte, JSON-ish fragments, whole and split UTF-8 characters, two specials, and an end token.
fn synthetic_vocab() -> (Arc<Vocab>, u32, Vec<bool>) {
    let mut toks: Vec<Option<Vec<u8>>> = (0..=255u8).map(|b| Some(vec![b])).collect();
    let words = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        " ",
        "\n",
        "\n  ",
        "\n    ",
        "{\"",
        "\"}",
        "\":",
        "\": ",
        "\", \"",
        "\",",
        ", ",
        "},",
        "],",
        "true",
        "false",
        "null",
        "tr",
        "ue",
        "nu",
        "ll",
        "-",
        "0",
        "12",
        "-1",
        "3.5",
        "e",
        "E+",
        "0.",
        "\\n",
        "\\u00e9",
        "\\",
        "u00",
        "\\ud83d\\ude00",
        "é",
        "中",
        "😀",
        "\u{10FFFF}",
        "name",
        "\"name\"",
        "age",
        "\"age\": ",
        "tags",
        "address",
        "city",
        "zip",
        "value",
        "children",
        "email",
        "red",
        "\"red\"",
        "blue",
        "  ",
        "abc",
        "hello world",
        // Longer than the trie's 16 bytes: checked one by one.
        "a token longer than sixteen bytes",
        "                                        ",
        "\", \"age\": 12, \"tags\": [\"",
        "0123456789012345678",
        "\"}, {\"value\": 1, \"children\": []}",
    ];
    for w in words {
        toks.push(Some(w.as_bytes().to_vec()));
    }
    for ch in ["é", "中", "😀"] {
        let b = ch.as_bytes();
        for cut in 1..b.len() {
            toks.push(Some(b[..cut].to_vec()));
            toks.push(Some(b[cut..].to_vec()));
        }
    }
    toks.push(None);
    toks.push(None);
    let end = toks.len() as u32;
    toks.push(Some(b"<|end|>".to_vec()));
    // Tokens that close something: preferred so that walks end.
    let closing: Vec<bool> = toks
        .iter()
        .map(|t| {
            t.as_deref()
                .is_some_and(|b| matches!(b, b"\"" | b"}" | b"]" | b"\"}" | b"}," | b"]," | b"0"))
        })
        .collect();
    (Arc::new(Vocab::new(toks, vec![end])), end, closing)
}

fn walk(g: &Arc<Grammar>, vocab: &Arc<Vocab>, end: u32, closing: &[bool], seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut c = Constraint::new(g.clone(), vocab.clone());
    let n = vocab.len() + 3;
    let mut out = Vec::new();
    for step in 0..5000 {
        let mut logits = vec![0.0f32; n];
        c.mask(&mut logits).unwrap_or_else(|e| {
            panic!(
                "seed {seed} step {step}: {e}; output so far {:?}",
                String::from_utf8_lossy(&out)
            )
        });
        let allowed: Vec<u32> = (0..n as u32)
            .filter(|&i| logits[i as usize].is_finite())
            .collect();
        assert!(!allowed.is_empty());
        assert_eq!(
            allowed.contains(&end),
            c.is_complete(),
            "end allowed exactly when complete"
        );
        if c.can_continue() {
            assert!(
                allowed.iter().any(|&i| i != end),
                "can continue, but only the end is allowed"
            );
        }
        assert!(
            allowed.iter().all(|&i| (i as usize) < vocab.len()),
            "ids beyond the vocabulary are masked"
        );
        // mask and allows agree.
        for _ in 0..8 {
            let i = rng.below(n) as u32;
            assert_eq!(c.allows(i), logits[i as usize].is_finite(), "token {i}");
        }
        let late = step > 60;
        let pick = if allowed.contains(&end) && (late || rng.chance(0.2)) {
            end
        } else {
            let closers: Vec<u32> = allowed
                .iter()
                .copied()
                .filter(|&i| closing.get(i as usize) == Some(&true))
                .collect();
            if !closers.is_empty() && rng.chance(if late { 0.9 } else { 0.35 }) {
                closers[rng.below(closers.len())]
            } else {
                allowed[rng.below(allowed.len())]
            }
        };
        c.accept(pick)
            .unwrap_or_else(|e| panic!("seed {seed}: a masked-in token was refused: {e}"));
        if pick == end {
            assert!(c.is_finished());
            return out;
        }
        out.extend_from_slice(vocab.bytes(pick).unwrap());
    }
    panic!(
        "seed {seed}: no end after 5000 tokens: {:?}",
        String::from_utf8_lossy(&out)
    );
}

/// A checker for the supported subset of JSON Schema.
fn valid(schema: &Value, root: &Value, v: &Value) -> Result<(), String> {
    let m = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err("false schema".into()),
        Value::Object(m) => m,
        _ => return Err("bad schema".into()),
    };
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        let target = root.pointer(&r[1..]).ok_or("dangling ref")?;
        return valid(target, root, v);
    }
    if let Some(list) = m.get("anyOf").and_then(Value::as_array) {
        return if list.iter().any(|s| valid(s, root, v).is_ok()) {
            Ok(())
        } else {
            Err(format!("{v} matches no anyOf branch"))
        };
    }
    if let Some(list) = m.get("enum").and_then(Value::as_array) {
        if !list.contains(v) {
            return Err(format!("{v} not in enum"));
        }
    }
    if let Some(c) = m.get("const") {
        if c != v {
            return Err(format!("{v} is not the const"));
        }
    }
    if let Some(t) = m.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{v} is not of type {t}"));
        }
    }
    let num = |k: &str| m.get(k).and_then(Value::as_f64);
    if let Some(x) = v.as_f64() {
        if num("minimum").is_some_and(|b| x < b) || num("maximum").is_some_and(|b| x > b) {
            return Err(format!("{v} out of bounds"));
        }
        if num("exclusiveMinimum").is_some_and(|b| x <= b)
            || num("exclusiveMaximum").is_some_and(|b| x >= b)
        {
            return Err(format!("{v} out of exclusive bounds"));
        }
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count() as f64;
        if num("minLength").is_some_and(|b| n < b) || num("maxLength").is_some_and(|b| n > b) {
            return Err(format!("{v} has the wrong length"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = m.get("properties").and_then(Value::as_object);
        for r in m
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap_or_default()) {
                return Err(format!("missing required {r}"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => valid(s, root, x)?,
                None => {
                    if let Some(s) = m.get("additionalProperties") {
                        valid(s, root, x).map_err(|e| format!("extra property {k}: {e}"))?;
                    }
                }
            }
        }
    }
    if let Some(arr) = v.as_array() {
        let prefix = m
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[][..], |p| p.as_slice());
        for (i, x) in arr.iter().enumerate() {
            match prefix.get(i) {
                Some(s) => valid(s, root, x)?,
                None => {
                    if let Some(s) = m.get("items") {
                        valid(s, root, x)?;
                    }
                }
            }
        }
        let n = arr.len() as f64;
        if num("minItems").is_some_and(|b| n < b) || num("maxItems").is_some_and(|b| n > b) {
            return Err(format!("array of {n} items out of bounds"));
        }
    }
    Ok(())
}

fn schemas() -> Vec<Value> {
    vec![
        json!({"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "email": {"type": "string"},
            "tags": {"type": "array", "items": {"enum": ["red", "blue", "green"]}, "maxItems": 3},
            "address": {"type": "object", "properties": {"city": {"type": "string"},
                "zip": {"type": "string", "minLength": 5, "maxLength": 5}}, "required": ["city"]}
        }, "required": ["name", "age"], "additionalProperties": false}),
        json!({"type": "array", "items": {"type": "number", "minimum": -5, "exclusiveMaximum": 5}, "minItems": 1, "maxItems": 4}),
        json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": -3}, {"type": "null"}, {"type": "boolean"}]}),
        json!({"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer", "exclusiveMinimum": -10, "maximum": 99},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["value"]}},
            "$ref": "#/$defs/node"}),
        json!({"type": "object", "additionalProperties": {"type": "integer", "maximum": -2}}),
        json!({"type": "array", "prefixItems": [{"type": "string", "minLength": 1}, {"type": "boolean"}, {"const": "red"}], "items": false, "minItems": 2}),
        json!({"type": ["number", "null"], "minimum": -100, "maximum": 100}),
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "null"}}}),
        json!({}),
    ]
}

#[test]
fn random_walks_produce_valid_json() {
    let (vocab, end, closing) = synthetic_vocab();
    for (k, s) in schemas().into_iter().enumerate() {
        let g =
            Arc::new(Grammar::from_json_schema(&s).unwrap_or_else(|e| panic!("schema {k}: {e}")));
        let mut lengths = Vec::new();
        for seed in 0..50u64 {
            let out = walk(&g, &vocab, end, &closing, seed * 1000 + k as u64);
            let text = String::from_utf8(out)
                .unwrap_or_else(|e| panic!("schema {k} seed {seed}: not UTF-8: {e}"));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("schema {k} seed {seed}: {text:?} is not JSON: {e}"));
            if let Err(e) = valid(&s, &s, &v) {
                panic!("schema {k} seed {seed}: {text} does not validate: {e}");
            }
            if std::env::var_os("SHOW_WALKS").is_some() {
                eprintln!("schema {k} seed {seed}: {text}");
            }
            lengths.push(text.len());
        }
        // The walks explore: not every output is the same.
        lengths.sort_unstable();
        lengths.dedup();
        assert!(
            lengths.len() > 3,
            "schema {k}: walks too uniform: {lengths:?}"
        );
    }
}

#[test]
fn random_walks_over_generic_json_and_gbnf() {
    let (vocab, end, closing) = synthetic_vocab();
    let g = Arc::new(Grammar::json_value());
    for seed in 0..40u64 {
        let out = walk(&g, &vocab, end, &closing, seed);
        let text = String::from_utf8(out).unwrap();
        serde_json::from_str::<Value>(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: {text:?}: {e}"));
    }
    // A GBNF grammar: check the output against its own definition.
    let g = Arc::new(
        Grammar::from_gbnf(
            r#"root ::= item ("," item){0,4}  item ::= [a-c]+ "=" ("中" | [0-9]{1,3})"#,
        )
        .unwrap(),
    );
    for seed in 0..40u64 {
        let out = walk(&g, &vocab, end, &closing, seed);
        let text = String::from_utf8(out).unwrap();
        let items: Vec<&str> = text.split(',').collect();
        assert!((1..=5).contains(&items.len()), "{text}");
        for it in items {
            let (k, v) = it.split_once('=').unwrap_or_else(|| panic!("{text}"));
            assert!(
                !k.is_empty() && k.bytes().all(|b| (b'a'..=b'c').contains(&b)),
                "{text}"
            );
            assert!(
                v == "中" || ((1..=3).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())),
                "{text}"
            );
        }
    }
}
