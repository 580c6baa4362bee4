//! The compiled grammar: flat rules of character-class and rule-reference elements (built by `lower`), printable
//! back to GBNF.

use std::fmt;

use crate::class::Class;
use crate::error::Error;
use crate::gbnf;
use crate::lower::build;

/// One element of an alternative. Every alternative ends with `End`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Elem {
    Class(u32),
    Rule(u32),
    End,
}

/// A compiled grammar: immutable, `Send + Sync`, cheap to share as `Arc<Grammar>`.
pub struct Grammar {
    pub(crate) names: Vec<String>,
    /// Per rule, where each alternative starts in `elems`.
    pub(crate) alts: Vec<Vec<u32>>,
    pub(crate) elems: Vec<Elem>,
    pub(crate) classes: Vec<Class>,
    pub(crate) root: u32,
    /// The matcher's stacks before any input (bottom first).
    pub(crate) initial: Vec<Vec<u32>>,
    /// ASCII bytes that every class of the grammar treats alike share a number here; `ascii_members[n]` lists
    /// them. One transition computed for such a byte holds for all of them.
    pub(crate) ascii_class: [u8; 128],
    pub(crate) ascii_members: Vec<Vec<u8>>,
    /// For each position, a position that behaves the same on the next `SHORT` bytes (where a counted
    /// repetition has more than `SHORT` items left, the one with exactly `SHORT` left), or `None` if every
    /// position is its own. States mapped this way share their mask over the short tokens.
    pub(crate) canon: Option<Vec<u32>>,
}

impl fmt::Debug for Grammar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grammar")
            .field("rules", &self.names.len())
            .field("elements", &self.elems.len())
            .field("root", &self.names.get(self.root as usize))
            .finish()
    }
}

impl Grammar {
    /// A grammar in GBNF (the subset documented at the crate root); the start rule is `root`.
    pub fn from_gbnf(src: &str) -> Result<Grammar, Error> {
        build(gbnf::parse(src)?)
    }

    /// The same grammar as GBNF text: every repetition and group expanded into rules of their own. It parses
    /// back (with [`Grammar::from_gbnf`]) into the same grammar.
    pub fn to_gbnf(&self) -> String {
        let mut out = String::new();
        for (r, name) in self.names.iter().enumerate() {
            out.push_str(name);
            out.push_str(" ::=");
            for (k, &start) in self.alts[r].iter().enumerate() {
                if k > 0 {
                    out.push_str(" |");
                }
                self.print_alt(start as usize, &mut out);
            }
            out.push('\n');
        }
        out
    }

    /// How many rules the compiled grammar has (repetitions and groups count as rules).
    pub fn rule_count(&self) -> usize {
        self.names.len()
    }

    fn print_alt(&self, mut pos: usize, out: &mut String) {
        let mut lit = String::new();
        let mut any = false;
        loop {
            let e = self.elems[pos];
            let single = match e {
                Elem::Class(c) => self.classes[c as usize].as_single(),
                _ => None,
            };
            if let Some(cp) = single {
                push_escaped(cp, false, &mut lit);
                pos += 1;
                continue;
            }
            if !lit.is_empty() {
                out.push_str(" \"");
                out.push_str(&lit);
                out.push('"');
                lit.clear();
                any = true;
            }
            match e {
                Elem::End => break,
                Elem::Rule(r) => {
                    out.push(' ');
                    out.push_str(&self.names[r as usize]);
                }
                Elem::Class(c) => {
                    out.push(' ');
                    print_class(&self.classes[c as usize], out);
                }
            }
            any = true;
            pos += 1;
        }
        if !any {
            out.push_str(" \"\"");
        }
    }
}

pub(crate) fn push_escaped(cp: u32, in_class: bool, out: &mut String) {
    match char::from_u32(cp) {
        Some('\n') => out.push_str("\\n"),
        Some('\r') => out.push_str("\\r"),
        Some('\t') => out.push_str("\\t"),
        Some('\\') => out.push_str("\\\\"),
        Some('"') if !in_class => out.push_str("\\\""),
        Some('[') if in_class => out.push_str("\\["),
        Some(']') if in_class => out.push_str("\\]"),
        Some('-') if in_class => out.push_str("\\x2D"),
        Some('^') if in_class => out.push_str("\\x5E"),
        Some(c) if !c.is_control() && c != '\u{2028}' && c != '\u{2029}' => out.push(c),
        _ if cp <= 0xFF => out.push_str(&format!("\\x{cp:02X}")),
        _ if cp <= 0xFFFF => out.push_str(&format!("\\u{cp:04X}")),
        _ => out.push_str(&format!("\\U{cp:08X}")),
    }
}

pub(crate) fn print_class(c: &Class, out: &mut String) {
    if *c == Class::any() {
        out.push('.');
        return;
    }
    let neg = c.negate();
    let (ranges, negated) = if neg.ranges().len() < c.ranges().len() {
        (neg.ranges(), true)
    } else {
        (c.ranges(), false)
    };
    out.push('[');
    if negated {
        out.push('^');
    }
    for &(a, b) in ranges {
        push_escaped(a, true, out);
        if b > a {
            if b > a + 1 {
                out.push('-');
            }
            push_escaped(b, true, out);
        }
    }
    out.push(']');
}
