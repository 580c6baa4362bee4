//! `flint info`: a model file's metadata and tensors, optionally verifying every checksum; or, with `--cpu`, the
//! CPU features found and the kernels in use.

use anyhow::{bail, Context};
use flint_format::FlintFile;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The .flint file.
    pub model: Option<PathBuf>,
    /// Check every tensor's data checksum.
    #[arg(long)]
    pub verify: bool,
    /// Print the CPU features and the active kernels.
    #[arg(long)]
    pub cpu: bool,
    /// Print only the metadata value under KEY, as JSON (e.g. `--meta quantization` for the full quality report).
    #[arg(long, value_name = "KEY")]
    pub meta: Option<String>,
    /// Show how an MoE model routed its calibration set (recorded by `flint-quantize quantize`), per layer and
    /// modality.
    #[arg(long)]
    pub experts: bool,
    /// With --experts: also write the routing as a heat map (PNG; layers x experts, one panel per modality).
    #[arg(long, value_name = "PNG", requires = "experts")]
    pub plot: Option<PathBuf>,
}

const HIDDEN_KEYS: [&str; 2] = ["tokenizer.json", "tokenizer.chat_template"];

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    if a.cpu {
        flint_kernels::select_from_env().context("FLINT_KERNELS")?;
        println!("{}", flint_kernels::cpu_report());
        if a.model.is_none() {
            return Ok(());
        }
    }
    let Some(path) = a.model else {
        bail!("give a model file (or --cpu)")
    };
    if a.experts {
        return crate::experts::run(&path, a.plot.as_deref());
    }
    let f = FlintFile::open(&path)?;
    if let Some(key) = &a.meta {
        let v = f
            .meta(key)
            .with_context(|| format!("{}: no metadata key {key:?}", path.display()))?;
        println!("{v}");
        return Ok(());
    }
    println!(
        "file: {} ({:.2} MB, format v{})",
        path.display(),
        f.file_len() as f64 / 1e6,
        f.header().version
    );
    println!("metadata:");
    if let Some(obj) = f.metadata().as_object() {
        for (k, v) in obj {
            let shown = match v {
                serde_json::Value::String(s) if HIDDEN_KEYS.contains(&k.as_str()) => {
                    format!("<{} bytes>", s.len())
                }
                other if k == "quantization" => summarize_quantization(other),
                other => other.to_string(),
            };
            println!("  {k}: {shown}");
        }
    }
    println!("tensors: {}", f.tensors().len());
    let mut total = 0usize;
    for t in f.tensors() {
        total += t.length;
        let group = if t.group > 0 {
            format!("  group {}", t.group)
        } else {
            String::new()
        };
        println!(
            "  {:<40} {:>5} {:<18} {:>12} B{group}",
            t.name,
            t.dtype.name(),
            format!("{:?}", t.shape),
            t.length
        );
    }
    println!("tensor data: {:.2} MB", total as f64 / 1e6);
    if a.verify {
        f.verify()?;
        println!("verify: all {} checksums match", f.tensors().len());
    }
    Ok(())
}

/// One line for the quantizer's report (the whole object, with its per-tensor map, is long: `--meta quantization`).
fn summarize_quantization(q: &serde_json::Value) -> String {
    let num = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}"));
    let eval = &q["eval"];
    let late = if eval["late"].is_object() {
        &eval["late"]
    } else {
        eval
    };
    let mut parts = vec![format!("{} weights", q["weights"].as_str().unwrap_or("?"))];
    if let Some(b) = q["bits_per_weight"].as_f64() {
        parts.push(format!("{b:.3} bpw"));
    }
    if let Some(kl) = num(&late["kl_mean"]) {
        parts.push(format!("KL mean {kl}"));
    }
    if let Some(t) = late["top1_agreement"].as_f64() {
        parts.push(format!("top-1 {:.2}%", 100.0 * t));
    }
    if let Some(k) = q["kept"].as_array() {
        parts.push(format!("{} matrices kept", k.len()));
    }
    let mix = &q["experts"];
    if let (Some(c), Some(d)) = (mix["counts"].as_object(), mix["decisions"].as_array()) {
        let counts: Vec<String> = c.iter().map(|(t, n)| format!("{n} {t}")).collect();
        parts.push(format!(
            "--experts auto: {} of {} {}",
            counts.join(", "),
            d.len(),
            if mix["per_expert"] == true {
                "units"
            } else {
                "matrices"
            }
        ));
    }
    format!("{} (full report: --meta quantization)", parts.join(", "))
}
