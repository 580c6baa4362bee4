//! Hostile input, one crafted file (or argument) per class of issue 10, made here by the test: each must be
//! refused with an error naming the file and the field, without a panic, within 20 s (the child is killed after)
//! and within a 3 GB address space (see `flint_tests::hostile::run_limited`).

use flint_format::DType;
use flint_tests::hostile::{assert_refused, rewrite_flint, run_limited, tiny_llama_gguf, Gguf};
use flint_tests::{fixtures, import};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A float model from the qwen3_moe fixture.
fn good_model(dir: &Path) -> PathBuf {
    let good = dir.join("good.flint");
    import(&fixtures().join("hf/qwen3_moe/model"), &good, DType::F16);
    good
}

fn logits(m: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["logits", "-m", s(m), "--ids", "1,2", "-o", "/dev/null"];
    args.extend(extra);
    run_limited("flint", &args, None)
}

#[test]
fn absurd_model_descriptions_with_good_checksums_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let good = good_model(tmp.path());
    let bad = tmp.path().join("bad.flint");
    let cases: &[(&str, Value, &str)] = &[
        ("num_layers", json!(1_000_000_000u64), "num_layers"),
        ("num_layers", json!(1u64 << 60), "num_layers"),
        ("num_heads", json!(1u64 << 40), "num_heads"),
        ("head_dim", json!(1u64 << 33), "head_dim"),
        ("rms_norm_eps", json!(-1.0), "rms_norm_eps"),
        ("rope_theta", json!(0.0), "rope_theta"),
        ("arch", json!("gpt-neox"), "arch"),
        ("bos_token_id", json!(99999), "bos_token_id"),
        (
            "max_position_embeddings",
            json!(1u64 << 50),
            "max_position_embeddings",
        ),
        ("vocab_size", json!(1u64 << 40), "vocab_size"),
    ];
    for (key, v, field) in cases {
        rewrite_flint(&good, &bad, |m| m["model.config"][key] = v.clone());
        assert_refused(
            &logits(&bad, &[]),
            &format!("{key} = {v}"),
            &["bad.flint", field],
        );
    }
    // A product that would wrap: every factor within its cap, the product not.
    rewrite_flint(&good, &bad, |m| {
        let c = &mut m["model.config"];
        c["num_heads"] = json!(1024);
        c["num_kv_heads"] = json!(1024);
        c["head_dim"] = json!(1024);
    });
    assert_refused(
        &logits(&bad, &[]),
        "heads x head_dim",
        &["bad.flint", "num_heads × head_dim"],
    );
    rewrite_flint(&good, &bad, |m| {
        m["model.config"]["moe"]["num_experts"] = json!(1u64 << 40)
    });
    assert_refused(
        &logits(&bad, &[]),
        "experts",
        &["bad.flint", "moe.num_experts"],
    );
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn import_refused(src: &Path, what: &str, names: &[&str]) -> String {
    let out = src.with_extension("out.flint");
    let o = run_limited("flint-quantize", &["import", s(src), "-o", s(&out)], None);
    let e = assert_refused(&o, what, names);
    assert!(!out.exists(), "{what}: no output after a refused import");
    e
}

#[test]
fn hostile_configs_are_refused_by_the_importer_before_planning() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("hf/qwen3_moe/model");
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let cases: &[(&str, Value, &[&str])] = &[
        (
            "num_hidden_layers",
            json!(1_000_000_000u64),
            &["num_hidden_layers", "cap"],
        ),
        (
            "num_experts",
            json!(1_000_000_000u64),
            &["num_experts", "cap"],
        ),
        ("vocab_size", json!(1u64 << 40), &["vocab_size", "cap"]),
        ("rope_theta", json!("1000000"), &["rope_theta", "string"]),
        ("rope_scaling", json!("yarn"), &["rope_scaling", "string"]),
        (
            "eos_token_id",
            json!(1u64 << 40),
            &["eos_token_id", "1099511627776"],
        ),
        ("rms_norm_eps", json!(-1.0), &["rms_norm_eps"]),
        (
            "bos_token_id",
            json!(100_000),
            &["bos_token_id", "vocabulary"],
        ),
    ];
    for (i, (key, v, names)) in cases.iter().enumerate() {
        let d = tmp.path().join(format!("c{i}"));
        copy_dir(&src, &d);
        let mut c = cfg.clone();
        c[key] = v.clone();
        std::fs::write(d.join("config.json"), c.to_string()).unwrap();
        let mut n = names.to_vec();
        n.push("config.json");
        import_refused(&d, &format!("{key} = {v}"), &n);
    }
    // A config.json that is an array, and one that is a directory.
    let d = tmp.path().join("array");
    copy_dir(&src, &d);
    std::fs::write(d.join("config.json"), "[1, 2]").unwrap();
    import_refused(&d, "array", &["config.json", "array, not an object"]);
    let d = tmp.path().join("dir");
    copy_dir(&src, &d);
    std::fs::remove_file(d.join("config.json")).unwrap();
    std::fs::create_dir(d.join("config.json")).unwrap();
    import_refused(&d, "directory", &["config.json", "directory"]);
    // A safetensors header whose shape disagrees with its offsets names the tensor.
    let d = tmp.path().join("offsets");
    copy_dir(&src, &d);
    let b = std::fs::read(src.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let victim = "model.norm.weight";
    h[victim]["shape"] = json!([65]);
    let mut hs = h.to_string().into_bytes();
    assert!(hs.len() <= n, "the edited header fits in the old one");
    hs.resize(n, b' ');
    let mut out = b[..8].to_vec();
    out.extend(hs);
    out.extend(&b[8 + n..]);
    std::fs::write(d.join("model.safetensors"), out).unwrap();
    import_refused(
        &d,
        "safetensors offsets",
        &["model.safetensors", victim, "needs"],
    );
}

