//! The messages and their payload encodings. docs/BRIDGE.md is the normative description; the type byte of
//! each variant is its `KIND_*` constant and never changes once released.

use crate::error::{EncodeError, MessageError};
use crate::rle::Rle;
use crate::types::{AckStatus, ButtonAction, Caps, Font, PowerMode, Rgb565};
use crate::wire::{Reader, Writer};

/// Hello, sent first by both sides: version and capability negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Highest protocol version the sender speaks.
    pub version: u8,
    /// Largest payload the sender accepts (at most [`crate::MAX_PAYLOAD`]).
    pub max_payload: u16,
    /// What the sender can do.
    pub caps: Caps,
    /// Display width in pixels (0 from the host).
    pub width: u16,
    /// Display height in pixels (0 from the host).
    pub height: u16,
}

/// One message. Borrowed variants (`Text`, `Tile`) point into the received frame, so decoding never copies
/// or allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each field is described in docs/BRIDGE.md, section "Messages"
pub enum Message<'a> {
    Hello(Hello),
    Heartbeat {
        uptime_ms: u32,
    },
    Ack {
        seq: u16,
        status: AckStatus,
    },
    Flow {
        window: u8,
    },
    Clear {
        x: i16,
        y: i16,
        w: u16,
        h: u16,
        color: Rgb565,
    },
    Text {
        x: i16,
        y: i16,
        font: Font,
        fg: Rgb565,
        bg: Option<Rgb565>,
        text: &'a str,
    },
    Rect {
        x: i16,
        y: i16,
        w: u16,
        h: u16,
        radius: u8,
        stroke_width: u8,
        stroke: Rgb565,
        fill: Option<Rgb565>,
    },
    Line {
        x0: i16,
        y0: i16,
        x1: i16,
        y1: i16,
        width: u8,
        color: Rgb565,
    },
    Point {
        x: i16,
        y: i16,
        radius: u8,
        color: Rgb565,
    },
    Tile {
        x: u16,
        y: u16,
        w: u16,
        h: u16,
        rle: Rle<'a>,
    },
    Present {
        frame: u16,
    },
    Brightness {
        level: u8,
    },
    Power {
        mode: PowerMode,
    },
    Button {
        id: u8,
        action: ButtonAction,
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

/// Type bytes. Session: 0x0_, drawing: 0x1_, display control: 0x2_, events from the microcontroller: 0x4_.
pub mod kind {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0x01;
    pub const HEARTBEAT: u8 = 0x02;
    pub const ACK: u8 = 0x03;
    pub const FLOW: u8 = 0x04;
    pub const CLEAR: u8 = 0x10;
    pub const TEXT: u8 = 0x11;
    pub const RECT: u8 = 0x12;
    pub const LINE: u8 = 0x13;
    pub const POINT: u8 = 0x14;
    pub const TILE: u8 = 0x15;
    pub const PRESENT: u8 = 0x16;
    pub const BRIGHTNESS: u8 = 0x20;
    pub const POWER: u8 = 0x21;
    pub const BUTTON: u8 = 0x40;
    pub const IMU: u8 = 0x41;
    pub const BATTERY: u8 = 0x42;
    pub const THERMAL: u8 = 0x43;
    pub const DISPLAY_ACK: u8 = 0x44;
}

fn opt_color(w: &mut Writer<'_>, c: Option<Rgb565>) -> Result<(), EncodeError> {
    match c {
        None => w.u8(0),
        Some(c) => {
            w.u8(1)?;
            w.u16(c.0)
        }
    }
}

fn read_opt_color(r: &mut Reader<'_>, field: &'static str) -> Result<Option<Rgb565>, MessageError> {
    match r.u8(field)? {
        0 => Ok(None),
        1 => Ok(Some(Rgb565(r.u16(field)?))),
        v => Err(MessageError::InvalidValue {
            field,
            value: v as u32,
        }),
    }
}

fn read_bool(r: &mut Reader<'_>, field: &'static str) -> Result<bool, MessageError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(MessageError::InvalidValue {
            field,
            value: v as u32,
        }),
    }
}

impl<'a> Message<'a> {
    /// The type byte.
    pub fn kind(&self) -> u8 {
        use Message::*;
        match self {
            Hello(_) => kind::HELLO,
            Heartbeat { .. } => kind::HEARTBEAT,
            Ack { .. } => kind::ACK,
            Flow { .. } => kind::FLOW,
            Clear { .. } => kind::CLEAR,
            Text { .. } => kind::TEXT,
            Rect { .. } => kind::RECT,
            Line { .. } => kind::LINE,
            Point { .. } => kind::POINT,
            Tile { .. } => kind::TILE,
            Present { .. } => kind::PRESENT,
            Brightness { .. } => kind::BRIGHTNESS,
            Power { .. } => kind::POWER,
            Button { .. } => kind::BUTTON,
            Imu { .. } => kind::IMU,
            Battery { .. } => kind::BATTERY,
            Thermal { .. } => kind::THERMAL,
            DisplayAck { .. } => kind::DISPLAY_ACK,
        }
    }

