//! Muse Spark's vision tower against transformers (../shared/fixtures/hf/muse_spark and muse_spark_video): the
//! fixture imported at f32, the tower run on the processor's pixel values, and every vision tap compared within
//! 1e-4 of the reference's largest magnitude (patch embedding with and without the position table, ln_pre, each
//! layer in window order, ln_post, the pixel-shuffled tower output, adapter, projection, normed embeddings), the
//! window index and segments exactly, and the merged `inputs_embeds` rows at the placeholders. The video case then
//! runs the decoder on its prompt with the tower's rows at the `<|video|>` placeholders. Also: the tower's tensors
//! and paging groups, several images and a video in one call, refused configs and refused inputs, and Muse Glimmer's
//! tower (position table untransposed) against its fixture.

use flint_format::{DType, FlintFile};
use flint_kernels::Exec;
use flint_model::config::vision::names;
use flint_model::vision::{VisionTower, VisionTrace};
use flint_model::{Batch, KvDtype, KvOptions, Logits, Model, Trace};
use flint_tests::{fixtures, import, read_safetensors, rel_err, Ref};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

const TOL: f32 = 1e-4;

struct Case {
    _tmp: tempfile::TempDir,
    model: Model,
    tower: VisionTower,
    io: HashMap<String, Ref>,
}

/// The Muse Spark fixture imported at f32 (both cases run its weights), and the reference tensors of `case`.
fn load(case: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(&fixtures().join("hf/muse_spark/model"), &out, DType::F32);
    let model = Model::open(&out).unwrap();
    let tower = VisionTower::load(model.file(), &model.config).unwrap();
    let io = read_safetensors(&fixtures().join("hf").join(case).join("io.safetensors"));
    Case {
        _tmp: tmp,
        model,
        tower,
        io,
    }
}

fn grids(r: &Ref) -> Vec<[usize; 3]> {
    r.data
        .chunks_exact(3)
        .map(|g| [g[0] as usize, g[1] as usize, g[2] as usize])
        .collect()
}

fn ids(r: &Ref) -> Vec<usize> {
    r.data.iter().map(|&v| v as usize).collect()
}

/// One tower run against one fixture case's references.
struct Taps<'a> {
    case: &'a str,
    tower: &'a VisionTower,
    io: &'a HashMap<String, Ref>,
    /// The decoder's width.
    hidden: usize,
}

impl Taps<'_> {
    /// Every vision tap, the window index and segments, and the merged `inputs_embeds` at the `placeholder` rows;
    /// returns the embeddings.
    fn check(&self, pixels: &str, grid: &str, placeholder: u32) -> Vec<f32> {
        let (case, io) = (self.case, self.io);
        let mut t = VisionTrace::default();
        let out = self
            .tower
            .encode_traced(
                &Exec::global(),
                &io[pixels].data,
                &grids(&io[grid]),
                Some(&mut t),
            )
            .unwrap()
            .rows;
        let mut taps: Vec<(String, &[f32])> = vec![
            ("vision_patch_embedding".into(), &t.patch_embedding),
            ("vision_patch_embedder".into(), &t.patch_embedder),
            ("vision_ln_pre".into(), &t.ln_pre),
        ];
        for (l, x) in t.layers.iter().enumerate() {
            taps.push((format!("vision_layer{l}"), x));
        }
        taps.extend([
            ("vision_ln_post".into(), &t.ln_post[..]),
            ("vision_tower.last_hidden_state".into(), &t.merged[..]),
            ("vision_adapter".into(), &t.adapter[..]),
            ("vision_projection".into(), &t.projection[..]),
            ("vision_embeds".into(), &out[..]),
        ]);
        assert_eq!(t.layers.len(), self.tower.config.num_layers);
        for (name, got) in taps {
            let want = &io[&format!("out.tap.{name}")].data;
            let e = rel_err(got, want);
            eprintln!("{case}: {name}: max error {e:.3e} of the largest magnitude");
            assert!(e < TOL, "{case}: {name} differs by {e:e}");
        }
        assert_eq!(t.windows.index, ids(&io["out.tap.vision_window_index"]));
        let cu = |spans: &[std::ops::Range<usize>]| -> Vec<usize> {
            std::iter::once(0)
                .chain(spans.iter().map(|s| s.end))
                .collect()
        };
        assert_eq!(
            cu(&t.windows.windows),
            ids(&io["out.tap.vision_cu_window_seqlens"])
        );
        assert_eq!(cu(&t.windows.frames), ids(&io["out.tap.vision_cu_seqlens"]));
        // The merged inputs_embeds hold these rows, in order, at the placeholder tokens.
        let h = self.hidden;
        let merged = &io["out.tap.lm.inputs_embeds"].data;
        let rows: Vec<f32> = ids(&io["in.input_ids"])
            .iter()
            .enumerate()
            .filter(|&(_, &id)| id == placeholder as usize)
            .flat_map(|(t, _)| merged[t * h..(t + 1) * h].to_vec())
            .collect();
        assert_eq!(rows.len(), out.len(), "{case}: placeholder rows");
        let e = rel_err(&out, &rows);
        eprintln!("{case}: inputs_embeds at the placeholders: max error {e:.3e}");
        assert!(e < TOL, "{case}: placeholder rows differ by {e:e}");
        out
    }
}

