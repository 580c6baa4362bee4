//! An answer kept to a JSON Schema: the value always parses and validates, or the turn says it is incomplete.
//!
//!     cargo run --release -p flint-engine --example json -- MODEL.flint

use anyhow::{ensure, Context};
use flint_engine::Flint;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: json MODEL.flint")?;
    let flint = Flint::open(&path)?;
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "maxLength": 40},
            "population_millions": {"type": "integer", "minimum": 0, "maximum": 100}
        },
        "required": ["city", "country", "population_millions"]
    });
    let mut chat = flint.chat();
    let reply = chat
        .turn("What is the capital of France, and how many million people live there? Answer in JSON.")
        .json_schema(&schema)?
        .max_tokens(96)
        .run(|_| {})?;
    ensure!(
        reply.complete,
        "96 tokens were not enough for the whole value"
    );
    let v: serde_json::Value = serde_json::from_str(&reply.answer)?;
    println!("{v}");
    Ok(())
}