    /// Whether the host expects an [`Message::Ack`] for this message: every host-to-microcontroller
    /// message except hello and heartbeat, which are answered in kind.
    pub fn needs_ack(&self) -> bool {
        matches!(self.kind(), 0x10..=0x2F)
    }

    /// A copy with no borrowed data, for the variants that have none (all events do).
    pub fn to_static(&self) -> Option<Message<'static>> {
        use Message::*;
        Some(match *self {
            Text { .. } | Tile { .. } => return None,
            Hello(h) => Hello(h),
            Heartbeat { uptime_ms } => Heartbeat { uptime_ms },
            Ack { seq, status } => Ack { seq, status },
            Flow { window } => Flow { window },
            Clear { x, y, w, h, color } => Clear { x, y, w, h, color },
            Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            } => Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            },
            Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            } => Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            },
            Point {
                x,
                y,
                radius,
                color,
            } => Point {
                x,
                y,
                radius,
                color,
            },
            Present { frame } => Present { frame },
            Brightness { level } => Brightness { level },
            Power { mode } => Power { mode },
            Button { id, action, t_ms } => Button { id, action, t_ms },
            Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            } => Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            },
            Battery {
                millivolts,
                percent,
                charging,
            } => Battery {
                millivolts,
                percent,
                charging,
            },
            Thermal {
                sensor,
                centi_celsius,
            } => Thermal {
                sensor,
                centi_celsius,
            },
            DisplayAck { frame } => DisplayAck { frame },
        })
    }

    /// Writes the payload (without type byte) into `out`; returns its length.
    pub fn encode_payload(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        self.write(&mut w)?;
        Ok(w.len())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        use Message::*;
        match *self {
            Hello(h) => {
                w.u8(h.version)?;
                w.u16(h.max_payload)?;
                w.u32(h.caps.0)?;
                w.u16(h.width)?;
                w.u16(h.height)
            }
            Heartbeat { uptime_ms } => w.u32(uptime_ms),
            Ack { seq, status } => {
                w.u16(seq)?;
                w.u8(status as u8)
            }
            Flow { window } => w.u8(window),
            Clear {
                x,
                y,
                w: width,
                h,
                color,
            } => {
                w.i16(x)?;
                w.i16(y)?;
                w.u16(width)?;
                w.u16(h)?;
                w.u16(color.0)
            }
            Text {
                x,
                y,
                font,
                fg,
                bg,
                text,
            } => {
                w.i16(x)?;
                w.i16(y)?;
                w.u8(font as u8)?;
                w.u16(fg.0)?;
                opt_color(w, bg)?;
                let len = u8::try_from(text.len())
                    .map_err(|_| EncodeError::FieldTooLong { field: "text" })?;
                w.u8(len)?;
                w.bytes(text.as_bytes())
            }
            Rect {
                x,
                y,
                w: width,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            } => {
                w.i16(x)?;
                w.i16(y)?;
                w.u16(width)?;
                w.u16(h)?;
                w.u8(radius)?;
                w.u8(stroke_width)?;
                w.u16(stroke.0)?;
                opt_color(w, fill)
            }
            Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            } => {
                for v in [x0, y0, x1, y1] {
                    w.i16(v)?;
                }
                w.u8(width)?;
                w.u16(color.0)
            }
            Point {
                x,
                y,
                radius,
                color,
            } => {
                w.i16(x)?;
                w.i16(y)?;
                w.u8(radius)?;
                w.u16(color.0)
            }
            Tile {
                x,
                y,
                w: width,
                h,
                rle,
            } => {
                if rle.runs().map(|(n, _)| n as u32).sum::<u32>() != width as u32 * h as u32 {
                    return Err(EncodeError::TileSizeMismatch);
                }
                for v in [x, y, width, h] {
                    w.u16(v)?;
                }
                w.bytes(rle.as_bytes())
            }
            Present { frame } | DisplayAck { frame } => w.u16(frame),
            Brightness { level } => w.u8(level),
            Power { mode } => w.u8(mode as u8),
            Button { id, action, t_ms } => {
                w.u8(id)?;
                w.u8(action as u8)?;
                w.u32(t_ms)
            }
            Imu {
                t_ms,
                accel_mg,
                gyro_cdps,
            } => {
                w.u32(t_ms)?;
                for v in accel_mg.into_iter().chain(gyro_cdps) {
                    w.i16(v)?;
                }
                Ok(())
            }
            Battery {
                millivolts,
                percent,
                charging,
            } => {
                w.u16(millivolts)?;
                w.u8(percent)?;
                w.u8(charging as u8)
            }
            Thermal {
                sensor,
                centi_celsius,
            } => {
                w.u8(sensor)?;
                w.i16(centi_celsius)
            }
        }
    }

    /// Parses a payload of type `kind`. Strict: unknown values and trailing bytes are errors, so that every
    /// accepted payload re-encodes to the same bytes.
    pub fn parse(kind: u8, payload: &'a [u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(payload);
        let m = Self::read(kind, &mut r)?;
        r.finish()?;
        Ok(m)
    }

    fn read(k: u8, r: &mut Reader<'a>) -> Result<Self, MessageError> {
        use Message::*;
        Ok(match k {
            kind::HELLO => Hello(self::Hello {
                version: r.u8("version")?,
                max_payload: r.u16("max_payload")?,
                caps: Caps(r.u32("caps")?),
                width: r.u16("width")?,
                height: r.u16("height")?,
            }),
            kind::HEARTBEAT => Heartbeat {
                uptime_ms: r.u32("uptime_ms")?,
            },
            kind::ACK => Ack {
                seq: r.u16("seq")?,
                status: AckStatus::from_u8(r.u8("status")?)?,
            },
            kind::FLOW => Flow {
                window: r.u8("window")?,
            },
            kind::CLEAR => Clear {
                x: r.i16("x")?,
                y: r.i16("y")?,
                w: r.u16("w")?,
                h: r.u16("h")?,
                color: Rgb565(r.u16("color")?),
            },
            kind::TEXT => {
                let (x, y) = (r.i16("x")?, r.i16("y")?);
                let font = Font::from_u8(r.u8("font")?)?;
                let fg = Rgb565(r.u16("fg")?);
                let bg = read_opt_color(r, "bg")?;
                let len = r.u8("text_len")? as usize;
                let text = core::str::from_utf8(r.bytes(len, "text")?)
                    .map_err(|_| MessageError::InvalidUtf8)?;
                Text {
                    x,
                    y,
                    font,
                    fg,
                    bg,
                    text,
                }
            }
            kind::RECT => Rect {
                x: r.i16("x")?,
                y: r.i16("y")?,
                w: r.u16("w")?,
                h: r.u16("h")?,
                radius: r.u8("radius")?,
                stroke_width: r.u8("stroke_width")?,
                stroke: Rgb565(r.u16("stroke")?),
                fill: read_opt_color(r, "fill")?,
            },
            kind::LINE => Line {
                x0: r.i16("x0")?,
                y0: r.i16("y0")?,
                x1: r.i16("x1")?,
                y1: r.i16("y1")?,
                width: r.u8("width")?,
                color: Rgb565(r.u16("color")?),
            },
            kind::POINT => Point {
                x: r.i16("x")?,
                y: r.i16("y")?,
                radius: r.u8("radius")?,
                color: Rgb565(r.u16("color")?),
            },
            kind::TILE => {
                let (x, y, w, h) = (r.u16("x")?, r.u16("y")?, r.u16("w")?, r.u16("h")?);
                let rle = Rle::new(r.rest(), w as u32 * h as u32)?;
                Tile { x, y, w, h, rle }
            }
            kind::PRESENT => Present {
                frame: r.u16("frame")?,
            },
            kind::BRIGHTNESS => Brightness {
                level: r.u8("level")?,
            },
            kind::POWER => Power {
                mode: PowerMode::from_u8(r.u8("mode")?)?,
            },
            kind::BUTTON => Button {
                id: r.u8("id")?,
                action: ButtonAction::from_u8(r.u8("action")?)?,
                t_ms: r.u32("t_ms")?,
            },
            kind::IMU => {
                let t_ms = r.u32("t_ms")?;
                let mut a = [0i16; 6];
                for v in a.iter_mut() {
                    *v = r.i16("imu_axis")?;
                }
                Imu {
                    t_ms,
                    accel_mg: [a[0], a[1], a[2]],
                    gyro_cdps: [a[3], a[4], a[5]],
                }
            }
            kind::BATTERY => Battery {
                millivolts: r.u16("millivolts")?,
                percent: r.u8("percent")?,
                charging: read_bool(r, "charging")?,
            },
            kind::THERMAL => Thermal {
                sensor: r.u8("sensor")?,
                centi_celsius: r.i16("centi_celsius")?,
            },
            kind::DISPLAY_ACK => DisplayAck {
                frame: r.u16("frame")?,
            },
            other => return Err(MessageError::UnknownKind(other)),
        })
    }
}
