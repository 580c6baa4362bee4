//! Media that never touch the disk, at the library boundary (flint-engine), as the glasses loop gives them: a
//! camera frame already decoded, the last second of frames as a video, and speech encoded by the audio tower
//! while it arrives (`Flint::listen`). Each must give the model exactly what the same media as files give it:
//! the same prompt and, greedy, the same answer, on the tiny Muse Spark.

use flint_engine::{Flint, Frames, KvOptions};
use flint_tests::fixtures;
use flint_tests::muse::muse_spark_long;
use std::sync::Arc;

const TOKENS: usize = 12;

/// Runs one turn of `build` on a fresh conversation; returns the answer, the prompt's tokens and the stages.
fn answer(
    flint: &Flint,
    build: impl for<'c, 'f> FnOnce(flint_engine::Turn<'c, 'f>) -> flint_engine::Turn<'c, 'f>,
) -> (String, usize, Vec<String>) {
    let mut chat = flint.chat_with(KvOptions::default());
    let turn = build(chat.turn("What is this?").max_tokens(TOKENS));
    let r = turn.run(|_| {}).unwrap();
    let stages = r
        .stages
        .iter()
        .map(|(s, _, d)| format!("{s}: {d}"))
        .collect();
    (r.answer, r.stats.prompt_tokens, stages)
}

#[test]
fn decoded_frames_and_streamed_audio_equal_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_long(dir.path(), 8192);
    let flint = Flint::open(&model).unwrap();
    assert!(flint.sees() && flint.hears());

    // A photo: as a file, and decoded in memory.
    let photo = fixtures().join("processors/images/astronaut_640x480_q90.jpg");
    let decoded = Arc::new(flint_media::decode_image_file(&photo).unwrap());
    let file = answer(&flint, |t| t.image(&photo));
    let mem = answer(&flint, |t| t.picture("frame at 1200 ms", decoded.clone()));
    assert_eq!(file.0, mem.0, "the same answer");
    assert_eq!(file.1, mem.1, "the same prompt length");
    assert!(file.1 > 15, "the image is in the prompt: {file:?}");

    // Frames of a recording: a folder of <ms>.jpg as a video, and the same frames in memory.
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(rec.join("frames")).unwrap();
    let names = ["astronaut", "coffee", "chelsea"];
    let times = [0u64, 200, 400];
    let mut images = Vec::new();
    for (n, t) in names.iter().zip(times) {
        let src = fixtures().join(format!("processors/images/{n}_640x480_q90.jpg"));
        std::fs::copy(&src, rec.join(format!("frames/{t}.jpg"))).unwrap();
        images.push(flint_media::decode_image_file(&src).unwrap());
    }
    let file = answer(&flint, |t| {
        t.media(flint_engine::MediaFiles {
            video: Some(rec.clone()),
            ..Default::default()
        })
    });
    let mem = answer(&flint, |t| {
        t.frames(Frames {
            name: "the last second".into(),
            times: times.to_vec(),
            images: Arc::new(images),
        })
    });
    assert_eq!(file.0, mem.0, "video: the same answer");
    assert_eq!(file.1, mem.1, "video: the same prompt length");

    // Speech at 16 kHz (2.5 s, the real question of the fixtures): the file, resampled whole, against a stream
    // fed in microphone-sized pieces while the tower encodes it.
    let wav = fixtures().join("processors/audio/sign_question_16k.wav");
    let clip = flint_media::read_wav_file(&wav).unwrap();
    assert_eq!(clip.sample_rate, 16000);
    let file = answer(&flint, |t| t.audio(&wav));
    let mut listener = flint.listen(16000, 1).unwrap();
    let mut during = 0;
    for piece in clip.samples.chunks(512) {
        listener.push(piece).unwrap();
        during = listener.tokens();
    }
    let encoded = listener.finish().unwrap();
    let total = encoded.rows.len() / flint.model().config.hidden_size;
    // 24 kHz at 24 samples a token: 2.5 s are ~2500 tokens, all but the resampler's last chunk and its delay
    // (under two chunks of 6144 output samples) encoded on the way.
    assert!(total > 2000, "{total} audio tokens");
    assert!(
        total - during <= 2 * 6144 / 24,
        "{during} of {total} tokens were encoded while the audio arrived"
    );
    let mem = answer(&flint, |t| t.encoded_audio(encoded.clone()));
    assert_eq!(file.0, mem.0, "audio: the same answer");
    assert_eq!(file.1, mem.1, "audio: the same prompt length");
    assert!(
        mem.2
            .iter()
            .any(|s| s.starts_with("audio encoded while it arrived")),
        "{:?}",
        mem.2
    );

    // A clip of nothing, a sample that is not a number, and frames without their times are errors.
    let empty = flint.listen(16000, 1).unwrap().finish().unwrap_err();
    assert!(format!("{empty:#}").contains("no audio"), "{empty:#}");
    let mut l = flint.listen(16000, 1).unwrap();
    l.push(&[0.0; 100]).unwrap();
    let nan = l.push(&[0.5, f32::NAN]).unwrap_err();
    assert!(
        format!("{nan:#}").contains("microphone") && format!("{nan:#}").contains("sample 101"),
        "{nan:#}"
    );
    let mut chat = flint.chat();
    let bad = chat
        .turn("?")
        .frames(Frames {
            name: "the camera".into(),
            times: vec![0],
            images: Arc::new(Vec::new()),
        })
        .run(|_| {})
        .unwrap_err();
    assert!(format!("{bad:#}").contains("the camera"), "{bad:#}");
}
