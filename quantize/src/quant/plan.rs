//! Which type each tensor of the output gets.
//!
//! The rules, in order (later ones win):
//! 1. A tensor that is not a 2-D matrix (norms, biases) is copied unchanged. `--keep` never applies to it.
//! 2. A matrix becomes the chosen `--weights` type, except:
//!    - a router (`*.ffn_router`, `*.shexp_gate`) keeps its input type: it is tiny and routing flips on small errors;
//!    - a matrix whose last dimension is not a multiple of 32 keeps its input type (no block fits);
//!    - a tower matrix (vision `v.*`, audio `audio.*` and `a.*`) becomes q8 when `--weights` is a 4-bit type: a tower is
//!      small next to the decoder and its error reaches every image or audio token.
//! 3. `--keep PATTERN=TYPE` rules override 2, the last matching rule that can apply winning. A block type cannot
//!    apply to a matrix whose last dimension is not a multiple of 32: a wildcard rule skips such matrices (they keep
//!    their type and the report says why), while a rule naming one exactly is an error. A rule that matches no
//!    matrix, or applies to none of those it matches, is an error too (a typo would otherwise go unnoticed).
//!
//! Embeddings (`tok_embd`) and the output head (`output`) follow `--weights` like every other matrix, which is what
//! `llama-quantize --pure` does.

use super::QuantError;
use flint_format::{DType, TensorInfo};
use std::path::Path;

/// A `--keep PATTERN=TYPE` rule. `*` in the pattern matches any run of characters (dots included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepRule {
    pub pattern: String,
    pub dtype: DType,
}

impl KeepRule {
    /// Parses `PATTERN=TYPE`; the error names the rule.
    pub fn parse(rule: &str) -> Result<KeepRule, QuantError> {
        let bad = |msg: String| QuantError::Keep {
            rule: rule.to_string(),
            msg,
        };
        let (pattern, ty) = rule
            .rsplit_once('=')
            .ok_or_else(|| bad("expected PATTERN=TYPE".into()))?;
        if pattern.is_empty() {
            return Err(bad("empty pattern".into()));
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*')))
        {
            return Err(bad(format!(
                "character `{c}` is not allowed in a pattern (tensor names use letters, digits, `.`, `_`, `-`; `*` is the only wildcard)"
            )));
        }
        let dtype = DType::from_name(ty).ok_or_else(|| {
            let all: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
            bad(format!("unknown type `{ty}` (one of {})", all.join(", ")))
        })?;
        Ok(KeepRule {
            pattern: pattern.to_string(),
            dtype,
        })
    }

    /// Whether the pattern matches the whole of `name`.
    pub fn matches(&self, name: &str) -> bool {
        glob(self.pattern.as_bytes(), name.as_bytes())
    }
}

impl std::fmt::Display for KeepRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.pattern, self.dtype)
    }
}

/// `*`-only glob match, iterative with one backtrack point (linear in practice, never exponential).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Why a tensor got its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The `--weights` type.
    Weights,
    /// Not a matrix: copied unchanged.
    NotMatrix,
    /// A router, kept at its input precision.
    Router,
    /// Last dimension not a multiple of 32: kept at its input type.
    Cols,
    /// A `--keep` rule (its text).
    Keep(String),
    /// A vision-tower matrix, kept at q8 under a 4-bit `--weights`.
    Tower,
    /// Promoted to q8 by `--experts auto` (see [`super::mix`]).
    Auto,
}

impl Reason {
    /// A short phrase for the report.
    pub fn describe(&self, cols: usize) -> String {
        match self {
            Reason::Weights => "--weights".into(),
            Reason::NotMatrix => "not a matrix".into(),
            Reason::Router => "router: kept at input precision".into(),
            Reason::Cols => format!("{cols} columns is not a multiple of 32"),
            Reason::Keep(r) => format!("--keep {r}"),
            Reason::Tower => "vision / audio tower: q8 under 4-bit weights".into(),
            Reason::Auto => "--experts auto: most accuracy per byte".into(),
        }
    }
}

/// The type chosen for one tensor.
#[derive(Clone, Debug)]
pub struct Choice {
    pub from: DType,
    pub to: DType,
    pub reason: Reason,
}

fn is_router(name: &str) -> bool {
    name.ends_with(".ffn_router") || name.ends_with(".shexp_gate")
}

fn is_tower(name: &str) -> bool {
    name.starts_with(flint_model::config::vision::names::PREFIX)
        || name.starts_with(AUDIO_PREFIX)
        || name.starts_with(flint_model::config::mel_audio::names::PREFIX)
}

/// The Muse audio tower's tensor names (`audio.*`, config/audio.rs); the log-mel encoders' are `a.*`.
const AUDIO_PREFIX: &str = "audio.";

