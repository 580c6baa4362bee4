//! Tensor conversion (float rows in, float or quant blocks out) and the group-preserving write.

use super::QuantError;
use bytemuck::Zeroable;
use flint_format::{DType, FlintFile, TensorInfo, Writer};
use flint_kernels::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ4x8, BlockQ8, BlockQ8x8, QK};
use half::{bf16, f16};
use std::borrow::Cow;
use std::path::Path;

/// Decodes one row of little-endian float values (`out.len()` of them) of type `from`.
pub(super) fn decode_row(from: DType, bytes: &[u8], out: &mut [f32]) {
    match from {
        DType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        DType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
}

/// Quantizes one row into q8 blocks, weighted by the per-column importance `imp` if given.
fn q8_row(row: &[f32], imp: Option<&[f32]>, out: &mut [BlockQ8]) {
    match imp {
        Some(w) => flint_kernels::quantize_row_q8_weighted(row, w, out),
        None => flint_kernels::quantize_row_q8(row, out),
    }
}

/// Quantizes one row into q4 blocks, weighted by the per-column importance `imp` if given.
fn q4_row(row: &[f32], imp: Option<&[f32]>, out: &mut [BlockQ4]) {
    match imp {
        Some(w) => flint_kernels::quantize_row_q4_weighted(row, w, out),
        None => flint_kernels::quantize_row_q4(row, out),
    }
}

/// Appends one row in type `to`, quantizing per block of 32 (the kernels' quantizers; q8, q4 and q2m weighted by the
/// per-column importance `imp` when given).
pub(super) fn encode_row(to: DType, row: &[f32], imp: Option<&[f32]>, out: &mut Vec<u8>) {
    fn blocks<B: bytemuck::Pod + bytemuck::Zeroable>(
        row: &[f32],
        imp: Option<&[f32]>,
        q: fn(&[f32], Option<&[f32]>, &mut [B]),
        out: &mut Vec<u8>,
    ) {
        let mut b = vec![B::zeroed(); row.len() / QK];
        q(row, imp, &mut b);
        out.extend_from_slice(bytemuck::cast_slice(&b));
    }
    match to {
        DType::Q8 => blocks::<BlockQ8>(row, imp, q8_row, out),
        DType::Q4 => blocks::<BlockQ4>(row, imp, q4_row, out),
        DType::Q4M => blocks::<BlockQ4M>(
            row,
            imp,
            |r, _, b| flint_kernels::quantize_row_q4m(r, b),
            out,
        ),
        DType::Q2M => blocks::<BlockQ2M>(row, imp, flint_kernels::quantize_row_q2m, out),
        DType::F16 => out.extend(row.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes())),
        DType::BF16 => out.extend(row.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes())),
        _ => out.extend(row.iter().flat_map(|v| v.to_le_bytes())),
    }
}

/// Decodes one row of q8, q4, q4m or q2m blocks (as [`encode_row`] wrote them) into `out`; other types as floats.
pub(super) fn dequantize(from: DType, bytes: &[u8], out: &mut [f32]) {
    match from {
        DType::Q8 => flint_kernels::dequantize_row_q8(bytemuck::cast_slice(bytes), out),
        DType::Q4 => flint_kernels::dequantize_row_q4(bytemuck::cast_slice(bytes), out),
        DType::Q4M => flint_kernels::dequantize_row_q4m(bytemuck::cast_slice(bytes), out),
        DType::Q2M => flint_kernels::dequantize_row_q2m(bytemuck::cast_slice(bytes), out),
        _ => decode_row(from, bytes, out),
    }
}

/// How a matrix of logical type `t` and shape `shape` is stored: q8 and q4 matrices whose rows come in multiples of 8
/// use the row-interleaved q8x8 / q4x8 layout (same values and size, faster kernels); everything else as is.
pub fn stored_type(t: DType, shape: &[usize]) -> DType {
    let rows8 = shape.len() == 2 && shape[0].is_multiple_of(8);
    match t {
        DType::Q8 if rows8 => DType::Q8X8,
        DType::Q4 if rows8 => DType::Q4X8,
        t => t,
    }
}

