//! The OpenAI chat-completions request as Flint reads it, and the checks that turn a request into a [`Job`]'s
//! parameters. Fields this server cannot honour are refused (400, naming the field), never silently ignored: a
//! client that asks for JSON output or tools must not get free text it takes for them.

use serde::Deserialize;
use serde_json::Value;

/// The most choices one request may ask for (`n`).
pub const MAX_N: u32 = 16;
/// The most stop strings (OpenAI allows 4).
pub const MAX_STOP: usize = 4;
/// The longest stop string, in bytes.
pub const MAX_STOP_LEN: usize = 256;
/// The most messages in one request.
pub const MAX_MESSAGES: usize = 4096;

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Not in OpenAI's API; llama-server and vLLM take it too.
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub tools: Option<Value>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub reasoning_effort: Option<Value>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<Value>,
    #[serde(default)]
    pub logit_bias: Option<Value>,
    /// Not in OpenAI's API (llama-server and vLLM take it): generate past the end of the turn.
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A request refused, with the HTTP status and the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<String>,
    pub kind: &'static str,
}

impl ApiError {
    pub fn bad(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param.to_string()),
            kind: "invalid_request_error",
        }
    }
    pub fn status(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            param: None,
            kind,
        }
    }
    /// The OpenAI error body.
    pub fn body(&self) -> Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": Value::Null,
        }})
    }
}

/// What a request asks the engine for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The conversation, as (role, text) in order.
    pub messages: Vec<(String, String)>,
    /// At most this many tokens per choice (`None`: up to the context).
    pub max_tokens: Option<usize>,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub n: usize,
    pub seed: u64,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
}

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<Params, ApiError> {
    let r: ChatRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(
            "body",
            format!("the request body is not a chat request: {e}"),
        )
    })?;
    check(r)
}

