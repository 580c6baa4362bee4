//! `flint-quantize import` on the tiny Muse Spark fixture (hf/muse_spark/model), through the binary: the stored
//! `model.config`, every tensor's name, shape, type and paging group, the folded norms (`1 + w`, bit for bit) and
//! residual gates (alpha/beta against an f64 recomputation), the expert slices of the fused tensors, and configs
//! the runtime would not honour being refused with an error naming the field.
//!
//! Needs the `flint-quantize` binary beside the test executable: run `cargo build -p flint-quantize` before
//! `cargo test -p flint-tests --test e2e import_muse::` (a workspace test run builds it).

use flint_format::{DType, FlintFile};
use flint_tests::{fixtures, read_safetensors, run_bin, Ref};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const P: &str = "model.language_model";
const LAYERS: usize = 4;
const EXPERTS: usize = 8;
const MOE: [bool; LAYERS] = [false, true, false, true];
// hidden, heads·head_dim, kv_heads·head_dim, dense width, pooled width, expert width, vocab
const H: usize = 64;
const QD: usize = 64;
const KVD: usize = 32;
const I: usize = 128;
const PW: usize = 48;
const IE: usize = 40;
const V: usize = 512;
const TEMPERATURE: f64 = 0.3;

fn model_dir() -> PathBuf {
    fixtures().join("hf/muse_spark/model")
}

