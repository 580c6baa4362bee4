//! Bad input at the user's boundary: damaged model files given to the `flint` binary, and broken checkpoints given
//! to the importer. Each must give a clear error naming the file, field or tensor, and never a panic.

use flint_format::DType;
use flint_tests::{fixtures, import, run_bin};
use std::path::Path;

fn assert_clean_failure(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{what}: should fail");
    assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
    assert!(
        stderr.starts_with("error:"),
        "{what}: unclear error: {stderr}"
    );
    stderr
}

#[test]
fn damaged_model_files_fail_cleanly_in_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.flint");
    import(&fixtures().join("hf/qwen3_moe/model"), &good, DType::F16);
    let full = std::fs::read(&good).unwrap();
    let bad = tmp.path().join("bad.flint");
    let bad_s = bad.to_str().unwrap();
    // Truncations, including inside the data, the metadata and the directory.
    let n = full.len();
    for cut in [0, 7, 79, 80, 4096, 5000, n / 2, n - 2000, n - 100, n - 1] {
        std::fs::write(&bad, &full[..cut]).unwrap();
        for args in [
            vec!["info", bad_s],
            vec!["logits", "-m", bad_s, "--ids", "1,2", "-o", "/dev/null"],
        ] {
            let e = assert_clean_failure(&run_bin("flint", &args), &format!("cut at {cut}"));
            assert!(e.contains("bad.flint"), "error names the file: {e}");
        }
    }
    // Flipped bytes in the header and the index.
    let meta_off = u64::from_le_bytes(full[32..40].try_into().unwrap()) as usize;
    for i in [8, 20, 40, 60, 72, meta_off, meta_off + 30, n - 40, n - 5] {
        let mut b = full.clone();
        b[i] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        assert_clean_failure(&run_bin("flint", &["info", bad_s]), &format!("flip at {i}"));
    }
    // A flipped data byte loads (data is not hashed at load) but --verify names the tensor.
    let mut b = full.clone();
    b[4096 + 10] ^= 0x01;
    std::fs::write(&bad, &b).unwrap();
    let e = assert_clean_failure(&run_bin("flint", &["info", "--verify", bad_s]), "data flip");
    assert!(e.contains("tok_embd") && e.contains("checksum"), "{e}");
    // Out-of-range token ids are an error, not a panic.
    let e = assert_clean_failure(
        &run_bin(
            "flint",
            &[
                "logits",
                "-m",
                good.to_str().unwrap(),
                "--ids",
                "1,99999",
                "-o",
                "/dev/null",
            ],
        ),
        "bad id",
    );
    assert!(e.contains("99999"), "{e}");
}

/// Copies a fixture checkpoint folder so a test can damage it.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn import_err(dir: &Path) -> String {
    let out = dir.with_extension("flint");
    let o = run_bin(
        "flint-quantize",
        &["import", dir.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    let e = assert_clean_failure(&o, "import");
    assert!(!out.exists(), "no output file after a failed import");
    e
}

#[test]
fn broken_checkpoints_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("hf/qwen3_moe/model");
    // Unknown architecture.
    let d = tmp.path().join("arch");
    copy_dir(&src, &d);
    let cfg = std::fs::read_to_string(d.join("config.json"))
        .unwrap()
        .replace("\"qwen3_moe\"", "\"gpt_bigcode\"");
    std::fs::write(d.join("config.json"), cfg).unwrap();
    let e = import_err(&d);
    assert!(e.contains("unknown architecture `gpt_bigcode`"), "{e}");
    // A missing tensor and a wrong shape: rewrite the safetensors file without / with a changed tensor.
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let victim = "model.layers.1.self_attn.k_proj.weight";
    for (case, want) in [
        ("missing", "missing tensor"),
        ("shape", "expected shape [48, 64], found [47, 64]"),
    ] {
        let d = tmp.path().join(case);
        copy_dir(&src, &d);
        let mut keep: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
        for (name, v) in st.tensors() {
            if name == victim {
                if case == "missing" {
                    continue;
                }
                let short = &v.data()[..47 * 64 * 4];
                let t = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    vec![47, 64],
                    short,
                )
                .unwrap();
                keep.push((name, t));
            } else {
                keep.push((name, v));
            }
        }
        safetensors::serialize_to_file(keep, None, &d.join("model.safetensors")).unwrap();
        let e = import_err(&d);
        assert!(e.contains(victim) && e.contains(want), "{case}: {e}");
    }
    // A GGUF that is not one.
    let g = tmp.path().join("junk.gguf");
    std::fs::write(&g, b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
    let out = tmp.path().join("junk.flint");
    let o = run_bin(
        "flint-quantize",
        &["import", g.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    let e = assert_clean_failure(&o, "junk gguf");
    assert!(e.contains("junk.gguf"), "{e}");
}