/// Chooses the output type of every tensor of `tensors` (directory order). `path` names the input in errors.
pub fn choose(
    path: &Path,
    tensors: &[TensorInfo],
    weights: DType,
    keep: &[KeepRule],
) -> Result<Vec<Choice>, QuantError> {
    let (mut matched, mut applied) = (vec![false; keep.len()], vec![false; keep.len()]);
    let mut unfit: Vec<Option<String>> = vec![None; keep.len()];
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let tensor_err = |msg: String| QuantError::Tensor {
            path: path.to_path_buf(),
            name: t.name.clone(),
            msg,
        };
        if t.shape.len() != 2 {
            out.push(Choice {
                from: t.dtype,
                to: t.dtype,
                reason: Reason::NotMatrix,
            });
            continue;
        }
        if t.dtype.is_quantized() {
            return Err(tensor_err(format!(
                "is already {}; quantize from a float (f32, f16, bf16) file so the loss is measured against the original",
                t.dtype
            )));
        }
        let cols = t.shape[1];
        let fits = cols % DType::Q8.block_elems() == 0;
        let mut choice = if is_router(&t.name) {
            Choice {
                from: t.dtype,
                to: t.dtype,
                reason: Reason::Router,
            }
        } else if !fits {
            Choice {
                from: t.dtype,
                to: t.dtype,
                reason: Reason::Cols,
            }
        } else if is_tower(&t.name) && matches!(weights, DType::Q4 | DType::Q4M | DType::Q2M) {
            Choice {
                from: t.dtype,
                to: DType::Q8,
                reason: Reason::Tower,
            }
        } else {
            Choice {
                from: t.dtype,
                to: weights,
                reason: Reason::Weights,
            }
        };
        // The last matching rule that can apply wins. A wildcard rule asking for a block type skips matrices no
        // block fits (they keep their type, and the report says why); naming such a matrix exactly is an error.
        for (i, r) in keep.iter().enumerate().rev() {
            if !r.matches(&t.name) {
                continue;
            }
            matched[i] = true;
            if r.dtype.is_quantized() && !fits {
                if !r.pattern.contains('*') {
                    return Err(QuantError::Keep {
                        rule: r.to_string(),
                        msg: format!(
                            "tensor `{}` {:?} has {cols} columns, not a multiple of {}, so it cannot be {}",
                            t.name,
                            t.shape,
                            r.dtype.block_elems(),
                            r.dtype
                        ),
                    });
                }
                unfit[i].get_or_insert_with(|| format!("`{}` {:?}", t.name, t.shape));
                continue;
            }
            applied[i] = true;
            choice.to = r.dtype;
            choice.reason = Reason::Keep(r.to_string());
            break;
        }
        // A rule shadowed by a later one still counts as matched (the user wrote both).
        for (i, r) in keep.iter().enumerate() {
            let ok = !r.dtype.is_quantized() || fits;
            matched[i] |= r.matches(&t.name);
            applied[i] |= ok && r.matches(&t.name);
        }
        out.push(choice);
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        return Err(QuantError::Keep {
            rule: keep[i].to_string(),
            msg: format!(
                "matches no matrix in {} (vectors are always kept as they are)",
                path.display()
            ),
        });
    }
    if let Some(i) = applied.iter().position(|a| !a) {
        let example = unfit[i]
            .as_ref()
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default();
        return Err(QuantError::Keep {
            rule: keep[i].to_string(),
            msg: format!(
                "no matrix it matches has a last dimension that is a multiple of {}{example}",
                keep[i].dtype.block_elems()
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names() {
        let r = |p: &str| KeepRule {
            pattern: p.into(),
            dtype: DType::F16,
        };
        assert!(r("tok_embd").matches("tok_embd"));
        assert!(!r("tok_embd").matches("tok_embd2"));
        assert!(r("blk.*.ffn_router").matches("blk.12.ffn_router"));
        assert!(!r("blk.*.ffn_router").matches("blk.1.ffn_up"));
        assert!(r("*").matches("anything.at.all"));
        assert!(r("blk.*.expert.*.down").matches("blk.0.expert.31.down"));
        assert!(!r("blk.*.expert.*.down").matches("blk.0.expert.31.up"));
        assert!(r("*a*a*a*b").matches("aaaaaaaaaaaaaaaaaaaab"));
        assert!(!r("*a*a*a*b").matches("aaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn parse_rejects_bad_rules() {
        assert_eq!(
            KeepRule::parse("blk.*.ffn_router=f32").unwrap().dtype,
            DType::F32
        );
        for bad in [
            "tok_embd",
            "=f16",
            "tok_embd=f8",
            "tok_[ab]=f16",
            "tok_embd=",
            "a?b=f16",
        ] {
            let e = KeepRule::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "error {e:?} does not name {bad:?}");
        }
    }
}
