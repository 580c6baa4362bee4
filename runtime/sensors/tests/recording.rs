//! Recordings: layout checks, playback order and timing, looping, and the Recorder round trip.

use flint_sensors::{frame_files, Input, OpenOptions, Recorder, Recording, SensorError, Speed};
use std::path::{Path, PathBuf};
use std::time::Instant;

const IMAGES: &str = "/work/shared/fixtures/processors/images";

fn write_wav(path: &Path, rate: u32, channels: u16, frames: usize) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        let v = ((i as f32 * 0.05).sin() * 8000.0) as i16;
        for _ in 0..channels {
            w.write_sample(v).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// A recording of `ms` of 16 kHz audio and frames at the given times (alternating JPEG and PNG photos).
fn make(dir: &Path, ms: usize, frames: &[u64]) {
    std::fs::create_dir_all(dir.join("frames")).unwrap();
    write_wav(&dir.join("audio.wav"), 16_000, 1, ms * 16);
    for (i, t) in frames.iter().enumerate() {
        let (src, ext) = if i % 2 == 0 {
            ("coffee_640x480_q90.jpg", "jpg")
        } else {
            ("chelsea.png", "png")
        };
        std::fs::copy(
            Path::new(IMAGES).join(src),
            dir.join(format!("frames/{t}.{ext}")),
        )
        .unwrap();
    }
}

fn why(e: SensorError) -> (PathBuf, String) {
    let s = e.to_string();
    match e {
        SensorError::Recording { path, .. } | SensorError::Io { path, .. } => (path, s),
        SensorError::Media(m) => (m.path().to_path_buf(), s),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn plays_in_order_with_timestamps() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 100, &[0, 30, 65]);
    let rec = Recording::open(d.path()).unwrap();
    assert_eq!(rec.duration_ms(), 100);
    assert_eq!(rec.frames().len(), 3);
    let got: Vec<Input> = rec.player(Speed::Max, false).map(|r| r.unwrap()).collect();
    let desc: Vec<(char, u64)> = got
        .iter()
        .map(|i| match i {
            Input::Audio { t_ms, samples } => {
                assert_eq!(samples.len(), 320);
                ('a', *t_ms)
            }
            Input::Frame { t_ms, image } => {
                assert!(image.width > 0);
                ('f', *t_ms)
            }
        })
        .collect();
    // Audio chunks are due at their end: [0,20) at 20 (after the frame at 0), [20,40) at 40 (after the one at 30).
    assert_eq!(
        desc,
        vec![
            ('f', 0),
            ('a', 0),
            ('f', 30),
            ('a', 20),
            ('a', 40),
            ('f', 65),
            ('a', 60),
            ('a', 80)
        ]
    );
    let audio: Vec<f32> = got
        .iter()
        .filter_map(|i| match i {
            Input::Audio { samples, .. } => Some(samples.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(audio, rec.audio());
}

#[test]
fn looped_timestamps_keep_increasing() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 60, &[10]);
    let rec = Recording::open(d.path()).unwrap();
    let items: Vec<Input> = rec
        .player(Speed::Max, true)
        .take(12)
        .map(|r| r.unwrap())
        .collect();
    let frames: Vec<u64> = items
        .iter()
        .filter(|i| matches!(i, Input::Frame { .. }))
        .map(Input::t_ms)
        .collect();
    assert_eq!(frames, vec![10, 70, 130]);
    let audio: Vec<u64> = items
        .iter()
        .filter(|i| matches!(i, Input::Audio { .. }))
        .map(Input::t_ms)
        .collect();
    assert_eq!(audio, vec![0, 20, 40, 60, 80, 100, 120, 140, 160]);
}

#[test]
fn real_time_is_paced() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 200, &[0, 150]);
    let rec = Recording::open(d.path()).unwrap();
    let t0 = Instant::now();
    let n = rec.player(Speed::RealTime, false).count();
    let took = t0.elapsed().as_millis();
    assert_eq!(n, 12);
    assert!((195..1500).contains(&took), "{took} ms");
}

#[test]
fn stereo_44k_is_mono_16k() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 0, &[0]);
    write_wav(&d.path().join("audio.wav"), 44_100, 2, 44_100 / 2);
    let rec = Recording::open(d.path()).unwrap();
    assert_eq!(rec.audio().len(), 8000);
    assert_eq!(rec.duration_ms(), 500);
}

