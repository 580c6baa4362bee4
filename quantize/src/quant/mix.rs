//! `--experts auto`: the distilled experts' precision. Each unit (an MoE expert, which is one paging group of the
//! file; in a dense model, each matrix) starts at the `--weights` type and may be promoted to q8 where the bytes buy
//! the most accuracy, until the target size is reached.
//!
//! A unit's worth is measured on the calibration set, not assumed. For each of its matrices, the importance matrix
//! gives the mean square input per column (`imp_c`) and how many input rows the matrix saw on that set (`rows`, which
//! for an expert is how often the router chose it). The expected squared output error one row suffers from a
//! quantized matrix is `sum_rc imp_c (w_rc - w'_rc)^2` (columns taken as uncorrelated, as the importance weighting of
//! the quantizers assumes), so over the calibration set the error a matrix adds is `rows` times that. The gain of
//! promoting a unit is the drop of that total from the base type to q8, summed over its matrices, and for an expert
//! times the square of its mean gate weight on that set (the layer adds the expert's output scaled by it); units are promoted
//! in order of gain per byte (a greedy knapsack) while the matrices' bytes stay within the target. An expert the
//! calibration set never routed to has no gain and stays at the base type; the report lists such experts.

use super::convert;
use super::imatrix::Importance;
use super::plan::{Choice, Reason};
use super::routing::Routing;
use super::QuantError;
use flint_format::{DType, FlintFile};
use serde::Serialize;
use std::collections::BTreeMap;

/// The size `--experts auto` aims at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Bits per weight over all 2-D matrices (as the report counts them).
    Bpw(f64),
    /// The output file's bytes. The matrices get what the input's other bytes (vectors, directory, metadata) and
    /// room for the report leave; the report gives the file's actual size.
    Size(u64),
}

/// One unit's decision.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The expert's name prefix (`blk.3.expert.7.`) or the matrix's name.
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: String,
    /// Input rows its matrices saw on the calibration set (for an expert: tokens routed to it, per matrix summed).
    pub rows: u64,
    /// Drop of the calibration set's summed squared output error from the base type to q8 (an expert's scaled by
    /// its mean gate weight squared).
    pub gain: f64,
    /// Bytes q8 costs over the base type.
    pub cost: u64,
}

/// What `--experts auto` decided, stored in the report.
#[derive(Clone, Debug, Serialize)]
pub struct Mix {
    /// The target, as matrix bits per weight.
    pub target_bpw: f64,
    /// The base (`--weights`) type.
    pub base: String,
    /// Whether the units are MoE experts (else each matrix is a unit).
    pub per_expert: bool,
    /// Units promoted to q8.
    pub promoted: usize,
    /// Every unit's decision, most valuable first.
    pub decisions: Vec<Decision>,
    /// Experts no calibration row was routed to (left at the base type; candidates for pruning).
    pub unrouted: Vec<String>,
}

/// `sum_rc imp_c (w_rc - w'_rc)^2 / rows`: the expected squared output error of one input row when tensor `i` is
/// stored as `to` (uniform importance where none was seen).
fn row_error(file: &FlintFile, i: usize, to: DType, imp: Option<&[f32]>) -> Result<f64, String> {
    let t = &file.tensors()[i];
    let bytes = file.tensor(&t.name).map_err(|e| e.to_string())?.bytes;
    let cols = t.shape[1];
    let imp = imp.filter(|w| w.len() == cols);
    let unit = cols * t.dtype.block_bytes();
    let rows: Vec<&[u8]> = bytes.chunks_exact(unit).collect();
    let part = |rows: &[&[u8]]| {
        let (mut w, mut q, mut enc) = (vec![0f32; cols], vec![0f32; cols], Vec::new());
        let mut sum = 0f64;
        for r in rows {
            convert::decode_row(t.dtype, r, &mut w);
            enc.clear();
            convert::encode_row(to, &w, imp, &mut enc);
            convert::dequantize(to, &enc, &mut q);
            for c in 0..cols {
                let d = (w[c] - q[c]) as f64;
                sum += imp.map_or(1.0, |m| m[c] as f64) * d * d;
            }
        }
        sum
    };
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = rows.len().div_ceil(parts).max(1);
    Ok(std::thread::scope(|s| {
        let hs: Vec<_> = rows.chunks(per).map(|c| s.spawn(move || part(c))).collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .sum()
    }))
}

