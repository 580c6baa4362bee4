//! Small value types carried inside messages.

use crate::error::MessageError;

/// A 16-bit colour: 5 bits red, 6 bits green, 5 bits blue, packed `rrrrrggg gggbbbbb` and sent little-endian.
/// It is the display's native format, so the microcontroller never converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rgb565(pub u16);

impl Rgb565 {
    /// Packs 5-bit red, 6-bit green and 5-bit blue; higher bits are masked off.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Rgb565(((r as u16 & 0x1F) << 11) | ((g as u16 & 0x3F) << 5) | (b as u16 & 0x1F))
    }
    /// The 5/6/5-bit components `(r, g, b)`.
    pub const fn components(self) -> (u8, u8, u8) {
        (
            (self.0 >> 11) as u8,
            ((self.0 >> 5) & 0x3F) as u8,
            (self.0 & 0x1F) as u8,
        )
    }
    /// Expands to 8 bits per channel by bit replication (0x1F -> 0xFF, 0 -> 0).
    pub const fn to_rgb888(self) -> [u8; 3] {
        let (r, g, b) = self.components();
        [
            (r << 3) | (r >> 2),
            (g << 2) | (g >> 4),
            (b << 3) | (b >> 2),
        ]
    }
    /// Black.
    pub const BLACK: Rgb565 = Rgb565(0);
    /// White.
    pub const WHITE: Rgb565 = Rgb565(0xFFFF);
}

/// Declares a `#[repr(u8)]` enum whose wire values never change once released, with a checked conversion.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($(#[$vm:meta])* $v:ident = $n:literal, $s:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v = $n,)* }
        impl $name {
            /// Parses the wire value, rejecting values this protocol version does not define.
            pub fn from_u8(v: u8) -> Result<Self, MessageError> {
                match v { $($n => Ok($name::$v),)* _ => Err(MessageError::InvalidValue { field: $field, value: v as u32 }) }
            }
            /// Stable lower-case name, used by the JSON line format.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            /// Inverse of [`Self::name`].
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// Bitmap fonts the microcontroller has built in (embedded-graphics' ASCII mono fonts).
    Font, "font" {
        /// 6×10 pixels.
        Small = 0, "6x10";
        /// 8×13 pixels.
        Medium = 1, "8x13";
        /// 10×20 pixels.
        Large = 2, "10x20";
    }
);

wire_enum!(
    /// Display power state.
    PowerMode, "mode" {
        /// Display and sensors off; the microcontroller only listens for a new power command.
        Off = 0, "off";
        /// Display on.
        On = 1, "on";
        /// Display off, sensors and buttons still reporting.
        Standby = 2, "standby";
    }
);

wire_enum!(
    /// What happened to a button.
    ButtonAction, "action" {
        /// Released.
        Release = 0, "release";
        /// Pressed.
        Press = 1, "press";
        /// Held longer than the firmware's long-press time.
        LongPress = 2, "long_press";
    }
);

wire_enum!(
    /// The microcontroller's verdict on a host frame.
    AckStatus, "status" {
        /// Accepted (and for draw commands, drawn into the back buffer).
        Ok = 0, "ok";
        /// CRC was fine but the message was malformed; retrying will not help.
        Malformed = 1, "malformed";
        /// Valid, but the microcontroller does not implement it (see the capabilities).
        Unsupported = 2, "unsupported";
        /// No room right now; resend after the next flow-control message.
        Busy = 3, "busy";
    }
);

/// Capability bits exchanged in hello; the session uses the intersection of both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u32);

impl Caps {
    /// Text with the built-in fonts.
    pub const TEXT: u32 = 1 << 0;
    /// Rectangles, boxes, lines, points, clear.
    pub const SHAPES: u32 = 1 << 1;
    /// Run-length compressed tiles.
    pub const TILES: u32 = 1 << 2;
    /// Brightness and power commands.
    pub const POWER: u32 = 1 << 3;
    /// Button events.
    pub const BUTTONS: u32 = 1 << 4;
    /// IMU samples.
    pub const IMU: u32 = 1 << 5;
    /// Battery reports.
    pub const BATTERY: u32 = 1 << 6;
    /// Thermal reports.
    pub const THERMAL: u32 = 1 << 7;
    /// Everything protocol version 1 defines.
    pub const ALL_V1: Caps = Caps(0xFF);

    /// Whether every bit of `bits` is set.
    pub const fn has(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
    /// Capabilities both sides have.
    pub const fn intersect(self, other: Caps) -> Caps {
        Caps(self.0 & other.0)
    }
}
