//! Boxes and points in generated text, found as the text streams in, in the formats real models emit, and mapped
//! back to the camera frame (undoing the preprocessor's resize).
//!
//! | format | looks like | coordinates |
//! |---|---|---|
//! | [`Format::Qwen25Json`] | `{"bbox_2d": [x1, y1, x2, y2], "label": "cup"}`, `{"point_2d": [x, y], ...}` | pixels of the resized image |
//! | [`Format::Qwen3Json`] | the same keys | a 0–1000 grid |
//! | [`Format::Qwen2Tags`] | `<\|object_ref_start\|>cup<\|object_ref_end\|><\|box_start\|>(x1,y1),(x2,y2)<\|box_end\|>` | a 0–1000 grid |
//! | [`Format::PaliGemma`] | `<loc0123><loc0456><loc0789><loc1000> cup` (y first; `;` between objects) | 1024 bins |
//! | [`Format::Florence2`] | `cup<loc_12><loc_34><loc_560><loc_780>` | 1000 bins |
//!
//! Muse Spark's own pointing format is not public; a model family picks its parser ([`Format::for_architecture`]),
//! and a caller may pick another.

use serde_json::Value;

/// Where a box or point is, in frame pixels (x right, y down).
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Box { x1: f32, y1: f32, x2: f32, y2: f32 },
    Point { x: f32, y: f32 },
}

/// One thing the model pointed at.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    pub label: Option<String>,
    pub shape: Shape,
    /// Where the model gives one (a `score` / `confidence` field).
    pub confidence: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Qwen25Json,
    Qwen3Json,
    Qwen2Tags,
    PaliGemma,
    Florence2,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Qwen25Json,
        Format::Qwen3Json,
        Format::Qwen2Tags,
        Format::PaliGemma,
        Format::Florence2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Qwen25Json => "qwen2.5-vl",
            Format::Qwen3Json => "qwen3-vl",
            Format::Qwen2Tags => "qwen2-vl",
            Format::PaliGemma => "paligemma",
            Format::Florence2 => "florence2",
        }
    }

    /// The format a model family emits. Muse models have no public one: they get the 0–1000 JSON of Qwen3-VL, a
    /// guess, which a caller can override.
    pub fn for_architecture(arch: &str) -> Option<Format> {
        Some(match arch {
            a if a.starts_with("qwen2_5_vl") || a.starts_with("qwen2_5_omni") => Format::Qwen25Json,
            a if a.starts_with("qwen3_vl")
                || a.starts_with("qwen3_omni")
                || a.starts_with("muse_") =>
            {
                Format::Qwen3Json
            }
            a if a.starts_with("qwen2_vl") => Format::Qwen2Tags,
            a if a.starts_with("paligemma") => Format::PaliGemma,
            a if a.starts_with("florence") => Format::Florence2,
            _ => return None,
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown box format `{s}` (one of {})", names.join(", "))
            })
    }
}

/// How the model's coordinates relate to the frame: the frame's size and the size the preprocessor resized it to
/// (what the model saw).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub resized_width: u32,
    pub resized_height: u32,
}

impl Frame {
    /// A model coordinate `v` on the x (or y) axis, in the format's units, to frame pixels.
    fn map(&self, f: Format, v: f32, x_axis: bool) -> f32 {
        let (full, resized) = if x_axis {
            (self.width as f32, self.resized_width as f32)
        } else {
            (self.height as f32, self.resized_height as f32)
        };
        let unit = match f {
            Format::Qwen25Json => resized,
            Format::Qwen3Json | Format::Qwen2Tags | Format::Florence2 => 1000.0,
            Format::PaliGemma => 1024.0,
        };
        (v / unit * full).clamp(0.0, full)
    }
}

/// Finds overlays in text pushed piece by piece; each comes out once, as soon as its text is complete.
#[derive(Debug)]
pub struct BoxParser {
    format: Format,
    frame: Frame,
    buf: String,
    /// Bytes of `buf` already looked at for good.
    done: usize,
}

/// Bytes kept unparsed at most: a run of text this long that never completes an object is dropped.
const MAX_PENDING: usize = 16 << 10;

impl BoxParser {
    pub fn new(format: Format, frame: Frame) -> BoxParser {
        BoxParser {
            format,
            frame,
            buf: String::new(),
            done: 0,
        }
    }

    /// The overlays `piece` completes.
    pub fn push(&mut self, piece: &str) -> Vec<Overlay> {
        self.buf.push_str(piece);
        let out = self.scan(false);
        self.trim();
        out
    }

    /// The overlays the end of the text completes (a PaliGemma label that runs to the end).
    pub fn finish(&mut self) -> Vec<Overlay> {
        self.scan(true)
    }

