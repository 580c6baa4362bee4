//! Compiling rule definitions into a [`Grammar`]: lowering nested expressions to flat alternatives, and checking
//! for everything that would make matching loop or stall (undefined rules, left recursion, rules that never end).

use std::collections::HashMap;

use crate::class::Class;
use crate::error::Error;
use crate::expr::{Expr, Loc, RuleDef};
use crate::gbnf::MAX_REPEAT;
use crate::grammar::{Elem, Grammar};
use crate::hash::FxBuild;
use crate::matcher;
use crate::vocab::SHORT;

/// Bounds on the expanded grammar.
const MAX_RULES: usize = 1 << 20;
const MAX_ELEMS: usize = 1 << 22;

/// A rule while lowering.
struct LRule {
    name: String,
    alts: Vec<Vec<Elem>>,
    /// For a rule made from a repetition or group: the rule it came from, and where.
    origin: Option<(String, Option<Loc>)>,
    at: Option<Loc>,
}

struct Lower {
    rules: Vec<LRule>,
    ids: HashMap<String, u32>,
    classes: Vec<Class>,
    class_ids: HashMap<Class, u32, FxBuild>,
    counters: HashMap<String, u32>,
    elems: usize,
    /// Chains of rules made by counted repetitions (`x{m,n}`), outermost first, with their item.
    chains: Vec<(Vec<u32>, Elem)>,
}

/// Compiles rule definitions (the start rule is `root`).
pub(crate) fn build(defs: Vec<RuleDef>) -> Result<Grammar, Error> {
    let mut l = Lower {
        rules: Vec::new(),
        ids: HashMap::new(),
        classes: Vec::new(),
        class_ids: HashMap::default(),
        counters: HashMap::new(),
        elems: 0,
        chains: Vec::new(),
    };
    for def in &defs {
        if let Some(&prev) = l.ids.get(&def.name) {
            let first = match l.rules[prev as usize].at {
                Some((line, col)) => format!(" (first at {line}:{col})"),
                None => String::new(),
            };
            let msg = format!("rule `{}` is defined twice{first}", def.name);
            return Err(match def.at {
                Some((line, col)) => Error::Syntax { line, col, msg },
                None => Error::Grammar(msg),
            });
        }
        l.ids.insert(def.name.clone(), l.rules.len() as u32);
        l.rules.push(LRule {
            name: def.name.clone(),
            alts: Vec::new(),
            origin: None,
            at: def.at,
        });
    }
    let root = *l
        .ids
        .get("root")
        .ok_or_else(|| Error::Grammar("there is no rule `root` (the start rule)".into()))?;
    for (i, def) in defs.into_iter().enumerate() {
        let alts = l.alts_of(def.expr, &def.name)?;
        l.rules[i].alts = alts;
    }
    l.check()?;
    l.finish(root)
}

impl Lower {
    fn alts_of(&mut self, expr: Expr, owner: &str) -> Result<Vec<Vec<Elem>>, Error> {
        match expr {
            Expr::Alt(items) => items.into_iter().map(|x| self.seq_of(x, owner)).collect(),
            other => Ok(vec![self.seq_of(other, owner)?]),
        }
    }

    fn seq_of(&mut self, expr: Expr, owner: &str) -> Result<Vec<Elem>, Error> {
        let mut out = Vec::new();
        self.push_expr(expr, owner, &mut out)?;
        Ok(out)
    }

    fn push(&mut self, e: Elem, out: &mut Vec<Elem>) -> Result<(), Error> {
        self.elems += 1;
        if self.elems > MAX_ELEMS {
            return Err(Error::TooLarge(format!(
                "more than {MAX_ELEMS} elements after expanding repetitions"
            )));
        }
        out.push(e);
        Ok(())
    }

    fn class(&mut self, c: Class) -> Elem {
        if let Some(&id) = self.class_ids.get(&c) {
            return Elem::Class(id);
        }
        let id = self.classes.len() as u32;
        self.classes.push(c.clone());
        self.class_ids.insert(c, id);
        Elem::Class(id)
    }

    fn reference(&self, name: &str, at: Option<Loc>) -> Result<Elem, Error> {
        match self.ids.get(name) {
            Some(&id) => Ok(Elem::Rule(id)),
            None => {
                let msg = format!("undefined rule `{name}`");
                Err(match at {
                    Some((line, col)) => Error::Syntax { line, col, msg },
                    None => Error::Grammar(msg),
                })
            }
        }
    }

