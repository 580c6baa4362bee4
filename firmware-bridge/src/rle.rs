//! Run-length compression of tile pixels.
//!
//! A tile's pixels, in row-major order, are a sequence of runs. Each run is 3 bytes: `n` (u8) then the
//! colour (RGB565, u16 LE); it stands for `n + 1` pixels of that colour (1..=256). Overlays are mostly flat
//! colour, so a 32×32 tile of one colour is 4 runs = 12 bytes instead of 2048.

use crate::error::{EncodeError, MessageError};
use crate::types::Rgb565;

/// Bytes per run.
pub const RUN_BYTES: usize = 3;

/// A validated run list: a whole number of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rle<'a>(&'a [u8]);

impl<'a> Rle<'a> {
    /// Validates that `data` is a whole number of runs covering exactly `pixels` pixels.
    pub fn new(data: &'a [u8], pixels: u32) -> Result<Self, MessageError> {
        if !data.len().is_multiple_of(RUN_BYTES) {
            return Err(MessageError::TileSizeMismatch);
        }
        let rle = Rle(data);
        let total: u32 = rle.runs().map(|(n, _)| n as u32).sum();
        if total != pixels {
            return Err(MessageError::TileSizeMismatch);
        }
        Ok(rle)
    }
    /// The encoded runs.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// `(pixel count 1..=256, colour)` for each run.
    pub fn runs(&self) -> impl Iterator<Item = (u16, Rgb565)> + 'a {
        self.0
            .chunks_exact(RUN_BYTES)
            .map(|c| (c[0] as u16 + 1, Rgb565(u16::from_le_bytes([c[1], c[2]]))))
    }
    /// Every pixel, row-major.
    pub fn pixels(&self) -> impl Iterator<Item = Rgb565> + 'a {
        self.runs()
            .flat_map(|(n, c)| core::iter::repeat_n(c, n as usize))
    }
}

/// Compresses `pixels` into `out`; returns the number of bytes written.
pub fn encode(
    pixels: impl IntoIterator<Item = Rgb565>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut o = 0;
    let mut cur: Option<(Rgb565, u16)> = None;
    let mut flush = |c: Rgb565, n: u16, o: &mut usize| -> Result<(), EncodeError> {
        let dst = out
            .get_mut(*o..*o + RUN_BYTES)
            .ok_or(EncodeError::BufferTooSmall)?;
        let [lo, hi] = c.0.to_le_bytes();
        dst.copy_from_slice(&[(n - 1) as u8, lo, hi]);
        *o += RUN_BYTES;
        Ok(())
    };
    for p in pixels {
        cur = match cur {
            Some((c, n)) if c == p && n < 256 => Some((c, n + 1)),
            Some((c, n)) => {
                flush(c, n, &mut o)?;
                Some((p, 1))
            }
            None => Some((p, 1)),
        };
    }
    if let Some((c, n)) = cur {
        flush(c, n, &mut o)?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_split_at_256() {
        let mut out = [0u8; 32];
        let n = encode(core::iter::repeat_n(Rgb565(0xF800), 300), &mut out).unwrap();
        assert_eq!(&out[..n], &[255, 0x00, 0xF8, 43, 0x00, 0xF8]);
        let rle = Rle::new(&out[..n], 300).unwrap();
        assert_eq!(rle.pixels().count(), 300);
        assert_eq!(
            Rle::new(&out[..n], 299),
            Err(MessageError::TileSizeMismatch)
        );
    }
}
