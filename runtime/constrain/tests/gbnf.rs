//! GBNF parsing: the subset that compiles, and every class of error with its message.

mod common;

use common::{gbnf, matches};
use flint_constrain::{Error, Grammar};

fn error(src: &str) -> String {
    match Grammar::from_gbnf(src) {
        Ok(g) => panic!("compiled but should not have:\n{src}\n->\n{}", g.to_gbnf()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_grammars_compile_and_match() {
    let g = gbnf(
        r#"
        # a comment
        root ::= greeting ", " name   # trailing comment
                 "!"?
        greeting ::= "hello" | "hi"
        name ::= [A-Z] [a-z]*
        "#,
    );
    assert!(matches(&g, b"hello, Ann!"));
    assert!(matches(&g, b"hi, Bo"));
    assert!(!matches(&g, b"hi, bo"));
    assert!(!matches(&g, b"hey, Bo"));

    let g = gbnf(r#"root ::= ("a" | "b")+ "c"{2} "d"{1,3} "e"{2,} [x]{,2}"#);
    assert!(matches(&g, b"abbaccddee"));
    assert!(matches(&g, b"accdddeeeexx"));
    assert!(!matches(&g, b"acccdee"));
    assert!(!matches(&g, b"accdddde"));
    assert!(!matches(&g, b"accdeexxx"));

    let g = gbnf(r#"root ::= [^"\\] "\x41\u00e9\U0001F600\n\t\r\\\"\[\]" [\]\[-] . "#);
    assert!(matches(&g, "xAé😀\n\t\r\\\"[]-é".as_bytes()));
    assert!(matches(&g, "xAé😀\n\t\r\\\"[]]a".as_bytes()));
    assert!(!matches(&g, "\"Aé😀\n\t\r\\\"[]-é".as_bytes()));

    // Empty alternatives, rules used before definition, nested groups, names with - and _.
    let g = gbnf("root ::= a-b_c | \nroot2 ::= \"x\"\na-b_c ::= ((\"q\") (\"r\" | ))");
    assert!(matches(&g, b""));
    assert!(matches(&g, b"q"));
    assert!(matches(&g, b"qr"));
    assert!(!matches(&g, b"x"));
}

#[test]
fn to_gbnf_round_trips() {
    let srcs = [
        r#"root ::= ("a" | "b")+ "c"{2} "d"{1,3} [^"\\\x00-\x1F]* [\x2D\x5E\]\[] . "é😀\n\x7F""#,
        "root ::= x | \"\"\nx ::= \"(\" root \")\"",
    ];
    for src in srcs {
        let g = gbnf(src);
        let text = g.to_gbnf();
        let again = Grammar::from_gbnf(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again.to_gbnf(), text);
    }
    let json = Grammar::json_value().to_gbnf();
    assert_eq!(Grammar::from_gbnf(&json).unwrap().to_gbnf(), json);
    assert!(
        json.contains(r#"char ::= [^\x00-\x1F"\\] | "\\" ["/\\bfnrt]"#),
        "{json}"
    );
}

#[test]
fn undefined_rule() {
    assert_eq!(
        error("root ::= a b\na ::= \"x\""),
        "GBNF 1:12: undefined rule `b`"
    );
}

#[test]
fn missing_root() {
    assert_eq!(
        error("start ::= \"x\""),
        "grammar: there is no rule `root` (the start rule)"
    );
    assert!(error("").contains("no rule `root`"));
}

#[test]
fn duplicate_rule() {
    assert_eq!(
        error("root ::= \"a\"\nroot ::= \"b\""),
        "GBNF 2:1: rule `root` is defined twice (first at 1:1)"
    );
}

#[test]
fn left_recursion() {
    let direct = error("root ::= root \"a\" | \"b\"");
    assert!(
        direct.contains("left-recursive") && direct.contains("`root` -> `root`"),
        "{direct}"
    );
    let indirect = error("root ::= a\na ::= b \"x\"\nb ::= a | \"y\"");
    assert!(
        indirect.contains("left-recursive") && indirect.contains("`a` -> `b` -> `a`"),
        "{indirect}"
    );
    // Through a nullable prefix.
    let nullable = error("root ::= e root \"x\" | \"y\"\ne ::= \"z\"?");
    assert!(nullable.contains("left-recursive"), "{nullable}");
    // Repeating something that can be empty.
    let star = error("root ::= (\"a\"?)*");
    assert!(
        star.contains("left-recursive") && star.contains("the repetition at 1:16"),
        "{star}"
    );
    // Right recursion is fine.
    let g = gbnf("root ::= \"a\" root | \"b\"");
    assert!(matches(&g, b"aaab"));
}

#[test]
fn never_finishing_rule() {
    let e = error("root ::= \"x\" root");
    assert!(
        e.contains("can never finish") && e.contains("`root`"),
        "{e}"
    );
}

#[test]
fn bad_escape() {
    assert_eq!(
        error(r#"root ::= "a\q""#),
        "GBNF 1:12: unknown escape `\\q`"
    );
    assert!(error(r#"root ::= "\x4""#).starts_with("GBNF 1:11: escape `\\x` needs 2 hex digits"));
    assert!(error(r#"root ::= "\uD800""#).contains("not a Unicode scalar value"));
    assert!(error(r#"root ::= "\U00110000""#).contains("not a Unicode scalar value"));
}

#[test]
fn unterminated_things() {
    assert_eq!(
        error("root ::= [a-z"),
        "GBNF 1:10: unterminated character class"
    );
    assert_eq!(
        error("root ::= [a-z\n]"),
        "GBNF 1:10: unterminated character class (newline before `]`)"
    );
    assert_eq!(
        error("root ::= \"abc"),
        "GBNF 1:10: unterminated string literal"
    );
    assert_eq!(
        error("root ::= (\"a\" \"b\""),
        "GBNF 1:10: `(` is never closed (found the end of the grammar)"
    );
    assert_eq!(
        error("root ::= \"a\")"),
        "GBNF 1:13: `)` without a matching `(`"
    );
    assert_eq!(
        error("root ::= []"),
        "GBNF 1:10: empty character class `[]`"
    );
    assert_eq!(
        error("root ::= [z-a]"),
        "GBNF 1:11: character range is reversed"
    );
}

#[test]
fn absurd_repetition_counts() {
    assert_eq!(
        error("root ::= \"a\"{10001}"),
        "GBNF 1:14: repetition count 10001 is above the limit of 10000"
    );
    assert_eq!(
        error("root ::= \"a\"{2,99999999999}"),
        "GBNF 1:16: repetition count 99999999999 is above the limit of 10000"
    );
    assert_eq!(
        error("root ::= \"a\"{3,1}"),
        "GBNF 1:13: repetition `{3,1}` has its maximum below its minimum"
    );
    // The limit itself is fine, and the expansion stays linear.
    let g = gbnf("root ::= (\"ab\"){0,10000} \"c\"{10000}");
    assert!(g.rule_count() > 10_000);
}

#[test]
fn other_syntax_errors() {
    assert_eq!(
        error("root = \"a\""),
        "GBNF 1:6: expected `::=` after the rule name `root`, found `=`"
    );
    assert_eq!(
        error("::= \"a\""),
        "GBNF 1:1: expected a rule name, found `:`"
    );
    assert_eq!(error("root ::= \"a\" @"), "GBNF 1:14: unexpected `@`");
    assert!(error("root ::= <[1000]>").contains("token references"));
    let deep = format!("root ::= {}\"a\"{}", "(".repeat(200), ")".repeat(200));
    assert!(error(&deep).contains("nest deeper than 100"));
    assert!(error("root ::= [^\\x00-\\U0010FFFF]").contains("matches no character"));
}

#[test]
fn errors_are_the_error_type() {
    assert!(matches!(
        Grammar::from_gbnf("root ::= x"),
        Err(Error::Syntax {
            line: 1,
            col: 10,
            ..
        })
    ));
    assert!(matches!(
        Grammar::from_gbnf("x ::= \"a\""),
        Err(Error::Grammar(_))
    ));
}

#[test]
fn too_ambiguous_at_the_start_is_an_error() {
    // 2^13 different stacks before the first character: each level may return to "q" or to "r".
    let mut src = String::from("root ::= s0\n");
    for i in 0..13 {
        src.push_str(&format!("s{i} ::= s{} \"q\" | s{} \"r\"\n", i + 1, i + 1));
    }
    src.push_str("s13 ::= \"z\"\n");
    assert_eq!(
        error(&src),
        "grammar is too ambiguous at the start of `root`"
    );
    // 2^11 is within the bound.
    let small = src.replace("s0\n", "s2\n");
    let g = gbnf(&small);
    assert!(matches(&g, b"zqrqrqrqrqrq"));
}
