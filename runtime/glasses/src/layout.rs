//! What the display shows during a turn, laid out as the bridge's drawing commands (docs/BRIDGE.md).
//!
//! The display is see-through: black is transparent, so everything is drawn on black. From top to bottom:
//! - a status line (small font): the turn, and notes such as "low power" or "transliterated";
//! - the question as heard (small font, grey), one line, cut with "..." when long;
//! - boxes where OCR (or the answer) gave frame coordinates, scaled from the frame to the display;
//! - a panel at the bottom with the answer, word-wrapped in the medium font; while it streams, the newest lines
//!   stay in view (older ones scroll off the top of the panel).
//!
//! The bridge fonts are ASCII. Text they cannot draw is transliterated ([`to_ascii`]) and the status line says so.

use flint_bridge::message::Message;
use flint_bridge::types::{Font, Rgb565};

/// Glyph cells of the bridge fonts (width, height), as the microcontroller draws them.
fn cell(font: Font) -> (u16, u16) {
    match font {
        Font::Small => (6, 10),
        Font::Medium => (8, 13),
        Font::Large => (10, 20),
    }
}

const MARGIN: u16 = 8;
const PANEL_LINES: u16 = 6;
const ANSWER_FONT: Font = Font::Medium;
const TEXT: Rgb565 = Rgb565::new(31, 63, 31);
const GREY: Rgb565 = Rgb565::new(20, 40, 20);
const ACCENT: Rgb565 = Rgb565::new(0, 50, 31);
const PANEL_BG: Rgb565 = Rgb565::new(2, 4, 3);
const BOX: Rgb565 = Rgb565::new(31, 50, 0);

/// A box to draw, in frame pixels, with a label.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameBox {
    pub label: String,
    /// Left, top, right, bottom in the frame's pixels.
    pub rect: [f32; 4],
}

/// Everything on the display at one moment of a turn.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    pub status: String,
    pub question: String,
    pub answer: String,
    pub boxes: Vec<FrameBox>,
    /// Size of the frame the boxes are in (width, height); boxes are not drawn without it.
    pub frame: Option<(u32, u32)>,
}

/// Display geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u16,
    pub height: u16,
}

/// Characters the bridge fonts can draw: printable ASCII.
fn drawable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Transliterates `text` to printable ASCII: accented Latin letters lose their accents, typographic quotes and
/// dashes become plain ones, other characters become `?`. Returns the text and whether anything was changed.
pub fn to_ascii(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for c in text.chars() {
        if drawable(c) {
            out.push(c);
            continue;
        }
        let rep: &str = match c {
            '\n' | '\t' | '\r' => " ",
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
            'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
            'æ' => "ae",
            'Æ' => "AE",
            'ç' | 'č' | 'ć' => "c",
            'Ç' | 'Č' | 'Ć' => "C",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
            'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
            'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
            'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
            'ñ' | 'ń' | 'ň' => "n",
            'Ñ' | 'Ń' | 'Ň' => "N",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
            'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => "O",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
            'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
            'ý' | 'ÿ' => "y",
            'Ý' | 'Ÿ' => "Y",
            'ß' => "ss",
            'ł' => "l",
            'Ł' => "L",
            'š' | 'ś' => "s",
            'Š' | 'Ś' => "S",
            'ž' | 'ź' | 'ż' => "z",
            'Ž' | 'Ź' | 'Ż' => "Z",
            '‘' | '’' | '‚' | '′' => "'",
            '“' | '”' | '„' | '″' | '«' | '»' => "\"",
            '–' | '—' | '−' | '‐' => "-",
            '…' => "...",
            '\u{a0}' | '\u{2009}' | '\u{202f}' => " ",
            '°' => " deg",
            '×' => "x",
            _ => "?",
        };
        // Whitespace folded into a space is layout, not a change the wearer needs to be told about.
        changed |= !c.is_whitespace();
        out.push_str(rep);
    }
    (out, changed)
}

