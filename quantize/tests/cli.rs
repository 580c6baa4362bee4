//! The `flint-quantize` binary at its boundary (this file also makes `cargo test` build the binary, which the
//! end-to-end tests in tests/ run).

use std::path::Path;

mod common;

use common::quantize_cmd;

fn fixture(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/hf")
        .join(case)
        .join("model")
}

#[test]
fn import_writes_a_loadable_file_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.flint");
    let o = quantize_cmd()
        .args([
            "import",
            fixture("olmoe").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--dtype",
            "bf16",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("olmoe") && stderr.contains("8 experts top-2"),
        "{stderr}"
    );
    let f = flint_format::FlintFile::open(&out).unwrap();
    assert_eq!(
        f.tensor("blk.0.attn_q").unwrap().info.dtype,
        flint_format::DType::BF16
    );
    assert_eq!(
        f.tensor("blk.0.attn_norm").unwrap().info.dtype,
        flint_format::DType::F32,
        "vectors stay f32"
    );
    assert_eq!(
        f.tensors().iter().filter(|t| t.group > 0).count(),
        2 * 8 * 3,
        "one group per expert"
    );
}

#[test]
fn missing_source_is_named() {
    let o = quantize_cmd()
        .args(["import", "/nonexistent/ckpt.gguf", "-o", "/tmp/never.flint"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("/nonexistent/ckpt.gguf") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
