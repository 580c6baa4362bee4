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

/// A photo and a WAV through the checkpoint's processors for each Omni thinker (`flint_prompt::prepare`, what
/// `flint run` and `flint preprocess` use): the Qwen2-VL image processor at the tower's patch sizes, the Whisper
/// feature extractor at the encoder's mel bins with the frames the clip covers, each medium's placeholder expanded
/// to the family's start, one pad per tower row and end; the prompt then runs through both towers and the decoder.
#[test]
fn photo_and_wav_through_the_processors() {
    use flint_model::{KvDtype, KvOptions, Logits};
    for (case, [img_start, img_pad, _], [au_start, au_pad, au_end]) in [
        (
            "qwen3_omni_moe_thinker",
            ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>"],
            ["<|audio_start|>", "<|audio_pad|>", "<|audio_end|>"],
        ),
        (
            "qwen2_5_omni_thinker",
            ["<|vision_bos|>", "<|IMAGE|>", "<|vision_eos|>"],
            ["<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.flint");
        import(
            &fixtures().join("hf").join(case).join("model"),
            &out,
            DType::F32,
        );
        let model = Model::open(&out).unwrap();
        let wav = fixtures().join("processors/audio/sign_question_16k.wav");
        let files = flint_prompt::MediaFiles {
            images: vec![fixtures().join("processors/images/coffee.png")],
            audio: vec![wav.clone()],
            image_tokens: Some(flint_prompt::ImageTokens::Cap(6)),
            ..Default::default()
        };
        let p = flint_prompt::prepare(&model, &files).unwrap();
        let clip = &p.media.mel_audio[0];
        let samples = flint_media::read_wav_file(&wav).unwrap().samples.len();
        assert_eq!(
            clip.frames,
            samples.div_ceil(160),
            "{case}: frames the clip covers"
        );
        let mels = model.config.mel_audio.as_ref().unwrap().num_mel_bins;
        assert_eq!(clip.features.len(), mels * clip.frames);
        let text = p.expand(&p.content("hi")).unwrap();
        let px = p.media.images.as_ref().unwrap();
        let g = px.grids[0];
        assert!(
            g[1] * g[2] / 4 <= 6,
            "{case}: --image-tokens 6 holds: {g:?}"
        );
        let rows = model.config.mel_audio.as_ref().unwrap().rows(clip.frames);
        let want_img = format!("{img_start}{}", img_pad.repeat(g[1] * g[2] / 4));
        let want_au = format!("{au_start}{}{au_end}", au_pad.repeat(rows));
        assert!(text.starts_with(&want_img), "{case}: {text}");
        assert!(text.contains(&want_au), "{case}: audio placeholder");
        // The ids the tokenizer would give: each pad the placeholder id, the rest text.
        let (v, a) = (
            model.config.vision.as_ref().unwrap().image_token_id,
            model.config.mel_audio.as_ref().unwrap().token_id,
        );
        let mut ids = vec![7u32];
        ids.extend(std::iter::repeat_n(v, g[1] * g[2] / 4));
        ids.extend([8, 4]);
        ids.extend(std::iter::repeat_n(a, rows));
        ids.extend([5, 300, 301]);
        let towers = flint_model::multimodal::Towers::load(&model).unwrap();
        let (prompt, stats) = flint_model::multimodal::MediaPrompt::encode(
            &model,
            &towers,
            model.exec(),
            ids,
            &p.media,
        )
        .unwrap();
        assert_eq!(stats.audio_rows, rows);
        let mut kv = model.new_kv(KvOptions::with_dtype(KvDtype::F32));
        let seq = kv.new_seq();
        let mut batch = flint_model::Batch::new();
        prompt.push(&mut batch, seq, 0, Logits::Last);
        let mut deep = prompt.deepstack();
        let logits = model
            .forward_batch(
                &batch,
                &mut kv,
                flint_model::multimodal::Deepstack::as_hook(&mut deep),
                None,
            )
            .unwrap();
        assert!(logits.iter().all(|x| x.is_finite()), "{case}");
        // A video is refused until its positions (in seconds) are built.
        let mut with_video = p.media.clone();
        with_video.videos = with_video.images.clone();
        let e = flint_model::multimodal::MediaPrompt::encode(
            &model,
            &towers,
            model.exec(),
            vec![3; 4],
            &with_video,
        )
        .expect_err("video refused");
        assert!(e.to_string().contains("video"), "{case}: {e}");
    }
}