fn check_taps(c: &Case, case: &str, pixels: &str, grid: &str, placeholder: u32) -> Vec<f32> {
    let taps = Taps {
        case,
        tower: &c.tower,
        io: &c.io,
        hidden: c.model.config.hidden_size,
    };
    taps.check(pixels, grid, placeholder)
}

#[test]
fn image_taps_match_transformers() {
    let c = load("muse_spark");
    let id = c.tower.config.image_token_id;
    assert_eq!(grids(&c.io["in.image_grid_thw"]), [[1, 6, 10]]);
    check_taps(&c, "muse_spark", "in.pixel_values", "in.image_grid_thw", id);
}

/// The video (grid (2, 4, 6): two frames, each its own full-attention span) through the tower, then the whole
/// prompt through the decoder with the tower's rows at the `<|video|>` placeholders and token rows elsewhere.
#[test]
fn video_taps_and_decoder_match_transformers() {
    let c = load("muse_spark_video");
    let video = c.tower.config.video_token_id;
    let emb = check_taps(
        &c,
        "muse_spark_video",
        "in.pixel_values_videos",
        "in.video_grid_thw",
        video,
    );
    let m = &c.model;
    let h = m.config.hidden_size;
    let ids: Vec<u32> = c.io["in.input_ids"]
        .data
        .iter()
        .map(|&v| v as u32)
        .collect();
    let mut kv = m.new_kv(KvOptions::with_dtype(KvDtype::F32));
    let seq = kv.new_seq();
    let mut batch = Batch::new();
    let mut rows = emb.chunks_exact(h);
    for (t, &id) in ids.iter().enumerate() {
        if id == video {
            let e = rows.next().expect("as many placeholders as video rows");
            batch.push_embeds(seq, t, e, h, Logits::All);
        } else {
            batch.push_text(seq, t, &[id], Logits::All);
        }
    }
    assert!(rows.next().is_none(), "every video row has a placeholder");
    let mut trace = Trace::default();
    let logits = m
        .forward_batch(&batch, &mut kv, None, Some(&mut trace))
        .unwrap();
    let e = rel_err(&logits, &c.io["out.logits"].data);
    eprintln!("muse_spark_video: logits: max error {e:.3e}");
    assert!(e < TOL, "video logits differ by {e:e}");
    let hs = &c.io["out.hidden_states"];
    let per = hs.data.len() / hs.shape[0];
    assert_eq!(trace.hidden_states.len(), hs.shape[0]);
    for (i, got) in trace.hidden_states.iter().enumerate() {
        let e = rel_err(got, &hs.data[i * per..(i + 1) * per]);
        eprintln!("muse_spark_video: hidden state {i}: max error {e:.3e}");
        assert!(e < TOL, "video hidden state {i} differs by {e:e}");
    }
    let rl = &c.io["out.router_logits"];
    let per = rl.data.len() / rl.shape[0];
    for (i, got) in trace.router_logits.iter().enumerate() {
        let e = rel_err(got, &rl.data[i * per..(i + 1) * per]);
        assert!(e < TOL, "video router logits {i} differ by {e:e}");
    }
}

/// An image and a video in one call give, in order, what each gives alone.
#[test]
fn several_images_and_a_video_in_one_call() {
    let img = load("muse_spark");
    let vid = read_safetensors(&fixtures().join("hf/muse_spark_video/io.safetensors"));
    let ex = &Exec::global();
    let t = &img.tower;
    let (pi, gi) = (
        &img.io["in.pixel_values"].data,
        grids(&img.io["in.image_grid_thw"]),
    );
    let (pv, gv) = (
        &vid["in.pixel_values_videos"].data,
        grids(&vid["in.video_grid_thw"]),
    );
    let a = t.encode(ex, pi, &gi).unwrap();
    let b = t.encode(ex, pv, &gv).unwrap();
    let pixels: Vec<f32> = [&pi[..], pv, pi].concat();
    let all_grids = [gi[0], gv[0], gi[0]];
    let both = t.encode(ex, &pixels, &all_grids).unwrap();
    assert_eq!(t.tokens(&all_grids), 15 + 12 + 15);
    let want: Vec<f32> = [&a[..], &b, &a].concat();
    let e = rel_err(&both, &want);
    assert!(
        e < 1e-5,
        "batched call differs from separate calls by {e:e}"
    );
}