/// Word-wraps `text` to lines of at most `cols` characters (words longer than a line are cut).
pub fn wrap(text: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        loop {
            let room = if line.is_empty() {
                cols
            } else {
                cols.saturating_sub(line.len() + 1)
            };
            if word.len() <= room {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if line.is_empty() {
                // A word longer than the line: cut it (ASCII, so any byte is a boundary).
                lines.push(word[..cols].to_string());
                word = &word[cols..];
                if word.is_empty() {
                    break;
                }
            } else {
                lines.push(std::mem::take(&mut line));
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn ellipsize(s: &str, cols: usize) -> String {
    if s.len() <= cols {
        s.to_string()
    } else {
        format!("{}...", &s[..cols.saturating_sub(3)])
    }
}

/// The drawing commands of `scene` (a full redraw, ending with no `Present`: the caller presents). Text is
/// transliterated to ASCII first; the second value says whether that changed anything.
pub fn draw(scene: &Scene, g: Geometry) -> (Vec<Cmd>, bool) {
    let mut out = Vec::new();
    let (question, q_changed) = to_ascii(&scene.question);
    let (answer, a_changed) = to_ascii(&scene.answer);
    let changed = q_changed || a_changed;
    let (sw, sh) = cell(Font::Small);
    let (aw, ah) = cell(ANSWER_FONT);
    let cols_small = ((g.width.saturating_sub(2 * MARGIN)) / sw).max(1) as usize;
    let cols = ((g.width.saturating_sub(2 * MARGIN)) / aw).max(1) as usize;

    out.push(Cmd::Shape(Message::Clear {
        x: 0,
        y: 0,
        w: g.width,
        h: g.height,
        color: Rgb565::BLACK,
    }));
    let mut status = to_ascii(&scene.status).0;
    if changed {
        status.push_str(if status.is_empty() {
            "[transliterated]"
        } else {
            " [transliterated]"
        });
    }
    let mut y = MARGIN as i16;
    if !status.is_empty() {
        out.push(text(
            MARGIN as i16,
            y,
            Font::Small,
            ACCENT,
            &ellipsize(&status, cols_small),
        ));
        y += sh as i16 + 2;
    }
    if !question.is_empty() {
        let q = format!("> {question}");
        out.push(text(
            MARGIN as i16,
            y,
            Font::Small,
            GREY,
            &ellipsize(&q, cols_small),
        ));
    }

    let panel_h = PANEL_LINES * (ah + 2) + 2 * MARGIN;
    let panel_y = g.height.saturating_sub(panel_h + MARGIN);
    if let Some((fw, fh)) = scene.frame.filter(|&(w, h)| w > 0 && h > 0) {
        let (kx, ky) = (g.width as f32 / fw as f32, g.height as f32 / fh as f32);
        for b in &scene.boxes {
            let [l, t, r, bt] = b.rect;
            let (x0, y0) = ((l.min(r) * kx).round(), (t.min(bt) * ky).round());
            let (x1, y1) = ((l.max(r) * kx).round(), (t.max(bt) * ky).round());
            if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
                continue;
            }
            let clamp = |v: f32, hi: u16| v.clamp(0.0, hi as f32) as i16;
            let (x0, y0) = (clamp(x0, g.width), clamp(y0, g.height));
            let (x1, y1) = (clamp(x1, g.width), clamp(y1, g.height));
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            out.push(Cmd::Shape(Message::Rect {
                x: x0,
                y: y0,
                w: (x1 - x0) as u16,
                h: (y1 - y0) as u16,
                radius: 0,
                stroke_width: 2,
                stroke: BOX,
                fill: None,
            }));
            let label = to_ascii(&b.label).0;
            if !label.is_empty() {
                let ly = (y0 - sh as i16 - 2).max(0);
                let lcols = ((g.width as i16 - x0).max(0) as u16 / sw) as usize;
                if lcols > 0 {
                    out.push(text(x0, ly, Font::Small, BOX, &ellipsize(&label, lcols)));
                }
            }
        }
    }

    if !answer.is_empty() {
        out.push(Cmd::Shape(Message::Rect {
            x: (MARGIN / 2) as i16,
            y: panel_y as i16,
            w: g.width.saturating_sub(MARGIN),
            h: panel_h,
            radius: 6,
            stroke_width: 1,
            stroke: ACCENT,
            fill: Some(PANEL_BG),
        }));
        let lines = wrap(&answer, cols);
        let first = lines.len().saturating_sub(PANEL_LINES as usize);
        for (i, line) in lines[first..].iter().enumerate() {
            let ly = panel_y + MARGIN + i as u16 * (ah + 2);
            out.push(text(MARGIN as i16, ly as i16, ANSWER_FONT, TEXT, line));
        }
    }
    (out, changed)
}

/// One drawing command that owns its text (the bridge's `Message::Text` borrows it).
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// A command without text.
    Shape(Message<'static>),
    /// A line of text.
    Text {
        x: i16,
        y: i16,
        font: Font,
        fg: Rgb565,
        text: String,
    },
}

impl Cmd {
    /// The message to send.
    pub fn message(&self) -> Message<'_> {
        match self {
            Cmd::Shape(m) => *m,
            Cmd::Text {
                x,
                y,
                font,
                fg,
                text,
            } => Message::Text {
                x: *x,
                y: *y,
                font: *font,
                fg: *fg,
                bg: None,
                text,
            },
        }
    }
}

fn text(x: i16, y: i16, font: Font, fg: Rgb565, s: &str) -> Cmd {
    Cmd::Text {
        x,
        y,
        font,
        fg,
        text: s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliterates_and_says_so() {
        assert_eq!(
            to_ascii("Caf\u{e9} \u{201c}ouvert\u{201d} \u{2014} 5\u{b0}"),
            ("Cafe \"ouvert\" - 5 deg".into(), true)
        );
        assert_eq!(to_ascii("plain\ttext"), ("plain text".into(), false));
        assert_eq!(to_ascii("\u{6c49}"), ("?".into(), true));
    }

    #[test]
    fn wraps_words_and_cuts_long_ones() {
        assert_eq!(wrap("the quick brown fox", 9), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij k", 4), ["abcd", "efgh", "ij k"]);
        assert!(wrap("   ", 5).is_empty());
    }

    #[test]
    fn boxes_scale_from_frame_to_display_and_stay_inside() {
        let scene = Scene {
            answer: "Paris".into(),
            boxes: vec![
                FrameBox {
                    label: "EXIT".into(),
                    rect: [320.0, 240.0, 640.0, 480.0],
                },
                FrameBox {
                    label: "off".into(),
                    rect: [f32::NAN, 0.0, 1.0, 1.0],
                },
            ],
            frame: Some((1280, 960)),
            ..Default::default()
        };
        let (cmds, changed) = draw(
            &scene,
            Geometry {
                width: 640,
                height: 480,
            },
        );
        assert!(!changed);
        let rects: Vec<_> = cmds
            .iter()
            .filter_map(|c| match c.message() {
                Message::Rect {
                    x,
                    y,
                    w,
                    h,
                    fill: None,
                    ..
                } => Some((x, y, w, h)),
                _ => None,
            })
            .collect();
        assert_eq!(rects, [(160, 120, 160, 120)]);
        assert!(cmds
            .iter()
            .any(|c| matches!(c.message(), Message::Text { text: "Paris", .. })));
    }
}
