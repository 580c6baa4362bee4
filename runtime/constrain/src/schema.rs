//! JSON Schema (a documented subset) to grammar, failing closed: whatever the grammar allows validates against the
//! schema, and any keyword we cannot enforce exactly is an error naming the schema node's JSON pointer.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::Error;
use crate::expr::{Expr, RuleDef};
use crate::gbnf::{self, MAX_REPEAT};
use crate::grammar::Grammar;
use crate::lower;
use crate::order::{key_orders, Orders};
use crate::ranges::{int_range, number_range, stricter_lower, stricter_upper, Bound};

/// The shared JSON rules: any value, strings, numbers, bounded whitespace. Numbers are bounded too (integer
/// parts of at most 18 digits, so integers fit an `i64`; fractions of at most 32 digits, exponents of at most 2)
/// so that every number parses to a finite `f64` and a model cannot run on digits forever.
pub(crate) const JSON_RULES: &str = r#"value ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( "," ws member )* )? "}"
member ::= string ws ":" ws value ws
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1F] | "\\" ["\\/bfnrt] | "\\u" hex4 | "\\u" [dD] [89abAB] hex hex "\\u" [dD] [c-fC-F] hex hex
hex4 ::= [0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex
hex ::= [0-9a-fA-F]
number ::= integer ( "." [0-9]{1,32} )? ( [eE] [-+]? [0-9]{1,2} )?
integer ::= "-"? ( "0" | [1-9] [0-9]{0,17} )
ws ::= ( " " | "\n" " "{0,20} )?
"#;

/// Keywords that say nothing about validity.
const IGNORED: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
];
/// Where `$ref` targets live.
const CONTAINERS: &[&str] = &["$defs", "definitions"];
const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "$ref",
];
const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "string", "number", "integer",
];
const MAX_DEPTH: usize = 64;
pub(crate) const MAX_PREFIX: usize = 256;

impl Grammar {
    /// A JSON Schema (the subset documented at the crate root) as a grammar of JSON text. Unsupported keywords
    /// are errors naming the schema node's JSON pointer and the keyword. Properties come out in the order the
    /// `properties` map iterates: sorted, unless serde_json's `preserve_order` feature is on; use
    /// [`Grammar::from_json_schema_str`] to keep the order of the schema's text.
    pub fn from_json_schema(schema: &Value) -> Result<Grammar, Error> {
        compile(schema, None)
    }

    /// Like [`Grammar::from_json_schema`], from the schema's JSON text, keeping the order of `properties` as
    /// written.
    pub fn from_json_schema_str(text: &str) -> Result<Grammar, Error> {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| Error::schema("", format!("not valid JSON: {e}")))?;
        let orders = key_orders(text);
        compile(&schema, Some(&orders))
    }

    /// Any JSON value (compact-ish: bounded whitespace between tokens, none around the value).
    pub fn json_value() -> Grammar {
        builtin("root ::= value\n")
    }

    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    pub fn json_object() -> Grammar {
        builtin("root ::= object\n")
    }
}

fn builtin(root: &str) -> Grammar {
    match Grammar::from_gbnf(&format!("{root}{JSON_RULES}")) {
        Ok(g) => g,
        Err(e) => unreachable!("the built-in JSON grammar compiles: {e}"),
    }
}

pub(crate) fn err(ptr: &str, msg: impl Into<String>) -> Error {
    Error::schema(ptr, msg)
}

pub(crate) fn compile(root: &Value, orders: Option<&Orders>) -> Result<Grammar, Error> {
    let prims = gbnf::parse(JSON_RULES)?;
    let mut c = Compiler {
        root,
        orders,
        defs: Vec::new(),
        used: HashSet::new(),
        refs: HashMap::new(),
        depth: 0,
    };
    for d in &prims {
        c.used.insert(d.name.clone());
    }
    c.used.insert("root".into());
    c.refs.insert(String::new(), "root".into());
    let e = c.node(root, "")?;
    let mut defs = vec![RuleDef::new("root", e)];
    defs.append(&mut c.defs);
    defs.extend(prims);
    lower::build(defs).map_err(|e| match e {
        Error::Schema { .. } => e,
        other => Error::schema("", format!("the schema cannot be enforced: {other}")),
    })
}

