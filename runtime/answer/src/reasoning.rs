//! Where reasoning goes in a chat format, and a thinking budget: the generated text is split into reasoning and
//! answer as it streams, reasoning tokens are counted, and at the budget the caller is told what to feed the model
//! to close the reasoning section and open the answer (budget forcing).
//!
//! | format | reasoning | answer |
//! |---|---|---|
//! | [`ReasoningFormat::Think`] (Qwen3, DeepSeek-R1) | `<think>` … `</think>` | the rest |
//! | [`ReasoningFormat::Muse`] (Muse's channels, llama.cpp's muse-glimmer.jinja) | ` to=self<\|message\|>` … `<\|eom\|>` | `<\|start\|>assistant to=user<\|message\|>` … `<\|eot\|>` |
//!
//! The markers themselves go to neither side.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningFormat {
    Think,
    Muse,
}

impl ReasoningFormat {
    /// The format a chat template renders, if it has a reasoning section.
    pub fn for_template(template: &str) -> Option<ReasoningFormat> {
        if template.contains("to=self") {
            Some(ReasoningFormat::Muse)
        } else if template.contains("<think>") {
            Some(ReasoningFormat::Think)
        } else {
            None
        }
    }

    /// What ends the reasoning and opens the answer when the budget is spent.
    pub fn close(self) -> &'static str {
        match self {
            ReasoningFormat::Think => "\n</think>\n\n",
            ReasoningFormat::Muse => "<|eom|><|start|>assistant to=user<|message|>",
        }
    }

    /// What the prompt gets after its generation prompt to skip reasoning (a budget of 0).
    pub fn skip(self) -> &'static str {
        match self {
            ReasoningFormat::Think => "<think>\n\n</think>\n\n",
            ReasoningFormat::Muse => " to=user<|message|>",
        }
    }

    /// (marker, state it switches to) pairs.
    fn markers(self) -> &'static [(&'static str, Part)] {
        match self {
            ReasoningFormat::Think => &[("<think>", Part::Reasoning), ("</think>", Part::Answer)],
            ReasoningFormat::Muse => &[
                (" to=self<|message|>", Part::Reasoning),
                ("<|eom|>", Part::Between),
                ("<|start|>assistant to=user<|message|>", Part::Answer),
                ("<|start|>assistant", Part::Between),
                (" to=user<|message|>", Part::Answer),
                ("<|eot|>", Part::Between),
            ],
        }
    }
}

impl std::str::FromStr for ReasoningFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "think" => Ok(ReasoningFormat::Think),
            "muse" => Ok(ReasoningFormat::Muse),
            _ => Err(format!("unknown reasoning format `{s}` (think, muse)")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Reasoning,
    Answer,
    /// Between channels (Muse headers): text here is dropped.
    Between,
}

/// What one generated token's text meant.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Split {
    pub reasoning: String,
    pub answer: String,
    /// The budget is spent: feed this text to the model (tokenized) before sampling again.
    pub force: Option<&'static str>,
}

/// Splits streamed text into reasoning and answer and enforces a budget of reasoning tokens.
#[derive(Debug)]
pub struct Reasoner {
    format: ReasoningFormat,
    budget: Option<usize>,
    part: Part,
    /// Text that may still be the start of a marker.
    held: String,
    spent: usize,
    forced: bool,
    /// Whether the answer has had a character other than whitespace (leading whitespace is dropped).
    answered: bool,
}

impl Reasoner {
    /// `budget`: reasoning tokens at most (`None`: no limit). Text is answer until a marker opens reasoning (a
    /// model that ignores the format still shows its words).
    pub fn new(format: ReasoningFormat, budget: Option<usize>) -> Reasoner {
        Reasoner {
            format,
            budget,
            part: Part::Answer,
            held: String::new(),
            spent: 0,
            forced: false,
            answered: false,
        }
    }

    /// Reasoning tokens seen so far.
    pub fn spent(&self) -> usize {
        self.spent
    }

    /// Whether the budget had to close the reasoning.
    pub fn forced(&self) -> bool {
        self.forced
    }

    /// Whether the text is in the reasoning section.
    pub fn reasoning(&self) -> bool {
        self.part == Part::Reasoning
    }

    /// The text of one generated token. When the answer comes back with `force`, feed that text to the model;
    /// the splitter is already in the answer (do not push the forced text).
    pub fn push(&mut self, piece: &str) -> Split {
        let mut out = Split::default();
        if self.part == Part::Reasoning {
            self.spent += 1;
        }
        self.held.push_str(piece);
        self.drain(&mut out, false);
        if self.part == Part::Reasoning && self.budget.is_some_and(|b| self.spent >= b) {
            // Budget spent: what is held goes out as reasoning, and the forced text closes the section.
            self.drain(&mut out, true);
            self.part = Part::Answer;
            self.forced = true;
            out.force = Some(self.format.close());
        }
        out
    }

