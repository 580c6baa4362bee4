//! `--experts auto`: the distilled experts' precision. Each unit (an MoE expert, which is one paging group of the
//! file; in a dense model, each matrix) gets one of the levels q2m, the `--weights` type and q8, where the bytes buy
//! the most accuracy, within the target size.
//!
//! A unit's error at each level is measured on the calibration set, not assumed. For each of its matrices, the
//! importance matrix gives the mean square input per column (`imp_c`) and how many input rows the matrix saw on that
//! set (`rows`, which for an expert is how often the router chose it). The expected squared output error one row
//! suffers from a quantized matrix is `sum_rc imp_c (w_rc - w'_rc)^2` (columns taken as uncorrelated, as the
//! importance weighting of the quantizers assumes), so over the calibration set the error a matrix adds is `rows`
//! times that. A unit's error at a level is that total over its matrices, and for an expert times the square of its
//! mean gate weight on that set (the layer adds the expert's output scaled by it).
//!
//! That squared error says how much a matrix's output moves, not how much the model's answer does: an error in a
//! query projection passes through a softmax, one in an output projection lands in the residual stream, and an
//! early layer's error travels through every later one. So the model is probed: once per kind of matrix
//! (`attn_q`, `attn_o`, the experts, `output`, ...; all layers together) and once per layer (all its kinds), the
//! model with those candidates at q2m and everything else as in the input runs the first [`PROBE_TOKENS`] of the
//! importance text, and the KL it suffers against the input is measured. A factor per kind times one per layer,
//! fitted so that every probe's units add up to its KL, turns each unit's squared error into estimated KL.
//!
//! The choice is a multiple-choice knapsack, solved greedily: every unit starts at its cheapest level; the steps up
//! each unit's lower convex hull of (bytes, error) are taken in order of error removed per byte, over all units, while
//! the matrices' bytes stay within the target (a unit whose next step does not fit takes no further step). An expert
//! the calibration set never routed to is pruned: left out of the file, its router entry masked at run time
//! (`moe.pruned_experts`), so it is never chosen.

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

/// Tokens of the importance text each sensitivity probe runs.
pub const PROBE_TOKENS: usize = 512;

/// One sensitivity probe.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// The KL (nats per position) against the input with the probe's candidates (a kind's, or a layer's) at q2m.
    pub kl: f64,
    /// The fitted factor of the kind or layer: a unit's estimated KL is its squared error times its kind's and its
    /// layer's.
    pub scale: f64,
}

/// The kind of a matrix or unit, for the probes: its name without the layer (`blk.3.attn_q` -> `attn_q`), and
/// `expert` for every expert.
fn kind(name: &str) -> String {
    let rest = name
        .strip_prefix("blk.")
        .and_then(|r| r.split_once('.'))
        .map_or(name, |(_, r)| r);
    if rest.starts_with("expert.") {
        "expert".to_string()
    } else {
        rest.to_string()
    }
}

/// The probes' report: each key's KL and fitted factor.
fn probe_table<K: Ord + ToString>(
    kl: &BTreeMap<K, f64>,
    scale: &BTreeMap<K, f64>,
) -> BTreeMap<String, Probe> {
    kl.iter()
        .map(|(k, &kl)| {
            let scale = scale.get(k).copied().unwrap_or(0.0);
            (k.to_string(), Probe { kl, scale })
        })
        .collect()
}

/// The layer of a matrix or unit (`blk.{l}.…`), if it is in one.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split_once('.')?.0.parse().ok()
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
    /// The estimated KL at each level, by type name: the calibration set's summed squared output error (an
    /// expert's scaled by its mean gate weight squared) times its kind's probe scale.
    pub errors: BTreeMap<String, f64>,
    /// Its matrices' bytes at the chosen type.
    pub bytes: u64,
}