/// The longest common prefix of `names`, cut after its last `.`.
fn common_prefix(names: &[&str]) -> String {
    let first = names.first().copied().unwrap_or("");
    let mut n = first.len();
    for s in names {
        n = n.min(
            first
                .bytes()
                .zip(s.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    match first[..n].rfind('.') {
        Some(d) => first[..=d].to_string(),
        None => first.to_string(),
    }
}

/// `blk.{l}.expert.{e}.`'s mean gate weight in `routing` (over all modalities), if it is an expert that was routed.
fn gate_weight(routing: &Routing, name: &str) -> Option<f64> {
    let rest = name.strip_prefix("blk.")?;
    let (l, rest) = rest.split_once('.')?;
    let (e, _) = rest.strip_prefix("expert.")?.split_once('.')?;
    let (l, e): (usize, usize) = (l.parse().ok()?, e.parse().ok()?);
    let layer = routing.layers.iter().find(|r| r.layer == l)?;
    let (mut n, mut w) = (0u64, 0f64);
    for m in layer.modalities.values() {
        let c = *m.count.get(e)?;
        n += c;
        w += c as f64 * m.mean_weight.get(e)?;
    }
    (n > 0).then(|| w / n as f64)
}

/// Promotes units of `choices` (the plan for `src`, at base type `base`) to q8 within `target`, from the importance
/// statistics `imp` and the same text's `routing`, reporting each tensor done to `progress(done, total)`.
pub fn choose(
    src: &FlintFile,
    choices: &mut [Choice],
    base: DType,
    imp: &Importance,
    routing: Option<&Routing>,
    target: Target,
    mut progress: impl FnMut(usize, usize),
) -> Result<Mix, QuantError> {
    let tensors = src.tensors();
    let stored = |i: usize, d: DType| {
        let s = &tensors[i].shape;
        convert::stored_type(d, s)
            .byte_size(&[s[0] as u64, s[1] as u64])
            .unwrap_or(0)
    };
    let matrices: Vec<usize> = (0..tensors.len())
        .filter(|&i| tensors[i].shape.len() == 2)
        .collect();
    let params: u64 = matrices.iter().map(|&i| tensors[i].numel() as u64).sum();
    let bytes_now: u64 = matrices.iter().map(|&i| stored(i, choices[i].to)).sum();
    let bpw = |b: u64| 8.0 * b as f64 / params.max(1) as f64;
    // Units: the candidates (matrices at the base type by default), by paging group or alone.
    let candidate = |i: usize| choices[i].to == base && choices[i].reason == Reason::Weights;
    let per_expert = tensors.iter().any(|t| t.group != 0);
    let mut units: BTreeMap<(u32, usize), Vec<usize>> = BTreeMap::new();
    for &i in matrices.iter().filter(|&&i| candidate(i)) {
        let g = tensors[i].group;
        let key = if g != 0 { (g, 0) } else { (0, i) };
        units.entry(key).or_default().push(i);
    }
    // The report this adds to the metadata: room for every decision.
    let report_room = 64 * 1024 + 256 * units.len() as u64;
    let budget = match target {
        Target::Bpw(b) => (b * params as f64 / 8.0) as u64,
        Target::Size(s) => {
            let src_matrix: u64 = matrices.iter().map(|&i| tensors[i].length as u64).sum();
            let other = src.file_len() as u64 - src_matrix + report_room;
            s.checked_sub(other).ok_or_else(|| {
                QuantError::Options(format!(
                    "--target-size {s} is smaller than the {other} bytes the file needs besides its matrices"
                ))
            })?
        }
    };
    if budget < bytes_now {
        return Err(QuantError::Options(format!(
            "the target ({:.3} bits/weight over the matrices) is below what --weights {base} already takes ({:.3}); \
             aim higher or pick a smaller --weights",
            bpw(budget),
            bpw(bytes_now)
        )));
    }
    let total: usize = units.values().map(Vec::len).sum();
    let mut done = 0;
    let mut scored = Vec::with_capacity(units.len());
    for (_, members) in units {
        let (mut gain, mut rows, mut cost) = (0f64, 0u64, 0u64);
        for &i in &members {
            let n = imp.rows(i);
            rows += n;
            cost += stored(i, DType::Q8) - stored(i, base);
            if n > 0 {
                let err = |d| {
                    row_error(src, i, d, imp.get(i)).map_err(|msg| QuantError::Tensor {
                        path: src.path().to_path_buf(),
                        name: tensors[i].name.clone(),
                        msg,
                    })
                };
                gain += n as f64 * (err(base)? - err(DType::Q8)?).max(0.0);
            }
            done += 1;
            progress(done, total);
        }
        let names: Vec<&str> = members.iter().map(|&i| tensors[i].name.as_str()).collect();
        let name = if members.len() > 1 {
            common_prefix(&names)
        } else {
            names[0].to_string()
        };
        if let Some(w) = routing.and_then(|r| gate_weight(r, &name)) {
            gain *= w * w;
        }
        scored.push((name, members, rows, gain, cost));
    }
    scored.sort_by(|a, b| {
        let r = |u: &(String, Vec<usize>, u64, f64, u64)| u.3 / u.4.max(1) as f64;
        r(b).total_cmp(&r(a)).then_with(|| a.0.cmp(&b.0))
    });
    let mut left = budget - bytes_now;
    let (mut decisions, mut unrouted, mut promoted) = (Vec::new(), Vec::new(), 0);
    for (name, members, rows, gain, cost) in scored {
        let up = gain > 0.0 && cost <= left;
        if up {
            left -= cost;
            promoted += 1;
            for &i in &members {
                choices[i].to = DType::Q8;
                choices[i].reason = Reason::Auto;
            }
        }
        if per_expert && rows == 0 {
            unrouted.push(name.clone());
        }
        decisions.push(Decision {
            name,
            dtype: if up { DType::Q8 } else { base }.name().to_string(),
            rows,
            gain,
            cost,
        });
    }
    Ok(Mix {
        target_bpw: bpw(budget),
        base: base.name().to_string(),
        per_expert,
        promoted,
        decisions,
        unrouted,
    })
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn prefix_of_an_expert() {
        assert_eq!(
            common_prefix(&[
                "blk.1.expert.12.ffn_gate",
                "blk.1.expert.12.ffn_up",
                "blk.1.expert.12.ffn_down"
            ]),
            "blk.1.expert.12."
        );
        assert_eq!(
            common_prefix(&["blk.1.exp.1.a", "blk.1.expert.12.a"]),
            "blk.1."
        );
    }
}
