//! Text in and out: the tokenizer (the `tokenizers` crate, from the tokenizer.json stored in the file) and the chat
//! template (minijinja, from the template stored in the file).

use crate::config::limits::{MAX_TEMPLATE_OUTPUT, TEMPLATE_FUEL};
use crate::ModelError;
use flint_format::FlintFile;

/// Metadata keys a file may carry.
pub const KEY_TOKENIZER: &str = "tokenizer.json";
pub const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
pub const KEY_BOS: &str = "tokenizer.bos_token";
pub const KEY_EOS: &str = "tokenizer.eos_token";

/// llama.cpp's `muse-glimmer.jinja` (MIT, templates/LICENSE-llama.cpp): channels, `reasoning_strength`, ATEM
/// tools, one `<|patch|>` per image, which the processor expands.
pub const MUSE_TEMPLATE: &str = include_str!("../templates/muse-glimmer.jinja");

/// A tokenizer with the model's chat template.
pub struct Text {
    tok: tokenizers::Tokenizer,
    template: Option<String>,
    bos: String,
    eos: String,
    /// Where the tokenizer and template came from, for error messages.
    source: String,
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("has_template", &self.template.is_some())
            .finish()
    }
}

/// One chat message, as chat templates read it (the OpenAI message shape).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    /// An assistant turn's tool calls: `[{"id", "type": "function", "function": {"name", "arguments": {..}}}]`
    /// (arguments as a mapping, which templates iterate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// A tool result's call id and tool name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }
}

/// What a chat template may take besides the messages.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// OpenAI-format tool definitions (`[{"type": "function", "function": {..}}]`), as `tools`.
    pub tools: Option<serde_json::Value>,
    /// `low`, `medium` or `high`: passed as `reasoning_strength` (Muse's template) and `reasoning_effort` (the name
    /// other templates use).
    pub reasoning_effort: Option<String>,
}

impl Text {
    /// Builds the tokenizer from a file's metadata; `Ok(None)` when the file has none.
    pub fn from_file(file: &FlintFile) -> Result<Option<Text>, ModelError> {
        let Some(json) = file.meta(KEY_TOKENIZER) else {
            return Ok(None);
        };
        let json = json.as_str().ok_or_else(|| {
            ModelError::Tokenizer(format!(
                "{}: `{KEY_TOKENIZER}` is not a string",
                file.path().display()
            ))
        })?;
        let get = |k: &str| file.meta(k).and_then(|v| v.as_str()).map(str::to_string);
        let path = file.path().display().to_string();
        // transformers ships no Muse chat template: a Muse checkpoint without its own gets the family's one
        // public template (llama.cpp's muse-glimmer.jinja).
        let muse = file
            .meta("general.architecture")
            .and_then(|v| v.as_str())
            .is_some_and(|a| a.starts_with("muse_"));
        let template = get(KEY_CHAT_TEMPLATE).or_else(|| muse.then(|| MUSE_TEMPLATE.to_string()));
        let mut t = Text::new(
            json,
            template,
            get(KEY_BOS).unwrap_or_default(),
            get(KEY_EOS).unwrap_or_default(),
        )
        .map_err(|e| match e {
            ModelError::Tokenizer(m) => ModelError::Tokenizer(format!("{path}: {m}")),
            e => e,
        })?;
        t.source = path;
        Ok(Some(t))
    }

    pub fn new(
        tokenizer_json: &str,
        template: Option<String>,
        bos: String,
        eos: String,
    ) -> Result<Text, ModelError> {
        let tok = tokenizer_json
            .parse::<tokenizers::Tokenizer>()
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json does not load: {e}")))?;
        Ok(Text {
            tok,
            template,
            bos,
            eos,
            source: KEY_TOKENIZER.into(),
        })
    }

    /// Token ids of `text`, with the tokenizer's own special-token rules when `special` is set.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tok
            .encode(text, special)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, skipping special tokens when `skip_special` is set.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, ModelError> {
        self.tok
            .decode(ids, skip_special)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tok.token_to_id(token)
    }