/// Quantizes 8 rows at a time into an interleaved type (rows already known to be a multiple of 8), each row as
/// [`encode_row`] would, then interleaves them.
fn encode_interleaved(
    to: DType,
    rows: &[f32],
    cols: usize,
    imp: Option<&[f32]>,
    out: &mut Vec<u8>,
) {
    let n = rows.len() / QK;
    let per_row = cols / QK;
    match to {
        DType::Q8X8 => {
            let mut plain = vec![BlockQ8::zeroed(); n];
            for (r, b) in rows.chunks_exact(cols).zip(plain.chunks_exact_mut(per_row)) {
                q8_row(r, imp, b);
            }
            let mut x = vec![BlockQ8x8::zeroed(); n / 8];
            flint_kernels::interleave_q8(&plain, cols / QK, &mut x);
            out.extend_from_slice(bytemuck::cast_slice(&x));
        }
        _ => {
            let mut plain = vec![BlockQ4::zeroed(); n];
            for (r, b) in rows.chunks_exact(cols).zip(plain.chunks_exact_mut(per_row)) {
                q4_row(r, imp, b);
            }
            let mut x = vec![BlockQ4x8::zeroed(); n / 8];
            flint_kernels::interleave_q4(&plain, cols / QK, &mut x);
            out.extend_from_slice(bytemuck::cast_slice(&x));
        }
    }
}

