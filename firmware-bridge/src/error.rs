//! Typed errors of the core. They carry no allocation so they work on the microcontroller too.

use core::fmt;

/// Why a message or frame could not be encoded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the encoding.
    BufferTooSmall,
    /// The payload would exceed [`crate::MAX_PAYLOAD`].
    PayloadTooLarge,
    /// A field cannot be represented on the wire (e.g. text longer than 255 bytes).
    FieldTooLong {
        /// Name of the field.
        field: &'static str,
    },
    /// A tile's runs do not cover exactly `w * h` pixels.
    TileSizeMismatch,
}

/// Why a frame read from the link was dropped.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes than the largest frame arrived without a delimiter; they were discarded up to the next 0x00.
    Overflow {
        /// Bytes discarded.
        discarded: usize,
    },
    /// The bytes between two delimiters are not valid COBS.
    Cobs {
        /// Encoded length of the block.
        len: usize,
    },
    /// The decoded frame is shorter than the header and CRC.
    TooShort {
        /// Decoded length.
        len: usize,
    },
    /// The CRC does not match: the frame was corrupted (or is garbage).
    Crc {
        /// CRC carried by the frame.
        received: u32,
        /// CRC computed over the frame.
        computed: u32,
    },
}

/// Why a frame with a valid CRC did not hold a valid message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// The message type byte is not known to this protocol version.
    UnknownKind(u8),
    /// The payload ended while reading `field`.
    Truncated {
        /// Field being read.
        field: &'static str,
    },
    /// Bytes were left after the last field.
    TrailingBytes {
        /// Number of extra bytes.
        extra: usize,
    },
    /// `field` holds a value the protocol does not define.
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u32,
    },
    /// Text is not UTF-8.
    InvalidUtf8,
    /// Tile runs are not a whole number of runs or do not cover `w * h` pixels.
    TileSizeMismatch,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall => write!(f, "output buffer too small"),
            EncodeError::PayloadTooLarge => write!(
                f,
                "payload exceeds the maximum of {} bytes",
                crate::MAX_PAYLOAD
            ),
            EncodeError::FieldTooLong { field } => {
                write!(f, "field `{field}` too long for the wire")
            }
            EncodeError::TileSizeMismatch => write!(f, "tile runs do not cover w*h pixels"),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Overflow { discarded } => {
                write!(f, "frame overflow: discarded {discarded} bytes")
            }
            FrameError::Cobs { len } => write!(f, "invalid COBS block of {len} bytes"),
            FrameError::TooShort { len } => {
                write!(f, "frame of {len} bytes is shorter than header + CRC")
            }
            FrameError::Crc { received, computed } => {
                write!(
                    f,
                    "CRC mismatch: frame says {received:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::UnknownKind(k) => write!(f, "unknown message type {k:#04x}"),
            MessageError::Truncated { field } => write!(f, "payload ends inside field `{field}`"),
            MessageError::TrailingBytes { extra } => {
                write!(f, "{extra} bytes after the last field")
            }
            MessageError::InvalidValue { field, value } => {
                write!(f, "field `{field}` has invalid value {value}")
            }
            MessageError::InvalidUtf8 => write!(f, "text is not UTF-8"),
            MessageError::TileSizeMismatch => write!(f, "tile runs do not cover w*h pixels"),
        }
    }
}

impl core::error::Error for EncodeError {}
impl core::error::Error for FrameError {}
impl core::error::Error for MessageError {}
