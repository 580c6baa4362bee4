//! The processor's placeholder expansion on the prompt text (transformers' `ProcessorMixin` with
//! `replace_image_token` and friends): the chat template writes one placeholder per medium (`<|patch|>` per image,
//! `<|video|>` per video, `<|audio|>` per clip), and the i-th placeholder of a kind becomes the i-th replacement of
//! that kind (flint-media's `prompt` module builds them from the grids, timestamps and sample counts). One pass
//! over the text, so a replacement's own placeholders are not expanded again; a count that differs is an error.

use crate::ModelError;

/// One kind of placeholder: its token and the replacement of each occurrence, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Kind<'a> {
    pub token: &'a str,
    pub what: &'a str,
    pub replacements: Vec<String>,
}

/// `text` with the occurrences of every kind's token replaced in order.
pub fn expand(text: &str, kinds: &[Kind<'_>]) -> Result<String, ModelError> {
    let mut used = vec![0usize; kinds.len()];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.token.is_empty())
            .filter_map(|(i, k)| rest.find(k.token).map(|at| (at, i)))
            .min();
        let Some((at, i)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        rest = &rest[at + kinds[i].token.len()..];
        if let Some(r) = kinds[i].replacements.get(used[i]) {
            out.push_str(r);
        }
        used[i] += 1;
    }
    for (k, n) in kinds.iter().zip(used) {
        if n != k.replacements.len() {
            return Err(ModelError::Invalid(format!(
                "the prompt has {n} `{}` placeholders for {} {}s",
                k.token,
                k.replacements.len(),
                k.what
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_in_order_and_counts() {
        let kinds = [
            Kind {
                token: "<|patch|>",
                what: "image",
                replacements: vec!["<s><|patch|><|patch|><e>".into(), "<s><|patch|><e>".into()],
            },
            Kind {
                token: "<|audio|>",
                what: "audio clip",
                replacements: vec!["<a><|audio|><b>".into()],
            },
        ];
        let got = expand("x<|patch|>y<|audio|><|patch|>z", &kinds).unwrap();
        assert_eq!(
            got,
            "x<s><|patch|><|patch|><e>y<a><|audio|><b><s><|patch|><e>z"
        );
        let e = expand("<|patch|>", &kinds).unwrap_err().to_string();
        assert!(e.contains("1 `<|patch|>` placeholders for 2 images"), "{e}");
        let e = expand("<|patch|><|patch|><|patch|><|audio|>", &kinds)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 `<|patch|>` placeholders for 2 images"), "{e}");
    }
}
