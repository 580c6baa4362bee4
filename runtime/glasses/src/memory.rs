//! The loop's memory: what its model files take, checked against the board's budget before anything loads, and
//! the resident set reported at each turn (the soak in BENCHMARKS.md watches it).
//!
//! The files are memory-mapped, so they count in full against the budget. When they exceed it and the answer model
//! is a Mixture of Experts, its experts are paged (flint-model's pager) within what the other models leave:
//! the answer model's non-expert weights stay mapped, a KV cache of [`KV_TOKENS`] positions is kept aside, and the
//! experts get the rest, least frequently used leaving first.

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

/// KV positions a paged answer model keeps room for (a turn's frame, question and answer, and some history).
pub const KV_TOKENS: usize = 4096;

/// Fits the models into `budget` bytes (`what` names where the budget came from): nothing to do when their files
/// fit; else pages the experts of `answer` (loaded from `m.answer`) within what the other models leave, and says
/// how it split. Refuses to start when that cannot fit: a dense answer model, or one whose mapped weights and KV
/// cache alone exceed its share.
pub fn fit_budget(
    m: &ModelPaths,
    answer: &mut flint_model::Model,
    budget: u64,
    what: &str,
) -> Result<Option<String>> {
    use flint_model::paging;
    let need = model_bytes(m);
    if need <= budget {
        return Ok(None);
    }
    let over = || {
        format!(
            "the models take {} MiB of files ({}, {}, ...), over the memory budget of {} MiB ({what})",
            need >> 20,
            m.answer.display(),
            m.vad.display(),
            budget >> 20
        )
    };
    let others = need.saturating_sub(bytes_of(&m.answer));
    let Some(share) = budget.checked_sub(others) else {
        bail!(
            "{}; the other models alone take {} MiB",
            over(),
            others >> 20
        );
    };
    let file_len = answer.file().file_len() as u64;
    let experts = answer.expert_bytes();
    let tokens = KV_TOKENS.min(answer.config.max_position_embeddings);
    let reserve =
        paging::RESERVE + paging::kv_reserve(&answer.config, flint_model::KvDtype::F16, tokens);
    let experts_budget = match paging::expert_budget(share, file_len, experts, reserve) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => bail!(
            "{}, and paging the answer model's experts cannot fit it: {e}",
            over()
        ),
    };
    let opts = flint_model::PagingOptions {
        budget: experts_budget,
        policy: flint_model::Policy::Lfu,
        direct: true,
        io_rate: None,
        prefetch: true,
        pins: None,
    };
    answer
        .enable_paging(&opts)
        .map_err(|e| anyhow::anyhow!("{}: paging the answer model's experts: {e}", over()))?;
    Ok(Some(format!(
        "the models' files ({} MiB) exceed the budget of {} MiB ({what}): the answer model pages its experts \
         within {} MiB ({:.0}% of their {} MiB, lfu), beside {} MiB of its mapped weights and {} MiB for its KV \
         cache and scratch",
        need >> 20,
        budget >> 20,
        experts_budget >> 20,
        100.0 * experts_budget as f64 / experts.max(1) as f64,
        experts >> 20,
        (file_len - experts) >> 20,
        reserve >> 20
    )))
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
