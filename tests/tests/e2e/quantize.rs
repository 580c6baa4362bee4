//! `flint-quantize quantize` end to end, through the binary: the tiny qwen3_moe and llama fixtures are imported at
//! f32, quantized to q8 and q4, and the outputs are checked (they load and run, the directory holds the asked types,
//! expert groups survive, the `quantization` report is consistent with the file and q8 measures closer to the
//! original than q4). Bad options must fail naming the culprit and leave nothing behind.
//!
//! The fixtures carry no tokenizer, so the measurement runs on the fallback ids (each byte of the calibration text
//! modulo the vocabulary): `token_source` is `bytes_mod_vocab`. Their weights are random, so next-token
//! distributions are nearly flat (perplexity ≈ vocabulary) and top-1 agreement is a noisy figure here; KL is the
//! dependable one. The calibration text is cut to 384 bytes (3 chunks of 128) to keep the runs short.
//!
//! Needs the `flint-quantize` binary beside the test executable: `cargo test --workspace` builds it, or run
//! `cargo build -p flint-quantize` before `cargo test -p flint-tests --test e2e quantize::`.

use flint_format::{DType, FlintFile};
use flint_model::Model;
use flint_tests::{fixtures, import, root, run_bin};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

struct Case {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    input: PathBuf,
    calib: PathBuf,
}

