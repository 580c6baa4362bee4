//! The Muse model fixtures' own inputs (hf/muse_spark, muse_spark_video, muse_glimmer: made by the transformers
//! processors with the tiny towers' patch sizes) and the MuseSparkFeatureExtractor fixture, rebuilt from the
//! files: every value equal.

mod common;
use common::*;
use flint_media::glimmer::GlimmerImageConfig;
use flint_media::prompt::{audio_prompt, image_prompt, video_prompt};
use flint_media::video::{preprocess_video, GlimmerVideoConfig};
use flint_media::{
    decode_image_file, extract, preprocess_image, read_wav_file, RgbImage, SparkAudioConfig,
};

fn tiny(max_tokens: usize) -> GlimmerImageConfig {
    GlimmerImageConfig {
        patch_size: 4,
        temporal_patch_size: 2,
        merge_size: 2,
        max_tokens,
        ..GlimmerImageConfig::default_image()
    }
}

fn check_image(case: &str, photo: &str, max_tokens: usize) {
    let io = read_st(&fixtures().join("hf").join(case).join("io.safetensors"));
    let file = processors().join("images").join(photo);
    let img = decode_image_file(&file).unwrap();
    let cfg = tiny(max_tokens);
    let out = preprocess_image(&cfg, &file, &img).unwrap();
    let want_grid = io["in.image_grid_thw"].i64();
    assert_eq!(
        out.grid_thw.map(|v| v as i64).to_vec(),
        want_grid,
        "{case}: grid"
    );
    let pv = &io["in.pixel_values"];
    assert_eq!(
        pv.shape,
        vec![
            out.pixel_values.len() / out.row_len(&cfg),
            out.row_len(&cfg)
        ]
    );
    assert_eq!(
        f32_bytes(&out.pixel_values),
        pv.bytes,
        "{case}: pixel_values"
    );
    // The prompt holds that many <|patch|> tokens (id 3 in the stand-in tokenizer).
    let ids = io["in.input_ids"].i64();
    let n = ids.iter().filter(|&&i| i == 3).count();
    assert_eq!(
        image_prompt(out.grid_thw, 2).matches("<|patch|>").count(),
        n
    );
    assert_eq!(out.tokens, n);
}

#[test]
fn muse_spark_image_input() {
    check_image("muse_spark", "coffee.png", 15);
}

#[test]
fn muse_glimmer_image_input() {
    check_image("muse_glimmer", "chelsea.png", 24);
}

#[test]
fn muse_spark_video_input() {
    let dir = fixtures().join("hf/muse_spark_video");
    let io = read_st(&dir.join("io.safetensors"));
    let man = json(&dir.join("manifest.json"));
    let how = &man["inputs_how"]["video"];
    let photo = decode_image_file(
        &processors()
            .join("images")
            .join(how["photo"].as_str().unwrap()),
    )
    .unwrap();
    let (ch, cw) = (
        how["crop"][0].as_u64().unwrap() as usize,
        how["crop"][1].as_u64().unwrap() as usize,
    );
    let step = how["step"].as_u64().unwrap() as usize;
    // frames = im[:ch, k*step : k*step + cw]
    let frames: Vec<RgbImage> = (0..how["frames"].as_u64().unwrap() as usize)
        .map(|k| {
            let mut d = Vec::with_capacity(ch * cw * 3);
            for y in 0..ch {
                let o = (y * photo.width + k * step) * 3;
                d.extend_from_slice(&photo.data[o..o + cw * 3]);
            }
            RgbImage::new(cw, ch, d).unwrap()
        })
        .collect();
    let cfg = GlimmerVideoConfig {
        image: tiny(how["max_frame_tokens"].as_u64().unwrap() as usize),
        do_sample_frames: false,
        ..GlimmerVideoConfig::default_video()
    };
    let fps = how["fps"].as_f64().unwrap();
    let v = preprocess_video(&cfg, &dir, &frames, Some(fps)).unwrap();
    assert_eq!(
        v.grid_thw.map(|x| x as i64).to_vec(),
        io["in.video_grid_thw"].i64()
    );
    assert_eq!(
        f32_bytes(&v.pixel_values_videos),
        io["in.pixel_values_videos"].bytes
    );
    let s = video_prompt(
        v.grid_thw,
        2,
        &v.group_timestamps,
        &cfg.frame_timestamp_format,
    )
    .unwrap();
    assert_eq!(s, man["video_prompt_string"].as_str().unwrap());
}

