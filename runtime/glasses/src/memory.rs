//! The loop's memory: what its model files take, checked against the board's budget before anything loads, and
//! the resident set reported at each turn (the soak in BENCHMARKS.md watches it).
//!
//! The files are memory-mapped, so they count in full against the budget: paging experts under a budget smaller
//! than the model is the distilled-experts issue's work, not the loop's.

use crate::run::ModelPaths;
use anyhow::{bail, Result};
use std::path::Path;

/// Bytes of a file, or of the files directly in a folder (a CTranslate2 model folder); 0 when unreadable (the
/// loader says why afterwards).
fn bytes_of(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => m.len(),
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
        _ => 0,
    }
}

/// Bytes of every model file the loop maps or loads.
pub fn model_bytes(m: &ModelPaths) -> u64 {
    let mut n = bytes_of(&m.answer) + bytes_of(&m.vad);
    if let Some(a) = &m.asr {
        n += bytes_of(a);
    }
    if let Some((d, r)) = &m.ocr {
        n += bytes_of(d) + bytes_of(r);
    }
    n
}

/// Refuses to start when the model files alone exceed `budget` bytes (`what` names where the budget came from).
pub fn check_budget(m: &ModelPaths, budget: u64, what: &str) -> Result<()> {
    let need = model_bytes(m);
    if need > budget {
        bail!(
            "the models take {} MiB of files ({}, {}, ...), over the memory budget of {} MiB ({what})",
            need >> 20,
            m.answer.display(),
            m.vad.display(),
            budget >> 20
        );
    }
    Ok(())
}

/// This process's resident set, MiB (Linux `/proc/self/status`); `None` elsewhere.
pub fn rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}
