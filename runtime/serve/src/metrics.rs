//! Counters the scheduler and the HTTP layer share, rendered as Prometheus text at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests accepted into the queue.
    pub requests: AtomicU64,
    /// Requests refused because the queue was full.
    pub rejected: AtomicU64,
    /// Requests whose client went away before they finished.
    pub cancelled: AtomicU64,
    /// Requests waiting for the scheduler.
    pub queued: AtomicU64,
    /// Choices being decoded.
    pub live: AtomicU64,
    /// Prompt tokens prefilled (not counting those reused from the prefix cache).
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens reused from the prefix cache.
    pub cached_prompt_tokens: AtomicU64,
    /// Tokens the prefix cache holds.
    pub cached_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub decode_steps: AtomicU64,
    /// Time spent in decode steps, in microseconds.
    pub decode_us: AtomicU64,
    /// Tokens per second of the last decode step (all sequences of the batch), times 1000.
    pub last_step_milli_tok_s: AtomicU64,
    /// Bytes of KV blocks in use.
    pub kv_bytes: AtomicU64,
}

impl Metrics {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    pub fn sub(c: &AtomicU64, n: u64) {
        // Saturating: a counter must never wrap to 2^64 in the report.
        let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }

    /// The Prometheus text exposition of every counter, plus the process's resident memory (one metric per row,
    /// kept unformatted).
    #[rustfmt::skip]
    pub fn render(&self) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed) as f64;
        let decode_s = g(&self.decode_us) / 1e6;
        let tok_s = if decode_s > 0.0 { g(&self.generated_tokens) / decode_s } else { 0.0 };
        let rows: [(&str, &str, &str, f64); 15] = [
            ("flint_requests_total", "counter", "Requests accepted.", g(&self.requests)),
            ("flint_requests_rejected_total", "counter", "Requests refused: queue full.", g(&self.rejected)),
            ("flint_requests_cancelled_total", "counter", "Requests whose client disconnected.", g(&self.cancelled)),
            ("flint_queue_depth", "gauge", "Requests waiting for the scheduler.", g(&self.queued)),
            ("flint_live_sequences", "gauge", "Choices being decoded.", g(&self.live)),
            ("flint_prompt_tokens_total", "counter", "Prompt tokens prefilled.", g(&self.prompt_tokens)),
            ("flint_prompt_tokens_cached_total", "counter", "Prompt tokens reused from the prefix cache.",
                g(&self.cached_prompt_tokens)),
            ("flint_prefix_cache_tokens", "gauge", "Tokens the prefix cache holds.", g(&self.cached_tokens)),
            ("flint_generated_tokens_total", "counter", "Tokens generated.", g(&self.generated_tokens)),
            ("flint_decode_steps_total", "counter", "Batched decode steps.", g(&self.decode_steps)),
            ("flint_decode_seconds_total", "counter", "Time in decode steps.", decode_s),
            ("flint_decode_tokens_per_second", "gauge", "Generated tokens over decode time, since start.", tok_s),
            ("flint_last_step_tokens_per_second", "gauge", "Tokens per second of the last decode step.",
                g(&self.last_step_milli_tok_s) / 1000.0),
            ("flint_kv_bytes", "gauge", "Bytes of KV cache memory (blocks in use or free).", g(&self.kv_bytes)),
            ("flint_resident_bytes", "gauge", "Resident memory of the process.", resident_bytes() as f64),
        ];
        let mut s = String::new();
        for (name, kind, help, v) in rows {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        s
    }
}

/// Resident set size from /proc/self/statm (0 where there is none).
pub fn resident_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
