//! A two-turn conversation, streamed: the second turn reuses the cache of the first and prefills only what is new.
//!
//!     cargo run --release -p flint-engine --example chat -- MODEL.flint

use anyhow::Context;
use flint_engine::{Event, Flint};
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: chat MODEL.flint")?;
    let flint = Flint::open(&path)?;
    let mut chat = flint.chat();
    for question in ["Name the capital of France.", "And the capital of Italy?"] {
        println!("> {question}");
        let reply = chat.turn(question).max_tokens(48).run(|e| {
            if let Event::Answer(t) = e {
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
        })?;
        println!();
        eprintln!(
            "({} new prompt tokens, {} generated, {:.1} tok/s)",
            reply.stats.prompt_tokens,
            reply.stats.generated,
            reply.stats.decode_tok_s()
        );
    }
    Ok(())
}
