//! Options and helpers shared by the subcommands that run a model.

use anyhow::Context;
use flint_model::Model;
use std::path::PathBuf;
use std::time::Instant;

/// Model and machine options common to `run`, `logits` and `bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// The .flint model file.
    #[arg(short, long)]
    pub model: PathBuf,
    /// Worker threads for the kernels (default: the board profile's, else 1).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// KV cache element type: f16 (default), f32 (exact; what conformance checks use) or q8 (8-bit, an f16 scale
    /// per 32 values: about half of f16's bytes).
    #[arg(long, default_value = "f16")]
    pub kv: flint_model::KvDtype,
}

impl ModelArgs {
    /// The KV cache layout these options ask for.
    pub fn kv_options(&self) -> flint_model::KvOptions {
        flint_model::KvOptions::with_dtype(self.kv)
    }
}

/// The board profile `--board` names, if any.
pub fn board_profile(board: Option<&str>) -> anyhow::Result<Option<flint_targets::Profile>> {
    board
        .map(|name| flint_targets::load(name).with_context(|| format!("board profile `{name}`")))
        .transpose()
}

/// Applies the board profile and thread count, checks `FLINT_KERNELS`, and loads the model. Returns the model and
/// the load time in seconds.
pub fn load(args: &ModelArgs, board: Option<&str>) -> anyhow::Result<(Model, f64)> {
    flint_kernels::select_from_env().context("FLINT_KERNELS")?;
    let mut threads = (1, "the default".to_string());
    if let (Some(p), Some(name)) = (board_profile(board)?, board) {
        threads = (p.threads(), format!("board profile `{name}`: `threads`"));
    }
    if let Some(t) = args.threads {
        threads = (t, "--threads".into());
    }
    flint_kernels::set_threads(check_threads(threads.0, &threads.1)?);
    let t0 = Instant::now();
    let model =
        Model::open(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    Ok((model, t0.elapsed().as_secs_f64()))
}

/// Checks a thread count from `what` (an option or a board profile key): 0 means one per CPU; more than
/// [`flint_kernels::max_threads`] is an error, more than the available CPUs a warning.
pub fn check_threads(n: usize, what: &str) -> anyhow::Result<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = flint_kernels::max_threads();
    if n > cap {
        anyhow::bail!(
            "{what}: {n} threads exceeds the cap of {cap} (4 x the {cpus} available CPUs, at most {})",
            flint_kernels::MAX_THREADS
        );
    }
    if n > cpus {
        eprintln!("warning: {what}: {n} threads on {cpus} available CPUs");
    }
    Ok(n)
}

/// Reads a text input of at most `max` bytes (`flint logits --ids-file`), naming the file in every error.
pub fn read_text_capped(path: &std::path::Path, max: u64) -> anyhow::Result<String> {
    flint_model::config::limits::read_to_string_capped(path, max)
        .with_context(|| format!("reading {}", path.display()))
}

/// Writes `bytes` to `path` atomically: a temp file beside it, synced, then renamed over it. A device or pipe
/// (`-o /dev/null`, `/dev/stdout`) is written in place: renaming a temp file over it would replace the device node.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        return f
            .write_all(bytes)
            .and_then(|_| f.flush())
            .with_context(|| format!("writing {}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
