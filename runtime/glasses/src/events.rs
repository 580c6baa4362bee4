//! What the loop reports: with `--json` one JSON object per line and event on stdout, otherwise short lines for
//! a person (the answer streamed as it is generated).
//!
//! Events (`"event"` field): `start`, `speech_start`, `turn`, `transcript`, `ocr`, `answer`, `timings`, `device`
//! (a camera, microphone or display fault and its recovery), `power` (the load lowered or restored), `end`.

use serde_json::{json, Value};
use std::io::Write;

/// Where events go.
pub struct Reporter {
    out: Box<dyn Write + Send>,
    json: bool,
    timings: bool,
    /// Every event, kept when asked (tests and `--soak` read them back).
    pub kept: Option<Vec<Value>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// `json`: JSON lines; `timings`: a timing line per turn in the human form too.
    pub fn new(out: Box<dyn Write + Send>, json: bool, timings: bool) -> Reporter {
        Reporter {
            out,
            json,
            timings,
            kept: None,
        }
    }

    /// Keeps every event in [`Reporter::kept`] as well.
    pub fn keep(mut self) -> Reporter {
        self.kept = Some(Vec::new());
        self
    }

    /// Reports one event: `fields` is a JSON object; `event` is added to it.
    pub fn event(&mut self, event: &str, fields: Value) {
        let mut obj = match fields {
            Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        obj.insert("event".into(), json!(event));
        let v = Value::Object(obj);
        if self.json {
            let _ = writeln!(self.out, "{v}");
        } else {
            self.human(event, &v);
        }
        let _ = self.out.flush();
        if let Some(k) = &mut self.kept {
            k.push(v);
        }
    }

    /// Answer text as it streams (human form only; JSON gets the whole answer in its `answer` event).
    pub fn stream(&mut self, text: &str) {
        if !self.json {
            let _ = write!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }

    fn human(&mut self, event: &str, v: &Value) {
        let turn = v["turn"].as_u64().unwrap_or(0);
        let line = match event {
            "start" => format!(
                "flint glasses: {} -> {}",
                v["source"].as_str().unwrap_or("?"),
                v["display"].as_str().unwrap_or("?")
            ),
            "transcript" => format!("[turn {turn}] heard: {}", v["text"].as_str().unwrap_or("")),
            "ocr" => {
                let words: Vec<&str> = v["words"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|w| w["text"].as_str()).collect())
                    .unwrap_or_default();
                format!("[turn {turn}] text in view: {}", words.join(" | "))
            }
            "answer" => {
                // The answer already streamed; end its line.
                "\n".to_string()
            }
            "timings" if self.timings => {
                let ms = |k: &str| v[k].as_f64().map_or("-".to_string(), |x| format!("{x:.0}"));
                format!(
                    "[turn {turn}] speech end -> asr {} ms, ocr {} ms, first token {} ms, first pixel {} ms, done {} ms",
                    ms("asr_ms"), ms("ocr_ms"), ms("first_token_ms"), ms("first_pixel_ms"), ms("answer_done_ms")
                )
            }
            "device" | "power" | "paging" => {
                format!("[{event}] {}", v["message"].as_str().unwrap_or(""))
            }
            "end" => format!(
                "flint glasses: {} turns; display frames: {}",
                v["turns"],
                v["frames_at"].as_str().unwrap_or("(on the device)")
            ),
            _ => return,
        };
        if event == "answer" {
            let _ = write!(self.out, "{line}");
        } else {
            let _ = writeln!(self.out, "{line}");
        }
    }
}
