//! Nothing from outside may panic: random grammar text, random schemas, random token ids and bytes.

mod common;

use std::sync::Arc;

use common::{byte_vocab, Rng};
use flint_constrain::{Constraint, Grammar};
use serde_json::{json, Value};

/// Drives a compiled grammar with random bytes and ids; only errors, never panics.
fn exercise(g: Grammar, rng: &mut Rng) {
    // The printed grammar parses back to itself.
    let text = g.to_gbnf();
    let again = Grammar::from_gbnf(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again.to_gbnf(), text);
    let mut c = Constraint::new(Arc::new(g), byte_vocab());
    for _ in 0..30 {
        let mut logits = vec![0.0f32; 300];
        let ok = c.mask(&mut logits).is_ok();
        let allowed: Vec<u32> = (0..300)
            .filter(|&i| logits[i as usize].is_finite())
            .collect();
        let id = if ok && !allowed.is_empty() && rng.below(4) > 0 {
            allowed[rng.below(allowed.len())]
        } else {
            rng.below(400) as u32
        };
        let _ = c.allows(id);
        let _ = c.accept(id);
        let bytes: Vec<u8> = (0..rng.below(3)).map(|_| rng.below(256) as u8).collect();
        let _ = c.accept_bytes(&bytes);
        let _ = (c.is_complete(), c.can_continue(), c.is_active());
    }
}

#[test]
fn random_gbnf_text_never_panics() {
    let pieces = [
        "root",
        " ::= ",
        "a",
        "b",
        " ::= ",
        "\"x\"",
        "\"",
        "[a-z]",
        "[^\"]",
        "[",
        "]",
        "(",
        ")",
        "|",
        "*",
        "+",
        "?",
        "{2}",
        "{1,3}",
        "{,2}",
        "{3,}",
        "{",
        "}",
        ",",
        ".",
        "\\",
        "\\x41",
        "\\u00e9",
        "\\U0001F600",
        "\\q",
        "#c\n",
        "\n",
        " ",
        "-",
        "^",
        "é",
        "\"\"",
        "root ::= ",
        "a ::= ",
        "b ::= ",
        "{10000}",
        "{0,10000}",
        "<",
        "::",
    ];
    let mut rng = Rng(1);
    let mut compiled = 0;
    for _ in 0..3000 {
        let mut src = String::from("root ::= ");
        for _ in 0..rng.below(14) {
            src.push_str(pieces[rng.below(pieces.len())]);
        }
        if let Ok(g) = Grammar::from_gbnf(&src) {
            compiled += 1;
            if compiled % 2 == 0 {
                exercise(g, &mut rng);
            }
        }
    }
    assert!(
        compiled > 100,
        "the generator should make some valid grammars ({compiled})"
    );
    // Raw bytes as text.
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.below(128) as u8).collect();
        let _ = Grammar::from_gbnf(&String::from_utf8_lossy(&bytes));
    }
}

fn random_schema(rng: &mut Rng, depth: usize) -> Value {
    let keys = [
        "type",
        "properties",
        "required",
        "items",
        "prefixItems",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "anyOf",
        "$ref",
        "additionalProperties",
        "title",
        "$defs",
        "pattern",
    ];
    let scalars = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-3),
        json!(7),
        json!(2.5),
        json!(1e300),
        json!(-1e19),
        json!("string"),
        json!("integer"),
        json!("number"),
        json!("object"),
        json!("array"),
        json!("x"),
        json!(["a", 1]),
        json!(["string", "null"]),
        json!([]),
        json!("#"),
        json!("#/$defs/a"),
        json!("#/nothing"),
        json!(10001),
    ];
    if depth > 3 || rng.below(4) == 0 {
        return scalars[rng.below(scalars.len())].clone();
    }
    let mut m = serde_json::Map::new();
    for _ in 0..rng.below(5) {
        let k = keys[rng.below(keys.len())];
        let v = match k {
            "properties" | "$defs" => {
                let mut p = serde_json::Map::new();
                for name in ["a", "b"] {
                    if rng.below(2) == 0 {
                        p.insert(name.into(), random_schema(rng, depth + 1));
                    }
                }
                Value::Object(p)
            }
            "anyOf" | "prefixItems" => Value::Array(
                (0..rng.below(3))
                    .map(|_| random_schema(rng, depth + 1))
                    .collect(),
            ),
            "items" | "additionalProperties" => random_schema(rng, depth + 1),
            "required" => json!(["a", "c"]),
            _ => scalars[rng.below(scalars.len())].clone(),
        };
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

#[test]
fn random_schemas_never_panic() {
    let mut rng = Rng(2);
    let mut compiled = 0;
    for _ in 0..3000 {
        let s = random_schema(&mut rng, 0);
        if let Ok(g) = Grammar::from_json_schema(&s) {
            compiled += 1;
            if compiled % 3 == 0 {
                exercise(g, &mut rng);
            }
        }
        let _ = Grammar::from_json_schema_str(&s.to_string());
    }
    assert!(compiled > 100, "{compiled}");
    for text in ["", "{", "[1,", "{\"type\": \"string\"", "\"\\u", "nul"] {
        assert!(Grammar::from_json_schema_str(text).is_err());
    }
}
