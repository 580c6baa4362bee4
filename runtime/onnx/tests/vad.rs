//! Silero VAD through tract against onnxruntime's probabilities (tests/data/vad_refs.json), and the event
//! state machine on real speech and on silence.

mod common;

use flint_onnx::vad::CHUNK;
use flint_onnx::{OnnxError, Vad, VadConfig, VadEvent};
use std::time::Instant;

fn open() -> Vad {
    Vad::open(&common::model("silero_vad_16k.onnx"), VadConfig::default()).expect("open VAD")
}

#[test]
fn probabilities_match_onnxruntime() {
    let refs = common::json("vad_refs.json");
    let mut vad = open();
    for (name, r) in refs["clips"].as_object().unwrap() {
        let x = common::samples_for(name, r);
        let want: Vec<f64> = r["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(want.len(), x.len() / CHUNK, "{name}: chunk count");
        vad.reset();
        let t = Instant::now();
        let mut max_err = 0.0f64;
        for (i, chunk) in x.chunks_exact(CHUNK).enumerate() {
            vad.push(chunk).unwrap();
            let err = (f64::from(vad.last_prob()) - want[i]).abs();
            assert!(
                err < 1e-4,
                "{name} chunk {i}: tract {} vs onnxruntime {}",
                vad.last_prob(),
                want[i]
            );
            max_err = max_err.max(err);
        }
        let per = t.elapsed().as_secs_f64() * 1e3 / want.len() as f64;
        println!(
            "vad {name}: {} chunks, max |tract - onnxruntime| = {max_err:.2e}, {per:.3} ms/chunk",
            want.len()
        );
    }
}

#[test]
fn speech_clips_give_one_utterance_around_the_speech() {
    let refs = common::json("vad_refs.json");
    let mut vad = open();
    for name in ["sign_question_16k.wav", "speech_22k_16k.wav"] {
        let r = &refs["clips"][name];
        let lead = 16_000usize;
        let mut x = vec![0.0f32; lead];
        x.extend(common::clip(name));
        x.extend(vec![0.0f32; 24_000]);
        vad.reset();
        let ev = common::events(&mut vad, &x, 1000);
        println!("vad events {name} (speech padded by {lead} zeros): {ev:?}");
        let first = (lead as u64) + r["first_voiced_sample"].as_u64().unwrap();
        let last = (lead as u64) + r["last_voiced_sample"].as_u64().unwrap();
        let [VadEvent::SpeechStart { at_sample: s }, VadEvent::SpeechEnd { at_sample: e }] = ev[..]
        else {
            panic!("{name}: want one start and one end, got {ev:?}");
        };
        assert!(
            s <= first,
            "{name}: start {s} after the first voiced sample {first}"
        );
        assert!(
            s + 16_000 >= first,
            "{name}: start {s} far before the speech at {first}"
        );
        assert!(
            e >= last,
            "{name}: end {e} before the last voiced sample {last}"
        );
        assert!(
            e <= last + 16_000 && e as usize <= x.len(),
            "{name}: end {e} far after the speech at {last}"
        );
    }
}

#[test]
fn silence_gives_no_events_and_pre_roll_clamps_at_zero() {
    let mut vad = open();
    assert!(common::events(&mut vad, &vec![0.0; 3 * 16_000], 777).is_empty());
    // Speech from the first sample: the pre-roll cannot go below 0.
    vad.reset();
    let ev = common::events(&mut vad, &common::clip("sign_question_16k.wav"), 4096);
    assert!(
        matches!(ev.first(), Some(VadEvent::SpeechStart { at_sample: 0 })),
        "{ev:?}"
    );
    assert!(
        matches!(ev.last(), Some(VadEvent::SpeechEnd { .. })),
        "{ev:?}"
    );
}

#[test]
fn push_size_does_not_matter_and_reset_restarts() {
    let mut vad = open();
    let x = common::clip("speech_22k_16k.wav");
    let a = common::events(&mut vad, &x, 512);
    vad.reset();
    let b = common::events(&mut vad, &x, 1);
    vad.reset();
    let c = common::events(&mut vad, &x, x.len());
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(vad.samples_seen(), x.len() as u64);
}

#[test]
fn bad_inputs_and_files_give_clear_errors() {
    let mut vad = open();
    let e = vad.push(&[0.0, f32::NAN]).unwrap_err();
    assert!(matches!(e, OnnxError::Input(_)), "{e}");
    assert!(Vad::open(
        &common::model("silero_vad_16k.onnx"),
        VadConfig {
            threshold: 0.2,
            neg_threshold: 0.5,
            ..Default::default()
        }
    )
    .is_err());

    let missing = common::root().join(".cache/models/no_such_vad.onnx");
    let e = Vad::open(&missing, VadConfig::default()).unwrap_err();
    println!("missing: {e}");
    assert!(
        matches!(e, OnnxError::Missing { .. }) && e.to_string().contains("no_such_vad.onnx"),
        "{e}"
    );

    let bad = common::scratch("corrupt_vad.onnx");
    std::fs::write(&bad, b"this is not an ONNX protobuf at all \x00\x01\x02").unwrap();
    let e = Vad::open(&bad, VadConfig::default()).unwrap_err();
    println!("corrupt: {e}");
    assert!(
        matches!(e, OnnxError::NotOnnx { .. }) && e.to_string().contains("corrupt_vad.onnx"),
        "{e}"
    );

    let real = std::fs::read(common::model("silero_vad_16k.onnx")).unwrap();
    std::fs::write(&bad, &real[..real.len() / 3]).unwrap();
    let e = Vad::open(&bad, VadConfig::default()).unwrap_err();
    println!("truncated: {e}");
    assert!(e.to_string().contains("corrupt_vad.onnx"), "{e}");

    let e = Vad::open(&common::model("ppocr/det.onnx"), VadConfig::default()).unwrap_err();
    println!("wrong model: {e}");
    assert!(matches!(e, OnnxError::UnexpectedModel { .. }), "{e}");
    std::fs::remove_file(&bad).ok();
}