    /// Every overlay in a whole text.
    pub fn parse_all(format: Format, frame: Frame, text: &str) -> Vec<Overlay> {
        let mut p = BoxParser::new(format, frame);
        let mut out = p.push(text);
        out.extend(p.finish());
        out
    }

    fn trim(&mut self) {
        if self.done > 0 {
            self.buf.drain(..self.done);
            self.done = 0;
        }
        if self.buf.len() > MAX_PENDING {
            let cut = (self.buf.len() - MAX_PENDING..=self.buf.len())
                .find(|&i| self.buf.is_char_boundary(i))
                .unwrap_or(self.buf.len());
            self.buf.drain(..cut);
        }
    }

    fn scan(&mut self, end: bool) -> Vec<Overlay> {
        let mut out = Vec::new();
        loop {
            let rest = &self.buf[self.done..];
            if rest.is_empty() {
                return out;
            }
            let found = match self.format {
                Format::Qwen25Json | Format::Qwen3Json => json_object(rest),
                Format::Qwen2Tags => qwen2_tags(rest),
                Format::PaliGemma => paligemma(rest, end),
                Format::Florence2 => florence(rest),
            };
            match found {
                Scan::Found(used, raw) => {
                    self.done += used;
                    if let Some(o) = self.overlay(raw) {
                        out.push(o);
                    }
                }
                Scan::Skip(0) => return out,
                Scan::Skip(used) => self.done += used,
                Scan::NeedMore(keep_from) => {
                    self.done += keep_from;
                    return out;
                }
            }
        }
    }

    fn overlay(&self, raw: Raw) -> Option<Overlay> {
        let (f, fr) = (self.format, &self.frame);
        let shape = match *raw.coords.as_slice() {
            // PaliGemma gives y first.
            [y1, x1, y2, x2] if f == Format::PaliGemma => Shape::Box {
                x1: fr.map(f, x1, true),
                y1: fr.map(f, y1, false),
                x2: fr.map(f, x2, true),
                y2: fr.map(f, y2, false),
            },
            [x1, y1, x2, y2] => Shape::Box {
                x1: fr.map(f, x1, true),
                y1: fr.map(f, y1, false),
                x2: fr.map(f, x2, true),
                y2: fr.map(f, y2, false),
            },
            [x, y] => Shape::Point {
                x: fr.map(f, x, true),
                y: fr.map(f, y, false),
            },
            _ => return None,
        };
        if !raw.coords.iter().all(|v| v.is_finite()) {
            return None;
        }
        Some(Overlay {
            label: raw.label.filter(|l| !l.is_empty()),
            shape,
            confidence: raw.confidence,
        })
    }
}

/// What a scanner found in the unparsed text.
enum Scan {
    /// An object ending `usize` bytes in.
    Found(usize, Raw),
    /// Nothing up to here can start an object.
    Skip(usize),
    /// An object may be starting at this offset: wait for more text.
    NeedMore(usize),
}

struct Raw {
    coords: Vec<f32>,
    label: Option<String>,
    confidence: Option<f32>,
}

/// The next top-level `{...}` (strings and nesting respected) that holds `bbox_2d` or `point_2d`.
fn json_object(s: &str) -> Scan {
    let Some(start) = s.find('{') else {
        return Scan::Skip(s.len());
    };
    let b = s.as_bytes();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for i in start..b.len() {
        let c = b[i];
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    let obj = &s[start..=i];
                    return match from_json(obj) {
                        Some(r) => Scan::Found(i + 1, r),
                        // An object that is not a box (or holds one deeper): look inside it.
                        None => Scan::Skip(start + 1),
                    };
                }
            }
            _ => {}
        }
    }
    Scan::NeedMore(start)
}

fn from_json(obj: &str) -> Option<Raw> {
    let v: Value = serde_json::from_str(obj).ok()?;
    let coords = v.get("bbox_2d").or_else(|| v.get("point_2d"))?.as_array()?;
    let coords: Option<Vec<f32>> = coords
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect();
    let label = ["label", "name", "text"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    let confidence = ["score", "confidence"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_f64))
        .map(|c| c as f32);
    Some(Raw {
        coords: coords?,
        label,
        confidence,
    })
}

/// Where the earliest of `markers` starts in `s`, or where a partial one may be starting at its end.
fn find_any(s: &str, markers: &[&str]) -> Result<usize, usize> {
    if let Some(i) = markers.iter().filter_map(|m| s.find(m)).min() {
        return Ok(i);
    }
    Err(s.len() - crate::held_back(s, markers))
}

