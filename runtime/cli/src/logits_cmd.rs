//! `flint logits`: run one prompt (token ids, or processor outputs with media) and write the logits of every
//! position as a float32 .npy `[positions, vocab]`. Needs no tokenizer.

use crate::common::{load, ModelArgs};
use anyhow::{bail, Context};
use flint_model::multimodal::{Media, MediaPrompt, Towers};
use flint_model::{Batch, Logits};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comma-separated token ids.
    #[arg(
        long,
        conflicts_with_all = ["ids_file", "inputs"],
        required_unless_present_any = ["ids_file", "inputs"]
    )]
    pub ids: Option<String>,
    /// A file of token ids separated by commas or whitespace.
    #[arg(long, conflicts_with = "inputs")]
    pub ids_file: Option<PathBuf>,
    /// Processor outputs as a safetensors file, under their Hugging Face names (input_ids, pixel_values,
    /// image_grid_thw, pixel_values_videos, video_grid_thw, input_values, input_values_mask; an `in.` prefix is
    /// accepted): the towers encode the media and their rows replace the placeholders.
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Output .npy file (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
}

fn parse_ids(s: &str, what: &str) -> anyhow::Result<Vec<u32>> {
    let ids = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>()
                .with_context(|| format!("{what}: `{t}` is not a token id"))
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    if ids.is_empty() {
        bail!("{what}: no token ids");
    }
    Ok(ids)
}

pub fn run(a: LogitsArgs, board: Option<&str>) -> anyhow::Result<()> {
    let (ids, media) = match (&a.ids, &a.ids_file, &a.inputs) {
        (Some(s), _, _) => (parse_ids(s, "--ids")?, Media::default()),
        (None, Some(p), _) => {
            let s =
                crate::common::read_text_capped(p, flint_model::config::limits::MAX_INPUT_BYTES)?;
            (parse_ids(&s, &p.display().to_string())?, Media::default())
        }
        (None, None, Some(p)) => crate::inputs::read(p)?,
        (None, None, None) => bail!("give --ids, --ids-file or --inputs"),
    };
    let (model, _) = load(&a.model, board)?;
    let n = ids.len();
    let prompt = if media.is_empty() {
        MediaPrompt::text(&model, ids)
    } else {
        let towers = Towers::load(&model)?;
        let what = a
            .inputs
            .as_deref()
            .unwrap_or(Path::new("--inputs"))
            .display();
        MediaPrompt::encode(&model, &towers, model.exec(), ids, &media)
            .with_context(|| format!("{what}: the inputs do not fit the model"))?
            .0
    };
    let mut kv = model.new_kv(a.model.kv_options());
    let seq = kv.new_seq();
    let mut batch = Batch::new();
    prompt.push(&mut batch, seq, 0, Logits::All);
    let logits = model.forward_batch(&batch, &mut kv, None, None)?;
    write_npy(&a.output, &logits, &[n, model.config.vocab_size])
}

/// Writes a little-endian float32 C-order .npy (format version 1.0), atomically.
pub fn write_npy(path: &Path, data: &[f32], shape: &[usize]) -> anyhow::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' is padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let body = |f: &mut dyn Write| -> std::io::Result<()> {
        f.write_all(b"\x93NUMPY\x01\x00")?;
        f.write_all(&(header.len() as u16).to_le_bytes())?;
        f.write_all(header.as_bytes())?;
        for v in data {
            f.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    };
    // A device or pipe (`-o /dev/null`, `/dev/stdout`) is written in place: renaming a temp file over it would
    // replace the device node itself.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        );
        return body(&mut f)
            .and_then(|_| f.flush())
            .with_context(|| format!("writing {}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        body(&mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
