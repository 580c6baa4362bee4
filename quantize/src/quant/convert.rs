//! Tensor conversion (float rows in, float or quant blocks out) and the group-preserving write.

use super::QuantError;
use flint_format::{DType, FlintFile, TensorInfo, Writer};
use flint_kernels::{BlockQ4, BlockQ4M, BlockQ8, QK};
use half::{bf16, f16};
use std::borrow::Cow;
use std::path::Path;

/// Decodes one row of little-endian float values (`out.len()` of them) of type `from`.
fn decode_row(from: DType, bytes: &[u8], out: &mut [f32]) {
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

/// Appends one row in type `to`, quantizing round-to-nearest per block of 32 (the kernels' quantizers).
fn encode_row(to: DType, row: &[f32], out: &mut Vec<u8>) {
    fn blocks<B: bytemuck::Pod + bytemuck::Zeroable>(
        row: &[f32],
        q: fn(&[f32], &mut [B]),
        out: &mut Vec<u8>,
    ) {
        let mut b = vec![B::zeroed(); row.len() / QK];
        q(row, &mut b);
        out.extend_from_slice(bytemuck::cast_slice(&b));
    }
    match to {
        DType::Q8 => blocks::<BlockQ8>(row, flint_kernels::quantize_row_q8, out),
        DType::Q4 => blocks::<BlockQ4>(row, flint_kernels::quantize_row_q4, out),
        DType::Q4M => blocks::<BlockQ4M>(row, flint_kernels::quantize_row_q4m, out),
        DType::F16 => out.extend(row.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes())),
        DType::BF16 => out.extend(row.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes())),
        _ => out.extend(row.iter().flat_map(|v| v.to_le_bytes())),
    }
}

/// The bytes of tensor `t` (data `bytes`, as validated by the reader) converted to type `to`, row by row along the
/// last dimension. Same type: the bytes themselves. Errors (as a message) if the input is quantized or the shape does
/// not fit `to`.
pub fn convert<'a>(t: &TensorInfo, bytes: &'a [u8], to: DType) -> Result<Cow<'a, [u8]>, String> {
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
    let mut out = Vec::with_capacity(size as usize);
    if cols > 0 {
        let row_bytes = cols * t.dtype.block_bytes();
        let mut row = vec![0f32; cols];
        for chunk in bytes.chunks_exact(row_bytes) {
            decode_row(t.dtype, chunk, &mut row);
            encode_row(to, &row, &mut out);
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

/// Writes `dst` (atomically) with `metadata` and every tensor of `src`, each as `types[i]` with the bytes `data(i)`
/// gives, keeping paging groups. `progress(done, total)` is called after each tensor.
pub fn write_file<'a>(
    src: &'a FlintFile,
    dst: &Path,
    metadata: serde_json::Value,
    types: &[DType],
    mut data: impl FnMut(usize) -> Result<Cow<'a, [u8]>, QuantError>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), QuantError> {
    let tensors = src.tensors();
    let mut w = Writer::create(dst)?;
    w.set_metadata(metadata);
    let mut done = 0;
    for (grouped, members) in write_runs(tensors) {
        if grouped {
            w.begin_group()?;
        }
        for i in members {
            let t = &tensors[i];
            let bytes = data(i)?;
            w.add(&t.name, types[i], &t.shape, &bytes)?;
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
        let q = convert(&t, &bytes, DType::Q8).unwrap();
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
        let f16s = convert(&t, &bytes, DType::F16).unwrap();
        let again = convert(&info("m", DType::F16, &[2, 32], 0), &f16s, DType::F32).unwrap();
        assert_eq!(again.len(), bytes.len());
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let t = info("m", DType::F32, &[2, 40], 0);
        assert!(convert(&t, &[0u8; 320], DType::Q4)
            .unwrap_err()
            .contains("does not fit"));
        let q = info("m", DType::Q8, &[1, 32], 0);
        assert!(convert(&q, &[0u8; 34], DType::F32)
            .unwrap_err()
            .contains("already quantized"));
    }
}