fn gguf_refused(dir: &Path, name: &str, g: &Gguf, names: &[&str]) {
    let p = dir.join(format!("{name}.gguf"));
    std::fs::write(&p, g.bytes()).unwrap();
    let mut n = names.to_vec();
    let file = format!("{name}.gguf");
    n.push(&file);
    import_refused(&p, name, &n);
}

#[test]
fn hostile_ggufs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The untouched file imports and runs: the cases below differ from a good file by one thing.
    let good = t.join("good.gguf");
    std::fs::write(&good, tiny_llama_gguf().bytes()).unwrap();
    let m = t.join("good.flint");
    let o = run_limited("flint-quantize", &["import", s(&good), "-o", s(&m)], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = logits(&m, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let g = || tiny_llama_gguf();
    let set = |k: &str| g().without(k);
    gguf_refused(
        t,
        "layers",
        &set("llama.block_count").u64("llama.block_count", 1_000_000_000),
        &["llama.block_count", "cap"],
    );
    gguf_refused(
        t,
        "heads",
        &set("llama.attention.head_count").u64("llama.attention.head_count", 1 << 40),
        &["llama.attention.head_count"],
    );
    gguf_refused(
        t,
        "theta",
        &set("llama.rope.freq_base").str("llama.rope.freq_base", "1e4"),
        &["llama.rope.freq_base", "not a number"],
    );
    gguf_refused(
        t,
        "eps",
        &set("llama.attention.layer_norm_rms_epsilon")
            .f32("llama.attention.layer_norm_rms_epsilon", -1.0),
        &["rms_norm_eps"],
    );
    gguf_refused(
        t,
        "eos",
        &set("tokenizer.ggml.eos_token_id").u64("tokenizer.ggml.eos_token_id", 1 << 40),
        &["tokenizer.ggml.eos_token_id"],
    );
    gguf_refused(
        t,
        "dup",
        &g().tensor("output_norm.weight", &[64], vec![0.0; 64]),
        &["duplicate tensor name `output_norm.weight`"],
    );
    // Another architecture's name over llama's keys: its own keys are missing, and the error names one.
    gguf_refused(
        t,
        "arch",
        &set("general.architecture").str("general.architecture", "qwen3moe"),
        &["qwen3moe.", "missing"],
    );
    // A SentencePiece vocabulary without its scores (the merges are ranked by them).
    gguf_refused(
        t,
        "spm",
        &set("tokenizer.ggml.model").str("tokenizer.ggml.model", "llama"),
        &["tokenizer.ggml.scores", "missing"],
    );
    let short: Vec<String> = (0..16).map(|i| format!("t{i}")).collect();
    gguf_refused(
        t,
        "vocab",
        &set("tokenizer.ggml.tokens")
            .strs("tokenizer.ggml.tokens", &short)
            .u32("llama.vocab_size", 32),
        &["tokenizer.ggml.tokens", "16 entries"],
    );
}

/// A minimal tokenizer.json: a word-level vocabulary split on whitespace.
fn tiny_tokenizer() -> String {
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hi": 1}, "unk_token": "<unk>"}
    })
    .to_string()
}

