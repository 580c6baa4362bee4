//! `flint glasses` end to end, as the README's setup command runs it: the bundled demo recording
//! (scripts/make-demo-recording.sh: scikit-image photos, espeak-ng questions) through the bundled real models
//! (scripts/bundle-models.sh: Qwen2.5-Coder-0.5B q8, Whisper tiny.en, Silero VAD, PP-OCRv4), with the display's
//! frames written as PNG. Each answer must contain the words `questions.json` gives for its question; the OCR
//! question's answer the words of the photographed page. Also: bad recordings get clear errors.
//!
//! x86_64 only (real weights; CI runs the aarch64 suite under qemu, where this would take too long).
#![cfg(target_arch = "x86_64")]

use flint_tests::{bin, bin_command, root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn script(name: &str, args: &[&Path]) {
    let out = Command::new("bash")
        .arg(root().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bundled models and the demo recording, made once per test binary.
fn setup() -> &'static (PathBuf, PathBuf) {
    static ONCE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let models = tmp.join("glasses-models");
        let bin_dir = bin("flint").parent().unwrap().to_path_buf();
        script("bundle-models.sh", &[&bin_dir, &models]);
        let rec = root().join(".cache/demo-recording");
        script("make-demo-recording.sh", &[&rec]);
        (models, rec)
    })
}

fn glasses(args: &[&str]) -> std::process::Output {
    let (models, _) = setup();
    let mut cmd = bin_command("flint", &["glasses"]);
    cmd.arg("--models").arg(models).args(args);
    cmd.output().expect("running flint glasses")
}

/// `flint glasses` on the demo recording as fast as it goes, with JSON events, onto `display`, plus `extra`.
fn on_demo(display: &str, extra: &[&str]) -> std::process::Output {
    let (_, rec) = setup();
    let base = [
        "--recording",
        rec.to_str().unwrap(),
        "--speed",
        "max",
        "--display",
        display,
        "--json",
    ];
    glasses(&[&base[..], extra].concat())
}

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// `flint bridge sim --pty` as a process of its own, with `args` (scheduled `--event`s, `--drop-after`), once its
/// pty link is there; returns it and the link's path (for `--display serial:PATH`).
fn sim_on_pty(dir: &Path, args: &[&str]) -> (std::process::Child, PathBuf) {
    let tty = dir.join("tty");
    let mut sim = bin_command("flint", &[&["bridge", "sim", "--pty"][..], args].concat());
    sim.arg("--link").arg(&tty);
    sim.stdout(std::process::Stdio::null());
    let sim = sim.spawn().expect("starting flint bridge sim");
    let t0 = std::time::Instant::now();
    while !tty.exists() && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (sim, tty)
}

