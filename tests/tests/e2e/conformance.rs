//! Conformance against Hugging Face transformers: tiny random models from ../shared/fixtures/hf, imported from both
//! expert layouts, must reproduce the reference logits, hidden states and router logits within 1e-4 of the
//! reference's largest magnitude.

use flint_format::DType;
use flint_model::{Batch, KvDtype, KvOptions, Logits, Model, Trace};
use flint_tests::{fixtures, import, read_safetensors, rel_err};

const TOL: f32 = 1e-4;

fn check(case: &str, layout: &str) {
    let dir = fixtures().join("hf").join(case);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(&dir.join(layout), &out, DType::F32);
    let model = Model::open(&out).unwrap();
    let io = read_safetensors(&dir.join("io.safetensors"));
    let ids: Vec<u32> = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
    let mut trace = Trace::default();
    let mut cache = model.new_cache_with(KvOptions::with_dtype(KvDtype::F32));
    let logits = model
        .forward(&ids, &mut cache, true, Some(&mut trace))
        .unwrap();
    compare(case, layout, &io, &logits, &trace);
}

/// Logits, hidden states and router logits against the reference outputs.
fn compare(
    case: &str,
    layout: &str,
    io: &std::collections::HashMap<String, flint_tests::Ref>,
    logits: &[f32],
    trace: &Trace,
) {
    let e = rel_err(logits, &io["out.logits"].data);
    assert!(e < TOL, "{case}/{layout}: logits differ by {e:e}");
    let hs = &io["out.hidden_states"];
    let per = hs.data.len() / hs.shape[0];
    assert_eq!(
        trace.hidden_states.len(),
        hs.shape[0],
        "{case}: number of hidden states"
    );
    for (i, h) in trace.hidden_states.iter().enumerate() {
        let e = rel_err(h, &hs.data[i * per..(i + 1) * per]);
        assert!(
            e < TOL,
            "{case}/{layout}: hidden state {i} differs by {e:e}"
        );
    }
    if let Some(rl) = io.get("out.router_logits") {
        let per = rl.data.len() / rl.shape[0];
        assert_eq!(
            trace.router_logits.len(),
            rl.shape[0],
            "{case}: number of MoE layers"
        );
        for (i, r) in trace.router_logits.iter().enumerate() {
            let e = rel_err(r, &rl.data[i * per..(i + 1) * per]);
            assert!(
                e < TOL,
                "{case}/{layout}: router logits of layer {i} differ by {e:e}"
            );
        }
    }
}

#[test]
fn llama() {
    check("llama", "model");
}

/// A fixture's greedy generation reference (`in.gen_prompt_ids`, `out.gen_ids`, `out.gen_step_logits`): each step's
/// logits within the tolerance and the same ids, decoded with a paged f32 cache of `block`-slot blocks; returns the
/// cache.
fn greedy(
    case: &str,
    model: &Model,
    io: &std::collections::HashMap<String, flint_tests::Ref>,
    block: usize,
) -> flint_model::KvCache {
    let prompt: Vec<u32> = io["in.gen_prompt_ids"]
        .data
        .iter()
        .map(|&v| v as u32)
        .collect();
    let want: Vec<u32> = io["out.gen_ids"].data.iter().map(|&v| v as u32).collect();
    let step = &io["out.gen_step_logits"].data;
    let v = model.config.vocab_size;
    let opts = KvOptions {
        dtype: KvDtype::F32,
        block,
    };
    let mut cache = model.new_cache_with(opts);
    let mut logits = model.forward(&prompt, &mut cache, false, None).unwrap();
    let mut got = Vec::new();
    for i in 0..want.len() {
        let e = rel_err(&logits, &step[i * v..(i + 1) * v]);
        assert!(e < TOL, "{case}: step {i} logits differ by {e:e}");
        let next = flint_model::sampler::argmax(&logits);
        got.push(next);
        if i + 1 < want.len() {
            logits = model.forward(&[next], &mut cache, false, None).unwrap();
        }
    }
    assert_eq!(got, want, "{case}: greedy ids");
    cache
}

/// qwen2, qwen3 and gemma3_text (dense): logits and hidden states, and their greedy generation references
/// (gemma3_text's is longer than its sliding window, with a theta per layer type and the logit soft cap).
#[test]
fn qwen2_qwen3_and_gemma3() {
    for case in ["qwen2", "qwen3", "gemma3_text"] {
        check(case, "model");
        let dir = fixtures().join("hf").join(case);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.flint");
        import(&dir.join("model"), &out, DType::F32);
        let model = Model::open(&out).unwrap();
        greedy(
            case,
            &model,
            &read_safetensors(&dir.join("io.safetensors")),
            16,
        );
    }
}