#[test]
fn tower_tensors_have_their_own_groups() {
    let c = load("muse_spark");
    let f = c.model.file();
    let v = &c.tower.config;
    let tower: Vec<_> = f
        .tensors()
        .iter()
        .filter(|t| t.name.starts_with(names::PREFIX) && !t.name.ends_with(".tail"))
        .collect();
    // 3 stem tensors + their bias, 16 per layer, ln_post and bias, adapter and projection.
    assert_eq!(tower.len(), 4 + 16 * v.num_layers + 5);
    // A matrix whose width is not a multiple of 32 (the fixture's 48-wide ones) is stored as its first 32 columns
    // and a tail; its shape here is the whole one.
    let shape = |n: &str| {
        let mut s = f.tensor(n).unwrap().info.shape.clone();
        if let Ok(t) = f.tensor(&names::tail(n)) {
            assert_eq!(s[1] % 32, 0, "{n}: the split is at a block boundary");
            assert!(
                t.info.shape[1] < 32,
                "{n}: the tail is narrower than a block"
            );
            s[1] += t.info.shape[1];
        }
        s
    };
    assert_eq!(shape(names::PATCH_EMBD), [48, 96]);
    assert_eq!(shape(names::POS_EMBD), [16, 48]);
    assert_eq!(shape(&names::blk(2, "ffn_up")), [88, 48]);
    assert_eq!(shape(names::ADAPTER_FC1), [72, 192]);
    assert_eq!(shape(names::PROJ), [64, 72]);
    assert_eq!(f.tensor(names::POS_EMBD).unwrap().info.dtype, DType::F32);
    let tower_groups: std::collections::BTreeSet<u32> = tower.iter().map(|t| t.group).collect();
    assert!(
        !tower_groups.contains(&0),
        "every tower tensor is in a group"
    );
    assert_eq!(
        tower_groups.len(),
        2 + v.num_layers,
        "stem, one per layer, head"
    );
    for t in f
        .tensors()
        .iter()
        .filter(|t| !t.name.starts_with(names::PREFIX))
    {
        assert!(
            !tower_groups.contains(&t.group),
            "{} shares a tower group",
            t.name
        );
    }
    // The stored description round-trips and says how the table is read.
    assert!(v.pos_table_transposed);
    assert_eq!(v.full_layers, [false, true, false]);
    assert_eq!((v.image_token_id, v.video_token_id), (3, 4));
}

#[test]
fn bad_inputs_are_errors() {
    let c = load("muse_spark");
    let ex = &Exec::global();
    let px = &c.io["in.pixel_values"].data;
    let err = |pixels: &[f32], g: &[[usize; 3]]| {
        c.tower
            .encode(ex, pixels, g)
            .expect_err("should be refused")
            .to_string()
    };
    let e = err(&px[..px.len() - 1], &[[1, 6, 10]]);
    assert!(
        e.contains("pixel_values") && e.contains("60 patches"),
        "{e}"
    );
    let e = err(px, &[[1, 5, 12]]);
    assert!(e.contains("merge_size"), "{e}");
    let e = err(px, &[[1, 1 << 40, 1 << 40]]);
    assert!(e.contains("cap"), "{e}");
    let e = err(px, &[[usize::MAX, 2, 2]]);
    assert!(e.contains("cap"), "{e}");
    let e = err(px, &[[0, 6, 10]]);
    assert!(e.contains("empty"), "{e}");
    assert!(err(px, &[]).contains("no image grid"));
}