    /// The bytes each token id stands for, for constrained decoding: `None` for special tokens (they never appear
    /// inside constrained output), except those whose text is in `keep` (markers such as `<tool_call>` that a
    /// constraint waits for). Byte-level BPE vocabularies (GPT-2's byte-to-character table) and SentencePiece ones
    /// (`▁` for a space, `<0xNN>` byte fallback) are read; the list covers every id up to the largest.
    pub fn vocab_bytes(&self, keep: &[&str]) -> Vec<Option<Vec<u8>>> {
        use tokenizers::DecoderWrapper as D;
        fn byte_level(d: &D) -> bool {
            match d {
                D::ByteLevel(_) => true,
                D::Sequence(s) => s.get_decoders().iter().any(byte_level),
                _ => false,
            }
        }
        let bl = self.tok.get_decoder().is_some_and(byte_level);
        let unbyte = gpt2_unicode_to_byte();
        let n = self.tok.get_vocab_size(true);
        let added = self.tok.get_added_tokens_decoder();
        let mut out: Vec<Option<Vec<u8>>> = vec![None; n];
        for (id, slot) in out.iter_mut().enumerate() {
            let id = id as u32;
            if let Some(a) = added.get(&id) {
                if !a.special || keep.contains(&a.content.as_str()) {
                    *slot = Some(a.content.as_bytes().to_vec());
                }
                continue;
            }
            let Some(t) = self.tok.id_to_token(id) else {
                continue;
            };
            *slot = if bl {
                t.chars().map(|c| unbyte.get(&c).copied()).collect()
            } else if let Some(b) = t
                .strip_prefix("<0x")
                .and_then(|h| h.strip_suffix('>'))
                .filter(|h| h.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(vec![b])
            } else {
                Some(t.replace('\u{2581}', " ").into_bytes())
            };
        }
        out
    }

    /// The chat template's source.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

    /// Renders the chat template over `messages` with the generation prompt appended. The template comes from the
    /// model file, so it runs with [`TEMPLATE_FUEL`] and its output is capped at [`MAX_TEMPLATE_OUTPUT`] bytes: a
    /// template that loops forever or writes without end is an error naming the file, not a hang.
    pub fn apply_chat_template(&self, messages: &[Message]) -> Result<String, ModelError> {
        self.apply_chat_template_with(messages, &ChatOptions::default())
    }

    /// [`Text::apply_chat_template`] with tools and a reasoning effort for the template.
    pub fn apply_chat_template_with(
        &self,
        messages: &[Message],
        opts: &ChatOptions,
    ) -> Result<String, ModelError> {
        let tpl = self.template.as_deref().ok_or_else(|| {
            ModelError::Template(format!("{}: the model has no chat template", self.source))
        })?;
        render_template_with(tpl, messages, opts, &self.bos, &self.eos).map_err(|e| {
            ModelError::Template(format!("{}: `{KEY_CHAT_TEMPLATE}`: {e}", self.source))
        })
    }
}

/// GPT-2's byte-level BPE alphabet, reversed: the character each byte is written as, back to the byte.
fn gpt2_unicode_to_byte() -> std::collections::HashMap<char, u8> {
    let mut m = std::collections::HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            b as u32
        } else {
            extra += 1;
            255 + extra
        };
        m.insert(char::from_u32(c).unwrap_or('\0'), b);
    }
    m
}

/// Renders a chat template with the limits of [`Text::apply_chat_template`] (also the fuzzing entry point).
pub fn render_template(
    tpl: &str,
    messages: &[Message],
    bos: &str,
    eos: &str,
) -> Result<String, minijinja::Error> {
    render_template_with(tpl, messages, &ChatOptions::default(), bos, eos)
}

fn render_template_with(
    tpl: &str,
    messages: &[Message],
    opts: &ChatOptions,
    bos: &str,
    eos: &str,
) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", tpl)?;
    let t = env.get_template("chat")?;
    let mut out = Capped(Vec::new(), false);
    // minijinja 2.24 has arithmetic that overflows on some slices (`x[2:5:-1]`): a panic with overflow checks on,
    // wrapping without. A template from a file must not take the process down either way.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.render_captured_to(
            minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => bos,
                eos_token => eos,
                tools => opts.tools,
                reasoning_strength => opts.reasoning_effort,
                reasoning_effort => opts.reasoning_effort,
            },
            &mut out,
        )
    }))
    .map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "the template engine failed on this template",
        )
    })?;
    if out.1 {
        // minijinja reports a failed write without its cause: say what it was.
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("output exceeds the cap of {MAX_TEMPLATE_OUTPUT} bytes"),
        ));
    }
    r?;
    String::from_utf8(out.0).map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "output is not UTF-8",
        )
    })
}

/// A byte sink that refuses to grow past [`MAX_TEMPLATE_OUTPUT`] (and remembers that it refused).
struct Capped(Vec<u8>, bool);

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.0.len().saturating_add(b.len()) > MAX_TEMPLATE_OUTPUT {
            self.1 = true;
            return Err(std::io::Error::other(format!(
                "output exceeds the cap of {MAX_TEMPLATE_OUTPUT} bytes"
            )));
        }
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod muse_template_tests {
    use super::*;

    #[test]
    fn the_bundled_muse_template_renders_a_user_turn_with_an_image() {
        let m = [Message::new("user", "<|patch|>What does the sign say?")];
        let out = render_template(MUSE_TEMPLATE, &m, "<|begin_of_text|>", "<|eot|>").unwrap();
        assert!(out.contains("<|patch|>What does the sign say?"), "{out}");
    }
}
