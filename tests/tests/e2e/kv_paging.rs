//! The paged KV cache at the library API: forked sequences decoded in one batch equal separate runs, sliding-window
//! layers free their blocks, and a session's second turn equals a fresh run of the whole text.

use flint_format::DType;
use flint_model::{Batch, KvDtype, KvOptions, Logits, Model, Sampler, SamplerConfig, Session};
use flint_tests::{fixtures, import, rel_err};

fn model(case: &str) -> (tempfile::TempDir, Model) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(
        &fixtures().join("hf").join(case).join("model"),
        &out,
        DType::F32,
    );
    let m = Model::open(&out).unwrap();
    (tmp, m)
}

fn f32_blocks(block: usize) -> KvOptions {
    KvOptions {
        dtype: KvDtype::F32,
        block,
    }
}

/// Logits of the last token of `ids` from a fresh cache.
fn fresh(m: &Model, ids: &[u32], opts: KvOptions) -> Vec<f32> {
    let mut c = m.new_cache_with(opts);
    m.forward(ids, &mut c, false, None).unwrap()
}

#[test]
fn forks_decoded_in_one_batch_equal_separate_runs() {
    // q8 too: its scales live beside the values and must move with a copied block.
    for (case, dtype) in [
        ("qwen3_moe", KvDtype::F32),
        ("muse_spark", KvDtype::F32),
        ("llama", KvDtype::F32),
        ("llama", KvDtype::Q8),
    ] {
        let (_t, m) = model(case);
        // A prompt that ends inside a block, so the forks' first writes go into a shared block (copy on write).
        let prompt: Vec<u32> = (0..11).map(|i| 20 + i * 13).collect();
        let opts = KvOptions { dtype, block: 4 };
        let mut kv = m.new_kv(opts);
        let a = kv.new_seq();
        let mut b0 = Batch::new();
        b0.push_text(a, 0, &prompt, Logits::Last);
        m.forward_batch(&b0, &mut kv, None, None).unwrap();
        let b = kv.fork(a).unwrap();
        let c = kv.fork(b).unwrap();
        let (mut ta, mut tb, mut tc) = (prompt.clone(), prompt.clone(), prompt.clone());
        for step in 0..9u32 {
            let (xa, xb, xc) = (100 + step, 200 + 3 * step, 300 + 7 * step);
            let mut batch = Batch::new();
            batch.push_text(b, tb.len(), &[xb], Logits::Last);
            batch.push_text(a, ta.len(), &[xa], Logits::Last);
            batch.push_text(c, tc.len(), &[xc], Logits::Last);
            let l = m.forward_batch(&batch, &mut kv, None, None).unwrap();
            ta.push(xa);
            tb.push(xb);
            tc.push(xc);
            let v = m.config.vocab_size;
            for (i, t) in [&tb, &ta, &tc].into_iter().enumerate() {
                let e = rel_err(&l[i * v..(i + 1) * v], &fresh(&m, t, opts));
                assert!(e < 1e-5, "{case}: fork {i} at step {step} differs by {e:e}");
            }
        }
        // The prompt's full blocks are still shared by all three: fewer blocks than three separate caches.
        let used: usize = kv.blocks_in_use().iter().map(|g| g.1).sum();
        let separate: usize = {
            let mut s = m.new_kv(opts);
            for t in [&ta, &tb, &tc] {
                let q = s.new_seq();
                let mut bt = Batch::new();
                bt.push_text(q, 0, t, Logits::Last);
                m.forward_batch(&bt, &mut s, None, None).unwrap();
            }
            s.blocks_in_use().iter().map(|g| g.1).sum()
        };
        assert!(
            used < separate,
            "{case}: {used} blocks shared vs {separate} separate"
        );
        for s in [a, b, c] {
            kv.free(s);
        }
        assert!(
            kv.blocks_in_use().iter().all(|g| g.1 == 0),
            "{case}: blocks leak"
        );
    }
}

#[test]
fn sliding_window_layers_free_their_blocks() {
    let (_t, m) = model("muse_spark");
    let w = m.config.sliding_window.unwrap();
    let mut c = m.new_cache_with(f32_blocks(2));
    let ids: Vec<u32> = (0..60).map(|i| 16 + (i * 31) % 400).collect();
    for chunk in ids.chunks(7) {
        m.forward(chunk, &mut c, false, None).unwrap();
        for (win, blocks) in c.store.blocks_in_use() {
            match win {
                // After each forward a sliding layer keeps only what the next query can see.
                Some(_) => assert!(blocks * 2 <= w + 2, "{blocks} blocks for window {w}"),
                None => assert_eq!(blocks, c.len().div_ceil(2)),
            }
        }
    }
    // And what it kept is still right: the last logits equal a fresh run of everything.
    let mut c2 = m.new_cache_with(f32_blocks(2));
    let all = m.forward(&ids, &mut c2, false, None).unwrap();
    let mut c3 = m.new_cache_with(f32_blocks(2));
    m.forward(&ids[..59], &mut c3, false, None).unwrap();
    let last = m.forward(&ids[59..], &mut c3, false, None).unwrap();
    assert!(rel_err(&last, &all) < 1e-5);
}

