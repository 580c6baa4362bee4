//! The audio tower's file side and real inputs: its tensors in one paging group (f32 and f16 imports), a text-only
//! config without a tower, a WAV through the feature extractor's padding and the tower (whole, streamed and
//! batch-padded), and the tower after `flint-quantize quantize --weights q8`.

use flint_format::{DType, FlintFile};
use flint_kernels::Exec;
use flint_model::AudioTower;
use flint_tests::audio::{assert_close, edited, fixture, Taps};
use flint_tests::{fixtures, import, read_safetensors};

const TOL: f32 = 1e-4;

/// The tower's tensors: names and shapes from the config, f32 vectors and conv kernels at any dtype, values as
/// in the checkpoint, and all of them in one paging group of their own that starts on a page.
#[test]
fn tower_tensors_are_one_group() {
    let src = read_safetensors(&fixtures().join("hf/muse_spark/model/model.safetensors"));
    let theirs: Vec<&String> = src
        .keys()
        .filter(|k| k.starts_with("model.audio_tower."))
        .collect();
    for dtype in [DType::F32, DType::F16] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.flint");
        import(&fixtures().join("hf/muse_spark/model"), &out, dtype);
        let f = FlintFile::open(&out).unwrap();
        let ours: Vec<_> = f
            .tensors()
            .iter()
            .filter(|t| t.name.starts_with("audio."))
            .collect();
        assert_eq!(ours.len(), theirs.len(), "one tensor per checkpoint tensor");
        let group = ours[0].group;
        assert_ne!(group, 0);
        assert_eq!(ours[0].offset % 4096, 0, "the group starts on a page");
        let others = f.tensors().iter().filter(|t| !t.name.starts_with("audio."));
        assert!(others.clone().all(|t| t.group != group));
        for t in &ours {
            assert_eq!(t.group, group, "{}", t.name);
            let kept_f32 = t.shape.len() != 2;
            let want = if kept_f32 { DType::F32 } else { dtype };
            assert_eq!(t.dtype, want, "{dtype}: {}", t.name);
        }
        // The tower runs from the f16 file too, close to the reference.
        let tower = AudioTower::load(&f).unwrap();
        let io = read_safetensors(&fixtures().join("hf/muse_spark/io.safetensors"));
        let x = &io["in.stream_input_values"].data;
        let mut taps = Taps::default();
        tower
            .encode_traced(&Exec::global(), x, x.len(), &mut taps.tap())
            .unwrap();
        let tol = if dtype == DType::F32 { TOL } else { 1e-2 };
        assert_close(
            "f16 tower",
            &taps.0["audio_tower"],
            &io["out.stream_full"].data,
            tol,
        );
        if dtype == DType::F32 {
            for (ours, theirs) in [
                ("audio.layer.1.patch", "layers.1.patch_embedder.proj.weight"),
                (
                    "audio.layer.1.block.1.conv",
                    "layers.1.conv_blocks.1.conv.weight",
                ),
                (
                    "audio.layer.2.block.0.fc2.bias",
                    "layers.2.conv_blocks.0.mlp.fc2.bias",
                ),
                ("audio.post_proj_norm", "post_proj_norm.weight"),
            ] {
                let v = f.tensor(ours).unwrap().as_f32().unwrap().to_vec();
                let want = &src[&format!("model.audio_tower.{theirs}")];
                assert_eq!(v, want.data, "{ours}");
            }
        }
    }
}

/// A bare `muse_spark_text` config has no tower; its tensors are then skipped, not imported.
#[test]
fn text_only_config_has_no_tower() {
    let dir = edited(|v| *v = v["text_config"].clone());
    let out = dir.path().join("out.flint");
    import(dir.path(), &out, DType::F32);
    let f = FlintFile::open(&out).unwrap();
    assert!(f.meta("model.config").unwrap().get("audio").is_none());
    assert!(!f.tensors().iter().any(|t| t.name.starts_with("audio.")));
    let e = AudioTower::load(&f).unwrap_err().to_string();
    assert!(
        e.contains("model.config") && e.contains("no audio tower"),
        "{e}"
    );
}

