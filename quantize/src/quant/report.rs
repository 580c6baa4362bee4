//! The quantization report: stored in the output's metadata under `quantization` (docs/FORMAT.md, "Quantization")
//! and printed by the CLI.

use super::eval::Eval;
use serde::Serialize;
use std::collections::BTreeMap;

/// Version of the report's structure; bumped when a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// The file that was quantized.
#[derive(Clone, Debug, Serialize)]
pub struct Source {
    /// The path as given on the command line.
    pub path: String,
    /// Its `general.weight_type`, if it had one.
    pub weight_type: Option<String>,
    pub file_bytes: u64,
}

/// A matrix left at a type other than `--weights`, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: String,
    pub reason: String,
}

/// How q8 / q4 blocks were weighted (see `quant::imatrix`).
#[derive(Clone, Debug, Serialize)]
pub struct Imatrix {
    /// The text whose activation statistics (mean square input per column) weighted each block's squared error.
    pub text: String,
    /// Its tokens, all run through the float input model.
    pub tokens: usize,
    /// q8 / q4 matrices quantized with importance weighting.
    pub weighted: usize,
    /// q8 / q4 matrices quantized with uniform importance, no matmul having read them on that text (an MoE expert
    /// no token was routed to, an embedding table not tied to the output head).
    pub uniform: Vec<String>,
}

/// Everything the `quantization` metadata key holds.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub version: u32,
    /// The `--weights` type.
    pub weights: String,
    /// The `--keep` rules, as given.
    pub keep: Vec<String>,
    pub source: Source,
    /// Size of this (the output) file, metadata included.
    pub file_bytes: u64,
    /// Bytes and values of all 2-D matrices; `bits_per_weight = 8 * matrix_bytes / matrix_params`.
    pub matrix_bytes: u64,
    pub matrix_params: u64,
    pub bits_per_weight: f64,
    /// Number of matrices per type.
    pub matrix_types: BTreeMap<String, usize>,
    /// Matrices not at the `--weights` type.
    pub kept: Vec<Kept>,
    /// The type of every tensor, by name.
    pub tensors: BTreeMap<String, String>,
    /// The calibration text the figures in `eval` were measured on.
    pub calibration: String,
    /// Importance weighting of the q8 / q4 blocks; `null` if it was turned off (`--no-imatrix`): plain squared error.
    pub imatrix: Option<Imatrix>,
    /// What `--experts auto` decided per expert (per matrix in a dense model); `null` without it.
    pub experts: Option<super::mix::Mix>,
    /// Time to collect the activation statistics (one reference pass), seconds. Not stored, as below.
    #[serde(skip)]
    pub calibrate_seconds: f64,
    /// Quantization time (converting and writing tensors), seconds. Not stored: it would make files differ run to run.
    #[serde(skip)]
    pub quantize_seconds: f64,
    /// Measurement time, seconds. Not stored, as above.
    #[serde(skip)]
    pub eval_seconds: f64,
    pub eval: Eval,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        writeln!(
            f,
            "size: {:.2} MB (from {:.2} MB, {}), matrices {:.3} bits/weight over {} values",
            mb(self.file_bytes),
            mb(self.source.file_bytes),
            self.source.weight_type.as_deref().unwrap_or("?"),
            self.bits_per_weight,
            self.matrix_params
        )?;
        let types: Vec<String> = self
            .matrix_types
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        writeln!(f, "matrices: {}", types.join(", "))?;
        // One line per (type, reason): an MoE can keep hundreds of expert matrices for the same reason.
        let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for k in &self.kept {
            groups
                .entry((&k.dtype, &k.reason))
                .or_default()
                .push(&k.name);
        }
        for ((dtype, reason), names) in groups {
            let shown = names.iter().take(4).copied().collect::<Vec<_>>().join(", ");
            let more = if names.len() > 4 {
                format!(", … ({} in all)", names.len())
            } else {
                String::new()
            };
            writeln!(f, "  kept at {dtype} ({reason}): {shown}{more}")?;
        }
        match &self.imatrix {
            Some(m) => {
                let uniform = if m.uniform.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} with uniform importance (never read on it), e.g. {}",
                        m.uniform.len(),
                        m.uniform[0]
                    )
                };
                writeln!(
                    f,
                    "importance-weighted: {} matrices, from {} tokens of {}{uniform}",
                    m.weighted, m.tokens, m.text
                )?;
            }
            None => writeln!(f, "importance weighting: off (--no-imatrix)")?,
        }
        if let Some(m) = &self.experts {
            let unit = if m.per_expert {
                "experts and matrices"
            } else {
                "matrices"
            };
            let counts: Vec<String> = m
                .levels
                .iter()
                .map(|l| format!("{} {l}", m.counts.get(l).copied().unwrap_or(0)))
                .collect();
            writeln!(
                f,
                "experts auto: {} of {} {unit} within {:.3} bits/weight (base {})",
                counts.join(", "),
                m.decisions.len(),
                m.target_bpw,
                m.base,
            )?;
            if !m.pruned.is_empty() {
                writeln!(
                    f,
                    "  {} experts never routed on the calibration set, pruned (left out, never chosen), e.g. {}",
                    m.pruned.len(),
                    m.pruned[0]
                )?;
            }
        }
        let e = &self.eval;
        writeln!(
            f,
            "measured on {} tokens ({:?}) in {} chunks of {}:",
            e.tokens, e.token_source, e.chunks, e.ctx
        )?;
        writeln!(
            f,
            "  all positions ({}): KL mean {:.6} max {:.4} nats, top-1 agreement {:.2}%",
            e.all.positions,
            e.all.kl_mean,
            e.all.kl_max,
            100.0 * e.all.top1_agreement
        )?;
        if let Some(l) = &e.late {
            writeln!(
                f,
                "  positions ctx/2.. of full chunks ({}, as llama-perplexity): KL mean {:.6} max {:.4}, top-1 {:.2}%",
                l.positions,
                l.kl_mean,
                l.kl_max,
                100.0 * l.top1_agreement
            )?;
        }
        writeln!(
            f,
            "  perplexity: reference {:.4}, quantized {:.4}",
            e.ppl_ref, e.ppl_quant
        )?;
        for (m, a) in &e.modalities {
            writeln!(
                f,
                "  {m} prompts ({} positions): KL mean {:.6} max {:.4} nats, top-1 agreement {:.2}%",
                a.positions,
                a.kl_mean,
                a.kl_max,
                100.0 * a.top1_agreement
            )?;
        }
        for s in &e.media_skipped {
            writeln!(f, "  skipped {}: {}", s.file, s.reason)?;
        }
        let layers: Vec<String> = e
            .layers
            .iter()
            .map(|l| format!("{} {:.4}", l.name, l.rel_rms))
            .collect();
        writeln!(
            f,
            "  hidden-state relative RMS error: {}",
            layers.join(", ")
        )?;
        write!(
            f,
            "time: calibrate {:.1} s, quantize {:.1} s, measure {:.1} s",
            self.calibrate_seconds, self.quantize_seconds, self.eval_seconds
        )
    }
}