#[test]
fn a_sessions_second_turn_equals_a_fresh_run() {
    for case in ["llama", "muse_spark"] {
        let (_t, m) = model(case);
        let opts = f32_blocks(4);
        let mut s = Session::new(&m, opts);
        let turn1: Vec<u32> = (0..9).map(|i| 30 + i * 17).collect();
        let mut sampler = Sampler::new(SamplerConfig::default());
        let (gen, _, reused) = s.generate(&turn1, 5, &mut sampler, &[], |_| true).unwrap();
        assert_eq!(reused, 0);
        // Turn 2 re-renders the history (turn 1 and its answer) and adds a question.
        let mut turn2 = turn1.clone();
        turn2.extend(&gen);
        turn2.extend([40, 41, 42]);
        let (l2, reused) = s.prefill(&turn2).unwrap();
        let e = rel_err(&l2, &fresh(&m, &turn2, opts));
        assert!(
            e < 1e-5,
            "{case}: second turn differs from a fresh run by {e:e}"
        );
        // Muse's sliding layers cannot roll back past their window: the session then starts again.
        if case == "llama" {
            assert_eq!(reused, turn1.len() + gen.len() - 1, "{case}: reused prefix");
        }
        // A template that rewrites an early message: only the common prefix is kept.
        let mut turn3 = turn2.clone();
        turn3[3] = 99;
        let (l3, reused) = s.prefill(&turn3).unwrap();
        assert!(
            reused <= 3,
            "{case}: reused {reused} tokens past the change"
        );
        let e = rel_err(&l3, &fresh(&m, &turn3, opts));
        assert!(e < 1e-5, "{case}: rewritten history differs by {e:e}");
    }
}

/// The layer hook sees every layer in order with the batch, and what it adds flows into the next layers (the way
/// deepstack adds vision features into the first layers).
#[test]
fn the_layer_hook_adds_into_the_hidden_states() {
    use flint_model::{LayerHook, Trace};
    struct Add {
        calls: Vec<(usize, usize)>,
        at: usize,
    }
    impl LayerHook for Add {
        fn after_layer(&mut self, layer: usize, batch: &Batch<'_>, hidden: &mut [f32]) {
            self.calls.push((layer, batch.len()));
            if layer == self.at {
                hidden.iter_mut().for_each(|v| *v += 0.25);
            }
        }
    }
    let (_t, m) = model("qwen3_moe");
    let ids = [5u32, 77, 300, 12, 9];
    let run = |hook: Option<&mut dyn LayerHook>| {
        let mut kv = m.new_kv(f32_blocks(4));
        let s = kv.new_seq();
        let mut b = Batch::new();
        b.push_text(s, 0, &ids, Logits::All);
        let mut tr = Trace::default();
        let l = m.forward_batch(&b, &mut kv, hook, Some(&mut tr)).unwrap();
        (l, tr)
    };
    let (la, ta) = run(None);
    let mut hook = Add {
        calls: Vec::new(),
        at: 0,
    };
    let (lb, tb) = run(Some(&mut hook));
    let layers = m.config.num_layers;
    assert_eq!(
        hook.calls,
        (0..layers).map(|l| (l, ids.len())).collect::<Vec<_>>()
    );
    assert_eq!(ta.hidden_states[0], tb.hidden_states[0], "embeddings");
    // The trace holds each layer's own output (as transformers records it), before the hook adds to it; the
    // addition enters the next layer.
    assert_eq!(
        tb.hidden_states[1], ta.hidden_states[1],
        "layer 0's traced output is its own"
    );
    assert!(
        rel_err(&tb.hidden_states[2], &ta.hidden_states[2]) > 1e-3,
        "layer 1 sees the addition"
    );
    assert!(rel_err(&lb, &la) > 1e-3, "the addition reaches the logits");
}

/// Tokens a caller forces after a sampled one (a thinking budget closing the reasoning) enter the cache like
/// prompt tokens: the next sampled token is the greedy one of a fresh run over everything so far, and the forced
/// tokens are in the session but not in the returned tokens.
#[test]
fn forced_tokens_continue_as_a_fresh_run() {
    for case in ["llama", "muse_spark"] {
        let (_t, m) = model(case);
        let opts = f32_blocks(4);
        let prompt: Vec<u32> = vec![1, 17, 42, 99, 7];
        let forced = vec![300, 301, 302];
        let mut s = Session::new(&m, opts);
        let mut greedy = Sampler::new(SamplerConfig::default());
        let mut n = 0;
        let (out, _, _) = s
            .generate_with(
                &flint_model::multimodal::MediaPrompt::text(&m, prompt.clone()),
                5,
                &mut greedy,
                &[],
                |_| {
                    n += 1;
                    if n == 2 {
                        flint_model::Step::Force(forced.clone())
                    } else {
                        flint_model::Step::Continue
                    }
                },
            )
            .unwrap();
        assert_eq!(out.len(), 5, "{case}");
        let mut want = prompt.clone();
        want.extend_from_slice(&out[..2]);
        want.extend_from_slice(&forced);
        want.extend_from_slice(&out[2..4]);
        assert_eq!(&s.tokens()[..want.len()], &want[..], "{case}");
        // The token after the forced ones is the argmax of a fresh run over everything before it.
        let upto: Vec<u32> = [&prompt[..], &out[..2], &forced[..]].concat();
        let l = fresh(&m, &upto, opts);
        assert_eq!(out[2], flint_model::sampler::argmax(&l), "{case}");
    }
}
