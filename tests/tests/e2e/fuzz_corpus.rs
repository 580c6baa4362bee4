//! Replays every kept fuzz input (fuzz/corpus/<target>/ and the crash inputs in fuzz/regressions/<target>/)
//! through the same functions the `cargo fuzz` targets call, so CI checks them on stable in seconds.
//! `cargo test -p flint-tests --test e2e -- --ignored fuzz_corpus::write_seeds` rewrites the seed files.

use flint_tests::fuzz_targets::{fuzz_dir, write_seeds, TARGETS};

#[test]
fn every_kept_input_runs_without_panic() {
    for (name, body) in TARGETS {
        let (mut n, mut accepted) = (0, 0);
        for kind in ["corpus", "regressions"] {
            let d = fuzz_dir().join(kind).join(name);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let p = e.unwrap().path();
                let data = std::fs::read(&p).unwrap();
                let t = std::time::Instant::now();
                let r = std::panic::catch_unwind(|| body(&data));
                let ok = r.unwrap_or_else(|_| panic!("{}: the target panicked", p.display()));
                accepted += usize::from(ok);
                assert!(
                    t.elapsed().as_secs() < 5,
                    "{}: took {:?}",
                    p.display(),
                    t.elapsed()
                );
                n += 1;
            }
        }
        assert!(n > 0, "target {name} has no corpus");
        assert!(
            accepted > 0,
            "target {name}: no kept input is accepted (the seeds are broken)"
        );
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand after a format change"]
fn write_seed_corpora() {
    write_seeds();
}