#[test]
fn templates_tokenizers_threads_and_sizes_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let good = good_model(tmp.path());
    let bad = tmp.path().join("bad.flint");
    let chat = |m: &Path| {
        run_limited(
            "flint",
            &["run", "-m", s(m), "--chat", "-p", "hi", "-n", "1"],
            None,
        )
    };
    // A template that loops (nested ranges) runs out of fuel; one that writes without end hits the output cap.
    for (tpl, want) in [
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            "fuel",
        ),
        (
            "{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
            "exceeds the cap",
        ),
        (
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "tokenizer.chat_template",
        ),
    ] {
        rewrite_flint(&good, &bad, |m| {
            m["tokenizer.json"] = json!(tiny_tokenizer());
            m["tokenizer.chat_template"] = json!(tpl);
        });
        assert_refused(
            &chat(&bad),
            tpl,
            &["bad.flint", "tokenizer.chat_template", want],
        );
    }
    // A tokenizer that does not load names the file.
    rewrite_flint(&good, &bad, |m| m["tokenizer.json"] = json!("{not json"));
    assert_refused(&chat(&bad), "tokenizer", &["bad.flint", "tokenizer"]);

    // Thread counts: from the command line, and from a board profile.
    assert_refused(
        &logits(&good, &["--threads", "1000000000000"]),
        "threads",
        &["--threads", "cap"],
    );
    assert_refused(
        &logits(&good, &["--threads", "-1"]),
        "negative",
        &["--threads"],
    );
    // More threads than CPUs, within the cap: allowed, with a warning.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let more = (cpus + 1).to_string();
    let o = logits(&good, &["--threads", &more]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && e.contains("warning: --threads"),
        "{e}"
    );
    let board = tmp.path().join("board.toml");
    let profile =
        std::fs::read_to_string(flint_tests::root().join("targets/boards/x86_64-host.toml"))
            .unwrap()
            .replace("[cpu]\n", "[cpu]\nthreads = 1000000000000\n");
    std::fs::write(&board, profile).unwrap();
    let o = run_limited(
        "flint",
        &[
            "--board",
            s(&board),
            "logits",
            "-m",
            s(&good),
            "--ids",
            "1",
            "-o",
            "/dev/null",
        ],
        None,
    );
    assert_refused(&o, "board threads", &["board.toml", "threads", "cap"]);

    // Unbounded reads: an endless --ids-file, a bench prompt beyond the context.
    let o = run_limited(
        "flint",
        &[
            "logits",
            "-m",
            s(&good),
            "--ids-file",
            "/dev/zero",
            "-o",
            "/dev/null",
        ],
        None,
    );
    assert_refused(&o, "ids-file", &["/dev/zero", "cap"]);
    let o = run_limited(
        "flint",
        &[
            "bench",
            "-m",
            s(&good),
            "-p",
            "1000000000",
            "-n",
            "1",
            "-r",
            "1",
        ],
        None,
    );
    assert_refused(&o, "bench -p", &["-p 1000000000", "context"]);
    let o = run_limited("flint", &["bench", "-m", s(&good), "-p", "-5"], None);
    assert_refused(&o, "bench negative", &["--prompt"]);

    // A directory where a file should be.
    for args in [
        vec!["info", s(tmp.path())],
        vec![
            "logits",
            "-m",
            s(tmp.path()),
            "--ids",
            "1",
            "-o",
            "/dev/null",
        ],
    ] {
        assert_refused(
            &run_limited("flint", &args, None),
            "directory",
            &["is a directory"],
        );
    }
}

#[test]
fn bridge_inputs_are_bounded() {
    // A stream with no newline, and one without end, stop at the caps and name the line.
    let o = run_limited("flint", &["bridge", "encode"], Some(vec![b'x'; 100 << 20]));
    assert_refused(&o, "no newline", &["line 1", "longer than"]);
    let line = [vec![b' '; 1000], vec![b'\n']].concat();
    let o = run_limited("flint", &["bridge", "encode"], Some(line.repeat(70_000)));
    assert_refused(&o, "endless", &["exceeds"]);
    let two = b"{\"seq\":1,\"type\":\"power\",\"mode\":\"on\"}\n{\"seq\":2}\n".to_vec();
    let o = run_limited("flint", &["bridge", "encode"], Some(two));
    assert_refused(&o, "bad line", &["stdin", "line 2"]);
    let o = run_limited("flint", &["bridge", "encode"], Some(vec![0xff, b'\n']));
    assert_refused(&o, "not utf-8", &["line 1", "UTF-8"]);
    // Simulator display sizes.
    for (w, h, want) in [
        ("65535", "65535", "exceeds the cap"),
        ("0", "0", "must be positive"),
    ] {
        let o = run_limited(
            "flint",
            &["bridge", "sim", "--pty", "--width", w, "--height", h],
            None,
        );
        assert_refused(&o, "sim size", &["--width", want]);
    }
}
