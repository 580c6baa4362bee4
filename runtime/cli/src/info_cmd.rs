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
    let f = FlintFile::open(&path)?;
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
