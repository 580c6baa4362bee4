//! The recogniser's alphabet and CTC greedy decoding, as RapidOCR's `CTCLabelDecode`.
//!
//! The alphabet is the rec model's ONNX metadata `character` split into lines (Python's `str.splitlines`),
//! with the CTC blank prepended at class 0 and a space appended: for PP-OCRv4 that is 6623 + 2 = 6625 classes,
//! the model's last output dimension.

/// Python's `str.splitlines()`.
fn split_lines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => {
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Class index to text.
#[derive(Clone, Debug)]
pub struct Alphabet {
    classes: Vec<String>,
}

impl Alphabet {
    /// From the metadata `character` string.
    pub fn from_metadata(character: &str) -> Self {
        let mut classes = vec![String::new()];
        classes.extend(split_lines(character));
        classes.push(" ".into());
        Self { classes }
    }

    /// Classes including blank and space.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Never true for a real alphabet (blank and space are always there).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Greedy decode of `steps` x `len()` probabilities: per step the first maximum, repeats merged, blanks
    /// dropped; the score is the mean probability of the kept steps (0 when none are kept).
    pub fn decode(&self, probs: &[f32], steps: usize) -> (String, f32) {
        let c = self.classes.len();
        let mut text = String::new();
        let (mut sum, mut kept) = (0.0f64, 0usize);
        let mut prev = usize::MAX;
        for t in 0..steps.min(probs.len() / c.max(1)) {
            let row = &probs[t * c..(t + 1) * c];
            let (mut best, mut best_p) = (0usize, f32::NEG_INFINITY);
            for (i, &p) in row.iter().enumerate() {
                if p > best_p {
                    best = i;
                    best_p = p;
                }
            }
            if best != 0 && best != prev {
                text.push_str(&self.classes[best]);
                sum += f64::from(best_p);
                kept += 1;
            }
            prev = best;
        }
        let score = if kept == 0 {
            0.0
        } else {
            (sum / kept as f64) as f32
        };
        (text, score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_merges_and_drops_blank() {
        let a = Alphabet::from_metadata("a\nb\r\nc");
        assert_eq!(a.len(), 5);
        let one = |i: usize, p: f32| {
            let mut v = vec![0.0; 5];
            v[i] = p;
            v
        };
        let probs: Vec<f32> = [
            one(1, 0.9),
            one(1, 0.8),
            one(0, 0.9),
            one(1, 0.7),
            one(4, 0.6),
            one(3, 1.0),
        ]
        .concat();
        let (t, s) = a.decode(&probs, 6);
        assert_eq!(t, "aa c");
        assert!((s - (0.9 + 0.7 + 0.6 + 1.0) / 4.0).abs() < 1e-6);
        assert_eq!(a.decode(&one(0, 1.0), 1), (String::new(), 0.0));
    }
}
