//! Conformance against Hugging Face transformers: tiny random models from ../shared/fixtures/hf, imported from both
//! expert layouts, must reproduce the reference logits, hidden states and router logits within 1e-4 of the
//! reference's largest magnitude.

use flint_format::DType;
use flint_model::{Model, Trace};
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
    let mut cache = model.new_cache();
    let logits = model
        .forward(&ids, &mut cache, true, Some(&mut trace))
        .unwrap();
    let e = rel_err(&logits, &io["out.logits"].data);
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
        let mut cache = model.new_cache();
        let mut logits = model.forward(&ids, &mut cache, false, None).unwrap();
        for _ in 0..12 {
            let next = flint_model::sampler::argmax(&logits);
            // Greedy from scratch must pick the same token.
            let mut fresh = model.new_cache();
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