#[test]
fn layout_errors_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 40, &[0]);

    std::fs::write(d.path().join("frames/abc.jpg"), b"x").unwrap();
    let (p, s) = why(Recording::open(d.path()).unwrap_err());
    assert!(
        p.ends_with("frames/abc.jpg") && s.contains("not a number"),
        "{s}"
    );
    std::fs::remove_file(d.path().join("frames/abc.jpg")).unwrap();

    std::fs::write(d.path().join("frames/0.png"), b"x").unwrap();
    let (_, s) = why(Recording::open(d.path()).unwrap_err());
    assert!(s.contains("two frames with timestamp 0"), "{s}");
    std::fs::remove_file(d.path().join("frames/0.png")).unwrap();

    // Hidden files (a recorder's temporaries) are skipped.
    std::fs::write(d.path().join("frames/.5.png.tmp"), b"x").unwrap();
    assert_eq!(frame_files(d.path().join("frames")).unwrap().len(), 1);

    let wav = std::fs::read(d.path().join("audio.wav")).unwrap();
    std::fs::write(d.path().join("audio.wav"), &wav[..wav.len() / 2]).unwrap();
    let (p, s) = why(Recording::open(d.path()).unwrap_err());
    assert!(p.ends_with("audio.wav") && s.contains("truncated"), "{s}");

    std::fs::remove_file(d.path().join("audio.wav")).unwrap();
    let (p, s) = why(Recording::open(d.path()).unwrap_err());
    assert!(
        p.ends_with("audio.wav") && s.contains("no audio.wav"),
        "{s}"
    );
}

#[test]
fn no_frames_only_when_allowed() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 40, &[]);
    let (p, s) = why(Recording::open(d.path()).unwrap_err());
    assert!(p.ends_with("frames") && s.contains("no frames"), "{s}");
    std::fs::remove_dir(d.path().join("frames")).unwrap();
    let rec = Recording::open_with(
        d.path(),
        OpenOptions {
            allow_no_frames: true,
        },
    )
    .unwrap();
    assert_eq!(rec.player(Speed::Max, false).count(), 2);
}

#[test]
fn corrupt_jpeg_is_reported_when_played() {
    let d = tempfile::tempdir().unwrap();
    make(d.path(), 40, &[0]);
    let good = std::fs::read(Path::new(IMAGES).join("coffee_640x480_q90.jpg")).unwrap();
    std::fs::write(d.path().join("frames/25.jpg"), &good[..good.len() / 3]).unwrap();
    let rec = Recording::open(d.path()).unwrap();
    let items: Vec<_> = rec.player(Speed::Max, false).collect();
    assert_eq!(items.len(), 4);
    let errs: Vec<_> = items.into_iter().filter_map(Result::err).collect();
    assert_eq!(errs.len(), 1);
    let (p, s) = why(errs.into_iter().next().unwrap());
    assert!(p.ends_with("frames/25.jpg"), "{s}");
}

#[test]
fn recorder_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("rec");
    let img =
        flint_media::decode_image_file(&Path::new(IMAGES).join("chelsea_640x480_q90.jpg")).unwrap();
    let jpeg = std::fs::read(Path::new(IMAGES).join("coffee_640x480_q90.jpg")).unwrap();
    let samples: Vec<f32> = (0..1600)
        .map(|i| ((i % 200) as f32 - 100.0) / 256.0)
        .collect();
    let mut r = Recorder::create(&dir).unwrap();
    r.audio(&samples[..800]).unwrap();
    r.frame(0, &img).unwrap();
    r.frame_jpeg(40, &jpeg).unwrap();
    assert!(r.frame(40, &img).is_err(), "timestamps must increase");
    assert!(r.frame_jpeg(50, b"not a jpeg").is_err());
    r.audio(&samples[800..]).unwrap();
    assert!(
        !dir.join("audio.wav").exists(),
        "audio appears only when finished"
    );
    r.finish().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.join("frames"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        Recorder::create(&dir).is_err(),
        "does not overwrite a recording"
    );

    let rec = Recording::open(&dir).unwrap();
    assert_eq!(rec.audio(), &samples[..]);
    let frames: Vec<_> = rec
        .player(Speed::Max, false)
        .filter_map(|i| match i.unwrap() {
            Input::Frame { t_ms, image } => Some((t_ms, image)),
            _ => None,
        })
        .collect();
    assert_eq!(frames[0], (0, img));
    assert_eq!(frames[1].0, 40);
    assert_eq!(
        frames[1].1,
        flint_media::decode_image(Path::new("x"), &jpeg).unwrap()
    );
}
