//! Tool calls: OpenAI `tools` in; the model's own call syntax out, kept valid by a grammar (GBNF for
//! flint-constrain), and parsed back into calls.
//!
//! Two syntaxes, chosen from the chat template:
//! - ATEM (Muse; llama.cpp's `muse-glimmer.jinja`): the assistant turn `to=NAME<|message|>` carries
//!   `<atem:function_calls>\n<atem:invoke name="NAME">\n<atem:parameter name="K">V</atem:parameter>\n…
//!   </atem:invoke>\n</atem:function_calls>`; scalar values are written as they are, lists and objects as JSON.
//! - Hermes (Qwen2.5, Qwen3, and any template that does not render tools itself):
//!   `<tool_call>\n{"name": NAME, "arguments": {…}}\n</tool_call>`. A template without tools gets them described
//!   in its system message ([`system_prompt`]), and earlier calls and results written in the same syntax.
//!
//! The grammar of a call is built from each tool's parameter schema (flint-constrain's JSON-schema compiler): a
//! schema it cannot enforce is an error before generation. With `tool_choice` `auto` the grammar waits for the
//! syntax's opening marker (a lazy constraint); with `required` or a named function it applies from the first
//! token.

use flint_constrain::Grammar;
use serde_json::{json, Map, Value};

/// The call syntax a model writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSyntax {
    Hermes,
    Atem,
}

/// One function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// A JSON Schema of the arguments object.
    pub parameters: Value,
}

/// `tool_choice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// One call the model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// The grammar of the calls and, for a lazy one, the markers it waits for.
#[derive(Clone, Debug)]
pub struct CallGrammar {
    pub gbnf: String,
    /// Empty: the grammar applies from the first token.
    pub triggers: Vec<String>,
}

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const ATEM_OPEN: &str = "<atem:function_calls>";
const ATEM_CLOSE: &str = "</atem:function_calls>";

impl ToolSyntax {
    /// ATEM for a template that renders it, else Hermes.
    pub fn for_template(template: Option<&str>) -> ToolSyntax {
        match template {
            Some(t) if t.contains(ATEM_OPEN) => ToolSyntax::Atem,
            _ => ToolSyntax::Hermes,
        }
    }

    /// Special tokens whose text the grammar spells (so the vocabulary must keep them).
    pub fn markers(self) -> &'static [&'static str] {
        match self {
            ToolSyntax::Hermes => &[HERMES_OPEN, HERMES_CLOSE],
            ToolSyntax::Atem => &["<|message|>", ATEM_OPEN, ATEM_CLOSE],
        }
    }
}

/// Whether a chat template renders `tools` itself.
pub fn template_renders_tools(template: Option<&str>) -> bool {
    template.is_some_and(|t| t.contains("tools"))
}

/// Reads OpenAI `tools`: `[{"type": "function", "function": {"name", "description"?, "parameters"?}}]`. Errors
/// name the field.
pub fn parse_tools(v: &Value) -> Result<Vec<Tool>, (String, String)> {
    let bad = |at: String, m: &str| Err((at, m.to_string()));
    let Some(list) = v.as_array() else {
        return bad("tools".into(), "must be an array");
    };
    if list.is_empty() || list.len() > 128 {
        return bad("tools".into(), "must hold 1 to 128 tools");
    }
    let mut out: Vec<Tool> = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return bad(format!("{at}.type"), "only `function` tools exist");
        }
        let Some(f) = t.get("function").and_then(Value::as_object) else {
            return bad(format!("{at}.function"), "must be an object");
        };
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            return bad(
                format!("{at}.function.name"),
                "must be 1-64 characters of a-z, A-Z, 0-9, `_`, `-` and `.`",
            );
        }
        if out.iter().any(|o| o.name == name) {
            return bad(format!("{at}.function.name"), "names a tool twice");
        }
        let description = match f.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return bad(format!("{at}.function.description"), "must be a string"),
        };
        let parameters = match f.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return bad(format!("{at}.function.parameters"), "must be an object"),
        };
        if parameters.get("type").and_then(Value::as_str) != Some("object") {
            return bad(
                format!("{at}.function.parameters.type"),
                "must be `object`: arguments are an object",
            );
        }
        out.push(Tool {
            name: name.to_string(),
            description,
            parameters,
        });
    }
    Ok(out)
}

