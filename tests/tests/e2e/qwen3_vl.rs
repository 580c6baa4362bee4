//! Qwen3-VL-MoE against transformers (../shared/fixtures/hf/qwen3_vl_moe, both expert layouts): the checkpoint
//! imported at f32; the vision tower on the processor's pixel values (patch embedding with the position table,
//! each layer, the merger and the deepstack merger: `out.tap.visual.*`); the M-RoPE positions from the prompt's
//! ids and grid (`out.tap.lm.position_ids`); then the whole prompt through the decoder with the tower's rows at
//! the image placeholders and the deepstack rows added after the first layer: logits, every hidden state and the
//! router logits within 1e-4 of the reference's largest magnitude. The same prompt through `flint logits
//! --inputs` (the CLI's conformance path). Also: refused configs name their key.

use flint_format::DType;
use flint_kernels::Exec;
use flint_model::multimodal::{mrope, Deepstack, Media, MediaPrompt, Pixels, Towers};
use flint_model::vision::{VisionTower, VisionTrace};
use flint_model::{
    Batch, KvDtype, KvOptions, Logits, Model, Sampler, SamplerConfig, Session, Trace,
};
use flint_tests::{
    fixtures, import, logits_of_inputs, read_npy, read_safetensors, rel_err, run_bin, Ref,
};
use std::collections::HashMap;
use std::path::Path;

const TOL: f32 = 1e-4;

fn io() -> HashMap<String, Ref> {
    read_safetensors(&fixtures().join("hf/qwen3_vl_moe/io.safetensors"))
}

pub(crate) fn check(what: &str, got: &[f32], want: &Ref) {
    assert_eq!(got.len(), want.data.len(), "{what}: length");
    let e = rel_err(got, &want.data);
    eprintln!("{what}: max error {e:.3e} of the largest magnitude");
    assert!(e < TOL, "{what} differs by {e:e}");
}

fn media(io: &HashMap<String, Ref>) -> (Vec<u32>, Media) {
    let ids = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
    let g = &io["in.image_grid_thw"].data;
    let px = Pixels {
        values: io["in.pixel_values"].data.clone(),
        grids: vec![[g[0] as usize, g[1] as usize, g[2] as usize]],
    };
    (
        ids,
        Media {
            images: Some(px),
            ..Media::default()
        },
    )
}

fn conformance(layout: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(
        &fixtures().join("hf/qwen3_vl_moe").join(layout),
        &out,
        DType::F32,
    );
    let model = Model::open(&out).unwrap();
    let io = io();
    let (ids, media) = media(&io);
    let px = media.images.as_ref().unwrap();

    check_vision(&model, &ids, px, &io);

    let inputs = fixtures().join("hf/qwen3_vl_moe/io.safetensors");
    check_decoder(&model, &out, (ids, &media), &io, &inputs);
}

/// The vision tower's taps on `px` (`out.tap.visual.*`: the layers' input, each layer, the merger and deepstack
/// rows, all in the layers' order) and the prompt's M-RoPE positions (`out.tap.lm.position_ids`) against `io`.
pub(crate) fn check_vision(model: &Model, ids: &[u32], px: &Pixels, io: &HashMap<String, Ref>) {
    let tower = VisionTower::load(model.file(), &model.config).unwrap();
    let mut t = VisionTrace::default();
    let vis = tower
        .encode_traced(&Exec::global(), &px.values, &px.grids, Some(&mut t))
        .unwrap();
    let mut taps = vec![("visual.hidden_states.0".to_string(), &t.patch_embedder)];
    for (l, x) in t.layers.iter().enumerate() {
        taps.push((format!("visual.hidden_states.{}", l + 1), x));
    }
    taps.push(("visual.last_hidden_state".into(), t.layers.last().unwrap()));
    taps.push(("visual.pooler_output".into(), &vis.rows));
    let deep = (0..)
        .take_while(|i| io.contains_key(&format!("out.tap.visual.deepstack_features.{i}")))
        .count();
    assert_eq!(vis.deepstack.len(), deep, "deepstack mergers");
    for (i, x) in vis.deepstack.iter().enumerate() {
        taps.push((format!("visual.deepstack_features.{i}"), x));
    }
    for (name, got) in taps {
        check(&name, got, &io[&format!("out.tap.{name}")]);
    }
    let v = &tower.config;
    let (pos, _) = mrope::positions(
        ids,
        (v.image_token_id, v.video_token_id),
        &px.grids,
        &[],
        v.merge_size,
        mrope::VideoTime::Frames,
    )
    .unwrap();
    let want = &io["out.tap.lm.position_ids"];
    let n = ids.len();
    for (r, p) in pos.iter().enumerate() {
        let w: Vec<u32> = (0..3).map(|a| want.data[a * n + r] as u32).collect();
        assert_eq!(&p[..], &w[..], "position of row {r}");
    }
}