/// What `--experts auto` decided, stored in the report.
#[derive(Clone, Debug, Serialize)]
pub struct Mix {
    /// The target, as matrix bits per weight.
    pub target_bpw: f64,
    /// The base (`--weights`) type.
    pub base: String,
    /// The levels a unit could take, cheapest first.
    pub levels: Vec<String>,
    /// Whether the units are MoE experts (else each matrix is a unit).
    pub per_expert: bool,
    /// Units per chosen type.
    pub counts: BTreeMap<String, usize>,
    /// Each kind's sensitivity probe (`scale`: the kind's factor).
    pub probes: BTreeMap<String, Probe>,
    /// Each layer's probe, every candidate of that layer at q2m (`scale`: the layer's factor).
    pub layer_probes: BTreeMap<String, Probe>,
    /// Every unit's decision, the one with the most error at the cheapest level first.
    pub decisions: Vec<Decision>,
    /// Experts no calibration row was routed to, pruned: left out of the file (by name).
    pub pruned: Vec<String>,
    /// The same as `moe.pruned_experts` says it to the runtime: {layer: [expert, ...]}.
    pub pruned_experts: BTreeMap<String, Vec<usize>>,
    /// The tensors left out (indices into the input's directory).
    #[serde(skip)]
    pub dropped: Vec<usize>,
}

/// A unit being decided: its matrices, the error and bytes at each level, and where it stands.
struct Unit {
    name: String,
    members: Vec<usize>,
    rows: u64,
    errors: Vec<f64>,
    bytes: Vec<u64>,
    /// Indices into the levels of its lower convex hull, cheapest first.
    hull: Vec<usize>,
    /// Position in `hull`.
    at: usize,
}

