//! Little-endian cursor helpers shared by every message. All multi-byte integers on the wire are
//! little-endian; there is no padding.

use crate::error::{EncodeError, MessageError};

/// Writes fields into a caller-provided buffer, failing instead of panicking when it is full.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    pub(crate) fn len(&self) -> usize {
        self.pos
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .pos
            .checked_add(b.len())
            .ok_or(EncodeError::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn i16(&mut self, v: i16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
}

/// Reads fields from a received payload; every read names the field it was reading so errors say what
/// was missing.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub(crate) fn bytes(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], MessageError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(MessageError::Truncated { field })?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(MessageError::Truncated { field })?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, MessageError> {
        Ok(self.bytes(1, field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, MessageError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, MessageError> {
        Ok(self.u16(field)? as i16)
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, MessageError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// The rest of the payload.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
    /// Fails if bytes are left over: a payload longer than its message is malformed, not padded.
    pub(crate) fn finish(&self) -> Result<(), MessageError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            extra => Err(MessageError::TrailingBytes { extra }),
        }
    }
}
