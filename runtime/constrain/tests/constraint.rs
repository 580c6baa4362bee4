//! The constraint's life: masks, forks, lazy triggers, end tokens, special tokens and ids beyond the vocabulary.

mod common;

use std::sync::Arc;

use common::gbnf;
use flint_constrain::{Constraint, Error, Grammar, Vocab};

/// A small vocabulary: `tokens` as given, `None` for "<special>", then the end token.
fn vocab(tokens: &[&str]) -> (Arc<Vocab>, u32) {
    let mut t: Vec<Option<Vec<u8>>> = tokens
        .iter()
        .map(|s| {
            if *s == "<special>" {
                None
            } else {
                Some(s.as_bytes().to_vec())
            }
        })
        .collect();
    let end = t.len() as u32;
    t.push(Some(b"</s>".to_vec()));
    (Arc::new(Vocab::new(t, vec![end])), end)
}

fn allowed(c: &mut Constraint, n: usize) -> Vec<usize> {
    let mut logits = vec![0.0f32; n];
    c.mask(&mut logits).unwrap();
    (0..n).filter(|&i| logits[i].is_finite()).collect()
}

fn id(tokens: &[&str], s: &str) -> u32 {
    tokens.iter().position(|t| *t == s).unwrap() as u32
}

#[test]
fn mask_matches_allows_and_handles_end_and_specials() {
    let toks = ["a", "b", "ab", "abc", "<special>", "c", ""];
    let (v, end) = vocab(&toks);
    let g = gbnf(r#"root ::= "ab" "c"?"#);
    let mut c = Constraint::new(g, v.clone());
    // Logits longer than the vocabulary: the extra ids are masked.
    assert_eq!(allowed(&mut c, 12), vec![0, 2, 3]);
    for i in 0..12u32 {
        assert_eq!(c.allows(i), [0, 2, 3].contains(&i), "{i}");
    }
    c.accept(id(&toks, "ab")).unwrap();
    assert!(c.is_complete() && c.can_continue());
    assert_eq!(allowed(&mut c, 12), vec![5, end as usize]);
    let e = c.accept(4).unwrap_err();
    assert!(
        e.to_string().contains("special tokens are never allowed"),
        "{e}"
    );
    let e = c.accept(6).unwrap_err();
    assert!(e.to_string().contains("has no bytes"), "{e}");
    let e = c.accept(11).unwrap_err();
    assert!(
        e.to_string().contains("outside the vocabulary of 8 tokens"),
        "{e}"
    );
    c.accept(5).unwrap();
    assert!(c.is_complete() && !c.can_continue());
    assert_eq!(allowed(&mut c, 8), vec![end as usize]);
    c.accept(end).unwrap();
    assert!(c.is_finished() && !c.is_active());
    assert_eq!(c.accept(0), Err(Error::Finished));
    assert!(!c.allows(end));
}

#[test]
fn dead_end_is_an_error_and_leaves_logits_alone() {
    let (v, _) = vocab(&["x", "y"]);
    let g = gbnf(r#"root ::= "z""#);
    let mut c = Constraint::new(g, v);
    let mut logits = vec![1.0f32; 3];
    let e = c.mask(&mut logits).unwrap_err();
    assert!(matches!(e, Error::DeadEnd(_)), "{e}");
    assert!(e.to_string().contains("expected \"z\""), "{e}");
    assert_eq!(logits, vec![1.0; 3]);
}

#[test]
fn clone_forks_independently() {
    let toks = ["{", "}", "\"", "a", "b", ":", "1", "2", ",", " "];
    let (v, end) = vocab(&toks);
    let g = Arc::new(Grammar::json_value());
    let mut c = Constraint::new(g, v);
    for t in ["{", "\"", "a", "\"", ":"] {
        c.accept(id(&toks, t)).unwrap();
    }
    let mut fork = c.clone();
    c.accept(id(&toks, "1")).unwrap();
    fork.accept(id(&toks, "\"")).unwrap();
    // The original is after a number; the fork inside a string.
    assert!(fork.allows(id(&toks, "\"")) && !c.allows(id(&toks, "\"")));
    assert!(fork.allows(id(&toks, "b")) && !c.allows(id(&toks, "b")));
    c.accept(id(&toks, "}")).unwrap();
    assert!(c.is_complete() && !fork.is_complete());
    for t in ["b", "\"", "}"] {
        fork.accept(id(&toks, t)).unwrap();
    }
    assert!(fork.is_complete());
    c.accept(end).unwrap();
    assert!(c.is_finished() && !fork.is_finished());
    // Forks keep working after the shared cache is cleared by heavy use (many distinct states).
    let g = gbnf(r#"root ::= [a-z]{0,3000}"#);
    let (v, _) = vocab(&["a", "b", "c"]);
    let mut c = Constraint::new(g, v);
    let keep = c.clone();
    for _ in 0..2100 {
        let _ = allowed(&mut c, 4);
        c.accept(0).unwrap();
    }
    let mut keep = keep;
    assert_eq!(allowed(&mut keep, 4), vec![0, 1, 2, 3]);
}

#[test]
fn lazy_trigger_split_across_tokens() {
    let toks = [
        "Hello",
        " <tool",
        "_call>",
        "{",
        "}",
        "<tool_call>",
        "x",
        "<special>",
    ];
    let (v, end) = vocab(&toks);
    let g = Arc::new(Grammar::json_object());
    let mut c = Constraint::lazy(g, v, vec![b"<tool_call>".to_vec()]);
    assert!(!c.is_active() && c.is_complete() && c.can_continue());
    // Before the trigger everything is allowed, special and end tokens too.
    assert_eq!(allowed(&mut c, 9), (0..9).collect::<Vec<_>>());
    c.accept(0).unwrap();
    c.accept(7).unwrap();
    c.accept(1).unwrap();
    assert!(!c.is_active());
    c.accept(2).unwrap();
    assert!(c.is_active() && !c.is_complete());
    assert_eq!(allowed(&mut c, 9), vec![3]);
    c.accept(3).unwrap();
    c.accept(4).unwrap();
    assert_eq!(allowed(&mut c, 9), vec![end as usize]);
    c.accept(end).unwrap();
    assert!(c.is_finished());
    // A lazy constraint may also finish without ever triggering.
    let (v, end) = vocab(&toks);
    let mut c = Constraint::lazy(
        Arc::new(Grammar::json_object()),
        v,
        vec![b"<tool_call>".to_vec()],
    );
    c.accept(0).unwrap();
    c.accept(end).unwrap();
    assert!(c.is_finished());
}

#[test]
fn lazy_token_carrying_the_trigger_tail_and_grammar_bytes() {
    let toks = [
        "<tool",
        "_call>{",
        "_call>x",
        "_call>",
        "<tool_call>{\"",
        "<tool_call>}",
        "a",
        "\"",
        ":",
        "}",
        "ok",
    ];
    let (v, _) = vocab(&toks);
    let g = Arc::new(Grammar::json_object());
    let mut c = Constraint::lazy(g.clone(), v.clone(), vec![b"<tool_call>".to_vec()]);
    // Nothing pending: tokens holding the whole trigger are checked on what follows it.
    let a = allowed(&mut c, toks.len() + 1);
    assert!(a.contains(&4) && !a.contains(&5), "{a:?}");
    assert!(
        a.contains(&1) && a.contains(&2) && a.contains(&3),
        "without `<tool` before them these trigger nothing"
    );
    c.accept(0).unwrap();
    // After "<tool": "_call>{" and "_call>" complete it validly, "_call>x" would put "x" into the grammar.
    let a = allowed(&mut c, toks.len() + 1);
    assert!(a.contains(&1) && a.contains(&3) && !a.contains(&2), "{a:?}");
    assert!(!c.allows(2) && c.allows(1));
    let e = c.clone().accept(2).unwrap_err();
    assert!(
        e.to_string()
            .contains("the bytes after the trigger break the grammar"),
        "{e}"
    );
    c.accept(1).unwrap();
    assert!(c.is_active());
    // The "{" is inside the grammar already.
    assert!(c.allows(id(&toks, "}")) && c.allows(id(&toks, "\"")) && !c.allows(id(&toks, "ok")));
    // A token with the whole trigger and more.
    let mut c = Constraint::lazy(g, v, vec![b"<tool_call>".to_vec(), b"[TOOL]".to_vec()]);
    c.accept(6).unwrap();
    c.accept(4).unwrap();
    assert!(c.is_active());
    for t in ["a", "\"", ":", "\"", "ok", "\"", "}"] {
        c.accept(id(&toks, t)).unwrap();
    }
    assert!(c.is_complete());
}

#[test]
fn lazy_trigger_in_forced_bytes() {
    let (v, _) = vocab(&["{", "}"]);
    let mut c = Constraint::lazy(
        Arc::new(Grammar::json_object()),
        v,
        vec![b"<call>".to_vec()],
    );
    c.accept_bytes(b"text <ca").unwrap();
    let e = c.clone().accept_bytes(b"ll>x").unwrap_err();
    assert!(matches!(e, Error::BytesRejected { offset: 3, .. }), "{e}");
    c.accept_bytes(b"ll>{").unwrap();
    assert!(c.is_active() && c.allows(1));
    // An empty trigger: active at once.
    let (v, _) = vocab(&["{", "}"]);
    let c = Constraint::lazy(Arc::new(Grammar::json_object()), v, vec![Vec::new()]);
    assert!(c.is_active());
}

#[test]
fn end_tokens_beyond_the_vocabulary_and_with_bytes() {
    // End id 5 is past the 3 tokens; it still counts when the logits reach it.
    let v = Arc::new(Vocab::new(
        vec![
            Some(b"a".to_vec()),
            Some(b"b".to_vec()),
            Some(b"a".to_vec()),
        ],
        vec![5, 1],
    ));
    let g = gbnf(r#"root ::= "a"+"#);
    let mut c = Constraint::new(g, v);
    assert_eq!(allowed(&mut c, 7), vec![0, 2]);
    c.accept(2).unwrap();
    // "b" is an end token: allowed as an end when complete, never for its bytes.
    assert_eq!(allowed(&mut c, 7), vec![0, 1, 2, 5]);
    c.accept(1).unwrap();
    assert!(c.is_finished());
}

#[test]
fn mask_never_leaves_nothing_while_the_grammar_can_continue() {
    // Every state of a JSON generation over a byte vocabulary, with many forks.
    let v = common::byte_vocab();
    let g = Arc::new(Grammar::json_value());
    let mut c = Constraint::new(g, v);
    let text = br#"{"a": [1, -2.5e3, "x\u00e9\n", true, null, {}], "b": {"c": []}}"#;
    for &b in text.iter() {
        let mut logits = vec![0.0f32; 257];
        c.mask(&mut logits).unwrap();
        assert!(
            logits[..256].iter().any(|l| l.is_finite()),
            "can continue, so some byte is allowed"
        );
        assert!(logits[usize::from(b)].is_finite(), "{}", b as char);
        c.accept(u32::from(b)).unwrap();
    }
    assert!(c.is_complete() && !c.can_continue());
}

#[test]
fn constraints_are_send_and_grammars_sync() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<Constraint>();
    sync::<Grammar>();
    sync::<Vocab>();
    // Forks on threads share the cache.
    let v = common::byte_vocab();
    let c = Constraint::new(Arc::new(Grammar::json_value()), v);
    let handles: Vec<_> = (0..3)
        .map(|k| {
            let mut c = c.clone();
            std::thread::spawn(move || {
                let text = format!("[{k}, \"{}\"]", "z".repeat(k));
                for b in text.bytes() {
                    let mut logits = vec![0.0f32; 257];
                    c.mask(&mut logits).unwrap();
                    c.accept(u32::from(b)).unwrap();
                }
                c.is_complete()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}

#[test]
fn mask_agrees_with_allows_on_counted_repetitions() {
    // Runs and chains longer than the trie depth share masks between counts: check every token at every step.
    let mut toks: Vec<String> = (1..=40).map(|k| "a".repeat(k)).collect();
    toks.extend(
        [
            "b",
            "ab",
            "ba",
            "\"",
            "a\"",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
            "\\n",
            "é",
            "aé",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
    let (v, end) = vocab(&refs);
    let n = v.len() + 1;
    for src in [
        r#"root ::= "\"" [ab]{30,50} "\"""#,
        r#"root ::= [a]{0,45} "b""#,
        r#"root ::= ( "a" | "é" ){20} ( "b" | "\"" )"#,
    ] {
        let g = gbnf(src);
        for seed in 0..6u64 {
            let mut c = Constraint::new(g.clone(), v.clone());
            let mut x = seed + 1;
            for _ in 0..200 {
                let a = allowed(&mut c, n);
                for i in 0..n as u32 {
                    assert_eq!(
                        c.allows(i),
                        a.contains(&(i as usize)),
                        "{src}: token {i} ({:?})",
                        refs.get(i as usize)
                    );
                }
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pick = a[(x >> 33) as usize % a.len()] as u32;
                c.accept(pick).unwrap();
                if pick == end {
                    break;
                }
            }
        }
    }
    // Schemas with long bounded strings and arrays, through the same check.
    let g = Arc::new(
        Grammar::from_json_schema(&serde_json::json!({"type": "array", "items": {"type": "string", "minLength": 18, "maxLength": 40}, "maxItems": 30}))
            .unwrap(),
    );
    let (v, _) = vocab(&[
        "[",
        "]",
        ",",
        "\"",
        "a",
        "aaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
        "\"aaaaaaaaaaaaaaaaaa\"",
        "\", \"",
    ]);
    let mut c = Constraint::new(g, v.clone());
    let n = v.len() + 1;
    let mut x = 7u64;
    for _ in 0..300 {
        let a = allowed(&mut c, n);
        for i in 0..n as u32 {
            assert_eq!(c.allows(i), a.contains(&(i as usize)), "token {i}");
        }
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pick = a[(x >> 33) as usize % a.len()] as u32;
        c.accept(pick).unwrap();
        if c.is_finished() {
            break;
        }
    }
}