/// Real speech from a WAV file (processors/audio/sign_question_24k.wav, read with hound as int16 / 32768, as the
/// fixture generator did): the feature extractor's padding equals `muse_spark_feature_extractor/out.safetensors`
/// bit for bit, and the tiny tower gives the same rows for the whole clip, for the clip pushed in pieces of 2000
/// samples (83 ms, not a token multiple) as a microphone delivers it, and for the clip right-padded to the batch
/// length (the mask drops those tokens).
/// There is no transformers reference of the tower on this clip: the tower's own conformance is above.
#[test]
fn wav_speech_through_the_tower() {
    let proc = fixtures().join("processors");
    let mut wav = hound::WavReader::open(proc.join("audio/sign_question_24k.wav")).unwrap();
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 24_000, 16)
    );
    let clip: Vec<f32> = wav
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    let fe = proc.join("muse_spark_feature_extractor");
    let pre: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fe.join("preprocessor_config.json")).unwrap())
            .unwrap();
    let multiple = pre["samples_per_token"].as_u64().unwrap() as usize;
    let want = read_safetensors(&fe.join("out.safetensors"));
    let padded = flint_model::audio::pad_like_extractor(&clip, multiple);
    let (iv, mask) = (
        &want["sign_question.input_values"],
        &want["sign_question.input_values_mask"],
    );
    assert_eq!(iv.shape, [1, padded.len()]);
    assert_eq!(
        padded.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        iv.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        "input_values"
    );
    let valid = clip.len();
    assert_eq!(mask.data.iter().sum::<f32>() as usize, valid);
    assert!(mask.data[..valid].iter().all(|&m| m == 1.0));

    let f = fixture();
    let exec = Exec::global();
    let out = f.tower.config().out_size;
    let whole = f.tower.encode(&exec, &padded, valid).unwrap();
    assert_eq!(whole.len() / out, f.tower.config().tokens_for(valid));
    let mut s = f.tower.stream(&exec);
    let mut live = Vec::new();
    for piece in clip.chunks(2000) {
        live.extend(s.push(piece).unwrap());
    }
    assert!(s.pending() < f.tower.config().samples_per_token());
    live.extend(s.finish(valid).unwrap());
    assert_close("speech pushed in 2000-sample pieces", &live, &whole, 1e-5);
    // The batch of both clips is padded to the longer one (134400 samples); this clip's extra tokens are dropped.
    let mut batch = padded.clone();
    batch.resize(134_400, 0.0);
    let dropped = f.tower.encode(&exec, &batch, valid).unwrap();
    assert_close("batch-padded clip", &dropped, &whole, 1e-5);
}

/// `flint-quantize quantize --weights q8` keeps the tower's group and its f32 vectors and kernels, quantizes its
/// 32-multiple matrices, and the quantized tower still follows the reference closely.
#[test]
fn quantized_tower_runs() {
    let f = fixture();
    let dir = f.tmp.path();
    let text = std::fs::read_to_string(flint_tests::root().join("bench/calibration.txt")).unwrap();
    let calib = dir.join("calib.txt");
    std::fs::write(&calib, text.chars().take(256).collect::<String>()).unwrap();
    let out = dir.join("q8.flint");
    let opts = flint_quantize::quant::Options {
        weights: DType::Q8,
        keep: Vec::new(),
        calib: Some(calib),
        ctx: 64,
        imatrix: false,
        imatrix_text: None,
        experts: None,
    };
    flint_quantize::quant::quantize(&f.flint, &out, &opts, |_, _, _| {}).unwrap();
    let q = FlintFile::open(&out).unwrap();
    let audio: Vec<_> = q
        .tensors()
        .iter()
        .filter(|t| t.name.starts_with("audio."))
        .collect();
    assert!(audio
        .iter()
        .all(|t| t.group == audio[0].group && t.group != 0));
    assert!(
        audio.iter().any(|t| t.dtype.is_quantized()),
        "no tower matrix quantized"
    );
    assert!(audio
        .iter()
        .filter(|t| t.shape.len() != 2)
        .all(|t| t.dtype == DType::F32));
    let tower = AudioTower::load(&q).unwrap();
    let x = &f.io["in.stream_input_values"].data;
    let mut taps = Taps::default();
    tower
        .encode_traced(&Exec::global(), x, x.len(), &mut taps.tap())
        .unwrap();
    let e = assert_close(
        "q8 tower",
        &taps.0["audio_tower"],
        &f.io["out.stream_full"].data,
        2e-2,
    );
    eprintln!("q8 tower: {e:e}");
}
