//! `flint boards`: lists the built-in board profiles, or shows and checks one.
//!
//! `flint boards` prints a table; `flint boards NAME|PATH` prints one profile in full (a profile file given by path
//! is validated, so this is also the checker for hand-written profiles); `--toml` prints a built-in's TOML to start
//! a new profile from, `--json` prints machine-readable output.

use anyhow::Context;
use flint_targets::Profile;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct BoardsArgs {
    /// A built-in board name or alias, or a path to a profile .toml file. Without it: list the built-ins.
    pub board: Option<String>,
    /// Print the profile's TOML text (built-in: the embedded copy).
    #[arg(long, requires = "board", conflicts_with = "json")]
    pub toml: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: BoardsArgs) -> anyhow::Result<()> {
    let Some(board) = a.board else {
        let all = flint_targets::try_list().context("built-in board profiles")?;
        if a.json {
            return emit(&(serde_json::to_string_pretty(&all)? + "\n"));
        }
        return emit(&table(&all));
    };
    let p = flint_targets::load(&board)?;
    if a.toml {
        emit(&toml_text(&p)?)
    } else if a.json {
        emit(&(serde_json::to_string_pretty(&p)? + "\n"))
    } else {
        emit(&details(&p))
    }
}

/// Writes to stdout; a reader that went away (`flint boards | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

fn table(all: &[Profile]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "TARGET".to_string(),
        "CORES".to_string(),
        "THREADS".to_string(),
        "FEATURES".to_string(),
        "BUDGET".to_string(),
    ]];
    for p in all {
        rows.push([
            p.name.clone(),
            p.target.triple.clone(),
            p.topology(),
            p.cpu.threads.map_or("auto".to_string(), |t| t.to_string()),
            p.target.features.join(","),
            format!("{} MiB", p.memory.budget_mib),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn details(p: &Profile) -> String {
    let cores = if p.cpu.cores.is_empty() {
        "not pinned".to_string()
    } else {
        format!("{:?} (big first)", p.cpu.cores)
    };
    let threads = match p.cpu.threads {
        Some(t) => t.to_string(),
        None => format!("auto ({} here)", p.threads()),
    };
    let mut lines = vec![
        format!("name:         {}", p.name),
        format!(
            "aliases:      {}",
            if p.aliases.is_empty() {
                "-".to_string()
            } else {
                p.aliases.join(", ")
            }
        ),
        format!("description:  {}", p.description),
        format!("source:       {}", p.source),
        format!("target:       {}", p.target.triple),
        format!("features:     {}", p.target.features.join(", ")),
        format!("cpu:          {}", p.topology()),
        format!("threads:      {threads}"),
        format!("cores:        {cores}"),
        format!(
            "memory:       budget {} MiB of {} MiB",
            p.memory.budget_mib, p.memory.total_mib
        ),
        format!("camera:       {}", p.camera.device),
        format!("microphone:   {}", p.microphone.device),
        format!("display:      {}x{}", p.display.width, p.display.height),
        format!("bridge:       {} at {} baud", p.bridge.port, p.bridge.baud),
    ];
    if !p.accelerators.is_empty() {
        lines.push(format!(
            "accelerators: {} (not used by flint)",
            p.accelerators.join(", ")
        ));
    }
    lines.join("\n") + "\n"
}

/// The profile's own text: the embedded TOML for a built-in, the file for a path.
fn toml_text(p: &Profile) -> anyhow::Result<String> {
    if let Some(file) = p.source.strip_prefix("built-in:") {
        if let Some((_, text)) = flint_targets::BUILTIN.iter().find(|(f, _)| *f == file) {
            return Ok(text.to_string());
        }
    }
    std::fs::read_to_string(&p.source).with_context(|| format!("reading {}", p.source))
}