/// The lower convex hull of points `(bytes[i], errors[i])` (levels sorted by bytes): the levels worth taking, each
/// step up removing less error per byte than the one before. A level that costs more without lowering the error is
/// never on it.
fn hull(bytes: &[u64], errors: &[f64]) -> Vec<usize> {
    let mut h: Vec<usize> = Vec::new();
    for i in 0..bytes.len() {
        if let Some(&last) = h.last() {
            if errors[i] >= errors[last] || bytes[i] <= bytes[last] {
                continue;
            }
        }
        // Drop the last point while it lies on or above the segment from the one before it to this one.
        while h.len() >= 2 {
            let (a, b) = (h[h.len() - 2], h[h.len() - 1]);
            let slope = |p: usize, q: usize| (errors[p] - errors[q]) / (bytes[q] - bytes[p]) as f64;
            if slope(a, b) <= slope(b, i) {
                h.pop();
            } else {
                break;
            }
        }
        h.push(i);
    }
    h
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

/// The layer and expert of `blk.{l}.expert.{e}.…`, if it is an expert's name.
fn layer_expert(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("blk.")?;
    let (l, rest) = rest.split_once('.')?;
    let (e, _) = rest.strip_prefix("expert.")?.split_once('.')?;
    Some((l.parse().ok()?, e.parse().ok()?))
}

/// `blk.{l}.expert.{e}.`'s mean gate weight in `routing` (over all modalities), if it is an expert that was routed.
fn gate_weight(routing: &Routing, name: &str) -> Option<f64> {
    let (l, e) = layer_expert(name)?;
    let layer = routing.layers.iter().find(|r| r.layer == l)?;
    let (mut n, mut w) = (0u64, 0f64);
    for m in layer.modalities.values() {
        let c = *m.count.get(e)?;
        n += c;
        w += c as f64 * m.mean_weight.get(e)?;
    }
    (n > 0).then(|| w / n as f64)
}

/// Sets the type of every unit of `choices` (the plan for `src`, at base type `base`) within `target`, from the
/// importance statistics `imp`, the same text's `routing`, and `probe(types)`: the KL against the input of the
/// model with every tensor stored as `types` says. Reports each matrix level measured and each probe to
/// `progress(done, total)`.
#[allow(clippy::too_many_arguments)]
pub fn choose(
    src: &FlintFile,
    choices: &mut [Choice],
    base: DType,
    imp: &Importance,
    routing: Option<&Routing>,
    target: Target,
    probe: &mut dyn FnMut(&[DType]) -> Result<f64, QuantError>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Mix, QuantError> {
    let tensors = src.tensors();
    let stored = |i: usize, d: DType| {
        let s = &tensors[i].shape;
        convert::stored_type(d, s)
            .byte_size(&[s[0] as u64, s[1] as u64])
            .unwrap_or(0)
    };
    let mut levels = vec![DType::Q2M, base, DType::Q8];
    levels.sort_by_key(|d| d.block_bytes() * 32 / d.block_values());
    levels.dedup();
    let matrices: Vec<usize> = (0..tensors.len())
        .filter(|&i| tensors[i].shape.len() == 2)
        .collect();
    let all_params: u64 = matrices.iter().map(|&i| tensors[i].numel() as u64).sum();
    // Units: the candidates (matrices at the base type by default), by paging group or alone. A matrix outside the
    // experts that no matmul read on the importance text (a token embedding, which is looked up) has nothing
    // measured: it keeps the base type. An expert nobody routed to is a candidate: it is not needed on this text.
    let candidate = |i: usize| {
        choices[i].to == base
            && choices[i].reason == Reason::Weights
            && (tensors[i].group != 0 || imp.rows(i) > 0)
    };
    let per_expert = tensors.iter().any(|t| t.group != 0);
    let mut groups: BTreeMap<(u32, usize), Vec<usize>> = BTreeMap::new();
    for &i in matrices.iter().filter(|&&i| candidate(i)) {
        let g = tensors[i].group;
        let key = if g != 0 { (g, 0) } else { (0, i) };
        groups.entry(key).or_default().push(i);
    }
    // Experts the importance text never routed to, in layers where it routed to others: pruned, with every tensor
    // of their paging group (a matrix kept at its type is never read either).
    let unit_name = |m: &[usize]| {
        let names: Vec<&str> = m.iter().map(|&i| tensors[i].name.as_str()).collect();
        if m.len() > 1 {
            common_prefix(&names)
        } else {
            names[0].to_string()
        }
    };
    let routed = |m: &[usize]| m.iter().any(|&i| imp.rows(i) > 0);
    let routed_layers: std::collections::BTreeSet<usize> = groups
        .values()
        .filter(|m| routed(m))
        .filter_map(|m| layer_expert(&unit_name(m)).map(|x| x.0))
        .collect();
    let (mut pruned, mut pruned_experts, mut dropped) = (Vec::new(), BTreeMap::new(), Vec::new());
    groups.retain(|&(g, _), m| {
        let name = unit_name(m);
        match layer_expert(&name) {
            Some((l, e)) if g != 0 && !routed(m) && routed_layers.contains(&l) => {
                pruned_experts
                    .entry(l.to_string())
                    .or_insert_with(Vec::new)
                    .push(e);
                dropped.extend((0..tensors.len()).filter(|&i| tensors[i].group == g));
                pruned.push(name);
                false
            }
            _ => true,
        }
    });
    // Bits per weight count the matrices the file keeps.
    let params = all_params
        - dropped
            .iter()
            .map(|&i| tensors[i].numel() as u64)
            .sum::<u64>();
    let bpw = |b: u64| 8.0 * b as f64 / params.max(1) as f64;
    // Bytes of the matrices that are not candidates, and of every candidate at the cheapest level.
    let fixed: u64 = matrices
        .iter()
        .filter(|&&i| !candidate(i) && !dropped.contains(&i))
        .map(|&i| stored(i, choices[i].to))
        .sum();
    let cheapest: u64 = groups
        .values()
        .flatten()
        .map(|&i| stored(i, levels[0]))
        .sum();
    // The report this adds to the metadata: room for every decision.
    let report_room = 64 * 1024 + 320 * groups.len() as u64;
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
    if budget < fixed + cheapest {
        return Err(QuantError::Options(format!(
            "the target ({:.3} bits/weight over the matrices) is below what the matrices take with every unit at {} \
             ({:.3}); aim higher",
            bpw(budget),
            levels[0],
            bpw(fixed + cheapest)
        )));
    }
    let kinds: std::collections::BTreeSet<String> =
        groups.values().map(|m| kind(&tensors[m[0]].name)).collect();
    let layers: std::collections::BTreeSet<usize> = groups
        .values()
        .filter_map(|m| layer_of(&tensors[m[0]].name))
        .collect();
    let total: usize = groups
        .values()
        .map(|m| m.len() * levels.len())
        .sum::<usize>()
        + kinds.len()
        + layers.len();
    let mut done = 0;
    let mut units = Vec::with_capacity(groups.len());
    for (_, members) in groups {
        let name = unit_name(&members);
        let scale = routing
            .and_then(|r| gate_weight(r, &name))
            .map_or(1.0, |w| w * w);
        let (mut errors, mut bytes) = (vec![0f64; levels.len()], vec![0u64; levels.len()]);
        let mut rows = 0;
        for &i in &members {
            let n = imp.rows(i);
            rows += n;
            for (k, &d) in levels.iter().enumerate() {
                bytes[k] += stored(i, d);
                if n > 0 {
                    let e = row_error(src, i, d, imp.get(i)).map_err(|msg| QuantError::Tensor {
                        path: src.path().to_path_buf(),
                        name: tensors[i].name.clone(),
                        msg,
                    })?;
                    errors[k] += scale * n as f64 * e;
                }
                done += 1;
                progress(done, total);
            }
        }
        units.push(Unit {
            name,
            members,
            rows,
            errors,
            bytes,
            hull: Vec::new(),
            at: 0,
        });
    }
    // The probes: each kind's candidates at the cheapest level, all else as in the input; then each layer's.
    let mut run_probe = |sel: &dyn Fn(&Unit) -> bool| -> Result<f64, QuantError> {
        let mut types: Vec<DType> = tensors.iter().map(|t| t.dtype).collect();
        for u in units.iter().filter(|u| sel(u)) {
            for &i in &u.members {
                types[i] = convert::stored_type(levels[0], &tensors[i].shape);
            }
        }
        let kl = probe(&types)?.max(0.0);
        done += 1;
        progress(done, total);
        Ok(kl)
    };
    let mut kind_kl = BTreeMap::new();
    for k in &kinds {
        kind_kl.insert(k.clone(), run_probe(&|u| kind(&u.name) == *k)?);
    }
    let mut layer_kl = BTreeMap::new();
    for &l in &layers {
        layer_kl.insert(l, run_probe(&|u| layer_of(&u.name) == Some(l))?);
    }
    // Each unit's error becomes estimated KL by a factor per kind times one per layer (1 outside the layers),
    // fitted so that every probe's units add up to its KL: alternately, each kind's factor from its probe given
    // the layers', and each layer's from its probe given the kinds' (a rank-one fit, as iterative proportional
    // fitting does it).
    let (mut ks, mut ls): (BTreeMap<String, f64>, BTreeMap<usize, f64>) = (
        kinds.iter().map(|k| (k.clone(), 1.0)).collect(),
        layers.iter().map(|&l| (l, 1.0)).collect(),
    );
    let unit_keys: Vec<(String, Option<usize>)> = units
        .iter()
        .map(|u| (kind(&u.name), layer_of(&u.name)))
        .collect();
    for _ in 0..50 {
        for (k, f) in ks.iter_mut() {
            let sum: f64 = units
                .iter()
                .zip(&unit_keys)
                .filter(|(_, (uk, _))| uk == k)
                .map(|(u, (_, l))| u.errors[0] * l.map_or(1.0, |l| ls[&l]))
                .sum();
            *f = if sum > 0.0 { kind_kl[k] / sum } else { 0.0 };
        }
        for (l, f) in ls.iter_mut() {
            let sum: f64 = units
                .iter()
                .zip(&unit_keys)
                .filter(|(_, (_, ul))| *ul == Some(*l))
                .map(|(u, (k, _))| u.errors[0] * ks[k])
                .sum();
            *f = if sum > 0.0 { layer_kl[l] / sum } else { 1.0 };
        }
    }
    for (u, (k, l)) in units.iter_mut().zip(&unit_keys) {
        let f = ks[k] * l.map_or(1.0, |l| ls[&l]);
        u.errors.iter_mut().for_each(|e| *e *= f);
    }
    let (probes, layer_probes) = (probe_table(&kind_kl, &ks), probe_table(&layer_kl, &ls));
    for u in &mut units {
        u.hull = hull(&u.bytes, &u.errors);
    }
    // Every step up a hull, most error removed per byte first.
    let mut steps: Vec<(f64, usize, usize)> = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        for s in 1..unit.hull.len() {
            let (a, b) = (unit.hull[s - 1], unit.hull[s]);
            let per_byte =
                (unit.errors[a] - unit.errors[b]) / (unit.bytes[b] - unit.bytes[a]) as f64;
            steps.push((per_byte, u, s));
        }
    }
    steps.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut left = budget - fixed - cheapest;
    let mut blocked = vec![false; units.len()];
    for (_, u, s) in steps {
        let unit = &mut units[u];
        if blocked[u] || unit.at + 1 != s {
            continue;
        }
        let cost = unit.bytes[unit.hull[s]] - unit.bytes[unit.hull[s - 1]];
        if cost <= left {
            left -= cost;
            unit.at = s;
        } else {
            blocked[u] = true;
        }
    }
    let mut decisions = Vec::with_capacity(units.len());
    let mut counts = BTreeMap::new();
    for unit in &units {
        let k = unit.hull[unit.at];
        let to = levels[k];
        for &i in &unit.members {
            choices[i].to = to;
            if to != base {
                choices[i].reason = Reason::Auto;
            }
        }
        *counts.entry(to.name().to_string()).or_insert(0) += 1;
        decisions.push(Decision {
            name: unit.name.clone(),
            dtype: to.name().to_string(),
            rows: unit.rows,
            errors: levels
                .iter()
                .zip(&unit.errors)
                .map(|(d, &e)| (d.name().to_string(), e))
                .collect(),
            bytes: unit.bytes[k],
        });
    }
    for name in &pruned {
        decisions.push(Decision {
            name: name.clone(),
            dtype: "pruned".to_string(),
            rows: 0,
            errors: BTreeMap::new(),
            bytes: 0,
        });
    }
    if !pruned.is_empty() {
        counts.insert("pruned".to_string(), pruned.len());
    }
    decisions.sort_by(|a, b| {
        let first = |d: &Decision| d.errors.get(levels[0].name()).copied().unwrap_or(0.0);
        first(b)
            .total_cmp(&first(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(Mix {
        target_bpw: bpw(budget),
        base: base.name().to_string(),
        levels: levels.iter().map(|d| d.name().to_string()).collect(),
        per_expert,
        counts,
        probes,
        layer_probes,
        decisions,
        pruned,
        pruned_experts,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::{common_prefix, hull, kind};

    #[test]
    fn kinds_drop_the_layer_and_the_expert() {
        assert_eq!(kind("blk.3.attn_q"), "attn_q");
        assert_eq!(kind("blk.12.expert.7."), "expert");
        assert_eq!(kind("blk.0.shexp.ffn_up"), "shexp.ffn_up");
        assert_eq!(kind("output"), "output");
    }

    #[test]
    fn hull_keeps_the_levels_worth_their_bytes() {
        // Convex already: every level.
        assert_eq!(hull(&[12, 18, 34], &[9.0, 3.0, 1.0]), vec![0, 1, 2]);
        // The middle level removes less per byte than going straight to the last: skipped.
        assert_eq!(hull(&[12, 18, 34], &[9.0, 8.0, 1.0]), vec![0, 2]);
        // A dearer level that does not lower the error is never taken; no error at all: the cheapest only.
        assert_eq!(hull(&[12, 18, 34], &[9.0, 3.0, 3.0]), vec![0, 1]);
        assert_eq!(hull(&[12, 18, 34], &[0.0, 0.0, 0.0]), vec![0]);
    }

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
