//! Matching bytes: whole strings, prefixes, UTF-8 split across calls, invalid UTF-8, and the matcher's bounds.

mod common;

use common::{byte_vocab, gbnf, matches, prefix, END};
use flint_constrain::{Constraint, Error};

#[test]
fn accepts_and_rejects_byte_by_byte() {
    let g =
        gbnf(r#"root ::= "{" ws pair ("," ws pair)* "}"  pair ::= [a-z]+ ":" [0-9]+  ws ::= " "?"#);
    for ok in ["{a:1}", "{ ab:12, c:3}", "{x:0,y:1,z:2}"] {
        assert!(matches(&g, ok.as_bytes()), "{ok}");
    }
    for bad in [
        "{}", "{a:}", "{a:1,}", "{a:1} ", " {a:1}", "{A:1}", "{a:1", "{  a:1}",
    ] {
        assert!(!matches(&g, bad.as_bytes()), "{bad}");
    }
    assert!(prefix(&g, b"{ ab:1"));
    assert!(!prefix(&g, b"{ ab;"));
}

#[test]
fn utf8_split_across_calls() {
    let g = gbnf("root ::= \"é\" [α-ω]+ \"😀\"");
    let text = "éαβω😀".as_bytes();
    // Every way of cutting the text into two calls, and byte by byte.
    for cut in 0..=text.len() {
        let mut c = Constraint::new(g.clone(), byte_vocab());
        c.accept_bytes(&text[..cut]).unwrap();
        assert_eq!(c.is_complete(), cut == text.len());
        c.accept_bytes(&text[cut..]).unwrap();
        assert!(c.is_complete());
    }
    let mut c = Constraint::new(g.clone(), byte_vocab());
    for (i, &b) in text.iter().enumerate() {
        assert!(c.allows(u32::from(b)), "byte {i}");
        c.accept(u32::from(b)).unwrap();
        // Inside a character: neither complete nor an end.
        assert!(!c.allows(END) || i == text.len() - 1);
    }
    assert!(c.is_complete() && c.allows(END));
    // A character outside the class, split: rejected at its second byte ("ψ" is U+03C8, in range; "Ϊ" U+03AA not).
    let mut c = Constraint::new(g.clone(), byte_vocab());
    c.accept_bytes("éψ".as_bytes()).unwrap();
    let bad = "Ϊ".as_bytes();
    c.accept_bytes(&bad[..1]).unwrap(); // 0xCE could still start ψ-like characters
    assert!(c.accept_bytes(&bad[1..]).is_err());
    assert!(!c.allows(u32::from(bad[1])));
}

#[test]
fn rejects_invalid_utf8() {
    let g = gbnf("root ::= .*");
    assert!(matches(&g, "aé😀中\u{10FFFF}\u{7F}".as_bytes()));
    let bad: [&[u8]; 10] = [
        &[0xC0, 0x80],             // overlong NUL
        &[0xC1, 0xBF],             // overlong
        &[0xE0, 0x80, 0x80],       // overlong 3-byte
        &[0xED, 0xA0, 0x80],       // surrogate U+D800
        &[0xF0, 0x80, 0x80, 0x80], // overlong 4-byte
        &[0xF4, 0x90, 0x80, 0x80], // above U+10FFFF
        &[0xF5, 0x80, 0x80, 0x80], // invalid lead
        &[0x80],                   // lone continuation
        &[0xFF],
        &[0xE4, 0xB8, 0x41], // truncated, then ASCII
    ];
    for b in bad {
        assert!(!prefix(&g, b), "{b:x?}");
    }
    // A truncated character is a prefix, but not complete.
    assert!(prefix(&g, &[0xE4, 0xB8]));
    assert!(!matches(&g, &[0xE4, 0xB8]));
}

#[test]
fn class_with_partial_coverage_of_a_lead_byte() {
    // U+0100..U+017F: lead bytes C4 and C5, every second byte.  U+0180.. (C6) is outside.
    let g = gbnf("root ::= [\\u0100-\\u0141]");
    assert!(matches(&g, "Ā".as_bytes()) && matches(&g, "Ł".as_bytes()));
    assert!(!matches(&g, "ł".as_bytes()) && !matches(&g, "ƀ".as_bytes()));
    assert!(prefix(&g, &[0xC5]) && !prefix(&g, &[0xC6]));
}

#[test]
fn ambiguity_is_bounded() {
    // Each "a" doubles the parses (each may close with "b" or "c"): past 4096 it is an error, not a blow-up.
    let g = gbnf(r#"root ::= x  x ::= "a" x "b" | "a" x "c" | "" "#);
    assert!(matches(&g, b"aaabcb"));
    let mut c = Constraint::new(g.clone(), byte_vocab());
    let e = c.accept_bytes(&[b'a'; 20]).unwrap_err();
    assert_eq!(
        e,
        Error::Ambiguous(
            "byte 10 of forced text: more than 4096 parses at once (after 10 bytes of output)"
                .into()
        )
    );
    assert_eq!(e.to_string(), "grammar is too ambiguous at byte 10 of forced text: more than 4096 parses at once (after 10 bytes of output)");
    // The mask refuses the continuation instead, and says why once nothing is left.
    let mut c = Constraint::new(g.clone(), byte_vocab());
    c.accept_bytes(&[b'a'; 10]).unwrap();
    assert!(!c.allows(u32::from(b'a')));
    let mut logits = vec![0.0; 257];
    c.mask(&mut logits).unwrap();
    assert!(logits[usize::from(b'a')].is_infinite() && logits[usize::from(b'b')].is_finite());
    // When the only tokens left are too ambiguous, the mask says so.
    let only_a = std::sync::Arc::new(flint_constrain::Vocab::new(
        vec![Some(b"a".to_vec())],
        vec![1],
    ));
    let mut c = Constraint::new(g, only_a);
    c.accept_bytes(&[b'a'; 10]).unwrap();
    let e = c.mask(&mut logits).unwrap_err();
    assert!(matches!(e, Error::Ambiguous(_)), "{e}");
    assert!(
        e.to_string()
            .contains("every continuation needs more than 4096 parses"),
        "{e}"
    );
}

#[test]
fn nesting_is_bounded() {
    let g = gbnf(r#"root ::= "(" root ")" | """#);
    let deep = |n: usize| format!("{}{}", "(".repeat(n), ")".repeat(n));
    assert!(matches(&g, deep(500).as_bytes()));
    assert!(!prefix(&g, "(".repeat(2000).as_bytes()));
}

#[test]
fn rejection_names_the_place() {
    let g = gbnf(r#"root ::= "ab" [0-9]"#);
    let mut c = Constraint::new(g, byte_vocab());
    c.accept_bytes(b"a").unwrap();
    let e = c.accept_bytes(b"bx").unwrap_err().to_string();
    assert_eq!(e, "forced text rejected at its byte 1: byte 0x78 does not fit: expected [0-9] (after 2 bytes of output)");
    let e = c.accept(u32::from(b'z')).unwrap_err().to_string();
    assert!(e.starts_with("token 122 \"z\" is not allowed here: at its byte 0, byte 0x7A does not fit: expected \"b\""), "{e}");
    let e = c.accept(END).unwrap_err().to_string();
    assert!(
        e.contains("token 256 (end) is not allowed here: the output is not complete"),
        "{e}"
    );
}