/// A temp dir holding the fixture imported at f32 and a short calibration text.
fn case(fixture: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let input = dir.join("in.f32.flint");
    import(
        &fixtures().join("hf").join(fixture).join("model"),
        &input,
        DType::F32,
    );
    let text = std::fs::read_to_string(root().join("bench/calibration.txt"))
        .expect("bench/calibration.txt");
    let calib = dir.join("calib.txt");
    std::fs::write(&calib, text.chars().take(384).collect::<String>()).unwrap();
    Case {
        _dir: tmp,
        dir,
        input,
        calib,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the quantize command on the case's input; returns (success, stdout, stderr).
fn quantize(c: &Case, out: &Path, weights: &str, extra: &[&str]) -> (bool, String, String) {
    quantize_file(&c.input, &c.calib, out, weights, extra)
}

fn quantize_file(
    input: &Path,
    calib: &Path,
    out: &Path,
    weights: &str,
    extra: &[&str],
) -> (bool, String, String) {
    // `cargo test` builds a package's binaries only for that package's own integration tests, so this one may be
    // absent: say how to get it rather than fail on a spawn error.
    let exe = flint_tests::bin("flint-quantize");
    assert!(
        exe.exists(),
        "{} is missing: run `cargo build -p flint-quantize` first",
        exe.display()
    );
    let mut args = vec![
        "quantize",
        s(input),
        "-o",
        s(out),
        "--weights",
        weights,
        "--calib",
        s(calib),
    ];
    args.extend_from_slice(extra);
    let o = run_bin("flint-quantize", &args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Quantizes and checks everything that holds for any successful output; returns the report.
fn quantize_ok(c: &Case, weights: &str, extra: &[&str]) -> (FlintFile, Value) {
    let out = c.dir.join(format!("out.{weights}.flint"));
    let (ok, stdout, stderr) = quantize(c, &out, weights, extra);
    assert!(ok, "quantize {weights} failed: {stderr}");
    assert!(stdout.contains("KL mean"), "report not printed: {stdout}");
    let f = FlintFile::open(&out).unwrap();
    f.verify().unwrap();
    let q = f
        .meta("quantization")
        .expect("quantization metadata")
        .clone();
    assert_eq!(
        q["file_bytes"].as_u64(),
        Some(std::fs::metadata(&out).unwrap().len()),
        "file_bytes"
    );
    assert_eq!(
        f.meta("general.weight_type").and_then(Value::as_str),
        Some(weights)
    );
    // The report's types and size figures are those of the directory.
    let (mut bytes, mut params) = (0u64, 0u64);
    for t in f.tensors() {
        assert_eq!(
            q["tensors"][&t.name].as_str(),
            Some(t.dtype.name()),
            "report type of {}",
            t.name
        );
        if t.shape.len() == 2 {
            bytes += t.length as u64;
            params += t.numel() as u64;
        } else {
            assert_eq!(t.dtype, DType::F32, "vector {} must stay f32", t.name);
        }
    }
    assert_eq!(q["matrix_bytes"].as_u64(), Some(bytes));
    assert_eq!(q["matrix_params"].as_u64(), Some(params));
    let bpw = q["bits_per_weight"].as_f64().unwrap();
    assert!((bpw - 8.0 * bytes as f64 / params as f64).abs() < 1e-9);
    // Groups: the same sets of tensors share a group (less the experts `--experts auto` pruned), and each group
    // starts on a page.
    let src = FlintFile::open(&c.input).unwrap();
    let pruned: Vec<&str> = q["experts"]["pruned"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut want = groups(&src);
    want.retain(|g| !g.iter().any(|n| pruned.iter().any(|p| n.starts_with(p))));
    assert_eq!(groups(&f), want, "paging groups changed");
    for names in groups(&f) {
        let first = f
            .tensors()
            .iter()
            .filter(|t| names.contains(&t.name))
            .map(|t| t.offset)
            .min()
            .unwrap();
        assert_eq!(first % 4096, 0, "group {names:?} does not start on a page");
    }
    // The measurement: every figure present and sane, on the fallback ids (the fixtures have no tokenizer).
    let e = &q["eval"];
    assert_eq!(e["token_source"], "bytes_mod_vocab");
    let n_tokens = std::fs::read(&c.calib).unwrap().len() as u64;
    assert_eq!(e["tokens"].as_u64(), Some(n_tokens));
    // Blocks were importance-weighted by the same text (quantize/tests/imatrix.rs checks the effect).
    assert!(
        q["imatrix"]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("calib.txt"))
            && q["imatrix"]["tokens"].as_u64() == Some(n_tokens),
        "{}",
        q["imatrix"]
    );
    let kl = e["kl_mean"].as_f64().unwrap();
    assert!(kl > 0.0 && kl.is_finite(), "kl_mean {kl}");
    let layers = e["layers"].as_array().unwrap();
    let n_layers = f.meta("model.config").unwrap()["num_layers"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(layers.len(), n_layers + 1);
    assert!(
        layers
            .iter()
            .all(|l| l["rel_rms"].as_f64().is_some_and(|r| r > 0.0 && r < 1.0)),
        "{layers:?}"
    );
    // It loads and runs.
    let m = Model::load(f.clone()).unwrap();
    let logits = m
        .forward(&[1, 2, 3], &mut m.new_cache(), false, None)
        .unwrap();
    assert!(logits.iter().all(|v| v.is_finite()));
    (f, q)
}

/// The sets of tensor names sharing each nonzero group id.
fn groups(f: &FlintFile) -> BTreeSet<BTreeSet<String>> {
    let mut g: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for t in f.tensors().iter().filter(|t| t.group != 0) {
        g.entry(t.group).or_default().insert(t.name.clone());
    }
    g.into_values().collect()
}

/// What the fixtures measure (384 fallback ids; q8 / q4, both fixtures): KL ~3e-6 / ~3e-4 nats, top-1 agreement
/// 0.97-0.98 / 0.75-0.77, q8 hidden-state errors at most ~0.012. The bounds leave a wide margin but fail if q8 stops
/// being near-lossless or stops beating q4.
fn compare_q8_q4(q8: &Value, q4: &Value) {
    let (kl8, kl4, top8, top4) = (kl(q8), kl(q4), top1(q8), top1(q4));
    assert!(kl8 < 1e-4, "q8 KL {kl8}");
    assert!(
        kl8 * 10.0 < kl4,
        "q8 KL {kl8} should be far below q4 KL {kl4}"
    );
    assert!(
        top8 > 0.9 && top8 > top4,
        "top-1 agreement: q8 {top8}, q4 {top4}"
    );
    for l in q8["eval"]["layers"].as_array().unwrap() {
        assert!(
            l["rel_rms"].as_f64().unwrap() < 0.05,
            "q8 hidden-state error {l}"
        );
    }
}

fn kl(q: &Value) -> f64 {
    q["eval"]["kl_mean"].as_f64().unwrap()
}

fn top1(q: &Value) -> f64 {
    q["eval"]["top1_agreement"].as_f64().unwrap()
}

#[test]
fn qwen3_moe_q8_q4() {
    let c = case("qwen3_moe");
    let mut reports = Vec::new();
    for (w, dt) in [("q8", DType::Q8), ("q4", DType::Q4)] {
        let (f, q) = quantize_ok(&c, w, &[]);
        assert!(!groups(&f).is_empty(), "the MoE fixture has expert groups");
        for t in f.tensors().iter().filter(|t| t.shape.len() == 2) {
            let want = if t.name.ends_with(".ffn_router") || t.shape[1] % 32 != 0 {
                DType::F32
            } else {
                stored(dt, &t.shape)
            };
            assert_eq!(t.dtype, want, "{w}: {}", t.name);
        }
        // The expert down projections (40 columns) are reported as kept, with the reason.
        let kept = q["kept"].as_array().unwrap();
        assert!(kept
            .iter()
            .any(|k| k["name"] == "blk.0.expert.0.down"
                && k["reason"].as_str().unwrap().contains("40")));
        reports.push(q);
    }
    compare_q8_q4(&reports[0], &reports[1]);
}

/// The stored type of a `logical` q8/q4 matrix: interleaved by 8 rows when its row count allows.
fn stored(logical: DType, shape: &[usize]) -> DType {
    match logical {
        DType::Q8 if shape[0].is_multiple_of(8) => DType::Q8X8,
        DType::Q4 if shape[0].is_multiple_of(8) => DType::Q4X8,
        d => d,
    }
}

#[test]
fn llama_q8_q4() {
    let c = case("llama");
    let (f8, q8) = quantize_ok(&c, "q8", &[]);
    let (f4, q4) = quantize_ok(&c, "q4", &[]);
    for (f, dt) in [(&f8, DType::Q8), (&f4, DType::Q4)] {
        for t in f.tensors().iter().filter(|t| t.shape.len() == 2) {
            assert_eq!(
                t.dtype,
                stored(dt, &t.shape),
                "{} (embeddings and head follow --weights)",
                t.name
            );
        }
    }
    assert!(q8["kept"].as_array().unwrap().is_empty());
    compare_q8_q4(&q8, &q4);
    let (f4m, q4m) = quantize_ok(&c, "q4m", &[]);
    assert!(f4m
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2)
        .all(|t| t.dtype == DType::Q4M));
    assert_eq!(q4m["bits_per_weight"].as_f64(), Some(5.0));
    assert!(kl(&q4m) > kl(&q8));
    // Halving the bits shows in the size.
    assert!(
        q4["bits_per_weight"].as_f64().unwrap() < 0.6 * q8["bits_per_weight"].as_f64().unwrap()
    );
    // q2m: 3 bits per weight, every matrix, and further from the original than q4.
    let (f2, q2) = quantize_ok(&c, "q2m", &[]);
    assert!(f2
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2)
        .all(|t| t.dtype == DType::Q2M));
    assert_eq!(q2["bits_per_weight"].as_f64(), Some(3.0));
    assert!(kl(&q2) > kl(&q4), "q2m {} against q4 {}", kl(&q2), kl(&q4));
}

#[test]
fn keep_overrides_the_defaults() {
    let c = case("qwen3_moe");
    let (f, q) = quantize_ok(
        &c,
        "q4",
        &[
            "--keep",
            "tok_embd=f16",
            "--keep",
            "blk.*.ffn_router=f16",
            "--keep",
            "blk.1.*=q8",
        ],
    );
    // The logical type: interleaved layouts count as their plain type (the layout is checked in llama_q8_q4).
    let ty = |n: &str| {
        let t = f.tensors().iter().find(|t| t.name == n).unwrap();
        match t.dtype {
            DType::Q8X8 => DType::Q8,
            DType::Q4X8 => DType::Q4,
            d => d,
        }
    };
    assert_eq!(ty("tok_embd"), DType::F16);
    assert_eq!(ty("blk.0.ffn_router"), DType::F16);
    assert_eq!(ty("blk.1.ffn_router"), DType::Q8, "the later rule wins");
    assert_eq!(ty("blk.1.attn_q"), DType::Q8);
    assert_eq!(ty("blk.0.attn_q"), DType::Q4);
    assert_eq!(
        ty("blk.1.expert.0.down"),
        DType::F32,
        "no block fits 40 columns: the wildcard skips it"
    );
    assert_eq!(ty("output"), DType::Q4);
    assert_eq!(q["keep"].as_array().unwrap().len(), 3);
}

/// `--experts auto` gives each expert (and matrix) q2m, q4 or q8 where the bytes buy the most accuracy, within the
/// target: the file lands between uniform q4 and the target, each unit's type is what the directory holds, every
/// candidate has a decision with its measured error at each level, and the mix measures closer to the original
/// than q4.
#[test]
fn experts_auto_mixes_within_the_target() {
    let c = case("qwen3_moe");
    let (_, q4) = quantize_ok(&c, "q4", &[]);
    let b4 = q4["bits_per_weight"].as_f64().unwrap();
    let target = format!("{:.3}", b4 + 1.0);
    let (f, q) = quantize_ok(&c, "q4", &["--experts", "auto", "--target-bpw", &target]);
    let bpw = q["bits_per_weight"].as_f64().unwrap();
    assert!(bpw > b4 && bpw <= b4 + 1.0 + 1e-9, "{bpw} against q4 {b4}");
    let m = &q["experts"];
    assert_eq!(m["base"], "q4");
    assert_eq!(m["per_expert"], true);
    assert_eq!(m["levels"], serde_json::json!(["q2m", "q4", "q8"]));
    // Each kind was probed: the model with that kind at q2m moved away from the input.
    for k in ["attn_q", "attn_o", "expert", "output"] {
        assert!(m["probes"][k]["kl"].as_f64().unwrap() > 0.0, "{k}: {m:?}");
    }
    for l in ["0", "1"] {
        assert!(
            m["layer_probes"][l]["kl"].as_f64().unwrap() > 0.0,
            "{l}: {m:?}"
        );
    }
    let decisions = m["decisions"].as_array().unwrap();
    let count = |t: &str| m["counts"][t].as_u64().unwrap_or(0) as usize;
    assert!(count("q8") > 0 && count("q8") < decisions.len(), "{m:?}");
    assert_eq!(count("q2m") + count("q4") + count("q8"), decisions.len());
    for t in ["q2m", "q4", "q8"] {
        assert_eq!(
            decisions.iter().filter(|d| d["type"] == t).count(),
            count(t),
            "{t}"
        );
    }
    // Both kinds of unit: experts (a paging group, named by their prefix) and the dense matrices.
    assert!(decisions.iter().any(|d| d["name"] == "blk.0.expert.3."));
    assert!(decisions.iter().any(|d| d["name"] == "blk.1.attn_q"));
    let err = |d: &Value, t: &str| d["errors"][t].as_f64().unwrap();
    for w in decisions.windows(2) {
        assert!(err(&w[0], "q2m") >= err(&w[1], "q2m"), "not sorted: {w:?}");
    }
    for d in decisions {
        let name = d["name"].as_str().unwrap();
        let stored: Vec<_> = f
            .tensors()
            .iter()
            .filter(|t| t.name == name || (name.ends_with('.') && t.name.starts_with(name)))
            .filter(|t| t.shape[1] % 32 == 0)
            .map(|t| match t.dtype {
                DType::Q8X8 => DType::Q8,
                DType::Q4X8 => DType::Q4,
                d => d,
            })
            .collect();
        assert!(!stored.is_empty(), "{name}");
        let want = DType::from_name(d["type"].as_str().unwrap()).unwrap();
        assert!(stored.iter().all(|&t| t == want), "{name}: {stored:?}");
        // A routed expert was measured: its rows are what the router sent it, and fewer bits cost more error.
        if d["rows"].as_u64().unwrap() > 0 {
            assert!(
                err(d, "q2m") > err(d, "q4") && err(d, "q4") > err(d, "q8") && err(d, "q8") > 0.0,
                "{name}: {d:?}"
            );
        }
    }
    assert!(kl(&q) < kl(&q4), "mix {} against q4 {}", kl(&q), kl(&q4));
    // At uniform q4's own size the mix (experts at q2m paying for others at q8) measures closer than q4.
    let (_, same) = quantize_ok(
        &c,
        "q4",
        &["--experts", "auto", "--target-bpw", &format!("{b4:.4}")],
    );
    let b = same["bits_per_weight"].as_f64().unwrap();
    assert!(b <= b4 + 1e-4, "{b} against q4 {b4}");
    assert!(
        kl(&same) < kl(&q4),
        "mix at q4's size {} against q4 {}",
        kl(&same),
        kl(&q4)
    );
    // A dense model mixes per matrix.
    let d = case("llama");
    let (_, d4) = quantize_ok(&d, "q4", &[]);
    let size = d4["file_bytes"].as_u64().unwrap() + 150_000;
    let (_, q) = quantize_ok(
        &d,
        "q4",
        &["--experts", "auto", "--target-size", &size.to_string()],
    );
    assert_eq!(q["experts"]["per_expert"], false);
    assert!(q["experts"]["counts"]["q8"].as_u64().unwrap() > 0);
    let got = q["file_bytes"].as_u64().unwrap();
    assert!(
        got <= size && got > d4["file_bytes"].as_u64().unwrap(),
        "{got} bytes for a target of {size}"
    );
    // Targets that cannot be met, or that are missing, fail naming the option.
    fails(&c, "q4", &["--experts", "auto"], "--target-bpw");
    fails(
        &c,
        "q4",
        &["--experts", "auto", "--target-bpw", "2"],
        "bits/weight",
    );
    fails(
        &c,
        "q4",
        &["--experts", "auto", "--target-size", "1K"],
        "--target-size",
    );
    fails(
        &c,
        "q4",
        &["--experts", "auto", "--target-size", "50%"],
        "percentage",
    );
    fails(
        &c,
        "q4",
        &["--experts", "auto", "--target-bpw", "6", "--no-imatrix"],
        "--no-imatrix",
    );
}

/// Experts the calibration text never routes to are pruned: left out of the file, listed in `moe.pruned_experts`
/// and the report, and never chosen when the model runs other text; the KL is measured on the pruned model. A file
/// whose list is out of range, repeated or leaves too few experts is refused naming the key.
#[test]
fn experts_auto_prunes_unrouted_experts() {
    let c = case("qwen3_moe");
    // Three bytes: six routes per layer of 8 experts (top-2), so some experts see nothing.
    std::fs::write(&c.calib, "Hi.").unwrap();
    let (f, q) = quantize_ok(&c, "q4", &["--experts", "auto", "--target-bpw", "10"]);
    let m = &q["experts"];
    let pruned: Vec<&str> = m["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!pruned.is_empty(), "{m:?}");
    assert_eq!(m["counts"]["pruned"].as_u64(), Some(pruned.len() as u64));
    let listed = f
        .meta("moe.pruned_experts")
        .expect("moe.pruned_experts")
        .clone();
    assert_eq!(listed, m["pruned_experts"]);
    let mut by_layer: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (l, es) in listed.as_object().unwrap() {
        for e in es.as_array().unwrap() {
            let (l, e) = (l.parse().unwrap(), e.as_u64().unwrap() as usize);
            assert!(pruned.contains(&format!("blk.{l}.expert.{e}.").as_str()));
            by_layer.entry(l).or_default().insert(e);
        }
    }
    for p in &pruned {
        assert!(
            !f.tensors().iter().any(|t| t.name.starts_with(p)),
            "{p} still in the file"
        );
        let d = m["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == *p)
            .unwrap();
        assert_eq!(d["type"], "pruned");
    }
    // Other text never reaches a pruned expert; the rest of the routing is unchanged.
    let out = c.dir.join("out.q4.flint");
    let model = Model::load(FlintFile::open(&out).unwrap()).unwrap();
    let ids: Vec<u32> = (0..64).map(|i| (i * 37 + 11) % 256).collect();
    let mut tr = flint_model::Trace::default();
    let z = model
        .forward(&ids, &mut model.new_cache(), true, Some(&mut tr))
        .unwrap();
    assert!(z.iter().all(|v| v.is_finite()));
    for (li, routes) in tr.routes.iter().enumerate() {
        let l = model.moe_layers()[li];
        for row in routes {
            assert_eq!(row.len(), 2);
            for (e, w) in row {
                assert!(
                    !by_layer.get(&l).is_some_and(|s| s.contains(e)),
                    "layer {l} chose pruned {e}"
                );
                assert!(*w > 0.0);
            }
        }
    }
    // Bad lists are refused when the model loads, naming the key.
    for (bad, why) in [
        (serde_json::json!({"0": [99]}), "not an expert below 8"),
        (serde_json::json!({"0": [1, 1]}), "listed twice"),
        (
            serde_json::json!({"0": [0, 1, 2, 3, 4, 5, 6]}),
            "fewer than the 2",
        ),
        (serde_json::json!([0]), "not an object"),
    ] {
        let path = c.dir.join("bad.flint");
        rewrite_meta(&out, &path, "moe.pruned_experts", bad);
        let err = Model::load(FlintFile::open(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("moe.pruned_experts") && err.contains(why),
            "{err}"
        );
    }
}

/// Copies `src` to `dst` with metadata `key` set to `value`.
fn rewrite_meta(src: &Path, dst: &Path, key: &str, value: Value) {
    let f = FlintFile::open(src).unwrap();
    let mut meta = f.metadata().clone();
    meta[key] = value;
    let mut w = flint_format::Writer::create(dst).unwrap();
    w.set_metadata(meta);
    for t in f.tensors() {
        w.add(&t.name, t.dtype, &t.shape, f.tensor(&t.name).unwrap().bytes)
            .unwrap();
    }
    w.finish().unwrap();
}

/// The command fails naming `culprit`, and the output dir holds no new file (output or temp).
fn fails(c: &Case, weights: &str, extra: &[&str], culprit: &str) {
    let out = c.dir.join("bad.flint");
    let before: BTreeSet<_> = std::fs::read_dir(&c.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let (ok, _, stderr) = quantize(c, &out, weights, extra);
    assert!(!ok, "{extra:?} should fail");
    assert!(
        stderr.contains(culprit),
        "error for {extra:?} does not name `{culprit}`: {stderr}"
    );
    let after: BTreeSet<_> = std::fs::read_dir(&c.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "a failed run left files behind");
}

#[test]
fn bad_options_fail_cleanly() {
    let c = case("qwen3_moe");
    fails(&c, "q8", &["--keep", "tok_embd"], "tok_embd");
    fails(&c, "q8", &["--keep", "tok_embd=f9"], "f9");
    fails(&c, "q8", &["--keep", "no_such.*=f16"], "no_such.*=f16");
    // Block types cannot apply to the 40-column expert down projections: naming one is an error, and so is a
    // wildcard that matches only such matrices.
    fails(
        &c,
        "q8",
        &["--keep", "blk.0.expert.3.down=q8"],
        "blk.0.expert.3.down",
    );
    fails(
        &c,
        "q8",
        &["--keep", "blk.*.expert.*.down=q4"],
        "blk.*.expert.*.down=q4",
    );
    fails(&c, "q5", &[], "q5");
    fails(&c, "q8", &["--ctx", "0"], "--ctx");
    // A missing input and a file that is not a .flint are named.
    let missing = c.dir.join("missing.flint");
    let o = c.dir.join("o.flint");
    let (ok, _, stderr) = quantize_file(&missing, &c.calib, &o, "q8", &[]);
    assert!(!ok && stderr.contains("missing.flint"), "{stderr}");
    let (ok, _, stderr) = quantize_file(&c.calib, &c.calib, &o, "q8", &[]);
    assert!(
        !ok && stderr.contains("calib.txt") && stderr.contains("not a .flint"),
        "{stderr}"
    );
    assert!(!o.exists());
    // A missing calibration file is named too.
    let (ok, _, stderr) = quantize_file(&c.input, &c.dir.join("nope.txt"), &o, "q8", &[]);
    assert!(!ok && stderr.contains("nope.txt"), "{stderr}");
    assert!(!o.exists());
}

/// Muse Spark's decoder quantizes like the other architectures: routers (and every vector: norms, residual gates,
/// router biases) stay f32, the other matrices whose rows hold whole 32-value blocks are quantized. This tiny
/// random model amplifies weight error strongly (q/k norms times qk_scale make attention sharp, the 1e-8 post norms
/// rescale small outputs, router margins are ~2e-3), so q4 is only checked to cost more than q8.
#[test]
fn muse_spark_q8_q4() {
    let c = case("muse_spark");
    let check_types = |f: &FlintFile, w: &str, dt: DType| {
        let mut quantized = 0;
        for t in f.tensors().iter().filter(|t| t.shape.len() == 2) {
            // The towers' matrices (`v.*`, `audio.*`) stay q8 under 4-bit weights.
            let tower =
                (t.name.starts_with("v.") || t.name.starts_with("audio.")) && dt == DType::Q4;
            let want = if t.name.ends_with(".ffn_router") || t.shape[1] % 32 != 0 {
                DType::F32
            } else if tower {
                stored(DType::Q8, &t.shape)
            } else {
                quantized += 1;
                stored(dt, &t.shape)
            };
            assert_eq!(t.dtype, want, "{w}: {}", t.name);
        }
        assert!(quantized >= 20, "{w}: {quantized} matrices quantized");
        for t in f.tensors().iter().filter(|t| t.shape.len() == 1) {
            assert_eq!(t.dtype, DType::F32, "{w}: {}", t.name);
        }
    };
    let (f8, q8) = quantize_ok(&c, "q8", &[]);
    check_types(&f8, "q8", DType::Q8);
    assert!(kl(&q8) < 0.05, "q8 KL {}", kl(&q8));
    let out = c.dir.join("out.q4.flint");
    let (ok, _, stderr) = quantize(&c, &out, "q4", &[]);
    assert!(ok, "{stderr}");
    let f4 = FlintFile::open(&out).unwrap();
    check_types(&f4, "q4", DType::Q4);
    let q4 = f4.meta("quantization").unwrap().clone();
    assert!(kl(&q4) > kl(&q8), "q4 KL {} vs q8 {}", kl(&q4), kl(&q8));
    // The tower's q8 is reported as kept, and `--keep` overrides it.
    let kept = q4["kept"].as_array().unwrap();
    assert!(kept.iter().any(|k| k["name"] == "v.patch_embd"
        && k["type"] == "q8"
        && k["reason"]
            .as_str()
            .unwrap()
            .contains("vision / audio tower")));
    assert!(kept
        .iter()
        .any(|k| k["name"] == "audio.proj" && k["type"] == "q8"));
    // The q8 tower runs from the quantized file, close to the f32 one on the fixture's image.
    let io = flint_tests::read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
    let grid = [1, 6, 10];
    let embed = |path: &Path| {
        let m = Model::open(path).unwrap();
        let t = flint_model::vision::VisionTower::load(m.file(), &m.config).unwrap();
        t.encode(m.exec(), &io["in.pixel_values"].data, &[grid])
            .unwrap()
    };
    let e = flint_tests::rel_err(&embed(&c.dir.join("out.q4.flint")), &embed(&c.input));
    eprintln!("muse_spark: q8 tower vs f32: {e:.3e} of the largest magnitude");
    assert!(e < 0.05, "q8 tower differs from f32 by {e}");
    let out = c.dir.join("out.q4.tower4.flint");
    let (ok, _, stderr) = quantize(&c, &out, "q4", &["--keep", "v.*=q4"]);
    assert!(ok, "{stderr}");
    let f = FlintFile::open(&out).unwrap();
    for n in ["v.patch_embd", "v.adapter.fc1"] {
        let t = f.tensor(n).unwrap().info;
        assert_eq!(
            t.dtype,
            stored(DType::Q4, &t.shape),
            "{n} with --keep v.*=q4"
        );
    }
}