/// The whole prompt through the decoder as the engine lays it out (`MediaPrompt`: tower rows at the placeholders,
/// M-RoPE positions, the deepstack hook): logits, hidden states and router logits against `io`; then the CLI's
/// path, `flint logits --inputs` on `inputs` (the processor outputs) with the model `file`.
pub(crate) fn check_decoder(
    model: &Model,
    file: &Path,
    (ids, media): (Vec<u32>, &Media),
    io: &HashMap<String, Ref>,
    inputs: &Path,
) {
    let n = ids.len();
    let towers = Towers::load(model).unwrap();
    let (prompt, _) = MediaPrompt::encode(model, &towers, model.exec(), ids, media).unwrap();
    let mut kv = model.new_kv(KvOptions::with_dtype(KvDtype::F32));
    let seq = kv.new_seq();
    let mut batch = Batch::new();
    prompt.push(&mut batch, seq, 0, Logits::All);
    let mut trace = Trace::default();
    let mut deep = prompt.deepstack();
    let logits = model
        .forward_batch(
            &batch,
            &mut kv,
            Deepstack::as_hook(&mut deep),
            Some(&mut trace),
        )
        .unwrap();
    check("logits", &logits, &io["out.logits"]);
    for (what, key, got) in [
        ("hidden state", "out.hidden_states", &trace.hidden_states),
        ("router logits", "out.router_logits", &trace.router_logits),
    ] {
        // A dense decoder has no router logits.
        let Some(r) = io.get(key) else {
            assert!(got.is_empty(), "{what}s without a reference");
            continue;
        };
        let per = r.data.len() / r.shape[0];
        assert_eq!(got.len(), r.shape[0], "{what}s");
        for (i, (got, want)) in got.iter().zip(r.data.chunks_exact(per)).enumerate() {
            let want = Ref {
                shape: vec![per],
                data: want.to_vec(),
            };
            check(&format!("{what} {i}"), got, &want);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("logits.npy");
    let o = logits_of_inputs(file, inputs, &npy);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, data) = read_npy(&std::fs::read(&npy).unwrap());
    assert_eq!(shape, [n, model.config.vocab_size]);
    check("flint logits --inputs", &data, &io["out.logits"]);
}

#[test]
fn hub_layout_matches_transformers() {
    conformance("model");
}

#[test]
fn fused_layout_matches_transformers() {
    conformance("model_fused");
}

/// Decoding after an image continues at transformers' positions (one past the largest, `rope_deltas`): the rows a
/// session generated at `slot + shift` hold the keys a fresh run over prompt and answer computes at the prompt
/// rule's positions, so the next row's logits agree with that run's.
#[test]
fn generation_after_an_image_continues_at_the_shifted_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(
        &fixtures().join("hf/qwen3_vl_moe/model_fused"),
        &out,
        DType::F32,
    );
    let model = Model::open(&out).unwrap();
    let towers = Towers::load(&model).unwrap();
    let (ids, media) = media(&io());
    let encode = |ids: Vec<u32>| {
        MediaPrompt::encode(&model, &towers, model.exec(), ids, &media)
            .unwrap()
            .0
    };
    let prompt = encode(ids.clone());
    assert!(
        prompt.position_shift() < 0,
        "a 4-token image spans 2 positions"
    );
    let opts = KvOptions::with_dtype(KvDtype::F32);
    let mut s = Session::new(&model, opts);
    let mut sampler = Sampler::new(SamplerConfig::default());
    let (gen, _, _) = s
        .generate_prompt(&prompt, 4, &mut sampler, &[], |_| true)
        .unwrap();
    assert_eq!(gen.len(), 4);
    // The session holds the prompt and the first three generated tokens; give it the whole answer as a prompt:
    // only the last row runs, over the rows decoding wrote.
    let all: Vec<u32> = ids.iter().chain(&gen).copied().collect();
    let whole = encode(all);
    let (cached, reused) = s.prefill_prompt(&whole).unwrap();
    assert_eq!(reused, whole.len() - 1);
    let mut kv = model.new_kv(opts);
    let seq = kv.new_seq();
    let mut b = Batch::new();
    whole.push(&mut b, seq, 0, Logits::Last);
    let mut deep = whole.deepstack();
    let fresh = model
        .forward_batch(&b, &mut kv, Deepstack::as_hook(&mut deep), None)
        .unwrap();
    let e = rel_err(&cached, &fresh);
    assert!(e < 1e-5, "decoded rows sit at other positions: {e:e}");
}

/// The tiny checkpoint with a stand-in tokenizer (Qwen's vision specials at the fixture's ids) and a Qwen2-VL image
/// processor at the tower's patch sizes, imported.
fn with_processor(dir: &std::path::Path) -> std::path::PathBuf {
    let src = fixtures().join("hf/qwen3_vl_moe/model");
    let ck = dir.join("ckpt");
    std::fs::create_dir(&ck).unwrap();
    for f in ["model.safetensors", "config.json"] {
        std::fs::copy(src.join(f), ck.join(f)).unwrap();
    }
    let specials = serde_json::json!({"bos": 1, "<|image_pad|>": 2, "<|video_pad|>": 3,
                                      "<|vision_start|>": 7, "<|vision_end|>": 8});
    let tok = flint_tests::muse::standin_tokenizer(specials.as_object().unwrap(), 512);
    std::fs::write(ck.join("tokenizer.json"), tok).unwrap();
    std::fs::write(
        ck.join("preprocessor_config.json"),
        serde_json::json!({"image_processor_type": "Qwen2VLImageProcessor", "patch_size": 8,
                           "temporal_patch_size": 2, "merge_size": 2,
                           "size": {"shortest_edge": 1024, "longest_edge": 16384}})
        .to_string(),
    )
    .unwrap();
    let model = dir.join("m.flint");
    import(&ck, &model, DType::F32);
    model
}