    /// The end of the text.
    pub fn finish(&mut self) -> Split {
        let mut out = Split::default();
        self.drain(&mut out, true);
        out
    }

    fn emit(&mut self, out: &mut Split, s: &str) {
        match self.part {
            Part::Reasoning => out.reasoning.push_str(s),
            Part::Answer if self.answered => out.answer.push_str(s),
            Part::Answer => {
                let t = s.trim_start();
                self.answered = !t.is_empty();
                out.answer.push_str(t);
            }
            Part::Between => {}
        }
    }

    fn drain(&mut self, out: &mut Split, all: bool) {
        loop {
            let found = self
                .format
                .markers()
                .iter()
                .filter_map(|&(m, p)| self.held.find(m).map(|i| (i, m, p)))
                // The earliest; at one place the longest marker.
                .min_by_key(|&(i, m, _)| (i, std::cmp::Reverse(m.len())));
            match found {
                Some((i, m, p)) => {
                    let before = self.held[..i].to_string();
                    self.emit(out, &before);
                    self.held.drain(..i + m.len());
                    self.part = p;
                }
                None => break,
            }
        }
        // Keep the longest end that may begin a marker.
        let keep = if all {
            0
        } else {
            let markers: Vec<&str> = self.format.markers().iter().map(|&(m, _)| m).collect();
            crate::held_back(&self.held, &markers)
        };
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.emit(out, &text);
        self.held.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        format: ReasoningFormat,
        budget: Option<usize>,
        pieces: &[&str],
    ) -> (String, String, usize, Vec<usize>) {
        let mut r = Reasoner::new(format, budget);
        let (mut reasoning, mut answer, mut forced_at) = (String::new(), String::new(), Vec::new());
        for (i, p) in pieces.iter().enumerate() {
            let s = r.push(p);
            reasoning += &s.reasoning;
            answer += &s.answer;
            if s.force.is_some() {
                forced_at.push(i);
            }
        }
        let s = r.finish();
        (
            reasoning + &s.reasoning,
            answer + &s.answer,
            r.spent(),
            forced_at,
        )
    }

    #[test]
    fn splits_think_and_muse_channels() {
        let (r, a, n, f) = run(
            ReasoningFormat::Think,
            None,
            &[
                "<th", "ink>", "Let me", " see", "</thi", "nk>", "Paris", ".",
            ],
        );
        assert_eq!(
            (r.as_str(), a.as_str(), f.len()),
            ("Let me see", "Paris.", 0)
        );
        assert_eq!(
            n, 4,
            "the tokens after <think>, up to the one completing </think>"
        );
        let (r, a, _, _) = run(
            ReasoningFormat::Muse,
            None,
            &[
                " to=self",
                "<|message|>",
                "think",
                "ing",
                "<|eom|>",
                "<|start|>assistant",
                " to=user<|message|>",
                "Paris",
                "<|eot|>",
            ],
        );
        assert_eq!((r.as_str(), a.as_str()), ("thinking", "Paris"));
        // A model that answers straight away.
        let (r, a, _, _) = run(
            ReasoningFormat::Muse,
            None,
            &[" to=user<|message|>", "Hi", "<|eot|>"],
        );
        assert_eq!((r.as_str(), a.as_str()), ("", "Hi"));
        let (r, a, _, _) = run(ReasoningFormat::Think, None, &["Just", " an answer"]);
        assert_eq!((r.as_str(), a.as_str()), ("", "Just an answer"));
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        for budget in 1..8 {
            let mut pieces = vec!["<think>"];
            pieces.extend(std::iter::repeat_n(" hmm", 20));
            pieces.extend(["</think>", "Paris"]);
            let (r, _, spent, forced_at) = run(ReasoningFormat::Think, Some(budget), &pieces);
            assert_eq!(spent, budget);
            assert_eq!(r, " hmm".repeat(budget), "budget {budget}");
            assert_eq!(
                forced_at,
                vec![budget],
                "forced right after the last allowed token"
            );
        }
        // Under budget: nothing is forced.
        let (_, a, spent, forced_at) = run(
            ReasoningFormat::Think,
            Some(10),
            &["<think>", "a", "</think>", "b"],
        );
        assert_eq!((a.as_str(), spent, forced_at.len()), ("b", 2, 0));
    }

    #[test]
    fn formats_from_templates() {
        assert_eq!(
            ReasoningFormat::for_template("{{ '<|start|>assistant to=self<|message|>' }}"),
            Some(ReasoningFormat::Muse)
        );
        assert_eq!(
            ReasoningFormat::for_template("{% if thinking %}<think>{% endif %}"),
            Some(ReasoningFormat::Think)
        );
        assert_eq!(ReasoningFormat::for_template("{{ messages }}"), None);
    }
}
