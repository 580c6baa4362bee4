//! The library's examples (runtime/engine/examples), run as an app would run them: a two-turn chat whose second
//! turn reuses the first's cache, a JSON answer that parses and keeps to its schema, an image turn on the tiny Muse
//! Spark with its frame mapped. `cargo test --workspace` builds them. x86_64 only (real weights).
#![cfg(target_arch = "x86_64")]

use flint_tests::muse::muse_spark_with_processors;
use flint_tests::{bin, fixtures, run_bin, smollm2_q8};

fn example(name: &str, args: &[&str]) -> (String, String) {
    let exe = format!("examples/{name}");
    assert!(
        bin(&exe).exists(),
        "{} missing: `cargo test --workspace` builds the examples",
        bin(&exe).display()
    );
    let o = run_bin(&exe, args);
    let (out, err) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{name}: {err}");
    (out, err)
}

#[test]
fn chat_and_json_examples_on_smollm2() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2_q8(dir.path());
    let m = model.to_str().unwrap();
    let (out, err) = example("chat", &[m]);
    assert!(out.contains("Paris") && out.contains("Rome"), "{out}");
    // The second turn prefills only its own message (and the template's frame), not the first turn again.
    let news: Vec<usize> = err
        .lines()
        .filter_map(|l| l.strip_prefix('(')?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(news.len(), 2, "{err}");
    assert!(news[1] < news[0], "{err}");
    let (out, _) = example("json", &[m]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["city"].is_string() && v["country"].is_string(), "{v}");
    let p = v["population_millions"].as_i64().unwrap();
    assert!((0..=100).contains(&p), "{v}");
}

#[test]
fn see_example_on_the_tiny_muse_spark() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_with_processors(dir.path());
    let photo = fixtures().join("processors/images/astronaut_640x480_q90.jpg");
    let (_, err) = example(
        "see",
        &[model.to_str().unwrap(), photo.to_str().unwrap(), "qwen3-vl"],
    );
    assert!(err.contains("the photo is 640x480, the model saw"), "{err}");
}
