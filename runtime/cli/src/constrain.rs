//! `--json-schema` and `--grammar`: the answer kept to a grammar, built over the model's own vocabulary
//! (flint-constrain; the supported subsets are in docs/CONSTRAINTS.md). What the grammar cannot enforce is an error
//! before generation.

use anyhow::Context;
use flint_constrain::Grammar;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
pub struct ConstrainArgs {
    /// Keep the answer to this JSON Schema: stdout carries exactly the JSON value (it is printed once complete;
    /// running out of -n tokens first is an error, not invalid JSON).
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    pub json_schema: Option<PathBuf>,
    /// Keep the answer to this grammar (a subset of llama.cpp's GBNF; start rule `root`).
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<PathBuf>,
}

impl ConstrainArgs {
    pub fn is_set(&self) -> bool {
        self.json_schema.is_some() || self.grammar.is_some()
    }

    /// The file the grammar came from, for messages.
    pub fn source(&self) -> String {
        self.json_schema
            .as_ref()
            .or(self.grammar.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// The grammar the options name, compiled (errors name the file).
    pub fn grammar(&self) -> anyhow::Result<Option<Grammar>> {
        if let Some(p) = &self.json_schema {
            let src = read(p)?;
            let v: serde_json::Value =
                serde_json::from_str(&src).with_context(|| format!("{}: not JSON", p.display()))?;
            return Ok(Some(
                Grammar::from_json_schema(&v).with_context(|| p.display().to_string())?,
            ));
        }
        if let Some(p) = &self.grammar {
            let src = read(p)?;
            return Ok(Some(
                Grammar::from_gbnf(&src).with_context(|| p.display().to_string())?,
            ));
        }
        Ok(None)
    }
}

/// A grammar or schema file, capped at 1 MiB.
fn read(p: &std::path::Path) -> anyhow::Result<String> {
    const MAX: u64 = 1 << 20;
    let len = std::fs::metadata(p)
        .with_context(|| format!("{}", p.display()))?
        .len();
    anyhow::ensure!(
        len <= MAX,
        "{}: {len} bytes; the limit is {MAX}",
        p.display()
    );
    std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))
}
