//! `flint overlay`: draws the boxes and points of a model's answer onto the frame it was about.

use anyhow::{bail, Context};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct OverlayArgs {
    /// The frame the answer is about (JPEG or PNG).
    #[arg(long)]
    pub image: PathBuf,
    /// The answer's text.
    #[arg(short, long, conflicts_with = "text_file")]
    pub text: Option<String>,
    /// A file holding the answer's text.
    #[arg(long)]
    pub text_file: Option<PathBuf>,
    /// How the model writes boxes: qwen2.5-vl, qwen3-vl, qwen2-vl, paligemma, florence2.
    #[arg(long)]
    pub box_format: flint_answer::Format,
    /// The size the preprocessor resized the frame to, WxH (qwen2.5-vl gives pixels of that; default: the
    /// frame's own size).
    #[arg(long, value_parser = parse_size)]
    pub resized: Option<(u32, u32)>,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}` is not WxH"))?;
    let p = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|&v| (1..=1 << 16).contains(&v))
    };
    match (p(w), p(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("`{s}`: width and height must be 1..=65536")),
    }
}

pub fn run(a: OverlayArgs) -> anyhow::Result<()> {
    let answer = match (&a.text, &a.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => crate::common::read_text_capped(f, 16 << 20)
            .with_context(|| format!("reading {}", f.display()))?,
        (None, None) => bail!("give the answer with --text or --text-file"),
    };
    crate::overlay::render(&a.image, a.resized, a.box_format, &answer, None, &a.output)
}
