//! The GBNF parser (the subset documented at the crate root). It yields rule definitions; `grammar::build` checks
//! them (undefined rules, `root`, left recursion) and compiles them.

use crate::class::{Class, MAX_CP};
use crate::error::Error;
use crate::expr::{Expr, Loc, RuleDef};

/// The largest count a repetition `{m,n}` may give.
pub(crate) const MAX_REPEAT: u32 = 10_000;
/// How deeply groups `( )` may nest.
const MAX_NESTING: usize = 100;

pub(crate) fn parse(src: &str) -> Result<Vec<RuleDef>, Error> {
    let mut p = Parser {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut rules = Vec::new();
    loop {
        p.skip_space();
        if p.peek().is_none() {
            return Ok(rules);
        }
        let at = p.loc();
        let name = p
            .name()
            .ok_or_else(|| p.error(format!("expected a rule name, found {}", p.found())))?;
        p.skip_space();
        if !p.eat_str("::=") {
            return Err(p.error(format!(
                "expected `::=` after the rule name `{name}`, found {}",
                p.found()
            )));
        }
        let expr = p.alternatives(0)?;
        match p.peek() {
            None => {}
            Some(')') => return Err(p.error("`)` without a matching `(`".to_string())),
            Some(_) if p.at_rule_start() => {}
            Some(_) => return Err(p.error(format!("unexpected {}", p.found()))),
        }
        rules.push(RuleDef {
            name,
            expr,
            at: Some(at),
        });
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn loc(&self) -> Loc {
        (self.line, self.col)
    }

    fn error(&self, msg: String) -> Error {
        Error::Syntax {
            line: self.line,
            col: self.col,
            msg,
        }
    }

    fn error_at(at: Loc, msg: String) -> Error {
        Error::Syntax {
            line: at.0,
            col: at.1,
            msg,
        }
    }

    /// The next character, as a message shows it.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the grammar".to_string(),
            Some(c) => format!("`{}`", c.escape_debug()),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && s.chars().zip(&self.chars[self.pos..]).all(|(a, &b)| a == b)
        {
            for _ in 0..n {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Spaces, tabs, newlines and `#` comments.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' => {
                    self.bump();
                }
                '#' => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            s.push(c);
            self.bump();
        }
        (!s.is_empty()).then_some(s)
    }

    /// Whether a new rule (`name ::=`) starts here.
    fn at_rule_start(&self) -> bool {
        let mut k = 0;
        while self.peek_at(k).is_some_and(is_name_char) {
            k += 1;
        }
        if k == 0 {
            return false;
        }
        // Skip space and comments without moving.
        loop {
            match self.peek_at(k) {
                Some(' ' | '\t' | '\n' | '\r') => k += 1,
                Some('#') => {
                    while self.peek_at(k).is_some_and(|c| c != '\n') {
                        k += 1;
                    }
                }
                _ => break,
            }
        }
        self.peek_at(k) == Some(':')
            && self.peek_at(k + 1) == Some(':')
            && self.peek_at(k + 2) == Some('=')
    }

    fn alternatives(&mut self, depth: usize) -> Result<Expr, Error> {
        let mut alts = vec![self.sequence(depth)?];
        while self.eat('|') {
            alts.push(self.sequence(depth)?);
        }
        Ok(Expr::alt(alts))
    }

    fn sequence(&mut self, depth: usize) -> Result<Expr, Error> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            let item = match self.peek() {
                None | Some('|') | Some(')') => break,
                Some(c) if is_name_char(c) => {
                    if self.at_rule_start() {
                        break;
                    }
                    let at = self.loc();
                    let name = self.name().unwrap_or_default();
                    Expr::Ref { name, at: Some(at) }
                }
                Some('"') => self.literal()?,
                Some('[') => self.class()?,
                Some('.') => {
                    self.bump();
                    Expr::Class(Class::any())
                }
                Some('(') => {
                    let at = self.loc();
                    if depth >= MAX_NESTING {
                        return Err(
                            self.error(format!("groups nest deeper than {MAX_NESTING} levels"))
                        );
                    }
                    self.bump();
                    let inner = self.alternatives(depth + 1)?;
                    self.skip_space();
                    if !self.eat(')') {
                        return Err(Self::error_at(
                            at,
                            format!("`(` is never closed (found {})", self.found()),
                        ));
                    }
                    inner
                }
                Some('<') => {
                    return Err(self.error("token references `<...>` are not supported".to_string()))
                }
                Some(_) => return Err(self.error(format!("unexpected {}", self.found()))),
            };
            items.push(self.postfix(item)?);
        }
        Ok(Expr::seq(items))
    }

    /// Repetition operators after an item: `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}`.
    fn postfix(&mut self, mut item: Expr) -> Result<Expr, Error> {
        loop {
            // Operators may follow after spaces on the same line (not after a newline: that would be ambiguous
            // with a comment or the next item).
            let save = (self.pos, self.line, self.col);
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.bump();
            }
            let at = self.loc();
            let (min, max) = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => {
                    self.bump();
                    let (min, max) = self.braces(at)?;
                    item = Expr::Repeat {
                        item: Box::new(item),
                        min,
                        max,
                        at: Some(at),
                    };
                    continue;
                }
                _ => {
                    (self.pos, self.line, self.col) = save;
                    return Ok(item);
                }
            };
            self.bump();
            item = Expr::Repeat {
                item: Box::new(item),
                min,
                max,
                at: Some(at),
            };
        }
    }

    fn braces(&mut self, at: Loc) -> Result<(u32, Option<u32>), Error> {
        self.skip_inline_space();
        let min = self.count()?;
        self.skip_inline_space();
        let (min, max) = if self.eat(',') {
            self.skip_inline_space();
            let max = self.count()?;
            (min.unwrap_or(0), max)
        } else {
            match min {
                Some(m) => (m, Some(m)),
                None => {
                    return Err(self.error(format!(
                        "expected a count in `{{...}}`, found {}",
                        self.found()
                    )))
                }
            }
        };
        self.skip_inline_space();
        if !self.eat('}') {
            return Err(self.error(format!(
                "expected `}}` closing the repetition, found {}",
                self.found()
            )));
        }
        if let Some(max) = max {
            if max < min {
                return Err(Self::error_at(
                    at,
                    format!("repetition `{{{min},{max}}}` has its maximum below its minimum"),
                ));
            }
        }
        Ok((min, max))
    }

    fn skip_inline_space(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    fn count(&mut self) -> Result<Option<u32>, Error> {
        let at = self.loc();
        let mut digits = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            digits.push(c);
            self.bump();
        }
        if digits.is_empty() {
            return Ok(None);
        }
        match digits.parse::<u32>() {
            Ok(n) if n <= MAX_REPEAT => Ok(Some(n)),
            _ => Err(Self::error_at(
                at,
                format!("repetition count {digits} is above the limit of {MAX_REPEAT}"),
            )),
        }
    }

    fn literal(&mut self) -> Result<Expr, Error> {
        let start = self.loc();
        self.bump();
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(Self::error_at(
                        start,
                        "unterminated string literal".to_string(),
                    ))
                }
                Some('\n') => {
                    return Err(
                        self.error("newline inside a string literal (write `\\n`)".to_string())
                    )
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some(_) => {
                    let c = self.char_or_escape()?;
                    items.push(Expr::Class(Class::single(c)));
                }
            }
        }
        Ok(Expr::seq(items))
    }

    fn class(&mut self) -> Result<Expr, Error> {
        let start = self.loc();
        self.bump();
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(Self::error_at(
                        start,
                        "unterminated character class".to_string(),
                    ))
                }
                Some('\n') => {
                    return Err(Self::error_at(
                        start,
                        "unterminated character class (newline before `]`)".to_string(),
                    ))
                }
                Some(']') => {
                    self.bump();
                    break;
                }
                Some(_) => {
                    let at = self.loc();
                    let a = self.char_or_escape()?;
                    if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                        self.bump();
                        if self.peek() == Some('\n') {
                            return Err(Self::error_at(
                                start,
                                "unterminated character class".to_string(),
                            ));
                        }
                        let b = self.char_or_escape()?;
                        if b < a {
                            return Err(Self::error_at(
                                at,
                                "character range is reversed".to_string(),
                            ));
                        }
                        ranges.push((a, b));
                    } else {
                        ranges.push((a, a));
                    }
                }
            }
        }
        if ranges.is_empty() {
            return Err(Self::error_at(
                start,
                "empty character class `[]`".to_string(),
            ));
        }
        let mut class = Class::from_ranges(ranges);
        if negated {
            class = class.negate();
        }
        if class.is_empty() {
            return Err(Self::error_at(
                start,
                "character class matches no character".to_string(),
            ));
        }
        Ok(Expr::Class(class))
    }

    /// One character of a literal or class, escapes decoded, as a code point.
    fn char_or_escape(&mut self) -> Result<u32, Error> {
        let at = self.loc();
        let c = self
            .bump()
            .ok_or_else(|| self.error("unexpected end of the grammar".to_string()))?;
        if c != '\\' {
            return Ok(c as u32);
        }
        let e = self
            .bump()
            .ok_or_else(|| Self::error_at(at, "unterminated escape `\\`".to_string()))?;
        let digits = match e {
            'n' => return Ok('\n' as u32),
            'r' => return Ok('\r' as u32),
            't' => return Ok('\t' as u32),
            '\\' | '"' | '[' | ']' => return Ok(e as u32),
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => {
                return Err(Self::error_at(
                    at,
                    format!("unknown escape `\\{}`", e.escape_debug()),
                ))
            }
        };
        let mut v = 0u32;
        for _ in 0..digits {
            let d = self.peek().and_then(|c| c.to_digit(16)).ok_or_else(|| {
                Self::error_at(
                    at,
                    format!(
                        "escape `\\{e}` needs {digits} hex digits, found {}",
                        self.found()
                    ),
                )
            })?;
            self.bump();
            v = v * 16 + d;
        }
        if v > MAX_CP || (0xD800..=0xDFFF).contains(&v) {
            return Err(Self::error_at(
                at,
                format!("escape `\\{e}{v:X}` is not a Unicode scalar value"),
            ));
        }
        Ok(v)
    }
}
