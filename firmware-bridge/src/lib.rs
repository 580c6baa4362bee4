//! `flint-bridge`: the wire protocol between flint (on the application processor) and the glasses'
//! microcontroller, which drives the display and reads buttons, IMU, battery and temperature.
//!
//! The core is `#![no_std]` without an allocator, so the firmware uses the same code as the host:
//! - [`Message`]: hello, drawing commands, tiles, display control, events, heartbeat ([`message`]).
//! - [`encode_frame`] / [`Decoder`]: COBS framing with a sequence number and CRC-32 ([`frame`]).
//! - Sizes are fixed at compile time: [`MAX_PAYLOAD`], [`MAX_FRAME`], [`MAX_WIRE`].
//!
//! With the `std` feature: the host transport over a serial device with ack, retry, flow control and
//! reconnection ([`host`]), the JSON line format ([`json`]) and a microcontroller simulator that renders
//! with embedded-graphics over a pty ([`sim`]). The normative description is docs/BRIDGE.md.
#![no_std]
#![warn(missing_docs)]

// The std side (host, JSON, simulator) uses std's macros and, per module, its prelude.
#[cfg(feature = "std")]
#[macro_use]
extern crate std;

pub mod cobs;
pub mod crc;
pub mod error;
pub mod frame;
pub mod message;
pub mod rle;
pub mod types;
mod wire;

#[cfg(feature = "std")]
/// Host transport (std).
pub mod host;
#[cfg(feature = "std")]
pub mod json;
#[cfg(feature = "std")]
/// Microcontroller simulator (std).
pub mod sim;

pub use error::{EncodeError, FrameError, MessageError};
pub use frame::{encode_frame, Decoder, Frame};
pub use message::{Hello, Message};
pub use rle::Rle;
pub use types::{AckStatus, ButtonAction, Caps, Font, PowerMode, Rgb565};

/// Protocol version implemented here.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest message payload, in bytes. Fixed for protocol version 1.
pub const MAX_PAYLOAD: usize = 1024;
/// Largest frame before COBS: header (3) + payload + CRC (4).
pub const MAX_FRAME: usize = frame::HEADER_LEN + MAX_PAYLOAD + frame::CRC_LEN;
/// Largest COBS block between two delimiters.
pub const MAX_COBS: usize = cobs::max_encoded_len(MAX_FRAME);
/// Largest frame on the wire, both delimiters included.
pub const MAX_WIRE: usize = MAX_COBS + 2;

/// Counts from [`fuzz_decode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames whose message parsed.
    pub messages: usize,
    /// Frames dropped at the framing layer (overflow, COBS, length, CRC).
    pub frame_errors: usize,
    /// Frames with a good CRC but a malformed message.
    pub message_errors: usize,
}

/// The fuzzing entry point (also run by the normal tests over the kept corpus): decodes arbitrary bytes,
/// and checks that every accepted message re-encodes to exactly the frame it came from.
///
/// # Panics
/// Only if that check fails, which would be a bug in this crate; never because of the input.
pub fn fuzz_decode(data: &[u8]) -> DecodeStats {
    let mut dec = Decoder::new();
    let mut st = DecodeStats::default();
    let mut out = [0u8; MAX_WIRE];
    dec.feed(data, |r| match r {
        Err(_) => st.frame_errors += 1,
        Ok(f) => match f.message() {
            Err(_) => st.message_errors += 1,
            Ok(m) => {
                st.messages += 1;
                let n =
                    encode_frame(f.seq, &m, &mut out).expect("a decoded message always re-encodes");
                let mut again = Decoder::new();
                let mut same = false;
                again.feed(&out[..n], |r2| same = matches!(r2, Ok(f2) if f2 == f));
                assert!(same, "re-encoded frame differs from the one decoded");
            }
        },
    });
    st
}