fn check(r: ChatRequest) -> Result<Params, ApiError> {
    // Fail closed on what the engine cannot enforce yet.
    if let Some(f) = &r.response_format {
        let kind = f.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "text" {
            return Err(ApiError::bad(
                "response_format",
                format!("response_format `{kind}` is not supported by this server (only `text`): constrained decoding is not built yet, and unconstrained output would not be valid"),
            ));
        }
    }
    if r.tools
        .as_ref()
        .is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(ApiError::bad(
            "tools",
            "tools are not supported by this server yet",
        ));
    }
    if r.tool_choice
        .as_ref()
        .is_some_and(|t| !t.is_null() && t != "none")
    {
        return Err(ApiError::bad(
            "tool_choice",
            "tools are not supported by this server yet",
        ));
    }
    if r.reasoning_effort.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad(
            "reasoning_effort",
            "reasoning_effort is not supported by this server yet",
        ));
    }
    if r.logprobs == Some(true) || r.top_logprobs.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad(
            "logprobs",
            "logprobs are not supported by this server",
        ));
    }
    if r.logit_bias
        .as_ref()
        .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        return Err(ApiError::bad(
            "logit_bias",
            "logit_bias is not supported by this server",
        ));
    }
    for (name, v) in [
        ("presence_penalty", r.presence_penalty),
        ("frequency_penalty", r.frequency_penalty),
    ] {
        if v.is_some_and(|v| v != 0.0) {
            return Err(ApiError::bad(
                name,
                format!("{name} is not supported by this server"),
            ));
        }
    }
    if r.messages.is_empty() {
        return Err(ApiError::bad("messages", "`messages` is empty"));
    }
    if r.messages.len() > MAX_MESSAGES {
        return Err(ApiError::bad(
            "messages",
            format!("{} messages; at most {MAX_MESSAGES}", r.messages.len()),
        ));
    }
    let mut messages = Vec::with_capacity(r.messages.len());
    for (i, m) in r.messages.into_iter().enumerate() {
        let param = format!("messages[{i}]");
        if !matches!(
            m.role.as_str(),
            "system" | "developer" | "user" | "assistant"
        ) {
            return Err(ApiError::bad(
                &format!("{param}.role"),
                format!(
                    "role `{}` is not supported (system, developer, user, assistant)",
                    m.role
                ),
            ));
        }
        let role = if m.role == "developer" {
            "system".to_string()
        } else {
            m.role
        };
        let text = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut t = String::new();
                for (j, p) in parts.into_iter().enumerate() {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(s)) => t.push_str(&s),
                        ("text", None) => {
                            return Err(ApiError::bad(
                                &format!("{param}.content[{j}].text"),
                                "a text part without `text`",
                            ))
                        }
                        (k, _) => {
                            return Err(ApiError::bad(
                                &format!("{param}.content[{j}].type"),
                                format!("content part type `{k}` is not supported by this server yet (text only)"),
                            ))
                        }
                    }
                }
                t
            }
        };
        messages.push((role, text));
    }
    let max_tokens = match r.max_completion_tokens.or(r.max_tokens) {
        None => None,
        Some(0) => return Err(ApiError::bad("max_tokens", "max_tokens must be at least 1")),
        Some(v) => Some(usize::try_from(v).unwrap_or(usize::MAX)),
    };
    let temperature = r.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
        return Err(ApiError::bad(
            "temperature",
            format!("temperature must be in [0, 2], got {temperature}"),
        ));
    }
    let top_p = r.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad(
            "top_p",
            format!("top_p must be in (0, 1], got {top_p}"),
        ));
    }
    let n = r.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(ApiError::bad(
            "n",
            format!("n must be in 1..={MAX_N}, got {n}"),
        ));
    }
    let stop = match r.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > MAX_STOP {
        return Err(ApiError::bad(
            "stop",
            format!("{} stop strings; at most {MAX_STOP}", stop.len()),
        ));
    }
    if let Some(s) = stop.iter().find(|s| s.is_empty() || s.len() > MAX_STOP_LEN) {
        return Err(ApiError::bad(
            "stop",
            format!(
                "a stop string must have 1..={MAX_STOP_LEN} bytes, got {}",
                s.len()
            ),
        ));
    }
    Ok(Params {
        messages,
        max_tokens,
        temperature,
        top_p,
        top_k: r.top_k.unwrap_or(0) as usize,
        n: n as usize,
        seed: r.seed.unwrap_or(0),
        stop,
        stream: r.stream.unwrap_or(false),
        include_usage: r
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        ignore_eos: r.ignore_eos.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> Result<Params, ApiError> {
        parse(
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
                .as_bytes(),
        )
    }

    #[test]
    fn defaults_and_fields() {
        let p = req("").unwrap();
        assert_eq!(p.messages, vec![("user".to_string(), "hi".to_string())]);
        assert_eq!(
            (p.n, p.temperature, p.top_p, p.stream),
            (1, 1.0, 1.0, false)
        );
        let p = req(r#","n":3,"stop":"\n","max_tokens":5,"stream":true,"stream_options":{"include_usage":true}"#)
            .unwrap();
        assert_eq!(
            (p.n, p.max_tokens, p.stream, p.include_usage),
            (3, Some(5), true, true)
        );
        assert_eq!(p.stop, vec!["\n".to_string()]);
        let p = parse(br#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#)
            .unwrap();
        assert_eq!(p.messages[0].1, "ab");
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (extra, param) in [
            (
                r#","response_format":{"type":"json_schema","json_schema":{}}"#,
                "response_format",
            ),
            (
                r#","response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (r#","tools":[{"type":"function"}]"#, "tools"),
            (r#","reasoning_effort":"low""#, "reasoning_effort"),
            (r#","logprobs":true"#, "logprobs"),
            (r#","n":0"#, "n"),
            (r#","n":17"#, "n"),
            (r#","temperature":-1"#, "temperature"),
            (r#","top_p":0"#, "top_p"),
            (r#","max_tokens":0"#, "max_tokens"),
            (r#","stop":["a","b","c","d","e"]"#, "stop"),
            (r#","stop":"""#, "stop"),
            (r#","presence_penalty":0.5"#, "presence_penalty"),
        ] {
            let e = req(extra).unwrap_err();
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some(param)),
                "{extra}"
            );
        }
        let e = parse(br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
        assert_eq!(
            parse(br#"{"messages":[]}"#).unwrap_err().param.as_deref(),
            Some("messages")
        );
        assert_eq!(
            parse(b"{not json").unwrap_err().param.as_deref(),
            Some("body")
        );
        let e = parse(br#"{"messages":[{"role":"tool","content":"x"}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    }
}