    fn new_rule(&mut self, owner: &str, at: Option<Loc>) -> Result<u32, Error> {
        if self.rules.len() >= MAX_RULES {
            return Err(Error::TooLarge(format!(
                "more than {MAX_RULES} rules after expanding repetitions"
            )));
        }
        let counter = self.counters.entry(owner.to_string()).or_insert(0);
        let name = loop {
            *counter += 1;
            let name = format!("{owner}-{counter}");
            if !self.ids.contains_key(&name) {
                break name;
            }
        };
        let id = self.rules.len() as u32;
        self.ids.insert(name.clone(), id);
        self.rules.push(LRule {
            name,
            alts: Vec::new(),
            origin: Some((owner.to_string(), at)),
            at: None,
        });
        Ok(id)
    }

    fn push_expr(&mut self, expr: Expr, owner: &str, out: &mut Vec<Elem>) -> Result<(), Error> {
        match expr {
            Expr::Seq(items) => {
                for x in items {
                    self.push_expr(x, owner, out)?;
                }
            }
            Expr::Class(c) => {
                let e = self.class(c);
                self.push(e, out)?;
            }
            Expr::Ref { name, at } => {
                let e = self.reference(&name, at)?;
                self.push(e, out)?;
            }
            Expr::Alt(mut items) => {
                if items.len() == 1 {
                    let x = items.pop().unwrap_or_else(Expr::empty);
                    return self.push_expr(x, owner, out);
                }
                let id = self.new_rule(owner, None)?;
                let alts = self.alts_of(Expr::Alt(items), owner)?;
                self.rules[id as usize].alts = alts;
                self.push(Elem::Rule(id), out)?;
            }
            Expr::Repeat { item, min, max, at } => {
                self.push_repeat(*item, min, max, at, owner, out)?
            }
        }
        Ok(())
    }