/// A copy of the fixture folder whose config.json is edited by `edit` (the weights are linked).
fn edited(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = fixtures().join("hf/muse_spark/model");
    let tmp = tempfile::tempdir().unwrap();
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(tmp.path().join("config.json"), v.to_string()).unwrap();
    std::os::unix::fs::symlink(
        dir.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    tmp
}

fn import_error(dir: &Path) -> String {
    match flint_quantize::import::open(dir) {
        Ok(_) => panic!("import of {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_vision_configs_are_refused_naming_the_field() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "patch_size",
            json!("4"),
            vec!["vision_config.patch_size", "not a non-negative integer"],
        ),
        (
            "num_hidden_layers",
            json!(1_000_000_000u64),
            vec!["vision_config.num_hidden_layers", "cap"],
        ),
        (
            "hidden_act",
            json!("relu"),
            vec!["vision_config.hidden_act", "relu"],
        ),
        (
            "layer_types",
            json!(["full_attention"]),
            vec!["vision_config.layer_types", "1 entries"],
        ),
        (
            "layer_types",
            json!(["full_attention", "x", "full_attention"]),
            vec!["layer_types", "\"x\""],
        ),
        (
            "rope_parameters",
            json!({"rope_type": "default", "rope_theta": 1e4}),
            vec!["rope_parameters", "axial"],
        ),
        (
            "pos_emb_width",
            json!(5),
            vec!["vision.pos_emb_width", "square"],
        ),
        ("num_attention_heads", json!(5), vec!["vision.num_heads"]),
        (
            "layer_norm_eps",
            json!(1e-6),
            vec!["vision_config.layer_norm_eps"],
        ),
        ("merge_size", json!(3), vec!["out_hidden_size"]),
    ];
    for (key, val, words) in cases {
        let dir = edited(|v| v["vision_config"][key] = val.clone());
        let e = import_error(dir.path());
        for w in &words {
            assert!(
                e.contains(w),
                "{key} = {val}: error does not name {w:?}: {e}"
            );
        }
        assert!(e.contains("config.json"), "{e}");
    }
    let dir = edited(|v| v["image_token_id"] = json!(4096));
    let e = import_error(dir.path());
    assert!(
        e.contains("vision.image_token_id") && e.contains("vocabulary"),
        "{e}"
    );
    let dir = edited(|v| v["vision_config"] = json!([1]));
    assert!(import_error(dir.path()).contains("vision_config"));
}

/// A `.flint` whose stored vision description is absurd is refused at load, naming the field.
#[test]
fn absurd_stored_vision_config_is_refused() {
    let c = load("muse_spark");
    let mut cfg = c.model.config.clone();
    cfg.vision.as_mut().unwrap().merge_size = 1 << 20;
    let e = VisionTower::load(c.model.file(), &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vision.merge_size") && e.contains("cap"), "{e}");
    let mut cfg = c.model.config.clone();
    cfg.vision = None;
    let e = VisionTower::load(c.model.file(), &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vision"), "{e}");
    // And an old file without a vision tower still loads as a decoder (the field is optional).
    let mut v = serde_json::to_value(&c.model.config).unwrap();
    v.as_object_mut().unwrap().remove("vision");
    let old: flint_model::ModelConfig = serde_json::from_value(v).unwrap();
    old.validate().unwrap();
    assert!(old.vision.is_none());
    let _ = FlintFile::open(c.model.file().path()).unwrap();
}

/// Muse Glimmer's tower: the same code, its position table read untransposed. Flint does not run Glimmer's decoder
/// (weighted post norms, plain residuals), so only the tower is written, through the importer's vision config and
/// plan, with the decoder's dimensions from its `text_config` as the description the tower feeds.
#[test]
fn glimmer_tower_taps_match_transformers() {
    use flint_quantize::import::{muse_vision, plan::Plan, source::SafetensorsDir, Checkpoint};
    let dir = fixtures().join("hf/muse_glimmer/model");
    let path = dir.join("config.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vision = muse_vision::config(&v, &path).unwrap().unwrap();
    assert!(!vision.pos_table_transposed);
    let t = &v["text_config"];
    let n = |k: &str| t[k].as_u64().unwrap() as usize;
    let config = flint_model::ModelConfig {
        arch: "muse_spark".into(),
        vocab_size: n("vocab_size"),
        hidden_size: n("hidden_size"),
        num_layers: n("num_hidden_layers"),
        num_heads: n("num_attention_heads"),
        num_kv_heads: n("num_key_value_heads"),
        head_dim: n("head_dim"),
        intermediate_size: n("intermediate_size"),
        rope_theta: 1e4,
        rms_norm_eps: t["rms_norm_eps"].as_f64().unwrap() as f32,
        max_position_embeddings: n("max_position_embeddings"),
        vision: Some(vision),
        ..Default::default()
    };
    let mut plan = Plan::default();
    muse_vision::plan(&mut plan, &config);
    let source = SafetensorsDir::open(&dir).unwrap();
    plan.check(&source).unwrap();
    let ck = Checkpoint {
        config,
        plan,
        source: Box::new(source),
        tokenizer_json: None,
        chat_template: None,
        bos_token: None,
        eos_token: None,
        processor: None,
        provenance: json!({"format": "huggingface", "path": dir.display().to_string()}),
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("glimmer_tower.flint");
    flint_quantize::import::write(&ck, &out, DType::F32, |_, _| {}).unwrap();
    let file = FlintFile::open(&out).unwrap();
    let tower = VisionTower::load(&file, &ck.config).unwrap();
    let io = read_safetensors(&fixtures().join("hf/muse_glimmer/io.safetensors"));
    assert_eq!(grids(&io["in.image_grid_thw"]), [[1, 8, 12]]);
    let taps = Taps {
        case: "muse_glimmer",
        tower: &tower,
        io: &io,
        hidden: ck.config.hidden_size,
    };
    taps.check(
        "in.pixel_values",
        "in.image_grid_thw",
        tower.config.image_token_id,
    );
}