#[test]
fn answers_the_demo_recording_on_the_display() {
    let (_, rec) = setup();
    let frames = tempfile::tempdir().unwrap();
    let display = format!("png:{}", frames.path().display());
    let out = glasses(&[
        "--recording",
        rec.to_str().unwrap(),
        "--speed",
        "max",
        "--display",
        &display,
        "--json",
        "-t",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flint glasses failed: {stderr}");
    let ev = events(&out.stdout);
    let of = |kind: &str| -> Vec<&Value> { ev.iter().filter(|e| e["event"] == kind).collect() };
    let questions: Value =
        serde_json::from_slice(&std::fs::read(rec.join("questions.json")).unwrap()).unwrap();
    let questions = questions["questions"].as_array().unwrap();
    let (transcripts, answers, timings) = (of("transcript"), of("answer"), of("timings"));
    for (e, t) in transcripts.iter().zip(&answers) {
        println!("heard {:?} -> answered {:?}", e["text"], t["text"]);
    }
    for t in &timings {
        println!("timings {t}");
    }
    assert_eq!(
        answers.len(),
        questions.len(),
        "one turn per question: {ev:?}"
    );
    for (i, q) in questions.iter().enumerate() {
        let answer = answers[i]["text"].as_str().unwrap();
        for any_of in q["expect"].as_array().unwrap() {
            let words: Vec<&str> = any_of
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap())
                .collect();
            assert!(
                words.iter().any(|w| answer.contains(w)),
                "question {:?}: the answer {answer:?} has none of {words:?}",
                q["question"]
            );
        }
        // Timings are there and in order.
        let t = timings[i];
        let ms = |k: &str| t[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {t}"));
        assert!(ms("asr_ms") <= ms("encode_done_ms"));
        assert!(ms("encode_done_ms") <= ms("first_token_ms"));
        assert!(ms("first_token_ms") <= ms("first_pixel_ms"));
        assert!(ms("first_pixel_ms") <= ms("answer_done_ms"));
    }
    // The OCR turn read the page's words, with boxes.
    let ocr = of("ocr");
    let page = ocr
        .iter()
        .find(|e| e["turn"] == 2)
        .expect("an ocr event for the page question");
    let words = page["words"].as_array().unwrap();
    assert!(
        words
            .iter()
            .any(|w| w["text"].as_str().unwrap().contains("segmentation")),
        "{words:?}"
    );
    assert!(words
        .iter()
        .all(|w| w["box"].as_array().unwrap().len() == 4));

    // The display's frames: one PNG per present, the last one not blank.
    let mut pngs: Vec<_> = std::fs::read_dir(frames.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    pngs.sort();
    let end = of("end");
    assert_eq!(
        end[0]["display_frames"].as_u64().unwrap() as usize,
        pngs.len()
    );
    let last = image::open(pngs.last().expect("display frames"))
        .unwrap()
        .to_rgb8();
    assert_eq!(last.dimensions(), (640, 480));
    let lit = last
        .pixels()
        .filter(|p| p.0.iter().any(|&c| c > 128))
        .count();
    assert!(
        lit > 500,
        "the last frame shows the answer ({lit} bright pixels)"
    );
}

#[test]
fn bad_recordings_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path();
    // No audio.wav.
    std::fs::create_dir_all(rec.join("frames")).unwrap();
    let out = glasses(&["--recording", rec.to_str().unwrap(), "--speed", "max"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("audio.wav"), "{err}");
    // A truncated WAV.
    let (_, demo) = setup();
    let wav = std::fs::read(demo.join("audio.wav")).unwrap();
    std::fs::write(rec.join("audio.wav"), &wav[..30]).unwrap();
    let out = glasses(&["--recording", rec.to_str().unwrap(), "--speed", "max"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("audio.wav"), "{err}");
    // A frame that is not a JPEG is reported and skipped; the run goes on to the end.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(rec.join("audio.wav"), spec).unwrap();
    for _ in 0..16_000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    std::fs::write(rec.join("frames/0.jpg"), b"not a jpeg at all").unwrap();
    let out = glasses(&[
        "--recording",
        rec.to_str().unwrap(),
        "--speed",
        "max",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let ev = events(&out.stdout);
    assert!(
        ev.iter().any(
            |e| e["event"] == "device" && e["message"].as_str().unwrap_or("").contains("0.jpg")
        ),
        "{ev:?}"
    );
    // A frame name that is not a time.
    std::fs::write(rec.join("frames/soon.jpg"), b"x").unwrap();
    let out = glasses(&["--recording", rec.to_str().unwrap(), "--speed", "max"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("soon.jpg"), "{err}");
    // Video frames for a model that cannot see them.
    let out = glasses(&[
        "--recording",
        demo.to_str().unwrap(),
        "--speed",
        "max",
        "--video",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--video") && err.contains("no vision tower"),
        "{err}"
    );
}

#[test]
fn drives_the_bridge_simulator_over_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let out = on_demo(
        &format!("sim:{}", dir.path().display()),
        &["--turns", "1", "-n", "12"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    // No display faults: every frame was acknowledged by the simulated microcontroller.
    assert!(!ev.iter().any(|e| e["event"] == "device"), "{ev:?}");
    let end = ev.iter().find(|e| e["event"] == "end").unwrap();
    assert!(end["display_frames"].as_u64().unwrap() >= 2, "{end}");
    let png = image::open(dir.path().join("sim.png")).unwrap().to_rgb8();
    assert!(
        png.pixels()
            .filter(|p| p.0.iter().any(|&c| c > 128))
            .count()
            > 200
    );
}

/// The loop on devices behind their seams, scripted with the faults real ones show: the camera unplugged
/// (ENODEV, two failed reopens, then frames again) and a microphone overrun (EPIPE) before the question. The
/// loop says what happened, recovers, and answers.
#[test]
fn recovers_from_an_unplugged_camera_and_a_microphone_overrun() {
    use flint_sensors::{
        CameraConfig, Mode, PcmStep, PixelFormat, ScriptedDevice, ScriptedPcm, Step,
    };
    let (models, rec) = setup();
    // Camera: MJPEG frames of the demo's coffee photo; unplugged after three.
    let jpeg = std::fs::read(rec.join("frames/0.jpg")).unwrap();
    let mode = Mode {
        pixel: PixelFormat::Mjpeg,
        width: 640,
        height: 480,
        fps: vec![15.0],
    };
    let mut cam = ScriptedDevice::new("/dev/video-scripted", vec![mode]);
    cam.interval = std::time::Duration::from_millis(66);
    for _ in 0..3 {
        cam.steps.push_back(Step::Frame(jpeg.clone()));
    }
    cam.steps.push_back(Step::Unplug {
        errno: libc::ENODEV,
        reopen_failures: 2,
    });
    cam.repeat = vec![jpeg];
    // Microphone: 1 s of silence, an overrun, the first question of the demo (16 kHz), 2 s of silence, paced
    // at 20 ms per 320 samples like a real device.
    let clip = flint_media::read_wav_file(&rec.join("audio.wav")).unwrap();
    let speech = flint_media::resample::resample(
        Path::new("audio.wav"),
        &clip.samples,
        clip.sample_rate,
        16_000,
    )
    .unwrap();
    let question = &speech[16_000 * 9 / 10..16_000 * 33 / 10];
    let mut mic = ScriptedPcm::new("scripted-mic", 16_000, 1);
    mic.interval = std::time::Duration::from_millis(20);
    let chunks = |s: &[f32]| -> Vec<PcmStep> {
        s.chunks(320)
            .map(|c| PcmStep::Samples(c.iter().map(|&x| (x * 32767.0) as i16).collect()))
            .collect()
    };
    mic.steps.extend(chunks(&vec![0.0; 16_000]));
    mic.steps.push_back(PcmStep::Error(libc::EPIPE));
    mic.steps.extend(chunks(question));
    mic.steps.extend(chunks(&vec![0.0; 32_000]));

    let inputs = flint_glasses::Inputs::devices_with(
        Some((Box::new(cam), CameraConfig::default())),
        (Box::new(mic), flint_sensors::MicConfig::default()),
    )
    .unwrap();
    let frames = tempfile::tempdir().unwrap();
    let mut opts_models = flint_glasses::ModelPaths::bundled(models);
    opts_models.answer = models.join("answer.flint");
    let opts = flint_glasses::Options {
        models: opts_models,
        source: flint_glasses::Source::Devices {
            camera: None,
            mic: ("scripted-mic".into(), flint_sensors::MicConfig::default()),
        },
        display: flint_glasses::Target::Png {
            dir: frames.path().to_path_buf(),
        },
        geometry: flint_glasses::Geometry {
            width: 640,
            height: 480,
        },
        max_tokens: 24,
        threads: 2,
        encoder_threads: 2,
        mem_budget: None,
        max_turns: Some(1),
        record: None,
        video: false,
        image_tokens: None,
        vad: flint_onnx::VadConfig::default(),
        onnx: flint_onnx::Backend::Tract,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut report =
            flint_glasses::Reporter::new(Box::new(std::io::sink()), true, false).keep();
        let r = flint_glasses::run_with(&opts, Some(inputs), &mut report);
        let _ = tx.send((r.map_err(|e| format!("{e:#}")), report.kept.take().unwrap()));
    });
    let (r, ev) = rx
        .recv_timeout(std::time::Duration::from_secs(180))
        .expect("the loop answered within 3 minutes");
    r.unwrap();
    let messages: Vec<String> = ev
        .iter()
        .filter(|e| e["event"] == "device")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    println!("{messages:#?}");
    let has = |s: &str| messages.iter().any(|m| m.contains(s));
    assert!(has("camera /dev/video-scripted lost"), "{messages:?}");
    assert!(has("camera /dev/video-scripted is back"), "{messages:?}");
    assert!(has("overrun, recovered"), "{messages:?}");
    let answer = ev
        .iter()
        .find(|e| e["event"] == "answer")
        .expect("an answer");
    assert!(
        answer["text"].as_str().unwrap().contains("Paris"),
        "{answer}"
    );
}

/// The glasses' own events through the bridge, from the simulator as a separate process on a pty (`flint bridge
/// sim --event`): the case heats to 75 C while the first answer streams, the wearer presses the button at its
/// third frame, and the cable drops once. The press ends that answer at once; the heat shortens the next answers
/// and says so (the simulator keeps reporting 75 C after the reconnection); the link comes back and the loop
/// keeps answering.
#[test]
fn a_button_stops_the_answer_heat_shortens_the_next_and_a_dropped_link_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, tty) = sim_on_pty(
        dir.path(),
        &[
            "--event",
            r#"1:{"type":"thermal","sensor":0,"centi_celsius":7500}"#,
            "--event",
            r#"3:{"type":"button","id":0,"action":"press","t_ms":0}"#,
            "--drop-after",
            "60",
        ],
    );
    let out = on_demo(
        &format!("serial:{}", tty.display()),
        &["--turns", "3", "-n", "40"],
    );
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let of = |kind: &str, turn: u64| {
        ev.iter()
            .find(|e| e["event"] == kind && e["turn"] == turn)
            .unwrap_or_else(|| panic!("no {kind} event for turn {turn}: {ev:?}"))
    };
    // The press: turn 1's answer ends a few tokens in.
    assert!(of("button", 1)["message"]
        .as_str()
        .unwrap()
        .contains("stopped"));
    assert_eq!(of("answer", 1)["stopped"], true, "{ev:?}");
    let t1 = of("timings", 1)["tokens"].as_u64().unwrap();
    assert!(t1 < 12, "turn 1 went on for {t1} tokens after the press");
    // The heat: reported, and the answers after it get half the tokens (40 -> 20) and one thread.
    let power: Vec<&Value> = ev.iter().filter(|e| e["event"] == "power").collect();
    assert_eq!(power.len(), 1, "{power:?}");
    assert_eq!(power[0]["max_tokens"], 20, "{power:?}");
    assert!(power[0]["message"].as_str().unwrap().contains("75.0 C"));
    for turn in [2, 3] {
        assert_eq!(of("answer", turn)["stopped"], false);
        let t = of("timings", turn)["tokens"].as_u64().unwrap();
        assert!((1..=20).contains(&t), "turn {turn}: {t} tokens");
    }
    // The dropped cable is reported, and the loop kept answering afterwards.
    let notes: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "device")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("reconnected")),
        "the dropped link went unreported: {notes:?}"
    );
    let days = of("answer", 3)["text"].as_str().unwrap().to_lowercase();
    assert!(days.contains("seven") || days.contains('7'), "{days}");
}

/// `--onnx ort`: voice activity and OCR through ONNX Runtime (the PyPI wheel's library, bundled by the setup)
/// give the same turn as tract: the page's title read and quoted. A provider the library lacks is an error that
/// lists what it has.
#[test]
fn onnx_runtime_runs_the_loop_and_names_missing_providers() {
    let (models, _) = setup();
    let lib = models.join("onnxruntime/libonnxruntime.so");
    assert!(
        lib.is_file(),
        "{} missing: bench/fetch_models.sh fetches it",
        lib.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let display = format!("png:{}", dir.path().display());
    let bad = on_demo(
        &display,
        &["--onnx", "ort", "--ep", "rknpu", "--turns", "1"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("RknpuExecutionProvider") && err.contains("CPUExecutionProvider"),
        "{err}"
    );
    let out = on_demo(&display, &["--onnx", "ort", "--turns", "2", "-n", "24"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let start = ev.iter().find(|e| e["event"] == "start").unwrap();
    assert_eq!(start["onnx"], "onnxruntime (cpu)", "{start}");
    let ocr = ev
        .iter()
        .find(|e| e["event"] == "ocr" && e["turn"] == 2)
        .expect("turn 2 read the page");
    let words: Vec<&str> = ocr["words"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["text"].as_str())
        .collect();
    assert_eq!(
        words.first(),
        Some(&"Region-based segmentation"),
        "{words:?}"
    );
    let answer = ev
        .iter()
        .find(|e| e["event"] == "answer" && e["turn"] == 2)
        .unwrap();
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("segmentation"),
        "{answer}"
    );
}

/// The tiny Muse Spark (the fixture's weights with a longer context) as the answer model: it has both towers,
/// so the loop loads no Whisper and no OCR. Its audio tower encodes each question while it is spoken (most of its
/// tokens are done at speech end), its vision tower gets the sharpest frame, prefilled at speech start, and with
/// `--video` the last second of frames. The weights are random: what is checked is what reached the model.
#[test]
fn a_model_with_towers_hears_and_sees_in_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = flint_tests::muse::muse_spark_long(dir.path(), 16384);
    let m = model.to_str().unwrap();
    let (_, rec) = setup();
    let questions: Value =
        serde_json::from_slice(&std::fs::read(rec.join("questions.json")).unwrap()).unwrap();
    let asked = questions["questions"].as_array().unwrap().len();
    for video in [false, true] {
        let frames = dir.path().join(format!("frames-{video}"));
        let display = format!("png:{}", frames.display());
        let mut extra = vec!["-m", m, "-n", "6"];
        if video {
            extra.push("--video");
        }
        let out = on_demo(&display, &extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ev = events(&out.stdout);
        let of = |kind: &str| -> Vec<&Value> { ev.iter().filter(|e| e["event"] == kind).collect() };
        let start = of("start")[0];
        assert_eq!(start["answer_model_hears"], true, "{start}");
        assert_eq!(start["answer_model_sees"], true, "{start}");
        assert!(of("transcript").is_empty(), "no Whisper: {ev:?}");
        assert!(of("ocr").is_empty(), "no OCR: {ev:?}");
        assert_eq!(of("answer").len(), asked, "{ev:?}");
        for a in of("audio") {
            println!("{a}");
            let (tokens, streamed) = (
                a["tokens"].as_u64().unwrap(),
                a["streamed_tokens"].as_u64().unwrap(),
            );
            // 24 samples a token at 24 kHz: a second of speech (and of the detector's hangover) is 1000 tokens;
            // all but the last few hundred (the resampler's last chunk) were encoded while it was spoken.
            let speech = a["speech_ms"].as_u64().unwrap();
            assert!(tokens >= speech && tokens < speech + 1000, "{a}");
            assert!(tokens - streamed <= 512, "{a}");
        }
        assert_eq!(of("audio").len(), asked);
        let vision = of("vision");
        assert_eq!(vision.len(), asked, "{ev:?}");
        for v in &vision {
            println!("{v}");
            if video {
                let n = v["video_frames"].as_u64().unwrap();
                assert!((2..=6).contains(&n), "a second of 5 fps frames: {v}");
            } else {
                assert_eq!(v["size"], serde_json::json!([640, 480]), "{v}");
            }
        }
        if !video {
            // The frame chosen at speech start is the one answered with when the scene held.
            assert!(
                vision
                    .iter()
                    .any(|v| v["frame"] == "prefilled at speech start"),
                "{vision:?}"
            );
            for t in of("timings") {
                assert!(
                    t["prefilled_early"].as_u64().unwrap() > 15,
                    "the frame was prefilled early: {t}"
                );
                assert!(t["asr_ms"].is_null() && t["audio_ms"].is_number(), "{t}");
            }
        }
        let pngs = std::fs::read_dir(&frames).unwrap().count();
        assert!(pngs >= asked, "{pngs} display frames");
    }
}

/// Models over the memory budget: the loop pages an MoE answer model's experts within what the other models leave,
/// and refuses to start, naming the budget's source and why, when even that cannot fit (the mapped weights and KV
/// cache alone exceed the share) or the answer model is dense.
#[test]
fn models_over_the_budget_are_paged_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = flint_tests::muse::muse_spark_long(dir.path(), 16384);
    let frames = dir.path().join("frames");
    let display = format!("png:{}", frames.display());
    // The tiny Muse model is an MoE: the loop tries to page it, and its KV reserve does not fit 2 MiB.
    let out = on_demo(
        &display,
        &["-m", model.to_str().unwrap(), "--mem-budget", "2"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--mem-budget 2")
            && err.contains("paging the answer model's experts cannot fit it")
            && err.contains("KV cache"),
        "{err}"
    );
    // The bundled answer model is dense: nothing to page. A budget below the other models alone says so.
    let size = |f: &str| std::fs::metadata(setup().0.join(f)).unwrap().len() >> 20;
    // (The budget holds the answer model's file but not it with the others, which take about 90 MiB.)
    let budget = (size("answer.flint") + 1).to_string();
    let out = on_demo(&display, &["--mem-budget", &budget]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("--mem-budget {budget}")) && err.contains("dense"),
        "{err}"
    );
    let out = on_demo(&display, &["--mem-budget", "20"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the other models alone take"),
        "{err}"
    );
}

/// Push to talk: a button press while nobody speaks opens a turn (the simulator presses after the first answer's
/// last frame); the speech that follows closes it, and the turn is answered like any other. The case heats up
/// during the first answer: the next frame gets half the image tokens.
#[test]
fn a_button_press_opens_a_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = flint_tests::muse::muse_spark_long(dir.path(), 16384);
    let (mut sim, tty) = sim_on_pty(
        dir.path(),
        &[
            "--event",
            r#"1:{"type":"thermal","sensor":0,"centi_celsius":7500}"#,
            "--event",
            r#"2:{"type":"button","id":0,"action":"press","t_ms":0}"#,
        ],
    );
    // Two tokens: the first answer presents two frames (its first token, then the whole answer).
    let out = on_demo(
        &format!("serial:{}", tty.display()),
        &["-m", model.to_str().unwrap(), "-n", "2", "--turns", "2"],
    );
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let starts: Vec<&Value> = ev.iter().filter(|e| e["event"] == "speech_start").collect();
    assert_eq!(starts.len(), 2, "{ev:?}");
    assert_eq!(starts[0]["by"], "voice");
    assert_eq!(starts[1]["by"], "button", "{ev:?}");
    assert!(ev
        .iter()
        .any(|e| e["event"] == "button" && e["message"] == "press: turn opened"));
    // The press came before the second question: its turn starts earlier than the speech does, and ends
    // when the speech ends.
    let turns: Vec<&Value> = ev.iter().filter(|e| e["event"] == "turn").collect();
    assert_eq!(turns.len(), 2);
    let answers = ev.iter().filter(|e| e["event"] == "answer").count();
    assert_eq!(answers, 2, "{ev:?}");
    let power: Vec<&Value> = ev.iter().filter(|e| e["event"] == "power").collect();
    assert_eq!(power.len(), 1, "{power:?}");
    assert_eq!(
        power[0]["image_tokens"], 7,
        "the fixture's 15 halved: {power:?}"
    );
    let vision: Vec<&Value> = ev.iter().filter(|e| e["event"] == "vision").collect();
    assert_eq!(vision[0]["image_tokens"], 15);
    assert_eq!(vision[1]["image_tokens"], 7, "{vision:?}");
}
