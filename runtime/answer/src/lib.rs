//! What a model's answer text holds beyond its words: reasoning apart from the answer, with a thinking budget
//! ([`reasoning`]); boxes and points ([`boxes`]), found while the text streams,
//! in the formats of the model families that point (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, PaliGemma, Florence-2), in
//! frame coordinates; tool calls in the model's own syntax, with the grammar that keeps them valid ([`tools`]).

pub mod boxes;
pub mod reasoning;
pub mod tools;

pub use boxes::{BoxParser, Format, Frame, Overlay, Shape};
pub use reasoning::{Reasoner, ReasoningFormat, Split};
pub use tools::{Tool, ToolCall, ToolChoice, ToolSyntax};

/// Bytes at the end of `text` that begin one of `markers` (and may still become it as more text streams in): what
/// a streaming matcher holds back. Cut at character boundaries only.
pub fn held_back<S: AsRef<str>>(text: &str, markers: &[S]) -> usize {
    let mut hold = 0;
    for m in markers {
        let m = m.as_ref();
        for k in (hold + 1..m.len().min(text.len() + 1)).rev() {
            if m.is_char_boundary(k) && text.ends_with(&m[..k]) {
                hold = k;
                break;
            }
        }
    }
    hold
}

#[cfg(test)]
mod tests {
    use super::held_back;

    #[test]
    fn holds_back_what_may_become_a_marker() {
        assert_eq!(held_back("hello wor", &["world"]), 3);
        assert_eq!(held_back("hello", &["world"]), 0);
        assert_eq!(held_back("ab\n", &["\n\n", "xyz"]), 1);
        assert_eq!(held_back("", &["x"]), 0);
        // A whole marker is found, not held.
        assert_eq!(held_back("a<b>", &["<b>"]), 0);
        // Multi-byte markers are cut at character boundaries only.
        assert_eq!(held_back("a\u{e9}", &["\u{e9}t\u{e9}"]), 2);
    }
}
