//! TOML text to a checked [`Profile`], with errors that say which file, line and key.

use crate::{Profile, TargetsError};

/// Parses and validates one profile. `file` names the source in errors (a path or `built-in:<file>`).
pub fn parse(text: &str, file: &str) -> Result<Profile, TargetsError> {
    let mut p: Profile = toml::from_str(text).map_err(|e| parse_error(text, file, &e))?;
    p.validate(file)?;
    p.source = file.to_string();
    Ok(p)
}

fn parse_error(text: &str, file: &str, e: &toml::de::Error) -> TargetsError {
    let start = e.span().map(|s| s.start.min(text.len())).unwrap_or(0);
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    let message = e.message().trim().to_string();
    TargetsError::Parse {
        file: file.to_string(),
        key: key_at(text, start, &message),
        line,
        column,
        message,
    }
}

/// The dotted key an error at byte `at` is about: the table header above it, plus the key on its line,
/// or the field a "missing field" message names.
fn key_at(text: &str, at: usize, message: &str) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        let inner = l
            .strip_prefix("[[")
            .and_then(|r| r.split("]]").next())
            .or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()))?;
        Some(inner.trim().to_string())
    };
    // The table the error's line belongs to: its own header, or the closest header above it.
    let (table, on_header) = match header(line) {
        Some(t) if !line.contains('=') => (t, true),
        _ => (
            text[..line_start]
                .lines()
                .rev()
                .find_map(header)
                .unwrap_or_default(),
            false,
        ),
    };
    let join = |k: &str| {
        if table.is_empty() {
            k.to_string()
        } else {
            format!("{table}.{k}")
        }
    };
    if let Some(field) = quoted_after(message, "missing field") {
        return join(&field);
    }
    if on_header {
        return table;
    }
    match line.split_once('=') {
        Some((k, _)) => join(k.trim().trim_matches('"')),
        None => join(line.trim_matches('"')),
    }
}

/// The `name` in "… prefix `name` …".
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let open = rest.find('`')? + 1;
    let close = rest[open..].find('`')? + open;
    Some(rest[open..close].to_string())
}
