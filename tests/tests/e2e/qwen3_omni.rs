//! The thinker of Qwen3-Omni-MoE against transformers (../shared/fixtures/hf/qwen3_omni_moe_thinker, both expert
//! layouts): imported at f32; the vision tower (`out.tap.visual.*`), the log-mel audio encoder on the feature
//! extractor's output (`out.tap.audio_tower.*`: its embedded steps, each layer, the output rows), the M-RoPE
//! positions of the image + audio + text prompt, then the whole prompt through the decoder with both towers' rows
//! and the deepstack hook: logits, hidden states and router logits within 1e-4 of the reference's largest
//! magnitude.

use crate::qwen3_vl::{check, check_decoder, check_vision, type_refusals};
use flint_format::DType;
use flint_kernels::Exec;
use flint_model::audio::mel::{MelAudioTower, MelClip, MelTrace};
use flint_model::multimodal::{Media, Pixels};
use flint_model::Model;
use flint_tests::{fixtures, import, read_safetensors, Ref};
use std::collections::HashMap;

/// The fixture's image and mel clip.
pub(crate) fn media(io: &HashMap<String, Ref>) -> Media {
    let g = &io["in.image_grid_thw"].data;
    let f = &io["in.input_features"];
    let (mels, frames) = (f.shape[1], f.shape[2]);
    let valid = io["in.feature_attention_mask"]
        .data
        .iter()
        .filter(|&&m| m != 0.0)
        .count();
    let features = (0..mels)
        .flat_map(|m| f.data[m * frames..m * frames + valid].to_vec())
        .collect();
    Media {
        images: Some(Pixels {
            values: io["in.pixel_values"].data.clone(),
            grids: vec![[g[0] as usize, g[1] as usize, g[2] as usize]],
        }),
        mel_audio: vec![MelClip {
            features,
            frames: valid,
        }],
        ..Media::default()
    }
}

/// One Omni thinker fixture `case` in one `layout` against transformers (also the Qwen2.5-Omni tests').
pub(crate) fn conformance(case: &str, layout: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    let case = fixtures().join("hf").join(case);
    import(&case.join(layout), &out, DType::F32);
    let model = Model::open(&out).unwrap();
    let io = read_safetensors(&case.join("io.safetensors"));
    let media = media(&io);
    let ex = Exec::global();

    let ids: Vec<u32> = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
    check_vision(&model, &ids, media.images.as_ref().unwrap(), &io);

    let audio = MelAudioTower::load(model.file()).unwrap();
    let mut at = MelTrace::default();
    let rows = audio
        .encode_traced(&ex, &media.mel_audio, Some(&mut at))
        .unwrap();
    check(
        "audio_tower.hidden_states.0",
        &at.embedded,
        &io["out.tap.audio_tower.hidden_states.0"],
    );
    for (l, x) in at.layers.iter().enumerate() {
        let name = format!("audio_tower.hidden_states.{}", l + 1);
        check(&name, x, &io[&format!("out.tap.{name}")]);
    }
    check(
        "audio_tower.last_hidden_state",
        &rows,
        &io["out.tap.audio_tower.last_hidden_state"],
    );

    check_decoder(
        &model,
        &out,
        (ids, &media),
        &io,
        &case.join("io.safetensors"),
    );
}

#[test]
fn hub_layout_matches_transformers() {
    conformance("qwen3_omni_moe_thinker", "model");
}

#[test]
fn fused_layout_matches_transformers() {
    conformance("qwen3_omni_moe_thinker", "model_fused");
}

/// Audio and thinker settings the runtime would not honour are refused at import, naming the key.
#[test]
fn refused_configs_name_their_key() {
    type_refusals(
        "qwen3_omni_moe_thinker",
        &[
            ("n_window_infer", |c| {
                c["audio_config"]["n_window_infer"] = 150.into()
            }),
            ("output_dim", |c| {
                c["audio_config"]["output_dim"] = 32.into()
            }),
            ("activation_function", |c| {
                c["audio_config"]["activation_function"] = "relu".into()
            }),
            ("scale_embedding", |c| {
                c["audio_config"]["scale_embedding"] = true.into()
            }),
            ("max_source_positions", |c| {
                c["audio_config"]["max_source_positions"] = 4.into()
            }),
            ("audio_config", |c| c["audio_config"] = serde_json::json!(3)),
            ("interleaved", |c| {
                c["text_config"]["rope_parameters"]["interleaved"] = "yes".into()
            }),
        ],
    );
}

/// Features that do not fit the clip's shape are refused, not read out of bounds.
#[test]
fn malformed_features_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    import(
        &fixtures().join("hf/qwen3_omni_moe_thinker/model_fused"),
        &out,
        DType::F32,
    );
    let model = Model::open(&out).unwrap();
    let a = MelAudioTower::load(model.file()).unwrap();
    let ex = Exec::global();
    for clip in [
        MelClip {
            features: vec![0.0; 31 * 10],
            frames: 10,
        },
        MelClip {
            features: Vec::new(),
            frames: 0,
        },
    ] {
        assert!(a.encode(&ex, &[clip]).is_err());
    }
    assert!(a.encode(&ex, &[]).is_err());
}
