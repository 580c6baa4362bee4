//! `flint logits`: run one prompt (token ids, or processor outputs with media) and write the logits of every
//! position as a float32 .npy `[positions, vocab]`. Needs no tokenizer.

use crate::common::{load, ModelArgs};
use anyhow::{bail, Context};
use flint_model::multimodal::{Deepstack, Media, MediaPrompt, Towers};
use flint_model::{Batch, Logits};
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
    let mut deepstack = prompt.deepstack();
    let logits = model.forward_batch(&batch, &mut kv, Deepstack::as_hook(&mut deepstack), None)?;
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
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::common::write_atomic(path, &bytes)
}