/// Where the earliest of `markers` starts in `s`; else what the scanner does: skip all of `s`, or keep its end,
/// which may begin a marker.
fn find_marker(s: &str, markers: &[&str]) -> Result<usize, Scan> {
    find_any(s, markers).map_err(|keep| {
        if keep == s.len() {
            Scan::Skip(keep)
        } else {
            Scan::NeedMore(keep)
        }
    })
}

const REF_START: &str = "<|object_ref_start|>";
const REF_END: &str = "<|object_ref_end|>";
const BOX_START: &str = "<|box_start|>";
const BOX_END: &str = "<|box_end|>";

/// `[<|object_ref_start|>label<|object_ref_end|>]<|box_start|>(x1,y1),(x2,y2)<|box_end|>`.
fn qwen2_tags(s: &str) -> Scan {
    let start = match find_marker(s, &[REF_START, BOX_START]) {
        Ok(i) => i,
        Err(scan) => return scan,
    };
    let mut at = start;
    let mut label = None;
    if s[at..].starts_with(REF_START) {
        let body = at + REF_START.len();
        let Some(e) = s[body..].find(REF_END) else {
            return Scan::NeedMore(start);
        };
        label = Some(s[body..body + e].trim().to_string());
        at = body + e + REF_END.len();
        // The box must follow the label; anything else means the label stood alone.
        let rest = s[at..].trim_start();
        if rest.len() < BOX_START.len() {
            return if BOX_START.starts_with(rest) {
                Scan::NeedMore(start)
            } else {
                Scan::Skip(at)
            };
        }
        if !rest.starts_with(BOX_START) {
            return Scan::Skip(at);
        }
        at = s.len() - rest.len();
    }
    let body = at + BOX_START.len();
    let Some(e) = s[body..].find(BOX_END) else {
        return Scan::NeedMore(start);
    };
    let coords = numbers(&s[body..body + e]);
    Scan::Found(
        body + e + BOX_END.len(),
        Raw {
            coords,
            label,
            confidence: None,
        },
    )
}

/// The numbers in `s`, in order (`(12,34),(56,78)` gives 4).
fn numbers(s: &str) -> Vec<f32> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// A run of `n` tokens `<{prefix}DIGITS>` at the start of `s`: the values and the bytes used; `Err(true)` if `s`
/// may still become one.
fn locs(s: &str, prefix: &str, n: usize) -> Result<(Vec<f32>, usize), bool> {
    let mut at = 0;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let rest = &s[at..];
        let open = format!("<{prefix}");
        if rest.len() < open.len() {
            return Err(open.starts_with(rest));
        }
        if !rest.starts_with(&open) {
            return Err(false);
        }
        let digits = &rest[open.len()..];
        let d = digits.bytes().take_while(u8::is_ascii_digit).count();
        match digits.as_bytes().get(d) {
            None => return Err(true),
            Some(b'>') if d > 0 => {}
            Some(_) => return Err(false),
        }
        out.push(digits[..d].parse::<f32>().map_err(|_| false)?);
        at += open.len() + d + 1;
    }
    Ok((out, at))
}

/// `<locY1><locX1><locY2><locX2> label` (objects separated by `;`); the label runs to `;`, `<` or the end.
fn paligemma(s: &str, end: bool) -> Scan {
    let start = match find_marker(s, &["<loc"]) {
        Ok(i) => i,
        Err(scan) => return scan,
    };
    let (coords, used) = match locs(&s[start..], "loc", 4) {
        Ok(v) => v,
        Err(true) => return Scan::NeedMore(start),
        Err(false) => return Scan::Skip(start + 1),
    };
    let after = start + used;
    let rest = &s[after..];
    let (label, used) = match rest.find([';', '<', '\n']) {
        Some(i) => (&rest[..i], i),
        None if end => (rest, rest.len()),
        None => return Scan::NeedMore(start),
    };
    Scan::Found(
        after + used,
        Raw {
            coords,
            label: Some(label.trim().to_string()),
            confidence: None,
        },
    )
}

