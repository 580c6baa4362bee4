//! JSON Schema objects and arrays: properties in order with optional ones (commas handled), maps, items with
//! counts and prefixes.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::expr::Expr;
use crate::order::escape_pointer;
use crate::schema::{err, hint, json_text, ws, Compiler, MAX_PREFIX};

impl Compiler<'_> {
    fn required(&self, map: &Map<String, Value>, ptr: &str) -> Result<Vec<String>, Error> {
        let Some(r) = map.get("required") else {
            return Ok(Vec::new());
        };
        let Value::Array(list) = r else {
            return Err(err(ptr, "`required` must be a list of strings"));
        };
        let mut out: Vec<String> = Vec::new();
        for v in list {
            let s = v
                .as_str()
                .ok_or_else(|| err(ptr, "`required` must be a list of strings"))?;
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        Ok(out)
    }

    fn ordered_keys<'m>(&self, props: &'m Map<String, Value>, ptr: &str) -> Vec<&'m String> {
        let mut keys: Vec<&String> = Vec::new();
        if let Some(order) = self.orders.and_then(|o| o.get(ptr)) {
            for k in order {
                if let Some((key, _)) = props.get_key_value(k) {
                    keys.push(key);
                }
            }
        }
        for k in props.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    pub(crate) fn object(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let props = match map.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => return Err(err(ptr, "`properties` must be an object")),
        };
        let required = self.required(map, ptr)?;
        let addl = map.get("additionalProperties");
        let closed = matches!(addl, Some(Value::Bool(false)));
        let addl_schema = match addl {
            None | Some(Value::Bool(_)) => None,
            Some(Value::Object(o)) if o.is_empty() => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return Err(err(ptr, "`additionalProperties` must be a schema")),
        };
        let open = |e: Expr| Expr::seq(vec![Expr::lit("{"), ws(), e, Expr::lit("}")]);
        if props.is_none() && required.is_empty() {
            if closed {
                return Ok(open(Expr::empty()));
            }
            let Some(s) = addl_schema else {
                return Ok(Expr::rule("object"));
            };
            let v = self.node(s, &format!("{ptr}/additionalProperties"))?;
            let kv = Expr::seq(vec![
                Expr::rule("string"),
                ws(),
                Expr::lit(":"),
                ws(),
                v,
                ws(),
            ]);
            let kv = self.named(&format!("{}-entry", hint(ptr)), kv);
            let more = Expr::star(Expr::seq(vec![Expr::lit(","), ws(), kv.clone()]));
            let body = open(Expr::opt(Expr::seq(vec![kv, more])));
            return Ok(self.named(&hint(ptr), body));
        }
        // The properties in order: (key, value grammar, required).
        let mut list: Vec<(String, Expr, bool)> = Vec::new();
        if let Some(p) = props {
            let pptr = format!("{ptr}/properties");
            for key in self.ordered_keys(p, &pptr) {
                let sptr = format!("{pptr}/{}", escape_pointer(key));
                let req = required.contains(key);
                let sub = &p[key.as_str()];
                if *sub == Value::Bool(false) {
                    if req {
                        return Err(err(
                            &sptr,
                            "a required property has the schema `false`: nothing matches",
                        ));
                    }
                    continue;
                }
                let e = self.node(sub, &sptr)?;
                list.push((key.clone(), e, req));
            }
        }
        for r in &required {
            if props.is_some_and(|p| p.contains_key(r)) {
                continue;
            }
            if closed {
                return Err(err(
                    ptr,
                    format!("required property `{r}` is not in `properties` and `additionalProperties` is false"),
                ));
            }
            let e = match addl_schema {
                Some(s) => self.node(s, &format!("{ptr}/additionalProperties"))?,
                None => Expr::rule("value"),
            };
            list.push((r.clone(), e, true));
        }
        let name = hint(ptr);
        let kv = |key: &str, e: Expr| {
            Expr::seq(vec![
                Expr::lit(&json_text(&Value::String(key.to_string()))),
                ws(),
                Expr::lit(":"),
                ws(),
                e,
                ws(),
            ])
        };
        if list.iter().all(|p| p.2) {
            let mut items = Vec::new();
            for (i, (key, e, _)) in list.into_iter().enumerate() {
                if i > 0 {
                    items.extend([Expr::lit(","), ws()]);
                }
                items.push(kv(&key, e));
            }
            return Ok(self.named(&name, open(Expr::seq(items))));
        }
        // first(i): properties i.. when none was written yet; rest(i): when one was (so each needs a comma).
        let mut first = Expr::empty();
        let mut rest = Expr::empty();
        for (i, (key, e, req)) in list.into_iter().enumerate().rev() {
            let pair = self.named(&format!("{name}-{key}-kv"), kv(&key, e));
            let comma = Expr::seq(vec![Expr::lit(","), ws(), pair.clone(), rest.clone()]);
            let lead = Expr::seq(vec![pair, rest.clone()]);
            let new_rest = if req {
                comma
            } else {
                Expr::alt(vec![comma, rest])
            };
            let new_first = if req {
                lead
            } else {
                Expr::alt(vec![lead, first])
            };
            if i == 0 {
                first = new_first;
                break;
            }
            rest = self.named(&format!("{name}-more{i}"), new_rest);
            first = self.named(&format!("{name}-from{i}"), new_first);
        }
        Ok(self.named(&name, open(first)))
    }

    pub(crate) fn array(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Expr, Error> {
        let prefix: Vec<Expr> = match map.get("prefixItems") {
            None => Vec::new(),
            Some(Value::Array(list)) => {
                if list.len() > MAX_PREFIX {
                    return Err(err(
                        ptr,
                        format!("`prefixItems` has more than {MAX_PREFIX} schemas"),
                    ));
                }
                let mut v = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    v.push(self.node(s, &format!("{ptr}/prefixItems/{i}"))?);
                }
                v
            }
            Some(_) => return Err(err(ptr, "`prefixItems` must be a list of schemas")),
        };
        let item =
            match map.get("items") {
                None | Some(Value::Bool(true)) => Some(Expr::rule("value")),
                Some(Value::Bool(false)) => None,
                Some(Value::Array(_)) => return Err(err(
                    ptr,
                    "`items` as a list (the old tuple form) is not supported: use `prefixItems`",
                )),
                Some(s) => match self.node(s, &format!("{ptr}/items"))? {
                    e @ Expr::Ref { .. } => Some(e),
                    e => Some(self.named(&format!("{}-item", hint(ptr)), e)),
                },
            };
        let k = prefix.len() as u32;
        let min = self.count(map, "minItems", ptr)?.unwrap_or(0);
        let mut max = self.count(map, "maxItems", ptr)?;
        if item.is_none() {
            max = Some(max.map_or(k, |m| m.min(k)));
        }
        if max.is_some_and(|m| m < min) {
            return Err(err(
                ptr,
                "`minItems` is above the most items allowed: nothing matches",
            ));
        }
        let comma_item = |it: &Expr| Expr::seq(vec![Expr::lit(","), ws(), it.clone(), ws()]);
        let body = match (&item, k) {
            _ if max == Some(0) => Expr::empty(),
            (None, 0) => Expr::empty(),
            (Some(it), 0) => {
                let more = Expr::repeat(comma_item(it), min.max(1) - 1, max.map(|m| m - 1));
                let inner = Expr::seq(vec![it.clone(), ws(), more]);
                if min == 0 {
                    Expr::opt(inner)
                } else {
                    inner
                }
            }
            _ => {
                let mut tail = match &item {
                    Some(it) if max.is_none_or(|m| m > k) => {
                        Expr::repeat(comma_item(it), min.saturating_sub(k), max.map(|m| m - k))
                    }
                    _ => Expr::empty(),
                };
                for i in (1..k).rev() {
                    if max.is_some_and(|m| i >= m) {
                        tail = Expr::empty();
                        continue;
                    }
                    let inner = Expr::seq(vec![
                        Expr::lit(","),
                        ws(),
                        prefix[i as usize].clone(),
                        ws(),
                        tail,
                    ]);
                    let inner = if i < min { inner } else { Expr::opt(inner) };
                    tail = if k > 4 {
                        self.named(&format!("{}-tail{i}", hint(ptr)), inner)
                    } else {
                        inner
                    };
                }
                let inner = Expr::seq(vec![prefix[0].clone(), ws(), tail]);
                if min == 0 {
                    Expr::opt(inner)
                } else {
                    inner
                }
            }
        };
        let body = Expr::seq(vec![Expr::lit("["), ws(), body, Expr::lit("]")]);
        Ok(self.named(&hint(ptr), body))
    }
}
