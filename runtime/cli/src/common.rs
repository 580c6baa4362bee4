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
    #[command(flatten)]
    pub paging: PagingArgs,
    /// Positions of KV cache a memory budget keeps room for (a command that knows how many it runs sets it; else
    /// the model's context, at most 4096).
    #[arg(skip)]
    pub kv_tokens: Option<usize>,
}

/// Expert paging (an MoE model larger than its memory budget).
#[derive(clap::Args, Debug, Clone)]
pub struct PagingArgs {
    /// Memory budget for the model: bytes with K, M or G, or a share of the model file (`25%`). An MoE model that
    /// does not fit pages its experts through a resident set of what is left after the mapped weights and the KV
    /// cache (default: the board profile's `memory.budget_mib`).
    #[arg(long, value_name = "SIZE")]
    pub mem_budget: Option<String>,
    /// Which resident expert leaves to make room: lru, lfu, or pinned (the calibration's most routed experts kept,
    /// from the routing statistics flint-quantize records).
    #[arg(long, default_value = "lfu", value_name = "POLICY")]
    pub paging_policy: flint_model::Policy,
    /// Throttle expert reads to a storage rate in MB/s (an SD card reads about 90, UFS or NVMe 1000 to 2000).
    #[arg(long, value_name = "MB/S")]
    pub io_rate: Option<f64>,
    /// Do not pre-gate the next layer to prefetch its experts.
    #[arg(long)]
    pub no_prefetch: bool,
    /// Read experts through the page cache (dropping them from it after) instead of with O_DIRECT.
    #[arg(long)]
    pub buffered_io: bool,
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
    let mut model =
        Model::open(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let budget = match &args.paging.mem_budget {
        Some(s) => Some((s.clone(), "--mem-budget".to_string())),
        None => board_profile(board)?.map(|p| {
            (
                format!("{}", p.memory_budget_bytes()),
                format!(
                    "board profile `{}`: memory.budget_mib",
                    board.unwrap_or_default()
                ),
            )
        }),
    };
    if let Some((size, what)) = budget {
        enable_paging(&mut model, args, &size, &what)?;
    }
    Ok((model, t0.elapsed().as_secs_f64()))
}

/// Positions of KV cache a memory budget keeps room for.
const KV_RESERVE_TOKENS: usize = 4096;

/// Turns on expert paging when `size` (from `what`) is smaller than the model needs; says how it split on stderr.
fn enable_paging(
    model: &mut Model,
    args: &ModelArgs,
    size: &str,
    what: &str,
) -> anyhow::Result<()> {
    use flint_model::paging;
    let path = args.model.display().to_string();
    let file_len = model.file().file_len() as u64;
    let total = paging::parse_size(size, file_len).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let experts = model.expert_bytes();
    let tokens = args
        .kv_tokens
        .unwrap_or(KV_RESERVE_TOKENS)
        .min(model.config.max_position_embeddings);
    let reserve = paging::RESERVE + paging::kv_reserve(&model.config, args.kv, tokens);
    let Some(budget) = paging::expert_budget(total, file_len, experts, reserve)
        .map_err(|e| anyhow::anyhow!("{what}: {path}: {e}"))?
    else {
        return Ok(());
    };
    let pins = match args.paging.paging_policy {
        flint_model::Policy::Pinned => Some(crate::experts::routing_frequency(model.file())?),
        _ => None,
    };
    let opts = flint_model::PagingOptions {
        budget,
        policy: args.paging.paging_policy,
        direct: !args.paging.buffered_io,
        io_rate: args.paging.io_rate.map(|r| r * 1e6),
        prefetch: !args.paging.no_prefetch,
        pins,
    };
    model
        .enable_paging(&opts)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "paging: {what} {:.1} MiB = {:.1} MiB mapped weights + {:.1} MiB KV and scratch + {:.1} MiB for experts \
         ({:.0}% of their {:.1} MiB; {:?}, {}{})",
        mib(total),
        mib(file_len - experts),
        mib(reserve),
        mib(budget),
        100.0 * budget as f64 / experts.max(1) as f64,
        mib(experts),
        opts.policy,
        if model.pager().is_some_and(|p| p.stats().direct) {
            "O_DIRECT"
        } else {
            "buffered reads"
        },
        match opts.io_rate {
            Some(r) => format!(", reads throttled to {:.0} MB/s", r / 1e6),
            None => String::new(),
        }
    );
    Ok(())
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
