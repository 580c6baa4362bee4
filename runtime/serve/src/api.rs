//! The OpenAI chat-completions request as Flint reads it, and the checks that turn a request into a [`Job`]'s
//! parameters. Fields this server cannot honour are refused (400, naming the field), never silently ignored: a
//! client that asks for something the engine cannot enforce must not get output it takes for it.

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
    /// An assistant turn's calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<ReqToolCall>>,
    /// A tool result's call.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReqToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: ReqFunction,
}

#[derive(Debug, Deserialize)]
pub struct ReqFunction {
    pub name: String,
    /// A JSON object, as a string (OpenAI's form) or inline.
    pub arguments: Value,
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
    #[serde(default)]
    pub image_url: Option<ImageUrl>,
    #[serde(default)]
    pub input_audio: Option<InputAudio>,
}

#[derive(Debug, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

#[derive(Debug, Deserialize)]
pub struct InputAudio {
    pub data: String,
    #[serde(default)]
    pub format: Option<String>,
}

/// The most images and audio clips in one request.
pub const MAX_MEDIA: usize = 16;

/// Where a medium's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Decoded from a base64 data URL.
    Data(Vec<u8>),
    /// A file on the server (allowed only under `--allow-path`).
    Path(std::path::PathBuf),
}

/// A piece of a message's content, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text(String),
    Image(Source),
    Audio(Source),
}

/// A message's text, if it has no media.
pub fn text_of(segments: &[Segment]) -> Option<String> {
    let mut t = String::new();
    for s in segments {
        match s {
            Segment::Text(x) => t.push_str(x),
            _ => return None,
        }
    }
    Some(t)
}

