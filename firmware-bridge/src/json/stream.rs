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

/// Longest JSON line [`encode_stream`] and [`Lines`] accept. The largest message ([`crate::MAX_PAYLOAD`] bytes,
/// each written as `\u00XX` at worst) fits several times over.
pub const MAX_LINE: usize = 64 * 1024;
/// Most bytes [`encode_stream`] and [`Lines`] read from one input.
pub const MAX_INPUT: u64 = 64 << 20;

/// The lines of a line-oriented input, each at most [`MAX_LINE`] bytes and all together at most [`MAX_INPUT`]: a
/// stream with no newline, or one without end, is an error naming the line, not an allocation without bound.
/// Yields `(line number from 1, line)`; an error names the line number.
#[derive(Debug)]
pub struct Lines<R> {
    input: R,
    line: u64,
    total: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Reads lines from `input`.
    pub fn new(input: R) -> Self {
        Lines {
            input,
            line: 0,
            total: 0,
            buf: Vec::new(),
        }
    }

    /// The next line without its line ending, or `None` at the end of the input.
    pub fn next_line(&mut self) -> Option<Result<(u64, String), JsonError>> {
        self.line += 1;
        let n = self.line;
        let bad = |msg: String| Some(Err(JsonError::Invalid(format!("line {n}: {msg}"))));
        self.buf.clear();
        if self.total >= MAX_INPUT {
            return match self.input.fill_buf() {
                Ok([]) => None,
                Ok(_) => bad(format!("the input exceeds {MAX_INPUT} bytes")),
                Err(e) => bad(e.to_string()),
            };
        }
        let room = (MAX_INPUT - self.total).min(MAX_LINE as u64 + 1);
        let mut limited = <&mut R as std::io::Read>::take(&mut self.input, room);
        let got = match limited.read_until(b'\n', &mut self.buf) {
            Ok(0) => return None,
            Ok(k) => k,
            Err(e) => return bad(e.to_string()),
        };
        self.total += got as u64;
        let ended = self.buf.last() == Some(&b'\n');
        if ended {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if self.buf.len() > MAX_LINE {
            return bad(format!("longer than {MAX_LINE} bytes"));
        }
        if !ended && self.total >= MAX_INPUT {
            return bad(format!("the input exceeds {MAX_INPUT} bytes"));
        }
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Some(Ok((n, s.to_string()))),
            Err(e) => bad(format!("not UTF-8: {e}")),
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(u64, String), JsonError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_line()
    }
}

/// Encodes JSON lines (blank lines skipped) to wire bytes; returns the number of frames. Stops at the first
/// bad line, naming its line number. Lines are bounded as [`Lines`] says.
pub fn encode_stream(input: impl BufRead, mut out: impl Write) -> Result<u64, JsonError> {
    let mut n = 0;
    let mut bytes = Vec::new();
    for r in Lines::new(input) {
        let (i, line) = r?;
        if line.trim().is_empty() {
            continue;
        }
        let fr: JsonFrame = serde_json::from_str(&line)
            .map_err(|e| JsonError::Invalid(format!("line {i}: {e}")))?;
        bytes.clear();
        fr.encode_into(&mut bytes)
            .map_err(|e| JsonError::Invalid(format!("line {i}: {e}")))?;
        out.write_all(&bytes)?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// The fuzzing entry point of the JSON encoder (also run by the normal tests over the kept corpus): encodes
/// arbitrary bytes as JSON lines; when they are accepted, decodes the wire bytes again and checks that every frame
/// comes back. Returns the number of frames encoded, or `None` for a refused input.
///
/// # Panics
/// Only if that check fails, which would be a bug in this crate; never because of the input.
pub fn fuzz_encode(data: &[u8]) -> Option<u64> {
    let mut wire = Vec::new();
    let n = encode_stream(data, &mut wire).ok()?;
    let mut lines = Vec::new();
    let rep = decode_stream(&wire[..], &mut lines, |_, _| {}).expect("decoding from memory");
    assert_eq!(
        (rep.frames, rep.errors()),
        (n, 0),
        "encoded frames do not decode"
    );
    Some(n)
}
