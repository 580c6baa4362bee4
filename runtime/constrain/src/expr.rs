//! The grammar before compilation: rules of nested expressions, as the GBNF parser and the schema compiler build
//! them. `grammar::build` lowers them to the flat form the matcher runs.

use crate::class::Class;

/// A place in GBNF text: line and column, from 1.
pub(crate) type Loc = (usize, usize);

#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Class(Class),
    Ref {
        name: String,
        at: Option<Loc>,
    },
    Repeat {
        item: Box<Expr>,
        min: u32,
        max: Option<u32>,
        at: Option<Loc>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub name: String,
    pub expr: Expr,
    pub at: Option<Loc>,
}

impl RuleDef {
    pub(crate) fn new(name: impl Into<String>, expr: Expr) -> RuleDef {
        RuleDef {
            name: name.into(),
            expr,
            at: None,
        }
    }
}

impl Expr {
    pub(crate) fn empty() -> Expr {
        Expr::Seq(Vec::new())
    }

    /// A literal: the characters of `s` in order.
    pub(crate) fn lit(s: &str) -> Expr {
        let mut items: Vec<Expr> = s
            .chars()
            .map(|c| Expr::Class(Class::single(c as u32)))
            .collect();
        if items.len() == 1 {
            items.pop().unwrap_or_else(Expr::empty)
        } else {
            Expr::Seq(items)
        }
    }

    pub(crate) fn rule(name: &str) -> Expr {
        Expr::Ref {
            name: name.to_string(),
            at: None,
        }
    }

    pub(crate) fn class(ranges: &[(char, char)]) -> Expr {
        Expr::Class(Class::from_ranges(
            ranges.iter().map(|&(a, b)| (a as u32, b as u32)).collect(),
        ))
    }

    pub(crate) fn seq(items: Vec<Expr>) -> Expr {
        if items.len() == 1 {
            let mut items = items;
            return items.pop().unwrap_or_else(Expr::empty);
        }
        Expr::Seq(items)
    }

    pub(crate) fn alt(items: Vec<Expr>) -> Expr {
        if items.len() == 1 {
            let mut items = items;
            return items.pop().unwrap_or_else(Expr::empty);
        }
        Expr::Alt(items)
    }

    pub(crate) fn repeat(item: Expr, min: u32, max: Option<u32>) -> Expr {
        Expr::Repeat {
            item: Box::new(item),
            min,
            max,
            at: None,
        }
    }

    pub(crate) fn opt(item: Expr) -> Expr {
        Expr::repeat(item, 0, Some(1))
    }

    pub(crate) fn star(item: Expr) -> Expr {
        Expr::repeat(item, 0, None)
    }
}