#[test]
fn video_frame_sampling_like_transformers() {
    // sample_frames: n = min(int(total * fps / video_fps), num_frames, total) rounded down to a multiple of the
    // temporal patch; torch.linspace(0, total - 1, n).long().
    let cfg = GlimmerVideoConfig::default_video();
    // 10 s at 30 fps, 2 fps wanted: 20 frames, linspace(0, 299, 20).
    let idx = cfg.sample_indices(300, Some(30.0));
    assert_eq!(idx.len(), 20);
    let want: Vec<usize> = (0..20)
        .map(|i| (299.0f32 / 19.0 * i as f32) as usize)
        .collect();
    assert_eq!(idx[..10], want[..10]);
    assert_eq!((idx[0], idx[19]), (0, 299));
    // Capped by num_frames (96), and at least one temporal group.
    assert_eq!(cfg.sample_indices(10_000, Some(30.0)).len(), 96);
    assert_eq!(cfg.sample_indices(3, Some(30.0)), vec![0, 2]);
    assert_eq!(cfg.sample_indices(1, None), vec![0]);
}

#[test]
fn muse_spark_tiny_audio_input() {
    // hf/muse_spark: 160 samples through MuseSparkFeatureExtractor with samples_per_token 24 -> [1, 168] + mask.
    let io = read_st(&fixtures().join("hf/muse_spark/io.safetensors"));
    let iv = io["in.input_values"].f32();
    let mask = io["in.input_values_mask"].i32();
    let real = mask.iter().filter(|&&m| m == 1).count();
    assert_eq!(real, 160);
    let cfg = SparkAudioConfig {
        samples_per_token: 24,
        ..SparkAudioConfig::default()
    };
    let out = extract(
        &cfg,
        std::path::Path::new("in.input_values"),
        &[&iv[..real]],
    )
    .unwrap();
    assert_eq!(out.len, 168);
    assert_eq!(f32_bytes(&out.input_values), f32_bytes(&iv));
    assert_eq!(out.input_values_mask, mask);
    let ids = io["in.input_ids"].i64();
    assert_eq!(ids.iter().filter(|&&i| i == 5).count(), out.tokens(0, 24));
    assert_eq!(audio_prompt(real, 24).matches("<|audio|>").count(), 7);
}

#[test]
fn muse_spark_feature_extractor_on_speech() {
    let dir = processors().join("muse_spark_feature_extractor");
    let cfg = SparkAudioConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    assert_eq!(cfg, SparkAudioConfig::default());
    let man = json(&dir.join("manifest.json"));
    let st = read_st(&dir.join("out.safetensors"));
    let mut clips = vec![];
    for name in man["batch"]["clips"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let run = &man["runs"][name];
        let file = dir.join(run["input"].as_str().unwrap());
        let clip = read_wav_file(&file).unwrap();
        assert_eq!(clip.sample_rate, cfg.sampling_rate);
        assert_eq!(clip.samples.len() as u64, run["samples"].as_u64().unwrap());
        let out = extract(&cfg, &file, &[&clip.samples]).unwrap();
        assert_eq!(
            vec![1, out.len as u64],
            run["input_values"][1]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            out.input_values_mask.iter().map(|&m| m as u64).sum::<u64>(),
            run["mask_sum"].as_u64().unwrap()
        );
        assert_eq!(
            out.tokens(0, cfg.samples_per_token) as u64,
            run["audio_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            sha256_hex(&f32_bytes(&out.input_values)),
            run["input_values_sha256"].as_str().unwrap(),
            "{name}"
        );
        if let Some(iv) = st.get(&format!("{name}.input_values")) {
            assert_eq!(
                f32_bytes(&out.input_values),
                iv.bytes,
                "{name}: input_values"
            );
            assert_eq!(
                out.input_values_mask,
                st[&format!("{name}.input_values_mask")].i32(),
                "{name}: mask"
            );
        }
        clips.push(clip.samples);
    }
    let refs: Vec<&[f32]> = clips.iter().map(|c| c.as_slice()).collect();
    let b = extract(&cfg, &dir, &refs).unwrap();
    assert_eq!([b.batch as u64, b.len as u64], [2, 134400]);
    assert_eq!(
        sha256_hex(&f32_bytes(&b.input_values)),
        man["batch"]["input_values_sha256"].as_str().unwrap()
    );
}
