//! Expert paging under a memory budget, at the library API and the CLI: a model whose experts are read through the
//! pager's resident set gives the mapped model's logits bit for bit, whatever the budget, policy and prefetch; the
//! resident set never exceeds the budget; budgets that cannot work are refused naming the option and the file.

use flint_format::DType;
use flint_model::{Model, PagingOptions, Policy};
use flint_tests::{fixtures, import, run_bin};

fn imported(case: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join(format!("{case}.flint"));
    import(
        &fixtures().join("hf").join(case).join("model"),
        &out,
        DType::F32,
    );
    out
}

/// Logits of a 9-token prefill and 6 decode steps fed fixed tokens.
fn logits(m: &Model) -> Vec<Vec<f32>> {
    let prompt: Vec<u32> = (0..9).map(|i| 7 + i * 11).collect();
    let mut c = m.new_cache_with(flint_model::KvOptions::with_dtype(
        flint_model::KvDtype::F32,
    ));
    let mut out = vec![m.forward(&prompt, &mut c, true, None).unwrap()];
    for t in 0..6u32 {
        out.push(m.forward(&[30 + 5 * t], &mut c, false, None).unwrap());
    }
    out
}

#[test]
fn paged_experts_give_the_mapped_logits_within_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    for case in ["qwen3_moe", "olmoe", "muse_spark"] {
        let path = imported(case, tmp.path());
        let want = logits(&Model::open(&path).unwrap());
        let m0 = Model::open(&path).unwrap();
        let all = m0.expert_bytes();
        // Every expert of these fixtures has the same size.
        let one =
            all / (m0.moe_layers().len() * m0.config.moe.as_ref().unwrap().num_experts) as u64;
        for (budget, policy, prefetch) in [
            (2 * one, Policy::Lru, true),
            (2 * one, Policy::Lfu, false),
            (all / 2, Policy::Lru, true),
            (all, Policy::Lfu, true),
        ] {
            let mut m = Model::open(&path).unwrap();
            m.enable_paging(&PagingOptions {
                budget,
                policy,
                direct: true,
                io_rate: None,
                prefetch,
                pins: None,
            })
            .unwrap();
            let got = logits(&m);
            assert_eq!(
                got, want,
                "{case} budget {budget} {policy:?} prefetch {prefetch}"
            );
            let s = m.pager().unwrap().stats();
            assert!(s.peak_resident <= budget, "{case}: {s:?}");
            assert_eq!(s.wanted, s.hits + s.in_flight + s.misses, "{case}: {s:?}");
            assert!(s.misses > 0 && s.reads >= s.misses, "{case}: {s:?}");
            if budget < all {
                assert!(s.evictions > 0, "{case} budget {budget}: {s:?}");
            }
            if prefetch {
                assert!(s.predicted > 0, "{case}: pre-gating never ran: {s:?}");
            }
        }
    }
}

#[test]
fn budgets_and_policies_that_cannot_work_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let moe = imported("qwen3_moe", tmp.path());
    let llama = imported("llama", tmp.path());
    let opts = |budget| PagingOptions {
        budget,
        policy: Policy::Lru,
        direct: true,
        io_rate: None,
        prefetch: true,
        pins: None,
    };
    let e = Model::open(&moe)
        .unwrap()
        .enable_paging(&opts(1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("qwen3_moe.flint") && e.contains("fewer than two experts"),
        "{e}"
    );
    let e = Model::open(&llama)
        .unwrap()
        .enable_paging(&opts(1 << 20))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no experts"), "{e}");
    let e = Model::open(&moe)
        .unwrap()
        .enable_paging(&PagingOptions {
            policy: Policy::Pinned,
            ..opts(1 << 20)
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("routing statistics"), "{e}");

    // At the CLI: the option and the file are named.
    let m = moe.to_str().unwrap();
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "-m", m, "-p", "2", "-n", "2", "-r", "1"];
        args.extend_from_slice(extra);
        let o = run_bin("flint", &args);
        assert!(!o.status.success(), "{extra:?} was accepted");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    for (budget, culprit) in [
        ("1K", "do not hold"),
        ("abc", "is not a size"),
        ("0%", "percentage"),
    ] {
        let err = bench(&["--mem-budget", budget]);
        assert!(
            err.contains("--mem-budget") && err.contains(culprit),
            "{budget}: {err}"
        );
    }
    assert!(bench(&["--paging-policy", "mru"]).contains("mru"));
}
