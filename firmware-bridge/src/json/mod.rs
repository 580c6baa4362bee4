//! The JSON line format used by `flint bridge decode` / `encode` and by the sample file
//! `firmware-bridge/samples/messages.jsonl`: one frame per line, `{"seq":N,"type":"...",fields...}`.
//!
//! Colours are `[r, g, b]` with 5/6/5-bit components (exactly the RGB565 value), enumerations are their
//! lower-case names, tile pixels are `runs: [[count, [r, g, b]], ...]`. Field order is fixed, so decoding
//! the bytes that a line encodes to gives back the same line, byte for byte.

use crate::message::{Hello, Message};
use crate::types::{AckStatus, ButtonAction, Caps, Font, PowerMode, Rgb565};
use crate::{encode_frame, rle, EncodeError, MessageError, Rle, MAX_PAYLOAD, MAX_WIRE};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

mod stream;
use std::prelude::rust_2021::*;
pub use stream::{
    decode_stream, encode_stream, fuzz_encode, Lines, StreamReport, MAX_INPUT, MAX_LINE,
};

/// A colour as `[r, g, b]` (5, 6 and 5 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub Rgb565);

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, g, b) = self.0.components();
        [r, g, b].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [r, g, b] = <[u8; 3]>::deserialize(d)?;
        if r > 31 || g > 63 || b > 31 {
            return Err(de::Error::custom(format_args!(
                "colour [{r},{g},{b}] out of range: RGB565 components are at most [31,63,31]"
            )));
        }
        Ok(Color(Rgb565::new(r, g, b)))
    }
}

/// Serde by name for the wire enumerations.
macro_rules! serde_by_name {
    ($($t:ty),*) => {$(
        impl Serialize for $crate::json::Named<$t> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.name())
            }
        }
        impl<'de> Deserialize<'de> for $crate::json::Named<$t> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::from_name(&s).map(Named).ok_or_else(|| de::Error::custom(format_args!(
                    "unknown {} `{s}`", stringify!($t))))
            }
        }
    )*};
}

/// A wire enumeration written as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<T>(pub T);
serde_by_name!(Font, PowerMode, ButtonAction, AckStatus);

/// One line: the frame's sequence number and its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonFrame {
    /// Sequence number.
    pub seq: u16,
    /// The message; its `type` field names the variant.
    #[serde(flatten)]
    pub msg: JsonMsg,
}

/// Owned mirror of [`Message`] for serde. Field meanings are those of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JsonMsg {
    Hello {
        version: u8,
        max_payload: u16,
        caps: u32,
        width: u16,
        height: u16,
    },
    Heartbeat {
        uptime_ms: u32,
    },
    /// `acked` is the acknowledged frame's sequence number (`seq` is this frame's own).
    Ack {
        acked: u16,
        status: Named<AckStatus>,
    },
    Flow {
        window: u8,
    },
    Clear {
        x: i16,
        y: i16,
        w: u16,
        h: u16,
        color: Color,
    },
    Text {
        x: i16,
        y: i16,
        font: Named<Font>,
        fg: Color,
        bg: Option<Color>,
        text: String,
    },
    Rect {
        x: i16,
        y: i16,
        w: u16,
        h: u16,
        radius: u8,
        stroke_width: u8,
        stroke: Color,
        fill: Option<Color>,
    },
    Line {
        x0: i16,
        y0: i16,
        x1: i16,
        y1: i16,
        width: u8,
        color: Color,
    },
    Point {
        x: i16,
        y: i16,
        radius: u8,
        color: Color,
    },
    Tile {
        x: u16,
        y: u16,
        w: u16,
        h: u16,
        runs: Vec<(u16, Color)>,
    },
    Present {
        frame: u16,
    },
    Brightness {
        level: u8,
    },
    Power {
        mode: Named<PowerMode>,
    },
    Button {
        id: u8,
        action: Named<ButtonAction>,
        t_ms: u32,
    },
    Imu {
        t_ms: u32,
        accel_mg: [i16; 3],
        gyro_cdps: [i16; 3],
    },
    Battery {
        millivolts: u16,
        percent: u8,
        charging: bool,
    },
    Thermal {
        sensor: u8,
        centi_celsius: i16,
    },
    DisplayAck {
        frame: u16,
    },
}