/// Runs `flint-quantize import SRC -o OUT --dtype DTYPE`; returns (success, stderr).
fn import_cli(src: &Path, out: &Path, dtype: &str) -> (bool, String) {
    let exe = flint_tests::bin("flint-quantize");
    assert!(
        exe.exists(),
        "{} is missing: run `cargo build -p flint-quantize` first",
        exe.display()
    );
    let o = run_bin(
        "flint-quantize",
        &[
            "import",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--dtype",
            dtype,
        ],
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn imported(dtype: &str) -> (tempfile::TempDir, FlintFile) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("muse.flint");
    let (ok, err) = import_cli(&model_dir(), &out, dtype);
    assert!(ok, "import failed: {err}");
    let f = FlintFile::open(&out).unwrap();
    (tmp, f)
}

fn source() -> HashMap<String, Ref> {
    read_safetensors(&model_dir().join("model.safetensors"))
}

fn f32s(f: &FlintFile, name: &str) -> Vec<f32> {
    f.tensor(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .as_f32()
        .unwrap_or_else(|| panic!("{name} is not f32"))
        .to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every tensor the importer must write, with its shape.
fn expected_tensors() -> BTreeMap<String, Vec<usize>> {
    let mut m = BTreeMap::new();
    let mut put = |n: String, s: &[usize]| assert!(m.insert(n, s.to_vec()).is_none());
    put("tok_embd".into(), &[V, H]);
    put("output".into(), &[V, H]);
    put("output_norm".into(), &[H]);
    for (l, &moe) in MOE.iter().enumerate() {
        let b = |w: &str| format!("blk.{l}.{w}");
        for n in [
            "attn_norm",
            "ffn_norm",
            "post_ffn_norm",
            "attn_res_alpha",
            "attn_res_beta",
            "ffn_res_alpha",
            "ffn_res_beta",
        ] {
            put(b(n), &[H]);
        }
        put(b("attn_q"), &[QD, H]);
        put(b("attn_k"), &[KVD, H]);
        put(b("attn_v"), &[KVD, H]);
        put(b("attn_gate"), &[QD, H]);
        put(b("attn_o"), &[H, QD]);
        if moe {
            put(b("ffn_router"), &[EXPERTS, H]);
            put(b("ffn_router_bias"), &[EXPERTS]);
            put(b("ffn_pre_proj"), &[PW, H]);
            put(b("ffn_pre_norm"), &[PW]);
            put(b("ffn_post_expert_norm"), &[PW]);
            put(b("ffn_post_proj"), &[H, PW]);
            for e in 0..EXPERTS {
                put(b(&format!("expert.{e}.gate")), &[IE, PW]);
                put(b(&format!("expert.{e}.up")), &[IE, PW]);
                put(b(&format!("expert.{e}.down")), &[PW, IE]);
            }
        } else {
            put(b("ffn_gate"), &[I, H]);
            put(b("ffn_up"), &[I, H]);
            put(b("ffn_down"), &[H, I]);
        }
    }
    m
}

#[test]
fn config_is_translated() {
    let (_t, f) = imported("f32");
    assert_eq!(f.meta("general.architecture"), Some(&json!("muse_spark")));
    let c = f.meta("model.config").unwrap();
    let cfg: flint_model::ModelConfig = serde_json::from_value(c.clone()).unwrap();
    cfg.validate().unwrap();
    let want = json!({
        "arch": "muse_spark", "vocab_size": 512, "hidden_size": 64, "num_layers": 4, "num_heads": 4,
        "num_kv_heads": 2, "head_dim": 16, "intermediate_size": 128, "rope_theta": 10000.0,
        "max_position_embeddings": 256, "tie_word_embeddings": false, "qkv_bias": false, "o_bias": false,
        "qk_norm": "per_head_scaleless", "bos_token_id": 1, "eos_token_ids": [2],
        "layer_types": ["sliding", "sliding", "full", "full"], "sliding_window": 6,
        "nope_layers": [false, false, false, true],
        "sandwich": {"post_norm_eps": 1e-8f32, "embed_norm": true},
        "attn_out_norm": true, "attn_gate": true, "logit_scale": 2.0, "logit_softcap": 20.0,
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&c[k], v, "model.config `{k}`");
    }
    assert_eq!(cfg.rms_norm_eps, 1e-5);
    assert_eq!(cfg.qk_scale, Some(5.473_006_486_387_5_f64 as f32));
    let m = cfg.moe.as_ref().unwrap();
    assert_eq!(
        (m.num_experts, m.top_k, m.expert_width, m.norm_topk_prob),
        (8, 2, 40, true)
    );
    assert_eq!(m.moe_layers, MOE.to_vec());
    assert_eq!(m.router, flint_model::Router::Sigmoid);
    assert!(m.router_bias);
    assert_eq!(
        (m.router_scale, m.routed_scale, m.pooled_width),
        (Some(2.0), Some(1.5), Some(48))
    );
    assert_eq!((m.shared_expert_width, m.shared_expert_gate), (None, false));
}

#[test]
fn tensors_names_shapes_types_and_groups() {
    for dtype in ["f32", "f16"] {
        let (_t, f) = imported(dtype);
        // The towers' tensors (`v.*`, `audio.*`) are checked by tests/tests/e2e/muse_vision.rs and muse_audio*.rs.
        let tower = |n: &str| {
            n.starts_with(flint_model::config::vision::names::PREFIX) || n.starts_with("audio.")
        };
        let got: BTreeMap<String, Vec<usize>> = f
            .tensors()
            .iter()
            .filter(|t| !tower(&t.name))
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        assert_eq!(got, expected_tensors(), "{dtype}");
        let mut groups: HashMap<u32, Vec<&str>> = HashMap::new();
        for t in f.tensors().iter().filter(|t| !tower(&t.name)) {
            // Vectors and routers stay f32 at any import dtype; the other matrices take it.
            let f32_kept = t.shape.len() == 1 || t.name.ends_with(".ffn_router");
            let want = if f32_kept {
                DType::F32
            } else {
                DType::from_name(dtype).unwrap()
            };
            assert_eq!(t.dtype, want, "{dtype}: type of {}", t.name);
            let is_expert = t.name.contains(".expert.");
            assert_eq!(t.group != 0, is_expert, "{dtype}: group of {}", t.name);
            if is_expert {
                groups.entry(t.group).or_default().push(&t.name);
            }
        }
        assert_eq!(groups.len(), 2 * EXPERTS, "one group per expert");
        for names in groups.values() {
            let e = names[0].rsplit_once('.').unwrap().0;
            assert_eq!(names.len(), 3);
            assert!(names.iter().all(|n| n.starts_with(e)), "{names:?}");
        }
    }
}

#[test]
fn values_are_folded_and_sliced() {
    let (_t, f) = imported("f32");
    let src = source();
    let s = |k: &str| -> &Ref { src.get(k).unwrap_or_else(|| panic!("fixture lacks {k}")) };
    for l in 0..LAYERS {
        let pre = format!("{P}.layers.{l}");
        // Centered and input-scaled norms: 1 + w, in f32, bit for bit.
        for (ours, theirs) in [
            ("attn_norm", "input_layernorm"),
            ("ffn_norm", "pre_feedforward_layernorm"),
            ("post_ffn_norm", "post_feedforward_layernorm"),
        ] {
            let w = &s(&format!("{pre}.{theirs}.weight")).data;
            let want: Vec<f32> = w.iter().map(|x| 1.0 + x).collect();
            assert_eq!(bits(&f32s(&f, &format!("blk.{l}.{ours}"))), bits(&want));
        }
        // Residual gates, recomputed in f64.
        for (ours, theirs) in [
            ("attn", "post_attention_residual_gate"),
            ("ffn", "post_feedforward_residual_gate"),
        ] {
            let g = &s(&format!("{pre}.{theirs}.gate")).data;
            let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
            let alpha: Vec<f32> = g
                .iter()
                .map(|&g| {
                    let w = g as f64 / TEMPERATURE;
                    (sig(-w) * (1.0 + sig(w))).max(1e-3).sqrt() as f32
                })
                .collect();
            let beta: Vec<f32> = g
                .iter()
                .map(|&g| sig(g as f64 / TEMPERATURE) as f32)
                .collect();
            assert_eq!(
                bits(&f32s(&f, &format!("blk.{l}.{ours}_res_alpha"))),
                bits(&alpha)
            );
            assert_eq!(
                bits(&f32s(&f, &format!("blk.{l}.{ours}_res_beta"))),
                bits(&beta)
            );
            // The clamp is live for large gates: alpha never drops below sqrt(1e-3).
            assert!(alpha.iter().all(|&a| a >= (1e-3f32).sqrt() * 0.999_999));
        }
        let same = |ours: &str, theirs: &str| {
            assert_eq!(
                bits(&f32s(&f, &format!("blk.{l}.{ours}"))),
                bits(&s(&format!("{pre}.{theirs}")).data),
                "blk.{l}.{ours}"
            )
        };
        same("attn_gate", "self_attn.gate_proj.weight");
        same("attn_o", "self_attn.o_proj.weight");
        if MOE[l] {
            same("ffn_router", "mlp.gate.weight");
            same("ffn_router_bias", "mlp.gate.e_score_correction_bias");
            same("ffn_pre_proj", "mlp.pre_expert_proj.weight");
            same("ffn_post_proj", "mlp.post_expert_proj.weight");
            for (ours, theirs) in [
                ("ffn_pre_norm", "mlp.pre_expert_norm.weight"),
                (
                    "ffn_post_expert_norm",
                    "mlp.experts.post_expert_norm.weight",
                ),
            ] {
                let want: Vec<f32> = s(&format!("{pre}.{theirs}"))
                    .data
                    .iter()
                    .map(|x| 1.0 + x)
                    .collect();
                assert_eq!(bits(&f32s(&f, &format!("blk.{l}.{ours}"))), bits(&want));
            }
            // Expert 3: gate rows 0..IE and up rows IE..2IE of gate_up_proj[3], and down_proj[3].
            let gu = s(&format!("{pre}.mlp.experts.gate_up_proj"));
            let down = s(&format!("{pre}.mlp.experts.down_proj"));
            assert_eq!(gu.shape, [EXPERTS, 2 * IE, PW]);
            assert_eq!(down.shape, [EXPERTS, PW, IE]);
            let e = 3;
            let gbase = e * 2 * IE * PW;
            let dbase = e * PW * IE;
            let ex = |w: &str| f32s(&f, &format!("blk.{l}.expert.{e}.{w}"));
            assert_eq!(bits(&ex("gate")), bits(&gu.data[gbase..gbase + IE * PW]));
            assert_eq!(
                bits(&ex("up")),
                bits(&gu.data[gbase + IE * PW..gbase + 2 * IE * PW])
            );
            assert_eq!(bits(&ex("down")), bits(&down.data[dbase..dbase + PW * IE]));
        } else {
            same("ffn_gate", "mlp.gate_proj.weight");
            same("ffn_down", "mlp.down_proj.weight");
        }
    }
    assert_eq!(
        bits(&f32s(&f, "output_norm")),
        bits(&s(&format!("{P}.norm.weight")).data),
        "the final norm is stored as is"
    );
    assert_eq!(
        bits(&f32s(&f, "tok_embd")),
        bits(&s(&format!("{P}.embed_tokens.weight")).data)
    );
    assert_eq!(bits(&f32s(&f, "output")), bits(&s("lm_head.weight").data));
}

/// A copy of the fixture folder whose config.json has been edited by `edit` (the weights are linked).
fn edited(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let raw = std::fs::read(model_dir().join("config.json")).unwrap();
    let mut v: Value = serde_json::from_slice(&raw).unwrap();
    edit(&mut v);
    std::fs::write(tmp.path().join("config.json"), v.to_string()).unwrap();
    std::os::unix::fs::symlink(
        model_dir().join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    tmp
}

fn refused(dir: &Path, words: &[&str]) {
    let out = dir.join("out.flint");
    let (ok, err) = import_cli(dir, &out, "f32");
    assert!(!ok, "import of {} should fail", dir.display());
    for w in words {
        assert!(err.contains(w), "error does not name {w:?}: {err}");
    }
    assert!(!out.exists(), "a refused import left {}", out.display());
}

#[test]
fn unsupported_configs_are_refused() {
    let cases: [(&str, Value, &[&str]); 6] = [
        (
            "attention_bias",
            json!(true),
            &["config.json", "attention_bias"],
        ),
        (
            "layer_types",
            json!(["sliding_attention", "full_attention", "full_attention"]),
            &["config.json", "layer_types", "3 entries"],
        ),
        (
            "mlp_layer_types",
            json!(["dense", "sparse", "dense", "moe"]),
            &["mlp_layer_types", "moe"],
        ),
        ("hidden_act", json!("gelu"), &["hidden_act", "gelu"]),
        (
            "rope_parameters",
            json!({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}),
            &["rope_parameters", "yarn"],
        ),
        ("sliding_window", json!(0), &["sliding_window"]),
    ];
    for (key, val, words) in cases {
        let dir = edited(|v| v["text_config"][key] = val);
        refused(dir.path(), words);
    }
    let dir = edited(|v| {
        v.as_object_mut().unwrap().remove("text_config");
    });
    refused(dir.path(), &["text_config"]);
}

#[test]
fn bare_text_config_is_accepted() {
    let dir = edited(|v| *v = v["text_config"].clone());
    let out = dir.path().join("out.flint");
    let (ok, err) = import_cli(dir.path(), &out, "f32");
    assert!(ok, "{err}");
    let f = FlintFile::open(&out).unwrap();
    assert_eq!(f.meta("model.config").unwrap()["arch"], json!("muse_spark"));
    assert_eq!(f.tensors().len(), expected_tensors().len());
}

#[test]
fn unknown_tensors_are_refused_but_towers_skipped() {
    // The fixture's vision and audio tensors are read (the import above succeeds); a decoder tensor the importer
    // does not know is an error naming it.
    let src = source();
    assert!(src.keys().any(|k| k.starts_with("model.vision_tower.")));
    assert!(src.keys().any(|k| k.starts_with("model.audio_tower.")));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        model_dir().join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let extra = format!("{P}.layers.0.self_attn.sinks");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = src
        .into_iter()
        .map(|(k, r)| {
            let b = r.data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (k, r.shape, b)
        })
        .collect();
    tensors.push((extra.clone(), vec![4], vec![0u8; 16]));
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (k.clone(), v)
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(tmp.path().join("model.safetensors"), bytes).unwrap();
    refused(tmp.path(), &[&extra, "not used"]);
}