/// `label<loc_X1><loc_Y1><loc_X2><loc_Y2>`: the label is the text since the previous object.
fn florence(s: &str) -> Scan {
    let start = match find_any(s, &["<loc_"]) {
        Ok(i) => i,
        // The label is the text before the locations: keep it all.
        Err(_) => return Scan::NeedMore(0),
    };
    match locs(&s[start..], "loc_", 4) {
        Ok((coords, used)) => Scan::Found(
            start + used,
            Raw {
                coords,
                label: Some(s[..start].trim().to_string()),
                confidence: None,
            },
        ),
        Err(true) => Scan::NeedMore(0),
        Err(false) => Scan::Skip(start + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame = Frame {
        width: 640,
        height: 480,
        resized_width: 644,
        resized_height: 476,
    };

    /// Recorded answers (as each family's model cards and cookbooks show them) and what they mean in the frame.
    fn cases() -> Vec<(Format, &'static str, Vec<Overlay>)> {
        let b = |label: &str, x1: f32, y1: f32, x2: f32, y2: f32| Overlay {
            label: Some(label.into()),
            shape: Shape::Box { x1, y1, x2, y2 },
            confidence: None,
        };
        vec![
            (
                Format::Qwen25Json,
                "```json\n[\n\t{\"bbox_2d\": [322, 119, 644, 476], \"label\": \"coffee cup\"},\n\t{\"point_2d\": [161, 238], \"label\": \"spoon\"}\n]\n```",
                vec![
                    b("coffee cup", 320.0, 120.0, 640.0, 480.0),
                    Overlay {
                        label: Some("spoon".into()),
                        shape: Shape::Point { x: 160.0, y: 240.0 },
                        confidence: None,
                    },
                ],
            ),
            (
                Format::Qwen3Json,
                "[{\"bbox_2d\": [500, 250, 1000, 1000], \"label\": \"sign {left}\", \"score\": 0.9}]",
                vec![Overlay {
                    confidence: Some(0.9),
                    ..b("sign {left}", 320.0, 120.0, 640.0, 480.0)
                }],
            ),
            (
                Format::Qwen2Tags,
                "The <|object_ref_start|>cup<|object_ref_end|><|box_start|>(500,250),(1000,1000)<|box_end|> is on the left, and <|box_start|>(0,0),(250,500)<|box_end|>.",
                vec![
                    b("cup", 320.0, 120.0, 640.0, 480.0),
                    Overlay {
                        label: None,
                        ..b("", 0.0, 0.0, 160.0, 240.0)
                    },
                ],
            ),
            (
                Format::PaliGemma,
                "<loc0256><loc0512><loc1024><loc1024> cat ; <loc0000><loc0000><loc0512><loc0256> dog",
                vec![b("cat", 320.0, 120.0, 640.0, 480.0), b("dog", 0.0, 0.0, 160.0, 240.0)],
            ),
            (
                Format::Florence2,
                "car<loc_500><loc_250><loc_1000><loc_1000>door<loc_0><loc_0><loc_250><loc_500>",
                vec![b("car", 320.0, 120.0, 640.0, 480.0), b("door", 0.0, 0.0, 160.0, 240.0)],
            ),
        ]
    }

    #[test]
    fn each_format_parses_whole_and_split_at_every_position() {
        for (f, text, want) in cases() {
            assert_eq!(BoxParser::parse_all(f, FRAME, text), want, "{f:?} whole");
            for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                let mut p = BoxParser::new(f, FRAME);
                let mut got = p.push(&text[..cut]);
                got.extend(p.push(&text[cut..]));
                got.extend(p.finish());
                assert_eq!(got, want, "{f:?} split at {cut}");
            }
            // One character at a time, as tokens stream.
            let mut p = BoxParser::new(f, FRAME);
            let mut got: Vec<Overlay> = text.chars().flat_map(|c| p.push(&c.to_string())).collect();
            got.extend(p.finish());
            assert_eq!(got, want, "{f:?} char by char");
        }
    }

    #[test]
    fn other_text_gives_nothing_and_bad_boxes_are_dropped() {
        for f in Format::ALL {
            for text in [
                "No boxes here, just {braces} and <tags>.",
                "{\"bbox_2d\": [1, 2, 3]}",
                "{\"bbox_2d\": \"nope\"}",
                "<loc12><loc34> short",
                "<|box_start|>(1,2)<|box_end|>x",
            ] {
                let got = BoxParser::parse_all(f, FRAME, text);
                assert!(
                    got.iter().all(|o| matches!(o.shape, Shape::Point { .. })),
                    "{f:?} {text}: {got:?}"
                );
            }
        }
        // Coordinates past the image are clamped to the frame.
        let o = BoxParser::parse_all(
            Format::Qwen3Json,
            FRAME,
            "{\"bbox_2d\": [-5, 0, 2000, 500]}",
        );
        assert_eq!(
            o[0].shape,
            Shape::Box {
                x1: 0.0,
                y1: 0.0,
                x2: 640.0,
                y2: 240.0
            }
        );
    }

    #[test]
    fn formats_by_name_and_family() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("yolo".parse::<Format>().is_err());
        assert_eq!(
            Format::for_architecture("qwen2_5_vl"),
            Some(Format::Qwen25Json)
        );
        assert_eq!(
            Format::for_architecture("muse_spark"),
            Some(Format::Qwen3Json)
        );
        assert_eq!(Format::for_architecture("llama"), None);
    }
}
