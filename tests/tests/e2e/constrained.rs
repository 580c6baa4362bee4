//! Constrained decoding at the CLI, on SmolLM2's real weights: `flint run --json-schema` answers validate against
//! their schema in every run (greedy and sampled, checked by the `jsonschema` package, not by our code), stdout
//! holds exactly the value, a schema feature that cannot be enforced is refused before generation, too few tokens
//! is an error with nothing on stdout, and `--grammar` (GBNF) keeps the answer to its language. x86_64 only (real
//! weights and a Python validator).
#![cfg(target_arch = "x86_64")]

use flint_tests::{python, root, run_bin, smollm2_q8};
use std::path::Path;
use std::process::Command;

fn run(model: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["run", "-m", model.to_str().unwrap(), "--chat"];
    a.extend_from_slice(args);
    run_bin("flint", &a)
}

#[test]
fn json_schemas_hold_in_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2_q8(dir.path());
    let cases = [
        (
            "person.json",
            "Describe a person called Ada, aged 36, as JSON.",
        ),
        ("order.json", "Order two A1 and one C3, express, as JSON."),
        (
            "reading.json",
            "Report the weather sensor: 21.5 C, humidity 40, floor 2, as JSON.",
        ),
        ("answer.json", "How far is the station? Answer as JSON."),
    ];
    for (schema, prompt) in cases {
        let path = root().join("tests/schemas").join(schema);
        let mut outputs = Vec::new();
        // Greedy, then sampled warm with three seeds: the grammar holds whatever the model prefers.
        for (k, (temp, seed)) in [("0", "0"), ("1.0", "1"), ("1.0", "2"), ("1.2", "3")]
            .into_iter()
            .enumerate()
        {
            let o = run(
                &model,
                &[
                    "-p",
                    prompt,
                    "--json-schema",
                    path.to_str().unwrap(),
                    "-n",
                    "256",
                    "--temp",
                    temp,
                    "--seed",
                    seed,
                ],
            );
            let stdout = String::from_utf8(o.stdout).unwrap();
            assert!(
                o.status.success(),
                "{schema} run {k}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            // Exactly the value and a newline.
            let value = stdout.strip_suffix('\n').unwrap();
            assert_eq!(value.trim(), value, "{schema}: whitespace around the value");
            let f = dir.path().join(format!("{schema}.{k}.out"));
            std::fs::write(&f, value).unwrap();
            outputs.push(f);
        }
        let v = Command::new(python())
            .arg(root().join("tests/serve/validate.py"))
            .arg(&path)
            .args(&outputs)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&v.stdout);
        println!("{report}");
        assert!(
            v.status.success(),
            "{schema}:\n{report}{}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

#[test]
fn refusals_and_running_out() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2_q8(dir.path());
    let schemas = root().join("tests/schemas");
    for (file, names) in [
        ("unsupported_pattern.json", ["/properties/zip", "pattern"]),
        ("unsupported_oneof.json", ["/properties/v", "oneOf"]),
    ] {
        let p = schemas.join(file);
        let o = run(&model, &["-p", "x", "--json-schema", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{file}: accepted");
        assert!(
            o.stdout.is_empty(),
            "{file}: wrote {:?}",
            String::from_utf8_lossy(&o.stdout)
        );
        for n in names.iter().chain([&file]) {
            assert!(
                err.contains(n),
                "{file}: the error does not name `{n}`: {err}"
            );
        }
    }
    // Not JSON, and a grammar that does not parse: errors naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let o = run(&model, &["-p", "x", "--json-schema", bad.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("bad.json"));
    let g = dir.path().join("bad.gbnf");
    std::fs::write(&g, "root ::= undefined-rule\n").unwrap();
    let o = run(&model, &["-p", "x", "--grammar", g.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("bad.gbnf") && err.contains("undefined-rule"),
        "{err}"
    );
    // Four tokens cannot hold a person: an error, and no half value on stdout.
    let person = schemas.join("person.json");
    let o = run(
        &model,
        &[
            "-p",
            "Describe Ada as JSON.",
            "--json-schema",
            person.to_str().unwrap(),
            "-n",
            "4",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "an incomplete value was accepted");
    assert!(
        o.stdout.is_empty(),
        "wrote {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(err.contains("not complete") && err.contains("-n"), "{err}");
}

#[test]
fn a_gbnf_grammar_keeps_the_answer_to_its_language() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2_q8(dir.path());
    let g = dir.path().join("yesno.gbnf");
    std::fs::write(
        &g,
        "# a yes or no, then a reason in lower case\nroot ::= (\"yes\" | \"no\") \", because \" [a-z ]{1,40} \".\"\n",
    )
    .unwrap();
    for seed in ["0", "1", "2"] {
        let o = run(
            &model,
            &[
                "-p",
                "Is Paris in France?",
                "--grammar",
                g.to_str().unwrap(),
                "-n",
                "64",
                "--temp",
                "1.0",
                "--seed",
                seed,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap();
        let line = out.strip_suffix('\n').unwrap();
        let rest = line
            .strip_prefix("yes, because ")
            .or_else(|| line.strip_prefix("no, because "))
            .unwrap_or_else(|| panic!("{line:?}"));
        let reason = rest.strip_suffix('.').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            (1..=40).contains(&reason.len())
                && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b' '),
            "{line:?}"
        );
    }
}