pub(crate) struct Compiler<'a> {
    root: &'a Value,
    pub(crate) orders: Option<&'a Orders>,
    defs: Vec<RuleDef>,
    used: HashSet<String>,
    /// `$ref` targets compiled so far: pointer -> rule.
    refs: HashMap<String, String>,
    depth: usize,
}

/// A numeric bound as written.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i128),
    Frac(f64),
}

pub(crate) fn ws() -> Expr {
    Expr::rule("ws")
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// A rule-name hint from a pointer: its last two meaningful segments.
pub(crate) fn hint(ptr: &str) -> String {
    let segs: Vec<&str> = ptr
        .split('/')
        .skip(1)
        .filter(|s| !matches!(*s, "properties" | "$defs" | "definitions"))
        .collect();
    let tail = &segs[segs.len().saturating_sub(2)..];
    if tail.is_empty() {
        "top".to_string()
    } else {
        tail.join("-")
    }
}

pub(crate) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Compiler<'_> {
    fn fresh(&mut self, hint: &str) -> String {
        let mut base: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        while base.contains("--") {
            base = base.replace("--", "-");
        }
        let base = base.trim_matches('-').to_string();
        let base = if base.is_empty() {
            "node".to_string()
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{base}-{k}");
        }
        self.used.insert(name.clone());
        name
    }

    pub(crate) fn named(&mut self, hint: &str, e: Expr) -> Expr {
        let name = self.fresh(hint);
        self.defs.push(RuleDef::new(name.clone(), e));
        Expr::rule(&name)
    }

    pub(crate) fn node(&mut self, v: &Value, ptr: &str) -> Result<Expr, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(err(
                ptr,
                format!("the schema nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        let r = match v {
            Value::Bool(true) => Ok(Expr::rule("value")),
            Value::Bool(false) => Err(err(ptr, "the schema `false` matches nothing")),
            Value::Object(map) => self.object_schema(map, ptr),
            _ => Err(err(ptr, "a schema must be an object or a boolean")),
        };
        self.depth -= 1;
        r
    }

    fn object_schema(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        for k in map.keys() {
            if !SUPPORTED.contains(&k.as_str())
                && !IGNORED.contains(&k.as_str())
                && !CONTAINERS.contains(&k.as_str())
            {
                return Err(err(ptr, format!("`{k}` is not supported")));
            }
        }
        let present: Vec<&str> = SUPPORTED
            .iter()
            .copied()
            .filter(|k| map.contains_key(*k))
            .collect();
        let alone = |key: &str, also: &[&str]| -> Result<(), Error> {
            match present.iter().find(|k| **k != key && !also.contains(k)) {
                Some(other) => Err(err(
                    ptr,
                    format!("`{key}` combined with `{other}` is not supported"),
                )),
                None => Ok(()),
            }
        };
        if let Some(r) = map.get("$ref") {
            alone("$ref", &[])?;
            return self.reference(r, ptr);
        }
        if let Some(list) = map.get("anyOf") {
            alone("anyOf", &[])?;
            let Value::Array(list) = list else {
                return Err(err(ptr, "`anyOf` must be a list of schemas"));
            };
            if list.is_empty() {
                return Err(err(ptr, "`anyOf` is empty: nothing matches"));
            }
            let mut alts = Vec::new();
            for (i, s) in list.iter().enumerate() {
                alts.push(self.node(s, &format!("{ptr}/anyOf/{i}"))?);
            }
            return Ok(Expr::alt(alts));
        }
        if map.contains_key("enum") || map.contains_key("const") {
            let key = if map.contains_key("enum") {
                "enum"
            } else {
                "const"
            };
            alone(key, &["type"])?;
            return self.enumeration(map, ptr);
        }
        let Some(types) = self.types(map, ptr)? else {
            return Ok(Expr::rule("value"));
        };
        let mut alts = Vec::new();
        for t in types {
            alts.push(match t {
                "null" => Expr::lit("null"),
                "boolean" => Expr::alt(vec![Expr::lit("true"), Expr::lit("false")]),
                "string" => self.string(map, ptr)?,
                "integer" => self.integer(map, ptr)?,
                "number" => self.number(map, ptr)?,
                "object" => self.object(map, ptr)?,
                _ => self.array(map, ptr)?,
            });
        }
        Ok(Expr::alt(alts))
    }

    /// The types a node allows: its `type`, or those its keywords imply (`None`: any value).
    fn types(
        &self,
        map: &Map<String, Value>,
        ptr: &str,
    ) -> Result<Option<Vec<&'static str>>, Error> {
        let name = |v: &Value| -> Result<&'static str, Error> {
            let s = v
                .as_str()
                .ok_or_else(|| err(ptr, "`type` must be a string or a list of strings"))?;
            TYPES
                .iter()
                .copied()
                .find(|t| *t == s)
                .ok_or_else(|| err(ptr, format!("unknown `type` `{s}`")))
        };
        let mut types = match map.get("type") {
            None => {
                let has = |ks: &[&str]| ks.iter().any(|k| map.contains_key(*k));
                let mut t = Vec::new();
                if has(&["properties", "required", "additionalProperties"]) {
                    t.push("object");
                }
                if has(&["items", "prefixItems", "minItems", "maxItems"]) {
                    t.push("array");
                }
                if has(&["minLength", "maxLength"]) {
                    t.push("string");
                }
                if has(&["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]) {
                    t.push("number");
                }
                if t.is_empty() {
                    return Ok(None);
                }
                t
            }
            Some(Value::Array(list)) => {
                if list.is_empty() {
                    return Err(err(ptr, "`type` is an empty list: nothing matches"));
                }
                list.iter().map(name).collect::<Result<Vec<_>, _>>()?
            }
            Some(v) => vec![name(v)?],
        };
        let mut seen = HashSet::new();
        types.retain(|t| seen.insert(*t));
        if types.contains(&"number") {
            types.retain(|t| *t != "integer");
        }
        Ok(Some(types))
    }

    fn enumeration(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let values: Vec<&Value> = match (map.get("enum"), map.get("const")) {
            (Some(_), Some(_)) => {
                return Err(err(ptr, "`enum` combined with `const` is not supported"))
            }
            (None, Some(c)) => vec![c],
            (Some(Value::Array(list)), None) if !list.is_empty() => list.iter().collect(),
            (Some(Value::Array(_)), None) => {
                return Err(err(ptr, "`enum` is empty: nothing matches"))
            }
            _ => return Err(err(ptr, "`enum` must be a list")),
        };
        let types = if map.contains_key("type") {
            self.types(map, ptr)?
        } else {
            None
        };
        let mut texts: Vec<String> = Vec::new();
        for v in values {
            if types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| has_type(v, t)))
            {
                let t = json_text(v);
                if !texts.contains(&t) {
                    texts.push(t);
                }
            }
        }
        if texts.is_empty() {
            return Err(err(
                ptr,
                "no value of `enum`/`const` has the schema's `type`: nothing matches",
            ));
        }
        Ok(Expr::alt(texts.iter().map(|t| Expr::lit(t)).collect()))
    }

    fn reference(&mut self, r: &Value, ptr: &str) -> Result<Expr, Error> {
        let s = r
            .as_str()
            .ok_or_else(|| err(ptr, "`$ref` must be a string"))?;
        let Some(local) = s.strip_prefix('#') else {
            return Err(err(ptr, format!("remote `$ref` `{s}` is not supported (only `#/$defs/...`, `#/definitions/...`)")));
        };
        let target = percent_decode(local);
        if !target.is_empty() && !target.starts_with('/') {
            return Err(err(
                ptr,
                format!("`$ref` `{s}` (an anchor) is not supported"),
            ));
        }
        if let Some(name) = self.refs.get(&target) {
            return Ok(Expr::rule(name));
        }
        let node = self
            .root
            .pointer(&target)
            .ok_or_else(|| err(ptr, format!("`$ref` `{s}` points to nothing")))?;
        let name = self.fresh(&hint(&target));
        self.refs.insert(target.clone(), name.clone());
        let e = self.node(node, &target)?;
        self.defs.push(RuleDef::new(name.clone(), e));
        Ok(Expr::rule(&name))
    }

    pub(crate) fn count(
        &self,
        map: &Map<String, Value>,
        key: &str,
        ptr: &str,
    ) -> Result<Option<u32>, Error> {
        let Some(v) = map.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| err(ptr, format!("`{key}` must be a non-negative integer")))?;
        if n > u64::from(MAX_REPEAT) {
            return Err(err(
                ptr,
                format!("`{key}` {n} is above the supported maximum of {MAX_REPEAT}"),
            ));
        }
        Ok(Some(n as u32))
    }

    fn string(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let min = self.count(map, "minLength", ptr)?.unwrap_or(0);
        let max = self.count(map, "maxLength", ptr)?;
        if max.is_some_and(|m| m < min) {
            return Err(err(
                ptr,
                "`minLength` is above `maxLength`: nothing matches",
            ));
        }
        if min == 0 && max.is_none() {
            return Ok(Expr::rule("string"));
        }
        Ok(Expr::seq(vec![
            Expr::lit("\""),
            Expr::repeat(Expr::rule("char"), min, max),
            Expr::lit("\""),
        ]))
    }

    fn num(&self, map: &Map<String, Value>, key: &str, ptr: &str) -> Result<Option<Num>, Error> {
        let Some(v) = map.get(key) else {
            return Ok(None);
        };
        let Value::Number(n) = v else {
            return Err(err(ptr, format!("`{key}` must be a number")));
        };
        if let Some(i) = n.as_i64() {
            return Ok(Some(Num::Int(i128::from(i))));
        }
        if let Some(u) = n.as_u64() {
            return Ok(Some(Num::Int(i128::from(u))));
        }
        let f = n.as_f64().unwrap_or(f64::NAN);
        if !f.is_finite() || f.abs() > 1e18 {
            return Err(err(
                ptr,
                format!("`{key}` {n} is outside the supported range (±1e18)"),
            ));
        }
        Ok(Some(if f.fract() == 0.0 {
            Num::Int(f as i128)
        } else {
            Num::Frac(f)
        }))
    }

    /// The lower and upper bounds as written: `(keyword, value, exclusive)`.
    #[allow(clippy::type_complexity)]
    fn bounds(
        &self,
        map: &Map<String, Value>,
        ptr: &str,
    ) -> Result<
        (
            Vec<(&'static str, Num, bool)>,
            Vec<(&'static str, Num, bool)>,
        ),
        Error,
    > {
        let mut sides = (Vec::new(), Vec::new());
        for (incl, excl, out) in [
            ("minimum", "exclusiveMinimum", &mut sides.0),
            ("maximum", "exclusiveMaximum", &mut sides.1),
        ] {
            let plain = self.num(map, incl, ptr)?;
            match map.get(excl) {
                Some(Value::Bool(flag)) => {
                    let Some(p) = plain else {
                        if *flag {
                            return Err(err(ptr, format!("`{excl}: true` needs `{incl}`")));
                        }
                        continue;
                    };
                    out.push((incl, p, *flag));
                }
                _ => {
                    if let Some(p) = plain {
                        out.push((incl, p, false));
                    }
                    if let Some(e) = self.num(map, excl, ptr)? {
                        out.push((excl, e, true));
                    }
                }
            }
        }
        Ok(sides)
    }

    fn integer(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let (lows, highs) = self.bounds(map, ptr)?;
        let lo = lows
            .iter()
            .map(|&(_, n, ex)| match n {
                Num::Int(v) => v + i128::from(ex),
                Num::Frac(f) => (if ex { f.floor() + 1.0 } else { f.ceil() }) as i128,
            })
            .max();
        let hi = highs
            .iter()
            .map(|&(_, n, ex)| match n {
                Num::Int(v) => v - i128::from(ex),
                Num::Frac(f) => (if ex { f.ceil() - 1.0 } else { f.floor() }) as i128,
            })
            .min();
        if lo.is_none() && hi.is_none() {
            return Ok(Expr::rule("integer"));
        }
        int_range(lo, hi).ok_or_else(|| err(ptr, "no integer satisfies the bounds"))
    }

    fn number(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let (lows, highs) = self.bounds(map, ptr)?;
        let whole = |list: &[(&str, Num, bool)]| -> Result<Vec<Bound>, Error> {
            list.iter()
                .map(|&(key, n, ex)| match n {
                    Num::Int(v) => Ok((v, ex)),
                    Num::Frac(f) => Err(err(
                        ptr,
                        format!(
                            "`{key}` {f} is not an integer: bounds on numbers must be integers"
                        ),
                    )),
                })
                .collect()
        };
        let lower = whole(&lows)?.into_iter().reduce(stricter_lower);
        let upper = whole(&highs)?.into_iter().reduce(stricter_upper);
        if lower.is_none() && upper.is_none() {
            return Ok(Expr::rule("number"));
        }
        number_range(lower, upper).ok_or_else(|| err(ptr, "no number satisfies the bounds"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
