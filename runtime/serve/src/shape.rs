//! The shape of an answer: the messages as the chat template takes them (tools, earlier calls and results, the
//! reasoning effort), the grammar that keeps the answer valid (`response_format`, `tools`), and the answer's text
//! back into an OpenAI message (content, `tool_calls`).

use crate::api::{ApiError, Params, ResponseFormat};
use flint_answer::tools::{self, ToolSyntax};
use flint_answer::{Reasoner, ReasoningFormat, ToolCall, ToolChoice};
use flint_constrain::{Constraint, Grammar, Vocab};
use flint_model::{ChatOptions, Message, Text};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the server knows of the model's chat format, and the vocabularies its grammars run over.
#[derive(Debug)]
pub struct Shaper {
    pub syntax: ToolSyntax,
    /// Whether the template renders `tools` itself (else Hermes-style text in the system message).
    pub renders_tools: bool,
    /// Where the template puts reasoning (answers carry it as `reasoning_content`).
    pub reasoning: Option<ReasoningFormat>,
    stop_ids: Vec<u32>,
    /// By the special tokens a grammar may spell.
    vocabs: Mutex<HashMap<Vec<&'static str>, Arc<Vocab>>>,
}

impl Shaper {
    pub fn new(text: &Text, stop_ids: Vec<u32>) -> Shaper {
        Shaper {
            syntax: ToolSyntax::for_template(text.template()),
            renders_tools: tools::template_renders_tools(text.template()),
            reasoning: text.template().and_then(ReasoningFormat::for_template),
            stop_ids,
            vocabs: Mutex::default(),
        }
    }

