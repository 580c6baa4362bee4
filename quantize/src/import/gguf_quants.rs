//! ggml's block types, dequantized to f32 at import, as ggml's reference `dequantize_row_*` functions define them:
//! the 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the 256-element K-quants of Q4_K_M / Q5_K_M files
//! (Q4_K, Q5_K, Q6_K). Each block's layout is fixed, so a block is a fixed-size array and nothing is indexed out of
//! it; tests/tests/e2e/gguf_quants.rs checks every type against the `gguf` Python package's numpy dequantizer.

use half::f16;

/// (ggml type id, name, elements per block, bytes per block) of every type read.
pub(super) const TYPES: &[(u32, &str, usize, usize)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (30, "BF16", 1, 2),
];

fn h(b: [u8; 2]) -> f32 {
    f16::from_le_bytes(b).to_f32()
}

/// Splits a block into fixed arrays (`N` is the block's size, checked by `chunks_exact`).
fn block<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(c);
    a
}

/// Appends the values of `bytes` (whole blocks of type `ty`) to `out`. `ty` is one of [`TYPES`].
pub(super) fn dequantize(ty: u32, bytes: &[u8], out: &mut Vec<f32>) {
    match ty {
        0 => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(block(c)))),
        1 => out.extend(bytes.chunks_exact(2).map(|c| h(block(c)))),
        30 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes(block(c)).to_f32()),
        ),
        2 => bytes.chunks_exact(18).for_each(|c| q4_0(&block(c), out)),
        3 => bytes.chunks_exact(20).for_each(|c| q4_1(&block(c), out)),
        6 => bytes.chunks_exact(22).for_each(|c| q5_0(&block(c), out)),
        7 => bytes.chunks_exact(24).for_each(|c| q5_1(&block(c), out)),
        8 => bytes.chunks_exact(34).for_each(|c| q8_0(&block(c), out)),
        12 => bytes.chunks_exact(144).for_each(|c| q4_k(&block(c), out)),
        13 => bytes.chunks_exact(176).for_each(|c| q5_k(&block(c), out)),
        14 => bytes.chunks_exact(210).for_each(|c| q6_k(&block(c), out)),
        _ => {}
    }
}

fn q4_0(b: &[u8; 18], out: &mut Vec<f32>) {
    let d = h([b[0], b[1]]);
    let qs = &b[2..];
    out.extend(qs.iter().map(|q| ((q & 0x0f) as f32 - 8.0) * d));
    out.extend(qs.iter().map(|q| ((q >> 4) as f32 - 8.0) * d));
}

fn q4_1(b: &[u8; 20], out: &mut Vec<f32>) {
    let (d, m) = (h([b[0], b[1]]), h([b[2], b[3]]));
    let qs = &b[4..];
    out.extend(qs.iter().map(|q| (q & 0x0f) as f32 * d + m));
    out.extend(qs.iter().map(|q| (q >> 4) as f32 * d + m));
}

/// Q5_0 / Q5_1: the fifth bit of value j is bit j of `qh` (the low nibbles) or bit j + 16 (the high ones).
fn q5(qh: u32, qs: &[u8], d: f32, m: Option<f32>, out: &mut Vec<f32>) {
    let v = |q: u32| match m {
        None => (q as f32 - 16.0) * d,
        Some(m) => q as f32 * d + m,
    };
    let lo: Vec<f32> = (0..16)
        .map(|j| v((qs[j] & 0x0f) as u32 | (((qh >> j) << 4) & 0x10)))
        .collect();
    let hi: Vec<f32> = (0..16)
        .map(|j| v((qs[j] >> 4) as u32 | ((qh >> (j + 12)) & 0x10)))
        .collect();
    out.extend(lo);
    out.extend(hi);
}

fn q5_0(b: &[u8; 22], out: &mut Vec<f32>) {
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    q5(qh, &b[6..], h([b[0], b[1]]), None, out);
}

fn q5_1(b: &[u8; 24], out: &mut Vec<f32>) {
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    q5(qh, &b[8..], h([b[0], b[1]]), Some(h([b[2], b[3]])), out);
}

fn q8_0(b: &[u8; 34], out: &mut Vec<f32>) {
    let d = h([b[0], b[1]]);
    out.extend(b[2..].iter().map(|&q| q as i8 as f32 * d));
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block's 12 packed bytes.
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
    } else {
        (
            ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4)) as f32,
            ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32,
        )
    }
}

/// Q4_K: d, dmin, 12 bytes of scales and mins, 128 bytes of 4-bit values; 8 sub-blocks of 32.
fn q4_k(b: &[u8; 144], out: &mut Vec<f32>) {
    let (d, dmin) = (h([b[0], b[1]]), h([b[2], b[3]]));
    let (sc, qs) = (&b[4..16], &b[16..]);
    for (k, q) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4(2 * k, sc);
        let (s2, m2) = scale_min_k4(2 * k + 1, sc);
        out.extend(q.iter().map(|&v| d * s1 * (v & 0x0f) as f32 - dmin * m1));
        out.extend(q.iter().map(|&v| d * s2 * (v >> 4) as f32 - dmin * m2));
    }
}

/// Q5_K: Q4_K's layout with a fifth bit per value in 32 bytes of `qh` (two bits per 64 values, in turn).
fn q5_k(b: &[u8; 176], out: &mut Vec<f32>) {
    let (d, dmin) = (h([b[0], b[1]]), h([b[2], b[3]]));
    let (sc, qh, qs) = (&b[4..16], &b[16..48], &b[48..]);
    for (k, q) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4(2 * k, sc);
        let (s2, m2) = scale_min_k4(2 * k + 1, sc);
        let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
        out.extend(q.iter().zip(qh).map(|(&v, &hb)| {
            let x = (v & 0x0f) as f32 + if hb & u1 != 0 { 16.0 } else { 0.0 };
            d * s1 * x - dmin * m1
        }));
        out.extend(q.iter().zip(qh).map(|(&v, &hb)| {
            let x = (v >> 4) as f32 + if hb & u2 != 0 { 16.0 } else { 0.0 };
            d * s2 * x - dmin * m2
        }));
    }
}

/// Q6_K: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 signed 8-bit scales, d; two halves of 128 values.
fn q6_k(b: &[u8; 210], out: &mut Vec<f32>) {
    let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
    let d = h([b[208], b[209]]);
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
        let mut y = [0f32; 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let s = |i: usize| d * (sc[is + i] as i8) as f32;
            y[l] = s(0) * q1 as f32;
            y[l + 32] = s(2) * q2 as f32;
            y[l + 64] = s(4) * q3 as f32;
            y[l + 96] = s(6) * q4 as f32;
        }
        out.extend_from_slice(&y);
    }
}