/// Reads `tool_choice` (absent: `auto`).
pub fn parse_choice(v: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, String> {
    let c = match v {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(format!("`{s}` is not auto, none or required")),
        },
        Some(o) => match o.pointer("/function/name").and_then(Value::as_str) {
            Some(n) if o.get("type").and_then(Value::as_str) == Some("function") => {
                ToolChoice::Named(n.to_string())
            }
            _ => {
                return Err(
                    "must be a string or {\"type\": \"function\", \"function\": {\"name\"}}".into(),
                )
            }
        },
    };
    if let ToolChoice::Named(n) = &c {
        if !tools.iter().any(|t| &t.name == n) {
            return Err(format!("names `{n}`, which is not among the tools"));
        }
    }
    Ok(c)
}

/// The tools as the `tools` value a template reads.
pub fn tools_value(tools: &[Tool]) -> Value {
    Value::Array(
        tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect(),
    )
}

/// The system text that describes the tools, Hermes style, for a template that does not render them.
pub fn system_prompt(tools: &[Tool]) -> String {
    let mut s = String::from(
        "You can call functions to help with the user's request. The functions, as JSON Schema, are between \
         <tools> and </tools>:\n<tools>\n",
    );
    for t in tools_value(tools).as_array().into_iter().flatten() {
        s += &t.to_string();
        s.push('\n');
    }
    s += "</tools>\n\nTo call a function, answer with a JSON object of its name and arguments between \
          <tool_call> and </tool_call>:\n<tool_call>\n{\"name\": <function name>, \"arguments\": <arguments \
          object>}\n</tool_call>";
    s
}

/// An earlier call, as the assistant wrote it in the Hermes syntax (for templates without tools).
pub fn hermes_text(call: &ToolCall) -> String {
    format!(
        "{HERMES_OPEN}\n{}\n{HERMES_CLOSE}",
        json!({"name": call.name, "arguments": call.arguments})
    )
}

/// A tool's result, as a template without tools reads it (a user turn).
pub fn hermes_result(content: &str) -> String {
    format!("<tool_response>\n{content}\n</tool_response>")
}

