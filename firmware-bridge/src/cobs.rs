//! Consistent Overhead Byte Stuffing: removes every 0x00 from a block so that 0x00 can delimit frames.
//!
//! The encoding of `n` bytes is at most `n + n / 254 + 1` bytes and never contains 0x00.

/// Largest COBS encoding of `n` input bytes.
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// COBS-encoding failed because `out` was too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputTooSmall;

/// COBS-decoding failed: the block holds a zero byte, or a code byte points past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCobs;

/// Encodes `input` into `out`; returns the encoded length.
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, OutputTooSmall> {
    if out.len() < max_encoded_len(input.len()) {
        return Err(OutputTooSmall);
    }
    let mut code_at = 0; // where the current block's code byte goes
    let mut o = 1;
    let mut code = 1u8;
    for &b in input {
        if b == 0 {
            out[code_at] = code;
            code_at = o;
            o += 1;
            code = 1;
        } else {
            out[o] = b;
            o += 1;
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = o;
                o += 1;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    Ok(o)
}

/// Decodes a COBS block (without its 0x00 delimiter) in place; returns the decoded length.
///
/// Decoding in place is possible because the output never overtakes the input.
pub fn decode_in_place(buf: &mut [u8]) -> Result<usize, InvalidCobs> {
    let mut i = 0;
    let mut o = 0;
    while i < buf.len() {
        let code = buf[i] as usize;
        if code == 0 || i + code > buf.len() {
            return Err(InvalidCobs);
        }
        i += 1;
        for _ in 1..code {
            if buf[i] == 0 {
                return Err(InvalidCobs);
            }
            buf[o] = buf[i];
            o += 1;
            i += 1;
        }
        // A block shorter than 255 stands for a zero, except at the very end of the input.
        if code != 0xFF && i < buf.len() {
            buf[o] = 0;
            o += 1;
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &[u8]) {
        let mut enc = [0u8; 1200];
        let n = encode(input, &mut enc).unwrap();
        assert!(!enc[..n].contains(&0));
        assert!(n <= max_encoded_len(input.len()));
        let d = decode_in_place(&mut enc[..n]).unwrap();
        assert_eq!(&enc[..d], input);
    }

    #[test]
    fn known_vectors() {
        let mut out = [0u8; 16];
        let n = encode(&[0x11, 0x22, 0x00, 0x33], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x03, 0x11, 0x22, 0x02, 0x33]);
        let n = encode(&[0x00], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x01, 0x01]);
        let n = encode(&[], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x01]);
    }

    #[test]
    fn roundtrips_edge_lengths() {
        let mut v = [0u8; 1000];
        for (i, b) in v.iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
        for n in [0, 1, 253, 254, 255, 256, 508, 509, 510, 1000] {
            roundtrip(&v[..n]);
        }
        roundtrip(&[0; 300]);
    }

    #[test]
    fn rejects_bad_codes() {
        assert_eq!(decode_in_place(&mut [0x05, 1, 2]), Err(InvalidCobs));
        assert_eq!(decode_in_place(&mut [0x00]), Err(InvalidCobs));
    }
}