    fn vocab(&self, text: &Text, keep: &[&'static str]) -> Arc<Vocab> {
        let mut m = self.vocabs.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(keep.to_vec())
            .or_insert_with(|| Arc::new(Vocab::new(text.vocab_bytes(keep), self.stop_ids.clone())))
            .clone()
    }

    /// Whether the request's answer may carry tool calls.
    pub fn calls(p: &Params) -> bool {
        !p.tools.is_empty() && p.tool_choice != ToolChoice::None
    }

    /// The messages and template options of `p`, each message's content given as text (`contents[i]`).
    pub fn messages(&self, p: &Params, contents: Vec<String>) -> (Vec<Message>, ChatOptions) {
        let native = self.renders_tools;
        let mut out: Vec<Message> = Vec::with_capacity(contents.len() + 1);
        for (m, content) in p.messages.iter().zip(contents) {
            let mut msg = Message::new(m.role.clone(), content);
            if native {
                msg.tool_calls = m.tool_calls.clone();
                msg.tool_call_id = m.tool_call_id.clone();
                msg.name = m.name.clone();
            } else if m.role == "tool" {
                msg.role = "user".into();
                msg.content = tools::hermes_result(&msg.content);
            } else if let Some(Value::Array(calls)) = &m.tool_calls {
                for c in calls {
                    let call = ToolCall {
                        name: c
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .into(),
                        arguments: c
                            .pointer("/function/arguments")
                            .cloned()
                            .unwrap_or(json!({})),
                    };
                    if !msg.content.is_empty() {
                        msg.content.push('\n');
                    }
                    msg.content += &tools::hermes_text(&call);
                }
            }
            out.push(msg);
        }
        let offered = !p.tools.is_empty() && p.tool_choice != ToolChoice::None;
        if offered && !native {
            let sys = tools::system_prompt(&p.tools);
            match out.first_mut() {
                Some(first) if first.role == "system" => {
                    first.content = format!("{}\n\n{sys}", first.content)
                }
                _ => out.insert(0, Message::new("system", sys)),
            }
        }
        let opts = ChatOptions {
            tools: (offered && native).then(|| tools::tools_value(&p.tools)),
            reasoning_effort: p.reasoning_effort.clone(),
        };
        (out, opts)
    }

    /// The grammar a request's answer must follow, over the model's vocabulary; `None` for free text.
    pub fn constraint(&self, text: &Text, p: &Params) -> Result<Option<Constraint>, ApiError> {
        let (grammar, triggers, keep): (Grammar, Vec<String>, &[&'static str]) = if Self::calls(p) {
            let cg = tools::call_grammar(self.syntax, &p.tools, &p.tool_choice)
                .map_err(|e| ApiError::bad("tools", e))?;
            let g = Grammar::from_gbnf(&cg.gbnf)
                .map_err(|e| ApiError::bad("tools", format!("the call grammar: {e}")))?;
            (g, cg.triggers, self.syntax.markers())
        } else {
            let g = match &p.response_format {
                ResponseFormat::Text => return Ok(None),
                ResponseFormat::JsonObject => Grammar::json_object(),
                ResponseFormat::JsonSchema(s) => Grammar::from_json_schema(s).map_err(|e| {
                    ApiError::bad("response_format.json_schema.schema", e.to_string())
                })?,
            };
            (g, Vec::new(), &[])
        };
        let vocab = self.vocab(text, keep);
        let g = Arc::new(grammar);
        Ok(Some(if triggers.is_empty() {
            Constraint::new(g, vocab)
        } else {
            Constraint::lazy(
                g,
                vocab,
                triggers.into_iter().map(String::into_bytes).collect(),
            )
        }))
    }

    /// A reasoner that splits a choice's streamed text, when the template has a reasoning section.
    pub fn reasoner(&self) -> Option<Reasoner> {
        self.reasoning.map(|f| Reasoner::new(f, None))
    }

    /// A finished choice's text as an OpenAI message (reasoning apart, as `reasoning_content`), and whether it
    /// called tools (`finish_reason` `tool_calls`). `ids` prefixes the calls' ids (unique per response and choice).
    pub fn message(&self, p: &Params, text: &str, ids: &str) -> (Value, bool) {
        let (text, reasoning) = match self.reasoner() {
            None => (text.to_string(), String::new()),
            Some(mut r) => {
                let (a, b) = (r.push(text), r.finish());
                (a.answer + &b.answer, a.reasoning + &b.reasoning)
            }
        };
        let (mut m, called) = self.answer(p, &text, ids);
        if !reasoning.is_empty() {
            m["reasoning_content"] = Value::String(reasoning);
        }
        (m, called)
    }

    fn answer(&self, p: &Params, text: &str, ids: &str) -> (Value, bool) {
        if Self::calls(p) {
            if let Ok((content, calls)) = tools::parse_calls(self.syntax, text, &p.tools) {
                if !calls.is_empty() {
                    return (
                        json!({"role": "assistant",
                            "content": if content.is_empty() { Value::Null } else { Value::String(content) },
                            "tool_calls": calls_json(&calls, ids)}),
                        true,
                    );
                }
            }
        }
        (json!({"role": "assistant", "content": text}), false)
    }
}

/// Calls in OpenAI's form (arguments as a JSON string), with ids unique within the response.
pub fn calls_json(calls: &[ToolCall], ids: &str) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                json!({"index": k, "id": format!("call_{ids}_{k}"), "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()}})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-word tokenizer is enough: these tests read templates and text, not token ids.
    fn text(template: &str) -> Text {
        let tok = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
            "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"<unk>":0,"hi":1},"unk_token":"<unk>"}}"#;
        Text::new(
            tok,
            Some(template.to_string()),
            String::new(),
            String::new(),
        )
        .unwrap()
    }

    fn params(extra: &str) -> Params {
        let body = format!(r#"{{"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
        crate::api::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn reasoning_is_kept_apart_from_the_answer_and_the_calls() {
        let s = Shaper::new(&text("{{ messages[0].content }}<think>"), vec![]);
        assert_eq!(s.reasoning, Some(ReasoningFormat::Think));
        let (m, called) = s.message(&params(""), "<think>plan it</think>\n\nParis.", "r");
        assert_eq!(
            (
                m["content"].as_str(),
                m["reasoning_content"].as_str(),
                called
            ),
            (Some("Paris."), Some("plan it"), false)
        );
        let tools = r#","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}}]"#;
        let (m, called) = s.message(
            &params(tools),
            "<think>call f</think>\n\nSure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 3}}\n</tool_call>",
            "r",
        );
        assert!(called);
        assert_eq!(m["content"], "Sure.");
        assert_eq!(m["reasoning_content"], "call f");
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], "{\"x\":3}");
        assert_eq!(m["tool_calls"][0]["id"], "call_r_0");
    }

    #[test]
    fn a_template_without_tools_gets_them_in_its_system_message() {
        let s = Shaper::new(
            &text("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"),
            vec![],
        );
        assert!(!s.renders_tools && s.reasoning.is_none());
        let body = r#","tools":[{"type":"function","function":{"name":"f"}}]"#;
        let mut p = params(body);
        p.messages.push(crate::api::Msg {
            role: "tool".into(),
            content: vec![crate::api::Segment::Text("42".into())],
            tool_calls: None,
            tool_call_id: Some("c1".into()),
            name: None,
        });
        let (msgs, opts) = s.messages(&p, vec!["hi".into(), "42".into()]);
        assert!(opts.tools.is_none());
        assert_eq!(msgs[0].role, "system");
        assert!(msgs[0].content.contains("<tools>") && msgs[0].content.contains("\"name\":\"f\""));
        assert_eq!(
            (msgs[2].role.as_str(), msgs[2].content.as_str()),
            ("user", "<tool_response>\n42\n</tool_response>")
        );
        // A template that renders tools gets them as `tools`, and the messages as they are.
        let s = Shaper::new(&text("{% if tools %}{{ tools }}{% endif %}"), vec![]);
        let (msgs, opts) = s.messages(&p, vec!["hi".into(), "42".into()]);
        assert!(s.renders_tools && opts.tools.is_some());
        assert_eq!((msgs.len(), msgs[1].role.as_str()), (2, "tool"));
    }
}
