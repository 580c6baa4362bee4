//! Frames: `seq (u16 LE) | type (u8) | payload | CRC-32 (u32 LE)`, COBS-encoded and sent between two 0x00
//! delimiters. The leading delimiter is what lets a receiver recover the frame right after line noise:
//! whatever garbage came before is cut off by it and fails its CRC on its own.

use crate::cobs;
use crate::crc::crc32;
use crate::error::{EncodeError, FrameError, MessageError};
use crate::message::Message;
use crate::{MAX_COBS, MAX_FRAME, MAX_PAYLOAD, MAX_WIRE};

/// Bytes before the payload: sequence number and type.
pub const HEADER_LEN: usize = 3;
/// Bytes after the payload: the CRC.
pub const CRC_LEN: usize = 4;

/// Encodes `msg` as one complete wire frame (both delimiters included) into `out`; returns its length.
/// `out` of [`MAX_WIRE`] bytes always suffices.
pub fn encode_frame(seq: u16, msg: &Message<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut raw = [0u8; MAX_FRAME];
    raw[..2].copy_from_slice(&seq.to_le_bytes());
    raw[2] = msg.kind();
    let plen = msg
        .encode_payload(&mut raw[HEADER_LEN..HEADER_LEN + MAX_PAYLOAD])
        .map_err(|e| {
            if e == EncodeError::BufferTooSmall {
                EncodeError::PayloadTooLarge
            } else {
                e
            }
        })?;
    let body = HEADER_LEN + plen;
    let crc = crc32(&raw[..body]);
    raw[body..body + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let raw = &raw[..body + CRC_LEN];
    if out.len() < cobs::max_encoded_len(raw.len()) + 2 {
        return Err(EncodeError::BufferTooSmall);
    }
    out[0] = 0;
    let n = cobs::encode(raw, &mut out[1..]).map_err(|_| EncodeError::BufferTooSmall)?;
    out[1 + n] = 0;
    Ok(n + 2)
}

/// A frame that passed its CRC. Its payload borrows the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Sequence number chosen by the sender.
    pub seq: u16,
    /// Message type byte.
    pub kind: u8,
    /// Message payload.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses the payload as a message.
    pub fn message(&self) -> Result<Message<'a>, MessageError> {
        Message::parse(self.kind, self.payload)
    }
}

/// Streaming frame decoder with a fixed buffer ([`MAX_COBS`] bytes, no allocation).
///
/// Feed it bytes in any chunking; it yields a result at each delimiter that closes a non-empty block.
/// It never panics and resynchronises on the next 0x00 after any error.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: [u8; MAX_COBS],
    len: usize,
    /// Bytes thrown away since the buffer overflowed; 0 when not overflowing.
    discarding: usize,
    /// The previous call returned a frame borrowing `buf`; clear it on the next byte.
    reset: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; MAX_COBS],
            len: 0,
            discarding: 0,
            reset: false,
        }
    }

    /// Bytes buffered for the frame in progress.
    pub fn pending(&self) -> usize {
        if self.reset {
            0
        } else {
            self.len + self.discarding
        }
    }

    /// Takes one byte. Returns `Some` when it was a delimiter closing a non-empty block.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame<'_>, FrameError>> {
        if self.reset {
            self.len = 0;
            self.reset = false;
        }
        if byte != 0 {
            if self.discarding > 0 {
                self.discarding = self.discarding.saturating_add(1);
            } else if self.len == MAX_COBS {
                self.discarding = self.len + 1;
                self.len = 0;
            } else {
                self.buf[self.len] = byte;
                self.len += 1;
            }
            return None;
        }
        if self.discarding > 0 {
            let discarded = self.discarding;
            self.discarding = 0;
            return Some(Err(FrameError::Overflow { discarded }));
        }
        if self.len == 0 {
            return None; // back-to-back delimiters: nothing in between
        }
        self.reset = true;
        let enc_len = self.len;
        let Ok(n) = cobs::decode_in_place(&mut self.buf[..enc_len]) else {
            return Some(Err(FrameError::Cobs { len: enc_len }));
        };
        if n < HEADER_LEN + CRC_LEN {
            return Some(Err(FrameError::TooShort { len: n }));
        }
        let body = n - CRC_LEN;
        let b = &self.buf[..n];
        let received = u32::from_le_bytes([b[body], b[body + 1], b[body + 2], b[body + 3]]);
        let computed = crc32(&b[..body]);
        if received != computed {
            return Some(Err(FrameError::Crc { received, computed }));
        }
        Some(Ok(Frame {
            seq: u16::from_le_bytes([b[0], b[1]]),
            kind: b[2],
            payload: &b[HEADER_LEN..body],
        }))
    }

    /// Pushes every byte of `data`, calling `on` for each result.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Result<Frame<'_>, FrameError>)) {
        for &b in data {
            if let Some(r) = self.push(b) {
                on(r);
            }
        }
    }
}

const _: () = assert!(MAX_WIRE == MAX_COBS + 2);