/// `data:<mime>;base64,<payload>` to bytes; a `file://` URL or an absolute path to a path.
fn source(url: &str, param: &str) -> Result<Source, ApiError> {
    use base64::Engine as _;
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, payload) = rest
            .split_once(',')
            .ok_or_else(|| ApiError::bad(param, "a data URL without a `,`"))?;
        if !meta.ends_with(";base64") {
            return Err(ApiError::bad(
                param,
                "a data URL must be base64 (`data:<type>;base64,...`)",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| {
                ApiError::bad(param, format!("the data URL's base64 does not decode: {e}"))
            })?;
        return Ok(Source::Data(bytes));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.starts_with('/') {
        return Ok(Source::Path(path.into()));
    }
    Err(ApiError::bad(
        param,
        "an image must be a base64 data URL or a file path the server may read (--allow-path); remote URLs are not fetched",
    ))
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

/// One message of the conversation, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub role: String,
    pub content: Vec<Segment>,
    /// An assistant turn's calls: `[{"id", "type": "function", "function": {"name", "arguments": {..}}}]`, the
    /// arguments as an object (templates iterate them).
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// A value of this schema.
    JsonSchema(Value),
}

/// What a request asks the engine for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The conversation, in order.
    pub messages: Vec<Msg>,
    pub response_format: ResponseFormat,
    /// The tools the model may call (none: empty), and how.
    pub tools: Vec<flint_answer::Tool>,
    pub tool_choice: flint_answer::ToolChoice,
    /// `low`, `medium` or `high`, for the chat template.
    pub reasoning_effort: Option<String>,
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
    let response_format = match &r.response_format {
        None | Some(Value::Null) => ResponseFormat::Text,
        Some(f) => match f.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => ResponseFormat::Text,
            "json_object" => ResponseFormat::JsonObject,
            "json_schema" => match f.pointer("/json_schema/schema") {
                Some(v) if v.is_object() || v.is_boolean() => ResponseFormat::JsonSchema(v.clone()),
                _ => {
                    return Err(ApiError::bad(
                        "response_format.json_schema.schema",
                        "a json_schema response_format needs `json_schema.schema` (a JSON Schema object)",
                    ))
                }
            },
            k => {
                return Err(ApiError::bad(
                    "response_format.type",
                    format!("response_format `{k}` is not text, json_object or json_schema"),
                ))
            }
        },
    };
    let tools = match &r.tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.is_empty() => Vec::new(),
        Some(t) => flint_answer::tools::parse_tools(t).map_err(|(at, m)| ApiError::bad(&at, m))?,
    };
    let tool_choice = flint_answer::tools::parse_choice(r.tool_choice.as_ref(), &tools)
        .map_err(|m| ApiError::bad("tool_choice", m))?;
    if tools.is_empty()
        && !matches!(
            tool_choice,
            flint_answer::ToolChoice::Auto | flint_answer::ToolChoice::None
        )
    {
        return Err(ApiError::bad(
            "tool_choice",
            "asks for a call, but there are no tools",
        ));
    }
    let calls = !tools.is_empty() && tool_choice != flint_answer::ToolChoice::None;
    if calls && response_format != ResponseFormat::Text {
        return Err(ApiError::bad(
            "response_format",
            "a JSON response_format and tool calls cannot be enforced together: pick one",
        ));
    }
    let constrained = calls || response_format != ResponseFormat::Text;
    let has_stop = match &r.stop {
        None => false,
        Some(Stop::One(_)) => true,
        Some(Stop::Many(v)) => !v.is_empty(),
    };
    if constrained && has_stop {
        return Err(ApiError::bad(
            "stop",
            "stop strings cannot be used with response_format or tools: one could cut the value short",
        ));
    }
    if constrained && r.ignore_eos == Some(true) {
        return Err(ApiError::bad(
            "ignore_eos",
            "ignore_eos cannot be used with response_format or tools: the grammar ends the answer",
        ));
    }
    let reasoning_effort = match &r.reasoning_effort {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if ["low", "medium", "high"].contains(&e.as_str()) => {
            Some(e.clone())
        }
        Some(_) => {
            return Err(ApiError::bad(
                "reasoning_effort",
                "reasoning_effort must be low, medium or high",
            ))
        }
    };
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
    let mut media = 0;
    for (i, m) in r.messages.into_iter().enumerate() {
        let param = format!("messages[{i}]");
        if !matches!(
            m.role.as_str(),
            "system" | "developer" | "user" | "assistant" | "tool"
        ) {
            return Err(ApiError::bad(
                &format!("{param}.role"),
                format!(
                    "role `{}` is not supported (system, developer, user, assistant, tool)",
                    m.role
                ),
            ));
        }
        let tool_calls = match m.tool_calls {
            Some(calls) if !calls.is_empty() => {
                if m.role != "assistant" {
                    return Err(ApiError::bad(
                        &format!("{param}.tool_calls"),
                        "only an assistant turn makes calls",
                    ));
                }
                let mut v = Vec::with_capacity(calls.len());
                for (k, c) in calls.into_iter().enumerate() {
                    let at = format!("{param}.tool_calls[{k}].function.arguments");
                    let args = match c.function.arguments {
                        Value::String(s) => serde_json::from_str::<Value>(&s)
                            .map_err(|e| ApiError::bad(&at, format!("not a JSON object: {e}")))?,
                        v => v,
                    };
                    if !args.is_object() {
                        return Err(ApiError::bad(&at, "must be a JSON object"));
                    }
                    v.push(serde_json::json!({
                        "id": c.id.unwrap_or_else(|| format!("call_{i}_{k}")),
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": args},
                    }));
                }
                Some(Value::Array(v))
            }
            _ => None,
        };
        let role = if m.role == "developer" {
            "system".to_string()
        } else {
            m.role
        };
        let content = match m.content {
            None => Vec::new(),
            Some(Content::Text(t)) => vec![Segment::Text(t)],
            Some(Content::Parts(parts)) => {
                let mut v = Vec::with_capacity(parts.len());
                for (j, p) in parts.into_iter().enumerate() {
                    let at = format!("{param}.content[{j}]");
                    v.push(match (p.kind.as_str(), p.text, p.image_url, p.input_audio) {
                        ("text", Some(s), _, _) => Segment::Text(s),
                        ("text", None, _, _) => {
                            return Err(ApiError::bad(&format!("{at}.text"), "a text part without `text`"))
                        }
                        ("image_url", _, Some(u), _) => {
                            Segment::Image(source(&u.url, &format!("{at}.image_url"))?)
                        }
                        ("input_audio", _, _, Some(a)) => {
                            if a.format.as_deref().is_some_and(|f| f != "wav") {
                                return Err(ApiError::bad(
                                    &format!("{at}.input_audio.format"),
                                    "audio must be WAV (`format`: `wav`)",
                                ));
                            }
                            let url = format!("data:audio/wav;base64,{}", a.data);
                            Segment::Audio(source(&url, &format!("{at}.input_audio.data"))?)
                        }
                        (k @ ("image_url" | "input_audio"), ..) => {
                            return Err(ApiError::bad(&at, format!("a `{k}` part without its `{k}` object")))
                        }
                        (k, ..) => {
                            return Err(ApiError::bad(
                                &format!("{at}.type"),
                                format!("content part type `{k}` is not supported (text, image_url, input_audio)"),
                            ))
                        }
                    });
                }
                v
            }
        };
        media += content
            .iter()
            .filter(|s| !matches!(s, Segment::Text(_)))
            .count();
        if media > MAX_MEDIA {
            return Err(ApiError::bad(
                &param,
                format!("more than {MAX_MEDIA} images and clips in one request"),
            ));
        }
        messages.push(Msg {
            role,
            content,
            tool_calls,
            tool_call_id: m.tool_call_id,
            name: m.name,
        });
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
        response_format,
        tools,
        tool_choice,
        reasoning_effort,
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
        assert_eq!(p.messages.len(), 1);
        assert_eq!(
            (p.messages[0].role.as_str(), &p.messages[0].content),
            ("user", &vec![Segment::Text("hi".into())])
        );
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
        assert_eq!(text_of(&p.messages[0].content).unwrap(), "ab");
        let p = parse(br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk="}},{"type":"text","text":"what?"},{"type":"input_audio","input_audio":{"data":"aGk=","format":"wav"}}]}]}"#)
            .unwrap();
        assert_eq!(
            p.messages[0].content,
            vec![
                Segment::Image(Source::Data(b"hi".to_vec())),
                Segment::Text("what?".into()),
                Segment::Audio(Source::Data(b"hi".to_vec()))
            ]
        );
        assert_eq!(text_of(&p.messages[0].content), None);
        let p = parse(br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///srv/a.jpg"}}]}]}"#).unwrap();
        assert_eq!(
            p.messages[0].content,
            vec![Segment::Image(Source::Path("/srv/a.jpg".into()))]
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (extra, param) in [
            (
                r#","response_format":{"type":"json_schema","json_schema":{}}"#,
                "response_format.json_schema.schema",
            ),
            (
                r#","response_format":{"type":"regex"}"#,
                "response_format.type",
            ),
            (r#","tools":[{"type":"function"}]"#, "tools[0].function"),
            (
                r#","tools":[{"type":"function","function":{"name":"a b"}}]"#,
                "tools[0].function.name",
            ),
            (
                r#","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}"#,
                "tool_choice",
            ),
            (
                r#","tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (r#","tool_choice":"required""#, "tool_choice"),
            (
                r#","response_format":{"type":"json_object"},"ignore_eos":true"#,
                "ignore_eos",
            ),
            (
                r#","response_format":{"type":"json_object"},"stop":"}""#,
                "stop",
            ),
            (r#","reasoning_effort":"extreme""#, "reasoning_effort"),
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
        for (part, param) in [
            (
                r#"{"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}"#,
                "messages[0].content[0].image_url",
            ),
            (
                r#"{"type":"image_url","image_url":{"url":"data:image/png;base64,!!"}}"#,
                "messages[0].content[0].image_url",
            ),
            (
                r#"{"type":"image_url","image_url":{"url":"data:image/png,abc"}}"#,
                "messages[0].content[0].image_url",
            ),
            (r#"{"type":"image_url"}"#, "messages[0].content[0]"),
            (
                r#"{"type":"input_audio","input_audio":{"data":"aGk=","format":"mp3"}}"#,
                "messages[0].content[0].input_audio.format",
            ),
            (r#"{"type":"video"}"#, "messages[0].content[0].type"),
        ] {
            let body = format!(r#"{{"messages":[{{"role":"user","content":[{part}]}}]}}"#);
            let e = parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{part}: {e:?}");
        }
        let many =
            vec![r#"{"type":"image_url","image_url":{"url":"/a.png"}}"#; MAX_MEDIA + 1].join(",");
        let e =
            parse(format!(r#"{{"messages":[{{"role":"user","content":[{many}]}}]}}"#).as_bytes())
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0]"));
        assert_eq!(
            parse(br#"{"messages":[]}"#).unwrap_err().param.as_deref(),
            Some("messages")
        );
        assert_eq!(
            parse(b"{not json").unwrap_err().param.as_deref(),
            Some("body")
        );
        let e = parse(br#"{"messages":[{"role":"robot","content":"x"}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = parse(br#"{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1"}}]}]}"#).unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("messages[0].tool_calls[0].function.arguments")
        );
    }
}
