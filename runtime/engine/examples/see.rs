//! A turn with an image: the answer streams, and each box or point it names comes out as soon as it is written,
//! in the photo's own pixels.
//!
//!     cargo run --release -p flint-engine --example see -- MODEL.flint PHOTO.jpg [qwen2.5-vl|qwen3-vl|...]

use anyhow::Context;
use flint_engine::{BoxFormat, Event, Flint};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (model, photo) = (
        args.next()
            .context("usage: see MODEL.flint PHOTO [BOX_FORMAT]")?,
        args.next()
            .context("usage: see MODEL.flint PHOTO [BOX_FORMAT]")?,
    );
    let format: BoxFormat = args
        .next()
        .unwrap_or_else(|| "qwen3-vl".into())
        .parse()
        .map_err(anyhow::Error::msg)?;
    let flint = Flint::open(&model)?;
    let mut chat = flint.chat();
    let reply = chat
        .turn("Point at the face in this photo.")
        .image(&photo)
        .boxes(format)
        .max_tokens(32)
        .run(|e| match e {
            Event::Answer(t) => print!("{t}"),
            Event::Overlay(o) => eprintln!("\noverlay: {o:?}"),
            Event::Reasoning(_) => {}
        })?;
    println!();
    let f = reply.frames.first().context("the image's frame")?;
    eprintln!(
        "{} overlays; the photo is {}x{}, the model saw {}x{}",
        reply.overlays.len(),
        f.width,
        f.height,
        f.resized_width,
        f.resized_height
    );
    Ok(())
}
