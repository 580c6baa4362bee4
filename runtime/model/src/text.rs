//! Text in and out: the tokenizer (the `tokenizers` crate, from the tokenizer.json stored in the file) and the chat
//! template (minijinja, from the template stored in the file).

use crate::ModelError;
use flint_format::FlintFile;

/// Metadata keys a file may carry.
pub const KEY_TOKENIZER: &str = "tokenizer.json";
pub const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
pub const KEY_BOS: &str = "tokenizer.bos_token";
pub const KEY_EOS: &str = "tokenizer.eos_token";

/// A tokenizer with the model's chat template.
pub struct Text {
    tok: tokenizers::Tokenizer,
    template: Option<String>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("has_template", &self.template.is_some())
            .finish()
    }
}

/// One chat message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
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
        Text::new(
            json,
            get(KEY_CHAT_TEMPLATE),
            get(KEY_BOS).unwrap_or_default(),
            get(KEY_EOS).unwrap_or_default(),
        )
        .map(Some)
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

    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

    /// Renders the chat template over `messages` with the generation prompt appended.
    pub fn apply_chat_template(&self, messages: &[Message]) -> Result<String, ModelError> {
        let tpl = self
            .template
            .as_deref()
            .ok_or_else(|| ModelError::Template("the model has no chat template".into()))?;
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", tpl)
            .map_err(|e| ModelError::Template(e.to_string()))?;
        let t = env
            .get_template("chat")
            .map_err(|e| ModelError::Template(e.to_string()))?;
        t.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        })
        .map_err(|e| ModelError::Template(e.to_string()))
    }
}
