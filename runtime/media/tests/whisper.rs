//! WhisperFeatureExtractor (80 and 128 mel bins, 30 s) on processors/audio/*_16k.wav against transformers' numpy
//! and torch backends (processors/whisper_feature_extractor_80 / _128: the stored head, every later frame equal
//! to `fill_value`). Measured: bit-exact against numpy (sha256 of the whole output equal), within 3.7e-5 of
//! torch (whose own difference from numpy is up to 2.6e-5 / 3.7e-5); asserted: numpy's sha256, and 1e-4 of the
//! reference's largest magnitude for both.

mod common;
use common::*;
use flint_media::read_wav_file;
use flint_media::whisper::{log_mel, WhisperConfig};

fn run(setting: &str) {
    let dir = processors().join(setting);
    let cfg = WhisperConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    let man = json(&dir.join("manifest.json"));
    let st = read_st(&dir.join("out.safetensors"));
    for (clip, run) in man["runs"].as_object().unwrap() {
        let file = dir.join(run["input"].as_str().unwrap());
        let wav = read_wav_file(&file).unwrap();
        assert_eq!(wav.sample_rate, cfg.sampling_rate);
        let ours = log_mel(&cfg, &file, &wav.samples).unwrap();
        let frames = cfg.frames();
        // Bit-exact against the numpy backend: the sha256 of the whole [1, mels, 3000] output.
        assert_eq!(
            sha256_hex(&f32_bytes(&ours)),
            run["numpy"]["sha256"].as_str().unwrap(),
            "{setting}/{clip}"
        );
        assert_eq!(ours.len(), cfg.feature_size * frames);
        for backend in ["numpy", "torch"] {
            let b = &run[backend];
            let n_head = b["n_head"].as_u64().unwrap() as usize;
            let fill = b["fill_value"].as_f64().unwrap() as f32;
            let head = st[&format!("{clip}.{backend}.input_features_head")].f32();
            let (mut worst, mut scale) = (0f32, 0f32);
            for m in 0..cfg.feature_size {
                for t in 0..frames {
                    let want = if t < n_head {
                        head[m * n_head + t]
                    } else {
                        fill
                    };
                    worst = worst.max((ours[m * frames + t] - want).abs());
                    scale = scale.max(want.abs());
                }
            }
            println!("{setting}/{clip} vs {backend}: max abs error {worst:.3e} (largest magnitude {scale:.3})");
            assert!(
                worst <= 1e-4 * scale,
                "{setting}/{clip} vs {backend}: {worst}"
            );
        }
    }
}

#[test]
fn whisper_80_mel() {
    run("whisper_feature_extractor_80");
}

#[test]
fn whisper_128_mel() {
    run("whisper_feature_extractor_128");
}
