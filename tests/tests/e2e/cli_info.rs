//! `flint info` at the command line: one metadata key as JSON, a missing key named, and a closed pipe on stdout
//! ending the command quietly (no panic).

use flint_format::DType;
use flint_tests::{bin_command, fixtures, import, run_bin};
use std::io::Read;
use std::process::Stdio;

fn model(tmp: &std::path::Path) -> std::path::PathBuf {
    let m = tmp.join("m.flint");
    import(&fixtures().join("hf/llama/model"), &m, DType::F32);
    m
}

#[test]
fn meta_prints_one_key_as_json_and_names_a_missing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model(tmp.path());
    let m = m.to_str().unwrap();
    let o = run_bin("flint", &["info", m, "--meta", "model.config"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["arch"], "llama");
    let o = run_bin("flint", &["info", m, "--meta", "no.such.key"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no.such.key") && err.contains("m.flint"),
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model(tmp.path());
    let mut child = bin_command("flint", &["info", m.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end at once, as `| head -c0` would: the child is still starting up (exec, open, validate), so its
    // first line already hits the closed pipe.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}
