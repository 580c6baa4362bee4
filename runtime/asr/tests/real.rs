//! Whisper tiny.en (CTranslate2, fp16) against the reference outputs in
//! /work/shared/fixtures/real/whisper-tiny-en (transformers, matched by CTranslate2).
//! Run with `--nocapture` to see the errors and times.
#![cfg(target_arch = "x86_64")]

use flint_asr::{AsrError, Whisper};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    let d = root().join(".cache/models/whisper-tiny-en");
    assert!(
        d.join("model.bin").exists(),
        "{} is missing: run bench/fetch_models.sh first",
        d.display()
    );
    d
}

fn fixture_dir() -> PathBuf {
    let d = root().join("../shared/fixtures/real/whisper-tiny-en");
    if d.exists() {
        d
    } else {
        PathBuf::from("/work/shared/fixtures/real/whisper-tiny-en")
    }
}

struct Fixture {
    mel: Vec<f32>,
    enc: Vec<f32>,
    /// decoder_input_ids: the prompt and the greedy ids.
    input_ids: Vec<u32>,
    step_logits: Vec<f32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let p = fixture_dir().join("io.safetensors");
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let t: HashMap<String, Vec<u8>> = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.data().to_vec()))
            .collect();
        let f32s = |k: &str| -> Vec<f32> {
            t[k].chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        Fixture {
            mel: f32s("in.input_features"),
            enc: f32s("out.encoder_last_hidden_state"),
            input_ids: t["in.decoder_input_ids"]
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
                .collect(),
            step_logits: f32s("out.step_logits"),
        }
    })
}

fn model() -> &'static Whisper {
    static M: OnceLock<Whisper> = OnceLock::new();
    M.get_or_init(|| {
        flint_kernels::set_threads(2);
        Whisper::open(&model_dir()).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// max |a - b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    (max, max / scale)
}

#[test]
fn encoder_matches_reference() {
    let (m, f) = (model(), fixture());
    let t = Instant::now();
    let enc = m.encode(&f.mel).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (abs, rel) = rel_err(&enc, &f.enc);
    println!(
        "encoder: max abs err {abs:.3e}, relative to max |ref| {rel:.3e} ({ms:.0} ms, 2 threads)"
    );
    assert!(rel < 1e-3, "encoder relative error {rel}");
}

#[test]
fn greedy_ids_and_text_match_reference() {
    let (m, f) = (model(), fixture());
    let prompt = m.prompt().to_vec();
    assert_eq!(prompt, f.input_ids[..2], "prompt");
    let t = Instant::now();
    let ids = m.decode_greedy(&f.enc, 448).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    println!("decode: {} tokens in {ms:.0} ms (2 threads)", ids.len());
    assert_eq!(ids, f.input_ids[2..]);
    let text = m.text(&ids).unwrap();
    println!("text: {text:?}");
    assert_eq!(
        text,
        " The quick roundfire jump over the lazy dog. The low from the camera glasses."
    );
    // max_tokens bounds the output.
    assert_eq!(m.decode_greedy(&f.enc, 3).unwrap(), f.input_ids[2..5]);
    assert!(m.decode_greedy(&f.enc, 0).unwrap().is_empty());
}

#[test]
fn teacher_forced_logits_match_reference() {
    let (m, f) = (model(), fixture());
    let vocab = f.step_logits.len() / 18;
    let lg = m.logits(&f.enc, &f.input_ids).unwrap();
    // Row i of the reference is the prediction after input_ids[..i + 2].
    let ours = &lg[vocab..19 * vocab];
    let (abs, rel) = rel_err(ours, &f.step_logits);
    println!("decoder logits (18 steps): max abs err {abs:.3e}, relative {rel:.3e}");
    assert!(rel < 1e-3, "logits relative error {rel}");
}

/// The reference's resampling (tools/real_whisper.py): `np.interp` of the int16 / 32768 samples at
/// `i / 16000` s, `int(n * 16000 / sr)` samples, in f64.
fn linear_resample(x: &[f32], sr: u32) -> Vec<f32> {
    let n = (x.len() as u64 * 16000 / u64::from(sr)) as usize;
    (0..n)
        .map(|i| {
            let p = i as f64 * f64::from(sr) / 16000.0;
            let j = p.floor() as usize;
            let (a, b) = (f64::from(x[j]), f64::from(*x.get(j + 1).unwrap_or(&x[j])));
            (a + (b - a) * (p - j as f64)) as f32
        })
        .collect()
}

#[test]
fn transcribe_the_clip() {
    let (m, f) = (model(), fixture());
    let wav = fixture_dir().join("speech_22k.wav");
    let clip = flint_media::read_wav_file(&wav).unwrap();

    // With the reference's own resampling, the whole pipeline (features, encoder, decoder) gives its ids.
    let lin = linear_resample(&clip.samples, clip.sample_rate);
    let t = m.transcribe(&lin).unwrap();
    println!(
        "transcribe, reference resampling (2 threads): encode {:.0} ms (features + encoder), decode {:.0} ms, \
         {} tokens: {:?}",
        t.encode_ms,
        t.decode_ms,
        t.ids.len(),
        t.text
    );
    assert_eq!(t.ids, f.input_ids[2..]);
    assert_eq!(t.text, m.text(&t.ids).unwrap());

    // With flint-media's band-limited resampler the features differ from the reference's linear interpolation
    // (up to 0.58 in log-mel), and the clip is borderline at "brown fox jumps" (espeak-ng speech): those words
    // come out differently, the rest is the same.
    let s16 =
        flint_media::resample::resample(&wav, &clip.samples, clip.sample_rate, 16000).unwrap();
    let t = m.transcribe(&s16).unwrap();
    println!(
        "transcribe, flint-media resampling (2 threads): encode {:.0} ms, decode {:.0} ms, ids {:?}, {:?}",
        t.encode_ms, t.decode_ms, t.ids, t.text
    );
    assert_eq!(t.ids[..3], f.input_ids[2..5]);
    assert!(
        t.ids.ends_with(&f.input_ids[f.input_ids.len() - 12..]),
        "{:?}",
        t.ids
    );

    // Too long: the error names the length.
    let long = vec![0f32; 30 * 16000 + 1];
    let e = m.transcribe(&long).unwrap_err().to_string();
    assert!(e.contains("480001 samples"), "{e}");
    // Wrong lengths at the lower level are errors, not panics.
    assert!(matches!(m.encode(&f.mel[1..]), Err(AsrError::Input(_))));
    assert!(matches!(
        m.decode_greedy(&f.enc[1..], 5),
        Err(AsrError::Input(_))
    ));
    assert!(matches!(m.transcribe(&[]), Err(AsrError::Media(_))));
}

#[test]
fn truncated_real_model_is_an_error() {
    let src = model_dir().join("model.bin");
    let bytes = std::fs::read(&src).unwrap();
    let dir = std::env::temp_dir().join(format!("flint-asr-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model_dir().join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Whisper::open(&dir).unwrap_err().to_string();
    println!("truncated: {e}");
    assert!(e.contains("model.bin") && e.contains("truncated"), "{e}");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let e = Whisper::open(&dir).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    // The real model.bin with a bad config.json or no tokenizer.json (linked, not copied).
    std::os::unix::fs::symlink(&src, dir.join("linked.bin")).unwrap();
    std::fs::rename(dir.join("linked.bin"), dir.join("model.bin")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"suppress_ids": [1, 99999999]}"#,
    )
    .unwrap();
    let e = Whisper::open(&dir).unwrap_err().to_string();
    assert!(e.contains("suppress_ids") && e.contains("99999999"), "{e}");
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = Whisper::open(&dir).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