/// `flint preprocess` and `flint run --image` on a Qwen3-VL checkpoint: the photo goes through the Qwen2-VL
/// processor of the file's metadata, the placeholder becomes `<|vision_start|>`, one `<|image_pad|>` per merged
/// token and `<|vision_end|>`, `flint logits --inputs` runs what preprocess wrote, and `flint run` answers with the
/// argmax of its last row.
#[test]
fn run_and_preprocess_with_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let model = with_processor(tmp.path());
    let image = fixtures().join("processors/images/coffee.png");
    let (m, im) = (model.to_str().unwrap(), image.to_str().unwrap());
    let prompt = "<|patch|>cup?";
    let pre = tmp.path().join("pre.safetensors");
    let o = run_bin(
        "flint",
        &[
            "preprocess",
            "-m",
            m,
            "--image",
            im,
            "-p",
            prompt,
            "-o",
            pre.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = read_safetensors(&pre);
    let g = &got["image_grid_thw"].data;
    let tokens = (g[0] * g[1] * g[2]) as usize / 4;
    assert!(
        g[1] as usize * 8 * g[2] as usize * 8 <= 16384,
        "max_pixels holds: {g:?}"
    );
    let ids: Vec<u32> = got["input_ids"].data.iter().map(|&v| v as u32).collect();
    let mut want = vec![1, 7];
    want.extend(std::iter::repeat_n(2, tokens));
    want.push(8);
    want.extend("cup?".chars().map(|c| c as u32 - 32 + 256));
    assert_eq!(ids, want, "input_ids");
    let img = flint_media::decode_image_file(&image).unwrap();
    let cfg =
        flint_media::Qwen2VlConfig::from_file(&tmp.path().join("ckpt/preprocessor_config.json"))
            .unwrap();
    let px = flint_media::qwen2_vl::preprocess(&img, &cfg).unwrap();
    assert_eq!(got["pixel_values"].data, px.pixel_values, "pixel_values");
    let npy = tmp.path().join("l.npy");
    let o = logits_of_inputs(&model, &pre, &npy);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, lg) = read_npy(&std::fs::read(&npy).unwrap());
    let last = &lg[(ids.len() - 1) * 512..];
    let argmax = (0..512)
        .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        .unwrap() as u32;
    let o = run_bin(
        "flint",
        &[
            "run", "-m", m, "--kv", "f32", "--image", im, "-p", prompt, "-n", "1",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for stage in ["decode image:", "preprocess:", "vision encode:"] {
        assert!(err.contains(stage), "stderr shows `{stage}`: {err}");
    }
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim_end_matches('\n'),
        flint_tests::muse::char_of(argmax).to_string(),
        "the greedy answer"
    );
}

/// Config values the runtime would not honour are refused at import, naming the key.
#[test]
fn refused_configs_name_their_key() {
    type_refusals(
        "qwen3_vl_moe",
        &[
            ("num_position_embeddings", |c| {
                c["vision_config"]["num_position_embeddings"] = 60.into()
            }),
            ("out_hidden_size", |c| {
                c["vision_config"]["out_hidden_size"] = 32.into()
            }),
            ("hidden_act", |c| {
                c["vision_config"]["hidden_act"] = "relu".into()
            }),
            ("mrope_section", |c| {
                c["text_config"]["rope_parameters"]["mrope_section"] = serde_json::json!([4, 4])
            }),
            ("mrope.sections", |c| {
                c["text_config"]["rope_parameters"]["mrope_section"] = serde_json::json!([4, 4, 5])
            }),
            ("deepstack_layers", |c| {
                c["vision_config"]["deepstack_visual_indexes"] = serde_json::json!([5])
            }),
        ],
    );
}

/// An edit of a config.json.
pub(crate) type Edit = fn(&mut serde_json::Value);

/// Each edit of the fixture `case`'s config.json makes the import fail with an error naming the file and the key.
pub(crate) fn type_refusals(case: &str, cases: &[(&str, Edit)]) {
    let src = fixtures().join("hf").join(case).join("model");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    for (key, edit) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            src.join("model.safetensors"),
            dir.path().join("model.safetensors"),
        )
        .unwrap();
        let mut c = cfg.clone();
        edit(&mut c);
        std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
        let e = flint_quantize::import::open(dir.path()).expect_err(key);
        let msg = e.to_string();
        assert!(msg.contains(key), "{key}: {msg}");
        assert!(msg.contains("config.json"), "{key}: names the file: {msg}");
    }
}
