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
    let dir = fixtures().join("hf").join(case).join(layout);
    conformance_of(case, &dir);
}

/// The fixture `case`'s checks on the checkpoint folder `dir`.
pub(crate) fn conformance_of(case: &str, dir: &std::path::Path) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.flint");
    let case = fixtures().join("hf").join(case);
    import(dir, &out, DType::F32);
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

/// The thinker fixture `case` laid out as a full release is (`Qwen3OmniMoeForConditionalGeneration`,
/// `Qwen2_5OmniForConditionalGeneration` on the hub): its config under `thinker_config` of a `model_type` config,
/// its tensors under `thinker.`, beside talker and speech-decoder tensors (`others`, one small tensor each).
pub(crate) fn release_folder(case: &str, model_type: &str, others: &[&str]) -> tempfile::TempDir {
    let src = fixtures().join("hf").join(case).join("model");
    let thinker: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let arch = thinker["architectures"][0]
        .as_str()
        .unwrap()
        .replace("Thinker", "");
    let cfg = serde_json::json!({
        "architectures": [arch],
        "model_type": model_type,
        "enable_audio_output": true,
        "thinker_config": thinker,
        "talker_config": {"hidden_size": 4},
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    // Rename the tensors in the header (their data stays where it is) and append the others' data.
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut data = bytes[8 + n..].to_vec();
    let mut out = serde_json::Map::new();
    for (k, v) in header {
        let k = if k == "__metadata__" {
            k
        } else {
            format!("thinker.{k}")
        };
        out.insert(k, v);
    }
    for o in others {
        let at = data.len();
        data.extend_from_slice(&[0u8; 16]);
        out.insert(
            (*o).into(),
            serde_json::json!({"dtype": "F32", "shape": [4], "data_offsets": [at, at + 16]}),
        );
    }
    let mut h = serde_json::Value::Object(out).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(data);
    std::fs::write(dir.path().join("model.safetensors"), file).unwrap();
    dir
}

/// A full release's thinker (config under `thinker_config`, tensors under `thinker.`, the talker's and the
/// speech decoder's tensors beside them) imports to the same model as the thinker alone: the whole conformance
/// check on it. The file records which part it holds.
#[test]
fn full_release_layout_matches_transformers() {
    let dir = release_folder(
        "qwen3_omni_moe_thinker",
        "qwen3_omni_moe",
        &[
            "talker.model.norm.weight",
            "code2wav.pre_transformer.norm.weight",
        ],
    );
    conformance_of("qwen3_omni_moe_thinker", dir.path());
    let ck = flint_quantize::import::open(dir.path()).unwrap();
    assert_eq!(ck.provenance["part"], "thinker of qwen3_omni_moe");
}

/// A full release whose thinker is missing, of another kind or malformed, or whose thinker tensors are missing,
/// is refused naming the key or tensor as the files have it.
#[test]
fn full_release_refusals_name_the_key_or_tensor() {
    let dir = release_folder("qwen3_omni_moe_thinker", "qwen3_omni_moe", &[]);
    let cfg_path = dir.path().join("config.json");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 5] = [
        ("`thinker_config`", |c| c["thinker_config"] = 3.into()),
        ("`thinker_config`: model_type `qwen2_5_omni_thinker`", |c| {
            c["thinker_config"]["model_type"] = "qwen2_5_omni_thinker".into()
        }),
        ("`thinker_config.audio_config.d_model`", |c| {
            c["thinker_config"]["audio_config"]["d_model"] = "wide".into()
        }),
        ("n_window_infer", |c| {
            c["thinker_config"]["audio_config"]["n_window_infer"] = 150.into()
        }),
        ("`thinker_config.text_config.hidden_size`", |c| {
            c["thinker_config"]["text_config"]["hidden_size"] = "wide".into()
        }),
    ];
    for (want, edit) in cases {
        let mut c = cfg.clone();
        edit(&mut c);
        std::fs::write(&cfg_path, c.to_string()).unwrap();
        let msg = flint_quantize::import::open(dir.path())
            .expect_err(want)
            .to_string();
        assert!(msg.contains(want), "{want}: {msg}");
        assert!(msg.contains("config.json"), "{want}: names the file: {msg}");
    }
    // The thinker's tensors are all needed; a talker tensor is not one of them.
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let st = dir.path().join("model.safetensors");
    let b = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h = String::from_utf8(b[8..8 + n].to_vec())
        .unwrap()
        .replace("\"thinker.lm_head.weight\"", "\"talker.lm_head.weight\"");
    while !h.len().is_multiple_of(8) {
        h.push(' ');
    }
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend(h.into_bytes());
    f.extend_from_slice(&b[8 + n..]);
    std::fs::write(&st, f).unwrap();
    let msg = flint_quantize::import::open(dir.path())
        .expect_err("missing lm_head")
        .to_string();
    assert!(msg.contains("`thinker.lm_head.weight`"), "{msg}");
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
    }
}

/// The tiny Omni thinker `case` as a checkpoint with a stand-in tokenizer (its family's media specials at the
/// fixture's ids, no bos: id 1 is the audio pad), a ChatML chat template and `files` (name, JSON) beside it,
/// imported at f32 into `dir/m.flint`.
pub(crate) fn with_processors(
    dir: &std::path::Path,
    case: &str,
    files: &[(&str, serde_json::Value)],
) -> std::path::PathBuf {
    let src = fixtures().join("hf").join(case).join("model");
    let ck = dir.join("ckpt");
    std::fs::create_dir(&ck).unwrap();
    for f in ["model.safetensors", "config.json"] {
        std::fs::copy(src.join(f), ck.join(f)).unwrap();
    }
    let names = if case.starts_with("qwen2_5") {
        [
            "<|AUDIO|>",
            "<|IMAGE|>",
            "<|VIDEO|>",
            "<|audio_bos|>",
            "<|audio_eos|>",
            "<|vision_bos|>",
            "<|vision_eos|>",
        ]
    } else {
        [
            "<|audio_pad|>",
            "<|image_pad|>",
            "<|video_pad|>",
            "<|audio_start|>",
            "<|audio_end|>",
            "<|vision_start|>",
            "<|vision_end|>",
        ]
    };
    let specials: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip([1, 2, 3, 4, 5, 7, 8])
        .map(|(n, id)| (n.to_string(), id.into()))
        .collect();
    let mut tok: serde_json::Value =
        serde_json::from_str(&flint_tests::muse::standin_tokenizer(&specials, 512)).unwrap();
    tok["post_processor"] = serde_json::Value::Null;
    std::fs::write(ck.join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::write(
        ck.join("chat_template.jinja"),
        "{%- for m in messages -%}<|im_start|>{{ m.role }}: {{ m.content }}<|im_end|>{%- endfor -%}\
         {%- if add_generation_prompt -%}<|im_start|>assistant: {%- endif -%}",
    )
    .unwrap();
    for (name, json) in files {
        std::fs::write(ck.join(name), json.to_string()).unwrap();
    }
    let model = dir.join("m.flint");
    import(&ck, &model, DType::F32);
    model
}