/// The bytes of tensor `t` (data `bytes`, as validated by the reader) converted to type `to`, row by row along the
/// last dimension (8 rows at a time for the interleaved types). Same type: the bytes themselves. `imp`, one
/// importance per column, weights the q8 / q4 / q2m quantizers' error (other types ignore it). Errors (as a message) if the
/// input is quantized or the shape does not fit `to`.
pub fn convert<'a>(
    t: &TensorInfo,
    bytes: &'a [u8],
    to: DType,
    imp: Option<&[f32]>,
) -> Result<Cow<'a, [u8]>, String> {
    if t.dtype == to {
        return Ok(Cow::Borrowed(bytes));
    }
    if t.dtype.is_quantized() {
        return Err(format!(
            "cannot convert {} to {to}: the input is already quantized",
            t.dtype
        ));
    }
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let size = to
        .byte_size(&shape)
        .ok_or_else(|| format!("shape {:?} does not fit type {to}", t.shape))?;
    let cols = t.shape.last().copied().unwrap_or(1);
    let imp = imp.filter(|w| w.len() == cols);
    let mut out = Vec::with_capacity(size as usize);
    if cols > 0 {
        let br = to.block_rows();
        let unit = cols * br * t.dtype.block_bytes();
        let units: Vec<&[u8]> = bytes.chunks_exact(unit).collect();
        // Quantizing is CPU-bound and every row is independent: split big tensors over the cores in contiguous
        // parts, appended in order, so the bytes do not depend on the thread count.
        let parts = if to.is_quantized() && bytes.len() >= (1 << 20) {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        let per = units.len().div_ceil(parts.max(1)).max(1);
        let encode = |units: &[&[u8]], out: &mut Vec<u8>| {
            let mut rows = vec![0f32; cols * br];
            for chunk in units {
                for (r, src) in rows
                    .chunks_exact_mut(cols)
                    .zip(chunk.chunks_exact(unit / br))
                {
                    decode_row(t.dtype, src, r);
                }
                if br > 1 {
                    encode_interleaved(to, &rows, cols, imp, out);
                } else {
                    encode_row(to, &rows, imp, out);
                }
            }
        };
        if units.len() <= per {
            encode(&units, &mut out);
        } else {
            let encoded: Vec<Vec<u8>> = std::thread::scope(|sc| {
                let handles: Vec<_> = units
                    .chunks(per)
                    .map(|part| {
                        sc.spawn(move || {
                            let mut o = Vec::new();
                            encode(part, &mut o);
                            o
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            for e in encoded {
                out.extend_from_slice(&e);
            }
        }
    }
    debug_assert_eq!(out.len() as u64, size);
    Ok(Cow::Owned(out))
}

/// Tensor indices in write order, as runs: an ungrouped tensor on its own, or every tensor of one paging group
/// (placed where the group first appears in the directory), so each group is written contiguously even if the input
/// interleaved it.
pub fn write_runs(tensors: &[TensorInfo]) -> Vec<(bool, Vec<usize>)> {
    let mut runs = Vec::new();
    let mut done = std::collections::HashSet::new();
    for (i, t) in tensors.iter().enumerate() {
        if t.group == 0 {
            runs.push((false, vec![i]));
        } else if done.insert(t.group) {
            let members = tensors
                .iter()
                .enumerate()
                .filter(|(_, u)| u.group == t.group)
                .map(|(j, _)| j)
                .collect();
            runs.push((true, members));
        }
    }
    runs
}

/// Writes `dst` (atomically) with `metadata` and the tensors of `src`, each as `types[i]` with the bytes `data(i)`
/// gives (`None`: left out), keeping paging groups. `progress(done, total)` is called after each tensor.
pub fn write_file<'a>(
    src: &'a FlintFile,
    dst: &Path,
    metadata: serde_json::Value,
    types: &[Option<DType>],
    mut data: impl FnMut(usize) -> Result<Cow<'a, [u8]>, QuantError>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), QuantError> {
    let tensors = src.tensors();
    let mut w = Writer::create(dst)?;
    w.set_metadata(metadata);
    let mut done = 0;
    for (grouped, members) in write_runs(tensors) {
        let members: Vec<(usize, DType)> = members
            .into_iter()
            .filter_map(|i| types[i].map(|d| (i, d)))
            .collect();
        let grouped = grouped && !members.is_empty();
        if grouped {
            w.begin_group()?;
        }
        for (i, dtype) in members {
            let t = &tensors[i];
            let bytes = data(i)?;
            w.add(&t.name, dtype, &t.shape, &bytes)?;
            done += 1;
            progress(done, tensors.len());
        }
        if grouped {
            w.end_group();
        }
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, dtype: DType, shape: &[usize], group: u32) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            offset: 0,
            length: 0,
            crc: 0,
            group,
        }
    }

    #[test]
    fn groups_stay_together() {
        let t = [
            info("a", DType::F32, &[4], 0),
            info("e0.gate", DType::F32, &[4], 1),
            info("e1.gate", DType::F32, &[4], 2),
            info("e0.up", DType::F32, &[4], 1),
            info("b", DType::F32, &[4], 0),
        ];
        assert_eq!(
            write_runs(&t),
            vec![
                (false, vec![0]),
                (true, vec![1, 3]),
                (true, vec![2]),
                (false, vec![4])
            ]
        );
    }

    #[test]
    fn q8_round_trip_is_close() {
        let vals: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 7.0)
            .collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = info("m", DType::F32, &[2, 32], 0);
        let q = convert(&t, &bytes, DType::Q8, None).unwrap();
        assert_eq!(q.len(), 2 * 34);
        let blocks: Vec<BlockQ8> = q
            .chunks_exact(34)
            .map(bytemuck::pod_read_unaligned)
            .collect();
        let mut back = vec![0f32; 64];
        flint_kernels::dequantize_row_q8(&blocks, &mut back);
        let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in vals.iter().zip(&back) {
            assert!((a - b).abs() <= amax / 127.0, "{a} vs {b}");
        }
        let f16s = convert(&t, &bytes, DType::F16, None).unwrap();
        let again = convert(&info("m", DType::F16, &[2, 32], 0), &f16s, DType::F32, None).unwrap();
        assert_eq!(again.len(), bytes.len());
    }

    #[test]
    fn split_over_threads_gives_the_sequential_bytes() {
        // 1 MiB of f32: big enough to be split when the machine has more than one core.
        let (rows, cols) = (1024, 256);
        let vals: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let imp: Vec<f32> = (0..cols).map(|c| 1.0 + (c % 13) as f32).collect();
        let t = info("m", DType::F32, &[rows, cols], 0);
        for (to, w) in [(DType::Q4X8, Some(&imp[..])), (DType::Q8X8, None)] {
            let got = convert(&t, &bytes, to, w).unwrap();
            let mut want = Vec::new();
            for r in vals.chunks_exact(8 * cols) {
                encode_interleaved(to, r, cols, w, &mut want);
            }
            assert!(got[..] == want[..], "{to}");
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let t = info("m", DType::F32, &[2, 40], 0);
        assert!(convert(&t, &[0u8; 320], DType::Q4, None)
            .unwrap_err()
            .contains("does not fit"));
        let q = info("m", DType::Q8, &[1, 32], 0);
        assert!(convert(&q, &[0u8; 34], DType::F32, None)
            .unwrap_err()
            .contains("already quantized"));
    }
}
