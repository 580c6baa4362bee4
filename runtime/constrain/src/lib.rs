//! Constrained decoding: each decode step, which vocabulary tokens keep the output valid under a grammar.
//!
//! For `flint run --json-schema F` / `--grammar F` and the server's `response_format` / `tools`: the engine calls
//! [`Constraint::mask`] to set the logits of every token that would break the grammar to `-inf`, samples, and
//! tells the constraint the token it took ([`Constraint::accept`]). Output is always valid under the grammar; what
//! cannot be enforced is an [`Error`] before generation (fail closed), never silently unconstrained.
//!
//! ```
//! use std::sync::Arc;
//! use flint_constrain::{Constraint, Grammar, Vocab};
//!
//! let g = Arc::new(Grammar::from_gbnf(r#"root ::= "yes" | "no""#).unwrap());
//! let tokens = ["y", "es", "no", "x"].iter().map(|t| Some(t.as_bytes().to_vec())).collect();
//! let vocab = Arc::new(Vocab::new(tokens, vec![4]));
//! let mut c = Constraint::new(g, vocab);
//! let mut logits = vec![0.0f32; 5];
//! c.mask(&mut logits).unwrap();
//! assert_eq!(logits.iter().map(|l| l.is_finite()).collect::<Vec<_>>(), [true, false, true, false, false]);
//! c.accept(2).unwrap();
//! assert!(c.is_complete() && c.allows(4));
//! ```
//!
//! # GBNF subset
//!
//! A grammar is a list of rules `name ::= alternatives`; the start rule is `root`. Names are `[a-zA-Z0-9_-]+`. A
//! rule may span lines: a new rule starts where a name is followed by `::=`. Whitespace and newlines separate
//! items; `#` starts a comment to the end of the line.
//!
//! | syntax | means |
//! |---|---|
//! | `a b` | sequence |
//! | `a \| b` | alternatives (an empty alternative matches nothing: `x ::= "a" \|`) |
//! | `"text"` | literal (`""` is the empty sequence) |
//! | `[a-z0-9_]`, `[^"\\]` | character class, negated class; `-` first or last is literal |
//! | `.` | any character |
//! | `( ... )` | group (at most 100 levels deep) |
//! | `x*` `x+` `x?` | repetition |
//! | `x{m}` `x{m,}` `x{m,n}` `x{,n}` | counted repetition, counts at most 10000 |
//! | `name` | rule reference (rules may be used before they are defined) |
//!
//! Escapes in literals and classes: `\n \r \t \\ \" \[ \] \xNN \uNNNN \UNNNNNNNN` (the hex forms give a code
//! point, not a byte; surrogates are refused). Matching is over Unicode code points, fed as UTF-8 bytes; invalid
//! UTF-8 is never allowed.
//!
//! Refused at compile time, with the rule and line:col: syntax errors, undefined rules, a rule defined twice, a
//! missing `root`, left recursion (direct, indirect, or through rules that can match empty text, which includes
//! repeating something that can be empty, `("a"?)*`), rules that can never finish (`a ::= "x" a`), character
//! classes that match nothing, and grammars that are too big (over 2^22 elements after expanding repetitions)
//! or too ambiguous at their start. Not supported: token references `<[id]>`, `!<...>`.
//!
//! Limits while matching: at most 4096 parses (stacks) at once (more is "too ambiguous": such a continuation is
//! not allowed, and forced text that needs it, or a mask with nothing else left, is [`Error::Ambiguous`]); parses
//! nested more than 1024 rule frames deep are dropped (a JSON value nests to about 400 levels).
//!
//! # JSON Schema subset
//!
//! [`Grammar::from_json_schema`] supports `type` (one or a list), `enum`, `const`, `properties`, `required`,
//! `additionalProperties` (`false`, or absent/`true`: both generate only the listed properties; a schema with no
//! `properties`: a map from string keys to it), `items`, `prefixItems`, `minItems`, `maxItems`, `minLength`,
//! `maxLength` (code points), `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, or the
//! draft-4 booleans; any bounds for integers, integer bounds for numbers), `anyOf`, `$ref` to local pointers
//! (`#`, `#/$defs/...`, `#/definitions/...`, recursion allowed), and `true`/`{}` (any value). Annotations
//! (`title`, `description`, `examples`, `default`, `$schema`, `$id`, `$comment`, `deprecated`, `readOnly`,
//! `writeOnly`) are ignored. Everything else (`pattern`, `format`, `multipleOf`, `oneOf`, `allOf`, `not`, `if`,
//! `uniqueItems`, `contains`, `minProperties`, `patternProperties`, remote `$ref`, ...) is an error naming the
//! JSON pointer and keyword: `schema at /properties/age: `multipleOf` is not supported`.
//!
//! The JSON generated has bounded whitespace between tokens (none, a space, or a newline and up to 20 spaces) and
//! none around the value; strings with JSON escapes and no raw control characters; numbers without leading zeros,
//! open-ended integers of at most 18 digits, fractions of at most 32 and exponents of at most 2 digits (every
//! number parses to a finite `f64`). Properties come out in the order of `properties` (as the `Map` iterates;
//! [`Grammar::from_json_schema_str`] keeps the text's order whatever serde_json's features).
//!
//! See `docs/CONSTRAINTS.md` for the design (a lazily built DFA over stack sets, a vocabulary trie, cached masks)
//! and measured mask times (`cargo run --release -p flint-constrain --example mask_bench`).

mod class;
mod constraint;
mod error;
mod expr;
mod gbnf;
mod grammar;
mod hash;
mod lower;
mod matcher;
mod objects;
mod order;
mod ranges;
mod schema;
mod vocab;

pub use constraint::Constraint;
pub use error::Error;
pub use grammar::Grammar;
pub use vocab::Vocab;
