//! Whole streams: bytes to JSON lines and back, as `flint bridge decode` / `encode` do.

use super::{JsonError, JsonFrame, JsonMsg};
use crate::{Decoder, FrameError};
use std::io::{BufRead, Write};
use std::prelude::rust_2021::*;

/// What [`decode_stream`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Bytes read.
    pub bytes: u64,
    /// Frames printed.
    pub frames: u64,
    /// Blocks dropped for overflow.
    pub overflow: u64,
    /// Blocks dropped as invalid COBS or too short.
    pub malformed: u64,
    /// Blocks dropped for a CRC mismatch.
    pub crc: u64,
    /// Frames with a good CRC but an invalid message.
    pub message: u64,
}

impl StreamReport {
    /// All errors.
    pub fn errors(&self) -> u64 {
        self.overflow + self.malformed + self.crc + self.message
    }
}

/// Decodes a byte stream to JSON lines until the input ends. Bad frames are counted, not fatal; only
/// I/O errors stop it. `on_error` sees each dropped frame with the stream offset of its closing delimiter.
pub fn decode_stream(
    mut input: impl std::io::Read,
    mut out: impl Write,
    mut on_error: impl FnMut(u64, &str),
) -> Result<StreamReport, JsonError> {
    let mut dec = Decoder::new();
    let mut rep = StreamReport::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        for &b in &buf[..n] {
            let at = rep.bytes;
            rep.bytes += 1;
            let Some(r) = dec.push(b) else { continue };
            match r {
                Ok(f) => match f.message() {
                    Ok(m) => {
                        let line = serde_json::to_string(&JsonFrame {
                            seq: f.seq,
                            msg: JsonMsg::from_message(&m),
                        })?;
                        writeln!(out, "{line}")?;
                        rep.frames += 1;
                    }
                    Err(e) => {
                        rep.message += 1;
                        on_error(
                            at,
                            &format!("frame seq {} type {:#04x}: {e}", f.seq, f.kind),
                        );
                    }
                },
                Err(e) => {
                    match e {
                        FrameError::Overflow { .. } => rep.overflow += 1,
                        FrameError::Crc { .. } => rep.crc += 1,
                        _ => rep.malformed += 1,
                    }
                    on_error(at, &e.to_string());
                }
            }
        }
    }
    out.flush()?;
    Ok(rep)
}

/// Encodes JSON lines (blank lines skipped) to wire bytes; returns the number of frames. Stops at the first
/// bad line, naming its line number.
pub fn encode_stream(input: impl BufRead, mut out: impl Write) -> Result<u64, JsonError> {
    let mut n = 0;
    let mut bytes = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let fr: JsonFrame = serde_json::from_str(&line)
            .map_err(|e| JsonError::Invalid(format!("line {}: {e}", i + 1)))?;
        bytes.clear();
        fr.encode_into(&mut bytes)
            .map_err(|e| JsonError::Invalid(format!("line {}: {e}", i + 1)))?;
        out.write_all(&bytes)?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