    fn push_repeat(
        &mut self,
        item: Expr,
        min: u32,
        max: Option<u32>,
        at: Option<Loc>,
        owner: &str,
        out: &mut Vec<Elem>,
    ) -> Result<(), Error> {
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
            return Err(Error::Grammar(format!(
                "repetition {{{min},{max:?}}} is out of bounds (0..={MAX_REPEAT})"
            )));
        }
        let elem = match item {
            Expr::Class(c) => self.class(c),
            Expr::Ref { name, at } => self.reference(&name, at)?,
            other => {
                let id = self.new_rule(owner, at)?;
                let alts = self.alts_of(other, owner)?;
                self.rules[id as usize].alts = alts;
                Elem::Rule(id)
            }
        };
        for _ in 0..min {
            self.push(elem, out)?;
        }
        match max {
            None => {
                let id = self.new_rule(owner, at)?;
                self.rules[id as usize].alts = vec![vec![elem, Elem::Rule(id)], Vec::new()];
                self.elems += 2;
                self.push(Elem::Rule(id), out)?;
            }
            Some(max) if max > min => {
                let mut next: Option<u32> = None;
                let mut chain = Vec::new();
                for _ in min..max {
                    let id = self.new_rule(owner, at)?;
                    let mut first = vec![elem];
                    first.extend(next.map(Elem::Rule));
                    self.elems += first.len();
                    self.rules[id as usize].alts = vec![first, Vec::new()];
                    next = Some(id);
                    chain.push(id);
                }
                chain.reverse();
                self.chains.push((chain, elem));
                if let Some(id) = next {
                    self.push(Elem::Rule(id), out)?;
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn describe(&self, r: usize) -> String {
        let rule = &self.rules[r];
        match &rule.origin {
            Some((owner, Some((line, col)))) => {
                format!(
                    "`{}` (the repetition at {line}:{col} in `{owner}`)",
                    rule.name
                )
            }
            Some((owner, None)) => format!("`{}` (part of `{owner}`)", rule.name),
            None => format!("`{}`", rule.name),
        }
    }

    /// Left recursion (also through nullable prefixes) and rules that can never finish.
    fn check(&self) -> Result<(), Error> {
        let n = self.rules.len();
        let nullable = self.fixpoint(true);
        // Left edges: r -> s when s can be reached from r's start without consuming input.
        let mut edges: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (r, rule) in self.rules.iter().enumerate() {
            for alt in &rule.alts {
                for e in alt {
                    match *e {
                        Elem::Rule(s) => {
                            edges[r].push(s);
                            if !nullable[s as usize] {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
            }
        }
        // Iterative DFS for a cycle.
        let mut color = vec![0u8; n];
        let mut parent = vec![u32::MAX; n];
        for start in 0..n {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(u32, usize)> = vec![(start as u32, 0)];
            color[start] = 1;
            while let Some(&mut (r, ref mut k)) = stack.last_mut() {
                let r = r as usize;
                if *k < edges[r].len() {
                    let s = edges[r][*k] as usize;
                    *k += 1;
                    if color[s] == 1 {
                        let mut cycle = vec![s];
                        let mut x = r;
                        while x != s {
                            cycle.push(x);
                            x = parent[x] as usize;
                        }
                        cycle.push(s);
                        cycle.reverse();
                        let path: Vec<String> = cycle
                            .iter()
                            .map(|&x| format!("`{}`", self.rules[x].name))
                            .collect();
                        let explain: Vec<String> = cycle
                            .iter()
                            .filter(|&&x| self.rules[x].origin.is_some())
                            .map(|&x| self.describe(x))
                            .collect();
                        let mut msg = format!(
                            "rule {} is left-recursive: {} can repeat forever without consuming input",
                            self.describe(s),
                            path.join(" -> ")
                        );
                        if !explain.is_empty() {
                            msg.push_str(&format!(" ({})", explain.join(", ")));
                        }
                        return Err(Error::Grammar(msg));
                    }
                    if color[s] == 0 {
                        color[s] = 1;
                        parent[s] = r as u32;
                        stack.push((s as u32, 0));
                    }
                } else {
                    color[r] = 2;
                    stack.pop();
                }
            }
        }
        let productive = self.fixpoint(false);
        let stuck: Vec<String> = (0..n)
            .filter(|&r| !productive[r])
            .map(|r| self.describe(r))
            .collect();
        if !stuck.is_empty() {
            let (which, verb) = if stuck.len() == 1 {
                ("rule", "needs")
            } else {
                ("rules", "need")
            };
            let mut names = stuck[..stuck.len().min(5)].join(", ");
            if stuck.len() > 5 {
                names.push_str(", ...");
            }
            return Err(Error::Grammar(format!(
                "{which} {names} can never finish: every way through {verb} one of them again"
            )));
        }
        Ok(())
    }

    /// Nullable rules (`nullable`) or productive rules (rules that match some finite text), by propagation.
    fn fixpoint(&self, nullable: bool) -> Vec<bool> {
        let n = self.rules.len();
        let mut done = vec![false; n];
        let mut alt_owner = Vec::new();
        let mut remaining = Vec::new();
        let mut uses: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut queue = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            for alt in &rule.alts {
                let a = alt_owner.len() as u32;
                alt_owner.push(r as u32);
                let blocked = nullable && alt.iter().any(|e| matches!(e, Elem::Class(_)));
                let mut count = 0usize;
                for e in alt {
                    if let Elem::Rule(s) = *e {
                        uses[s as usize].push(a);
                        count += 1;
                    }
                }
                remaining.push(if blocked { usize::MAX } else { count });
                if !blocked && count == 0 && !done[r] {
                    done[r] = true;
                    queue.push(r);
                }
            }
        }
        while let Some(s) = queue.pop() {
            for &a in &uses[s] {
                let rem = &mut remaining[a as usize];
                if *rem == usize::MAX || *rem == 0 {
                    continue;
                }
                *rem -= 1;
                let r = alt_owner[a as usize] as usize;
                if *rem == 0 && !done[r] {
                    done[r] = true;
                    queue.push(r);
                }
            }
        }
        done
    }

    /// The canonical position of each element position (see [`Grammar::canon`]): in a run of more than `SHORT`
    /// identical elements, or a repetition chain with more than `SHORT` rules left, the place with exactly
    /// `SHORT` left. Only for items that consume at least one byte.
    /// `nullable` is indexed by the new rule ids, `new_id` maps old ids to new ones.
    fn canon(
        &self,
        new_id: &[u32],
        alts: &[Vec<u32>],
        elems: &[Elem],
        nullable: &[bool],
    ) -> Option<Vec<u32>> {
        let consumes = |e: Elem| match e {
            Elem::Class(_) => true,
            Elem::Rule(r) => !nullable[r as usize],
            Elem::End => false,
        };
        let mut canon: Vec<u32> = (0..elems.len() as u32).collect();
        let mut changed = false;
        // Runs of identical elements.
        let mut i = 0;
        while i < elems.len() {
            let e = elems[i];
            let mut j = i + 1;
            while j < elems.len() && elems[j] == e && e != Elem::End {
                j += 1;
            }
            let run = j - i;
            if run > SHORT && consumes(e) {
                for k in 0..run - SHORT {
                    canon[i + k] = (i + run - SHORT) as u32;
                }
                changed = true;
            }
            i = j;
        }
        // Repetition chains.
        for (chain, item) in &self.chains {
            let item = match *item {
                Elem::Rule(r) if new_id[r as usize] == u32::MAX => continue,
                Elem::Rule(r) => Elem::Rule(new_id[r as usize]),
                other => other,
            };
            let ids: Vec<u32> = chain.iter().map(|&r| new_id[r as usize]).collect();
            if ids.len() <= SHORT || ids.contains(&u32::MAX) || !consumes(item) {
                continue;
            }
            let target = ids[ids.len() - SHORT] as usize;
            for &r in &ids[..ids.len() - SHORT] {
                for (a, &start) in alts[r as usize].iter().enumerate() {
                    let to = alts[target][a] as usize;
                    let mut t = 0;
                    loop {
                        canon[start as usize + t] = (to + t) as u32;
                        if elems[start as usize + t] == Elem::End {
                            break;
                        }
                        t += 1;
                    }
                }
            }
            changed = true;
        }
        changed.then_some(canon)
    }

    /// Drops rules `root` cannot reach, flattens, and computes the initial state.
    fn finish(self, root: u32) -> Result<Grammar, Error> {
        let n = self.rules.len();
        let mut new_id = vec![u32::MAX; n];
        let mut order = Vec::new();
        let mut seen = vec![false; n];
        let mut stack = vec![root as usize];
        seen[root as usize] = true;
        while let Some(r) = stack.pop() {
            order.push(r);
            for alt in self.rules[r].alts.iter().rev() {
                for e in alt.iter().rev() {
                    if let Elem::Rule(s) = *e {
                        if !seen[s as usize] {
                            seen[s as usize] = true;
                            stack.push(s as usize);
                        }
                    }
                }
            }
        }
        // Keep definition order among the reachable rules.
        order.sort_unstable();
        for (i, &r) in order.iter().enumerate() {
            new_id[r] = i as u32;
        }
        let mut names = Vec::with_capacity(order.len());
        let mut alts = Vec::with_capacity(order.len());
        let mut elems = Vec::new();
        for &r in &order {
            names.push(self.rules[r].name.clone());
            let mut starts = Vec::new();
            for alt in &self.rules[r].alts {
                starts.push(elems.len() as u32);
                for e in alt {
                    elems.push(match *e {
                        Elem::Rule(s) => Elem::Rule(new_id[s as usize]),
                        other => other,
                    });
                }
                elems.push(Elem::End);
            }
            alts.push(starts);
        }
        let nullable_old = self.fixpoint(true);
        let nullable: Vec<bool> = order.iter().map(|&r| nullable_old[r]).collect();
        let canon = self.canon(&new_id, &alts, &elems, &nullable);
        let (ascii_class, ascii_members) = ascii_classes(&self.classes);
        let mut g = Grammar {
            names,
            alts,
            elems,
            classes: self.classes,
            root: new_id[root as usize],
            initial: Vec::new(),
            ascii_class,
            ascii_members,
            canon,
        };
        g.initial = matcher::initial_stacks(&g)?;
        Ok(g)
    }
}

/// Groups the ASCII bytes by which classes hold them.
fn ascii_classes(classes: &[Class]) -> ([u8; 128], Vec<Vec<u8>>) {
    let mut ids: HashMap<Vec<bool>, u8> = HashMap::new();
    let mut class = [0u8; 128];
    let mut members: Vec<Vec<u8>> = Vec::new();
    for b in 0..128u8 {
        let signature: Vec<bool> = classes.iter().map(|c| c.contains(u32::from(b))).collect();
        let next = members.len() as u8;
        let id = *ids.entry(signature).or_insert(next);
        if id == next {
            members.push(Vec::new());
        }
        members[id as usize].push(b);
        class[b as usize] = id;
    }
    (class, members)
}