/// The grammar of one call to one of `tools` (`choice` not `None`).
pub fn call_grammar(
    syntax: ToolSyntax,
    tools: &[Tool],
    choice: &ToolChoice,
) -> Result<CallGrammar, String> {
    let pick: Vec<&Tool> = match choice {
        ToolChoice::None => return Err("tool_choice `none` has no call grammar".into()),
        ToolChoice::Named(n) => tools.iter().filter(|t| &t.name == n).collect(),
        _ => tools.iter().collect(),
    };
    let lazy = *choice == ToolChoice::Auto;
    match syntax {
        ToolSyntax::Hermes => {
            let alts: Vec<Value> = pick
                .iter()
                .map(|t| {
                    json!({"type": "object",
                        "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                        "required": ["name", "arguments"], "additionalProperties": false})
                })
                .collect();
            let schema = if alts.len() == 1 {
                alts[0].clone()
            } else {
                json!({ "anyOf": alts })
            };
            let mut g =
                rules_of(&schema, "c-").map_err(|e| format!("the tool's parameters: {e}"))?;
            let open = if lazy { "" } else { "\"<tool_call>\" " };
            g.insert_str(
                0,
                &format!("root ::= {open}\"\\n\" c-root \"\\n</tool_call>\"\n"),
            );
            Ok(CallGrammar {
                gbnf: g,
                triggers: if lazy {
                    vec![HERMES_OPEN.into()]
                } else {
                    vec![]
                },
            })
        }
        ToolSyntax::Atem => {
            let mut g = String::new();
            let mut names = Vec::new();
            for (i, t) in pick.iter().enumerate() {
                let rule = format!("t{i}");
                let body = atem_params(t, &format!("t{i}-"), &mut g)
                    .map_err(|e| format!("tool `{}`: {e}", t.name))?;
                // The recipient, then the block (the recipient comes first when the grammar starts at the turn).
                let head = if lazy {
                    String::new()
                } else {
                    format!("{} \"<|message|>{ATEM_OPEN}\" ", gbnf_str(&t.name))
                };
                g += &format!(
                    "{rule} ::= {head}\"\\n<atem:invoke name=\\\"\" {} \"\\\">\\n\" {body} \"</atem:invoke>\\n{ATEM_CLOSE}\"\n",
                    gbnf_str(&t.name)
                );
                names.push(rule);
            }
            let lead = if lazy { "" } else { "\" to=\" " };
            let root = format!("root ::= {lead}({})\n", names.join(" | "));
            Ok(CallGrammar {
                gbnf: root + &g,
                triggers: if lazy { vec![ATEM_OPEN.into()] } else { vec![] },
            })
        }
    }
}

/// The parameter lines of an ATEM call to `t` (rules added to `g`): required ones always, optional ones may be
/// left out, in the schema's order. A string parameter is raw text up to the next `<`; any other is JSON.
fn atem_params(t: &Tool, prefix: &str, g: &mut String) -> Result<String, String> {
    let empty = Map::new();
    let props = t
        .parameters
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = t
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seq = Vec::new();
    for (k, (name, schema)) in props.iter().enumerate() {
        let value = if let Some(raw) = raw_string(schema) {
            match raw {
                None => "[^<]*".to_string(),
                Some(values) => format!(
                    "({})",
                    values
                        .iter()
                        .map(|v| gbnf_str(v))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            }
        } else {
            let p = format!("{prefix}p{k}-");
            *g += &rules_of(schema, &p).map_err(|e| format!("parameter `{name}`: {e}"))?;
            format!("{p}root")
        };
        let line = format!(
            "\"<atem:parameter name=\\\"\" {} \"\\\">\" {value} \"</atem:parameter>\\n\"",
            gbnf_str(name)
        );
        seq.push(if required.contains(&name.as_str()) {
            line
        } else {
            format!("({line})?")
        });
    }
    Ok(if seq.is_empty() {
        "\"\"".into()
    } else {
        seq.join(" ")
    })
}

/// How ATEM writes a parameter of this schema: as raw text when it is a string (`Some(None)`: any text without `<`;
/// `Some(Some(values))`: one of a string enum's values), else (`None`) as JSON.
fn raw_string(schema: &Value) -> Option<Option<Vec<String>>> {
    let o = schema.as_object()?;
    let annotation = |k: &str| ["description", "title", "examples", "default"].contains(&k);
    if let Some(Value::Array(e)) = o.get("enum") {
        let values: Option<Vec<String>> =
            e.iter().map(|v| v.as_str().map(str::to_string)).collect();
        let plain = o
            .keys()
            .all(|k| k == "enum" || k == "type" || annotation(k));
        return values
            .filter(|v| plain && !v.is_empty() && v.iter().all(|s| !s.contains('<')))
            .map(Some);
    }
    let plain = o.keys().all(|k| k == "type" || annotation(k));
    (plain && o.get("type").and_then(Value::as_str) == Some("string")).then_some(None)
}

/// The GBNF rules of a JSON schema, every rule name prefixed (its start rule is `{prefix}root`).
fn rules_of(schema: &Value, prefix: &str) -> Result<String, String> {
    let g = Grammar::from_json_schema(schema).map_err(|e| e.to_string())?;
    Ok(prefix_rules(&g.to_gbnf(), prefix))
}

/// `s` as a GBNF string literal.
fn gbnf_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o += "\\\"",
            '\\' => o += "\\\\",
            '\n' => o += "\\n",
            '[' => o += "\\[",
            ']' => o += "\\]",
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Renames every rule of a GBNF text to `prefix` + name (definitions and references; literals, classes,
/// repetition counts and comments are left as they are).
pub fn prefix_rules(gbnf: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(gbnf.len() * 2);
    let mut it = gbnf.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                out.push(c);
                while let Some(d) = it.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = it.next() {
                            out.push(e);
                        }
                    } else if d == close {
                        break;
                    }
                }
            }
            '{' | '#' => {
                let close = if c == '{' { '}' } else { '\n' };
                out.push(c);
                for d in it.by_ref() {
                    out.push(d);
                    if d == close {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                out += prefix;
                out.push(c);
                while let Some(&d) = it.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '-' {
                        out.push(d);
                        it.next();
                    } else {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Splits generated text into the answer's words and the calls it makes. Arguments of ATEM string parameters
/// stay strings; the others are read as JSON.
pub fn parse_calls(
    syntax: ToolSyntax,
    text: &str,
    tools: &[Tool],
) -> Result<(String, Vec<ToolCall>), String> {
    match syntax {
        ToolSyntax::Hermes => {
            let Some(at) = text.find(HERMES_OPEN) else {
                return Ok((text.to_string(), vec![]));
            };
            let mut calls = Vec::new();
            let mut rest = &text[at..];
            while let Some(s) = rest.find(HERMES_OPEN) {
                let body = &rest[s + HERMES_OPEN.len()..];
                let e = body
                    .find(HERMES_CLOSE)
                    .ok_or("a <tool_call> is not closed")?;
                let v: Value = serde_json::from_str(body[..e].trim())
                    .map_err(|e| format!("a <tool_call> is not JSON: {e}"))?;
                let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                if !tools.iter().any(|t| t.name == name) {
                    return Err(format!(
                        "a call names `{name}`, which is not among the tools"
                    ));
                }
                calls.push(ToolCall {
                    name: name.to_string(),
                    arguments: v.get("arguments").cloned().unwrap_or(json!({})),
                });
                rest = &body[e + HERMES_CLOSE.len()..];
            }
            Ok((text[..at].trim().to_string(), calls))
        }
        ToolSyntax::Atem => {
            let Some(at) = text.find(ATEM_OPEN) else {
                let t = text.trim_start();
                return Ok((
                    t.strip_prefix("to=user")
                        .unwrap_or(t)
                        .trim_start()
                        .to_string(),
                    vec![],
                ));
            };
            let mut calls = Vec::new();
            let mut rest = &text[at..];
            while let Some(s) = rest.find("<atem:invoke name=\"") {
                let body = &rest[s + "<atem:invoke name=\"".len()..];
                let q = body.find('"').ok_or("an invoke's name is not closed")?;
                let name = &body[..q];
                let tool = tools.iter().find(|t| t.name == name).ok_or_else(|| {
                    format!("a call names `{name}`, which is not among the tools")
                })?;
                let end = q + body[q..]
                    .find("</atem:invoke>")
                    .ok_or("an invoke is not closed")?;
                let mut args = Map::new();
                let mut p = &body[q..end];
                while let Some(ps) = p.find("<atem:parameter name=\"") {
                    let b = &p[ps + "<atem:parameter name=\"".len()..];
                    let kq = b.find("\">").ok_or("a parameter's name is not closed")?;
                    let key = &b[..kq];
                    let ve = kq
                        + 2
                        + b[kq + 2..]
                            .find("</atem:parameter>")
                            .ok_or("a parameter is not closed")?;
                    let raw = &b[kq + 2..ve];
                    let is_string = tool
                        .parameters
                        .pointer(&format!(
                            "/properties/{}",
                            key.replace('~', "~0").replace('/', "~1")
                        ))
                        .and_then(raw_string)
                        .is_some();
                    let v = if is_string {
                        Value::String(raw.to_string())
                    } else {
                        serde_json::from_str(raw.trim())
                            .map_err(|e| format!("parameter `{key}` is not JSON: {e}"))?
                    };
                    args.insert(key.to_string(), v);
                    p = &b[ve..];
                }
                calls.push(ToolCall {
                    name: name.to_string(),
                    arguments: Value::Object(args),
                });
                rest = &body[end..];
            }
            // The words before the block, without the channel's recipient (`to=NAME`).
            let mut head = text[..at].trim_end();
            if let Some(k) = head.rfind("to=") {
                head = &head[..k];
            }
            let head = head.trim();
            Ok((
                head.strip_prefix("to=user")
                    .unwrap_or(head)
                    .trim()
                    .to_string(),
                calls,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flint_constrain::{Constraint, Vocab};
    use std::sync::Arc;

    fn weather() -> Vec<Tool> {
        parse_tools(&json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather now.",
             "parameters": {"type": "object", "properties": {
                 "city": {"type": "string", "description": "A city"},
                 "days": {"type": "integer", "minimum": 1, "maximum": 7},
                 "unit": {"enum": ["c", "f"]}},
              "required": ["city", "unit"]}}},
            {"type": "function", "function": {"name": "ping"}}
        ]))
        .unwrap()
    }

    #[test]
    fn reads_tools_and_refuses_bad_ones() {
        let t = weather();
        assert_eq!(
            (t[0].name.as_str(), t[1].name.as_str()),
            ("get_weather", "ping")
        );
        for (v, at) in [
            (json!({}), "tools"),
            (json!([]), "tools"),
            (json!([{"type": "retrieval"}]), "tools[0].type"),
            (
                json!([{"type": "function", "function": {"name": "a b"}}]),
                "tools[0].function.name",
            ),
            (
                json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]),
                "tools[0].function.parameters.type",
            ),
            (
                json!([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]),
                "tools[1].function.name",
            ),
        ] {
            assert_eq!(parse_tools(&v).unwrap_err().0, at, "{v}");
        }
        assert_eq!(parse_choice(None, &t).unwrap(), ToolChoice::Auto);
        assert_eq!(
            parse_choice(
                Some(&json!({"type": "function", "function": {"name": "ping"}})),
                &t
            )
            .unwrap(),
            ToolChoice::Named("ping".into())
        );
        assert!(parse_choice(Some(&json!("sometimes")), &t).is_err());
        assert!(parse_choice(
            Some(&json!({"type": "function", "function": {"name": "nope"}})),
            &t
        )
        .is_err());
    }

    #[test]
    fn parses_recorded_calls() {
        let t = weather();
        let hermes = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>";
        let (content, calls) = parse_calls(ToolSyntax::Hermes, hermes, &t).unwrap();
        assert_eq!(content, "Let me check.");
        assert_eq!(calls[0].arguments, json!({"city": "Paris", "unit": "c"}));
        // Muse's ATEM block, as the template renders a call (strings as they are, the rest as JSON).
        let atem = " to=get_weather<atem:function_calls>\n<atem:invoke name=\"get_weather\">\n<atem:parameter name=\"city\">New York</atem:parameter>\n<atem:parameter name=\"days\">3</atem:parameter>\n<atem:parameter name=\"unit\">f</atem:parameter>\n</atem:invoke>\n</atem:function_calls>";
        let (content, calls) = parse_calls(ToolSyntax::Atem, atem, &t).unwrap();
        assert_eq!(content, "");
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(
            calls[0].arguments,
            json!({"city": "New York", "days": 3, "unit": "f"})
        );
        assert!(parse_calls(
            ToolSyntax::Hermes,
            "<tool_call>{\"name\": \"rm\"}</tool_call>",
            &t
        )
        .is_err());
        // Markup out of order is an error, never a panic.
        for bad in [
            "<atem:function_calls><atem:invoke name=\"get_weather\"><atem:parameter name=\"k</atem:parameter>\">",
            "<atem:function_calls></atem:invoke><atem:invoke name=\"get_weather\">",
            "<atem:function_calls><atem:invoke name=\"get_weather",
            "<tool_call></tool_call",
        ] {
            for syntax in [ToolSyntax::Atem, ToolSyntax::Hermes] {
                let _ = parse_calls(syntax, bad, &t);
            }
        }
        assert_eq!(
            parse_calls(ToolSyntax::Atem, " to=user Hello", &t).unwrap(),
            ("Hello".into(), vec![])
        );
    }

    #[test]
    fn renames_rules_but_not_literals_classes_or_counts() {
        let g = "root ::= item (\",\" item){0,3} # a list\nitem ::= [a-z]+ \"root\"\n";
        assert_eq!(
            prefix_rules(g, "p-"),
            "p-root ::= p-item (\",\" p-item){0,3} # a list\np-item ::= [a-z]+ \"root\"\n"
        );
    }

    /// A byte vocabulary with some longer pieces, and an end token.
    fn vocab(extra: &[&str]) -> (Arc<Vocab>, u32) {
        let mut toks: Vec<Option<Vec<u8>>> = (0u8..=255).map(|b| Some(vec![b])).collect();
        for e in extra {
            toks.push(Some(e.as_bytes().to_vec()));
        }
        let end = toks.len() as u32;
        toks.push(None);
        (Arc::new(Vocab::new(toks, vec![end])), end)
    }

    /// Walks the constraint with a seeded choice among the allowed tokens until the end token.
    fn walk(mut c: Constraint, extra: &[&str], end: u32, seed: u64, prefix: &str) -> String {
        let n_vocab = 257 + extra.len();
        let mut out = prefix.as_bytes().to_vec();
        let mut state = seed;
        for _ in 0..4000 {
            let mut logits = vec![0f32; n_vocab];
            c.mask(&mut logits).unwrap();
            let allowed: Vec<u32> = (0..n_vocab as u32)
                .filter(|&i| logits[i as usize].is_finite())
                .collect();
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Lean to the end and to short strings so walks finish.
            let id = if allowed.contains(&end) && state >> 60 < 8 {
                end
            } else {
                allowed[(state >> 33) as usize % allowed.len()]
            };
            c.accept(id).unwrap();
            if id == end {
                return String::from_utf8(out).unwrap();
            }
            match (id as usize).checked_sub(256) {
                None => out.push(id as u8),
                Some(k) => out.extend_from_slice(extra[k].as_bytes()),
            }
        }
        panic!("the walk did not end: {}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn every_call_the_grammar_allows_parses_and_keeps_to_the_schema() {
        let t = weather();
        for syntax in [ToolSyntax::Hermes, ToolSyntax::Atem] {
            for choice in [
                ToolChoice::Required,
                ToolChoice::Named("get_weather".into()),
            ] {
                let g = call_grammar(syntax, &t, &choice).unwrap();
                assert!(g.triggers.is_empty());
                let grammar = Arc::new(
                    Grammar::from_gbnf(&g.gbnf).unwrap_or_else(|e| panic!("{e}\n{}", g.gbnf)),
                );
                let (v, end) = vocab(&[]);
                for seed in 0..12 {
                    let text = walk(
                        Constraint::new(grammar.clone(), v.clone()),
                        &[],
                        end,
                        seed,
                        "",
                    );
                    let (_, calls) =
                        parse_calls(syntax, &text, &t).unwrap_or_else(|e| panic!("{e}: {text:?}"));
                    assert_eq!(calls.len(), 1, "{text:?}");
                    let c = &calls[0];
                    if let ToolChoice::Named(n) = &choice {
                        assert_eq!(&c.name, n);
                    }
                    if c.name == "get_weather" {
                        let a = c.arguments.as_object().unwrap();
                        assert!(a["city"].is_string(), "{text:?}");
                        assert!(a["unit"] == "c" || a["unit"] == "f", "{text:?}");
                        if let Some(d) = a.get("days") {
                            assert!((1..=7).contains(&d.as_i64().unwrap()), "{text:?}");
                        }
                    }
                }
            }
            // auto: free text until the marker, then a call.
            let g = call_grammar(syntax, &t, &ToolChoice::Auto).unwrap();
            let grammar = Arc::new(Grammar::from_gbnf(&g.gbnf).unwrap());
            let marker = g.triggers[0].clone();
            let (v, end) = vocab(&[&marker]);
            let mut c = Constraint::lazy(grammar, v, vec![marker.clone().into_bytes()]);
            for b in b"Sure. " {
                c.accept(*b as u32).unwrap();
            }
            assert!(!c.is_active());
            c.accept(256).unwrap();
            assert!(c.is_active());
            let text = walk(c, &[&marker], end, 5, &format!("Sure. {marker}"));
            let (content, calls) =
                parse_calls(syntax, &text, &t).unwrap_or_else(|e| panic!("{e}: {text:?}"));
            assert_eq!(calls.len(), 1, "{text:?}");
            assert!(content.starts_with("Sure."), "{content:?}");
        }
    }
}