impl JsonMsg {
    /// Converts a decoded message.
    pub fn from_message(m: &Message<'_>) -> Self {
        use JsonMsg as J;
        let c = Color;
        match *m {
            Message::Hello(h) => J::Hello {
                version: h.version,
                max_payload: h.max_payload,
                caps: h.caps.0,
                width: h.width,
                height: h.height,
            },
            Message::Heartbeat { uptime_ms } => J::Heartbeat { uptime_ms },
            Message::Ack { seq, status } => J::Ack {
                acked: seq,
                status: Named(status),
            },
            Message::Flow { window } => J::Flow { window },
            Message::Clear { x, y, w, h, color } => J::Clear {
                x,
                y,
                w,
                h,
                color: c(color),
            },
            Message::Text {
                x,
                y,
                font,
                fg,
                bg,
                text,
            } => J::Text {
                x,
                y,
                font: Named(font),
                fg: c(fg),
                bg: bg.map(c),
                text: text.to_string(),
            },
            Message::Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            } => J::Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke: c(stroke),
                fill: fill.map(c),
            },
            Message::Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            } => J::Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color: c(color),
            },
            Message::Point {
                x,
                y,
                radius,
                color,
            } => J::Point {
                x,
                y,
                radius,
                color: c(color),
            },
            Message::Tile { x, y, w, h, rle } => J::Tile {
                x,
                y,
                w,
                h,
                runs: rle.runs().map(|(n, k)| (n, c(k))).collect(),
            },
            Message::Present { frame } => J::Present { frame },
            Message::Brightness { level } => J::Brightness { level },
            Message::Power { mode } => J::Power { mode: Named(mode) },
            Message::Button { id, action, t_ms } => J::Button {
                id,
                action: Named(action),
                t_ms,
            },
            Message::Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            } => J::Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            },
            Message::Battery {
                millivolts,
                percent,
                charging,
            } => J::Battery {
                millivolts,
                percent,
                charging,
            },
            Message::Thermal {
                sensor,
                centi_celsius,
            } => J::Thermal {
                sensor,
                centi_celsius,
            },
            Message::DisplayAck { frame } => J::DisplayAck { frame },
        }
    }

    /// Builds the wire message and hands it to `f`; tile runs are packed into `scratch` first because
    /// [`Message`] borrows them.
    pub fn with_message<R>(
        &self,
        scratch: &mut Vec<u8>,
        f: impl FnOnce(&Message<'_>) -> R,
    ) -> Result<R, JsonError> {
        use JsonMsg as J;
        let m = match self {
            J::Hello {
                version,
                max_payload,
                caps,
                width,
                height,
            } => Message::Hello(Hello {
                version: *version,
                max_payload: *max_payload,
                caps: Caps(*caps),
                width: *width,
                height: *height,
            }),
            J::Heartbeat { uptime_ms } => Message::Heartbeat {
                uptime_ms: *uptime_ms,
            },
            J::Ack { acked, status } => Message::Ack {
                seq: *acked,
                status: status.0,
            },
            J::Flow { window } => Message::Flow { window: *window },
            J::Clear { x, y, w, h, color } => Message::Clear {
                x: *x,
                y: *y,
                w: *w,
                h: *h,
                color: color.0,
            },
            J::Text {
                x,
                y,
                font,
                fg,
                bg,
                text,
            } => Message::Text {
                x: *x,
                y: *y,
                font: font.0,
                fg: fg.0,
                bg: bg.map(|b| b.0),
                text,
            },
            J::Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            } => Message::Rect {
                x: *x,
                y: *y,
                w: *w,
                h: *h,
                radius: *radius,
                stroke_width: *stroke_width,
                stroke: stroke.0,
                fill: fill.map(|f| f.0),
            },
            J::Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            } => Message::Line {
                x0: *x0,
                y0: *y0,
                x1: *x1,
                y1: *y1,
                width: *width,
                color: color.0,
            },
            J::Point {
                x,
                y,
                radius,
                color,
            } => Message::Point {
                x: *x,
                y: *y,
                radius: *radius,
                color: color.0,
            },
            J::Tile { x, y, w, h, runs } => {
                scratch.clear();
                for (n, c) in runs {
                    if !(1..=256).contains(n) {
                        return Err(JsonError::Invalid(format!(
                            "tile run of {n} pixels: runs hold 1..=256"
                        )));
                    }
                    let [lo, hi] = c.0 .0.to_le_bytes();
                    scratch.extend_from_slice(&[(n - 1) as u8, lo, hi]);
                }
                let rle = Rle::new(scratch, *w as u32 * *h as u32).map_err(JsonError::Message)?;
                Message::Tile {
                    x: *x,
                    y: *y,
                    w: *w,
                    h: *h,
                    rle,
                }
            }
            J::Present { frame } => Message::Present { frame: *frame },
            J::Brightness { level } => Message::Brightness { level: *level },
            J::Power { mode } => Message::Power { mode: mode.0 },
            J::Button { id, action, t_ms } => Message::Button {
                id: *id,
                action: action.0,
                t_ms: *t_ms,
            },
            J::Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            } => Message::Imu {
                t_ms: *t_ms,
                accel_mg: *accel_mg,
                gyro_cdps: *gyro_cdps,
            },
            J::Battery {
                millivolts,
                percent,
                charging,
            } => Message::Battery {
                millivolts: *millivolts,
                percent: *percent,
                charging: *charging,
            },
            J::Thermal {
                sensor,
                centi_celsius,
            } => Message::Thermal {
                sensor: *sensor,
                centi_celsius: *centi_celsius,
            },
            J::DisplayAck { frame } => Message::DisplayAck { frame: *frame },
        };
        Ok(f(&m))
    }
}

impl JsonFrame {
    /// Appends the frame's wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let mut scratch = Vec::with_capacity(MAX_PAYLOAD);
        let mut buf = [0u8; MAX_WIRE];
        let n = self
            .msg
            .with_message(&mut scratch, |m| encode_frame(self.seq, m, &mut buf))??;
        out.extend_from_slice(&buf[..n]);
        Ok(())
    }
}

/// Errors of the JSON conversion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not a valid line.
    #[error("invalid JSON frame: {0}")]
    Json(#[from] serde_json::Error),
    /// A value the wire cannot carry.
    #[error("{0}")]
    Invalid(String),
    /// The message does not fit on the wire.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The message is malformed.
    #[error("invalid message: {0}")]
    Message(MessageError),
    /// Reading or writing the stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Compresses pixels into a run list for [`JsonMsg::Tile`] (host-side helper).
pub fn runs_of(pixels: &[Rgb565]) -> Vec<(u16, Color)> {
    let mut bytes = vec![0u8; pixels.len() * rle::RUN_BYTES];
    let n = rle::encode(pixels.iter().copied(), &mut bytes).unwrap_or(0);
    bytes[..n]
        .chunks_exact(3)
        .map(|c| {
            (
                c[0] as u16 + 1,
                Color(Rgb565(u16::from_le_bytes([c[1], c[2]]))),
            )
        })
        .collect()
}