macro_rules! moe_case {
    ($name:ident, $fused:ident, $case:literal) => {
        #[test]
        fn $name() {
            check($case, "model");
        }
        #[test]
        fn $fused() {
            check($case, "model_fused");
        }
    };
}

moe_case!(qwen2_moe, qwen2_moe_fused, "qwen2_moe");
moe_case!(qwen3_moe, qwen3_moe_fused, "qwen3_moe");
moe_case!(olmoe, olmoe_fused, "olmoe");
moe_case!(mixtral, mixtral_fused, "mixtral");

/// Decoding one token at a time with the KV cache gives the logits of recomputing the whole prefix.
#[test]
fn kv_cache_matches_recompute() {
    for case in ["llama", "qwen3_moe", "qwen2_moe"] {
        let dir = fixtures().join("hf").join(case);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.flint");
        import(&dir.join("model"), &out, DType::F32);
        let model = Model::open(&out).unwrap();
        let mut ids = vec![5u32, 77, 300, 12];
        let f32_kv = KvOptions::with_dtype(KvDtype::F32);
        let mut cache = model.new_cache_with(f32_kv);
        let mut logits = model.forward(&ids, &mut cache, false, None).unwrap();
        for _ in 0..12 {
            let next = flint_model::sampler::argmax(&logits);
            // Greedy from scratch must pick the same token.
            let mut fresh = model.new_cache_with(f32_kv);
            let full = model.forward(&ids, &mut fresh, false, None).unwrap();
            assert_eq!(
                flint_model::sampler::argmax(&full),
                next,
                "{case}: greedy token differs at {}",
                ids.len()
            );
            let e = rel_err(&logits, &full);
            assert!(
                e < 1e-5,
                "{case}: cached logits differ from recompute by {e:e} at {}",
                ids.len()
            );
            ids.push(next);
            logits = model.forward(&[next], &mut cache, false, None).unwrap();
        }
    }
}

/// The Muse Spark fixture imported at f32, and its reference tensors.
fn muse_spark() -> (
    tempfile::TempDir,
    Model,
    std::collections::HashMap<String, flint_tests::Ref>,
) {
    let dir = fixtures().join("hf/muse_spark");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(&dir.join("model"), &out, DType::F32);
    let model = Model::open(&out).unwrap();
    (tmp, model, read_safetensors(&dir.join("io.safetensors")))
}

/// Muse Spark's text decoder on the fixture's merged multimodal prompt: text rows as token ids (the normed
/// embedding), the image and audio placeholders as the reference's own embedding rows (the towers come later), in
/// one batch, with f32 KV.
#[test]
fn muse_spark_decoder() {
    let (_tmp, model, io) = muse_spark();
    let ids: Vec<u32> = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
    let embeds = &io["out.tap.lm.inputs_embeds"].data;
    let h = model.config.hidden_size;
    let mut kv = model.new_kv(KvOptions::with_dtype(KvDtype::F32));
    let seq = kv.new_seq();
    let mut batch = Batch::new();
    let placeholders = [3u32, 4, 5]; // <|patch|>, <|video|>, <|audio|> (manifest `inputs_how`)
    let mut embedded = 0;
    for (t, &id) in ids.iter().enumerate() {
        if placeholders.contains(&id) {
            batch.push_embeds(seq, t, &embeds[t * h..(t + 1) * h], h, Logits::All);
            embedded += 1;
        } else {
            batch.push_text(seq, t, &[id], Logits::All);
        }
    }
    assert!(embedded > 0 && embedded < ids.len());
    let mut trace = Trace::default();
    let logits = model
        .forward_batch(&batch, &mut kv, None, Some(&mut trace))
        .unwrap();
    compare("muse_spark", "model", &io, &logits, &trace);
}

/// Muse Spark's greedy generation reference (4 prompt tokens, 14 new; 18 positions is 3 sliding windows), decoded
/// with the paged cache in blocks of 4 slots so its sliding layers evict while decoding.
#[test]
fn muse_spark_greedy_generation() {
    let (_tmp, model, io) = muse_spark();
    let cache = greedy("muse_spark", &model, &io, 4);
    // The sliding layers hold at most window + block slots; the full layers all 17.
    let window = model.config.sliding_window.unwrap();
    for (w, blocks) in cache.store.blocks_in_use() {
        match w {
            Some(_) => assert!(
                blocks * 4 <= window + 4,
                "sliding group holds {blocks} blocks"
            ),
            None => assert_eq!(blocks, cache.len().div_ceil(4)),
        }
    }
}
