//! The microphone loop against the PCM seam: EPIPE overruns recovered, downmix and resampling, device loss.

use flint_sensors::{Backoff, Mic, MicConfig, MicEvent, Overflow, PcmStep, ScriptedPcm};
use std::time::{Duration, Instant};

fn cfg() -> MicConfig {
    MicConfig {
        ring_samples: 1 << 20,
        overflow: Overflow::DropNewest,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        ..MicConfig::default()
    }
}

fn read_until(mic: &mut Mic, n: usize) -> Vec<f32> {
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while out.len() < n && Instant::now() < end {
        if mic.read(&mut out) == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    out
}

fn ramp(n: usize, start: i32) -> Vec<i16> {
    (0..n)
        .map(|i| ((start + i as i32) % 30000) as i16)
        .collect()
}

#[test]
fn epipe_is_recovered_and_capture_continues() {
    let mut pcm = ScriptedPcm::new("hw:9,0", 16_000, 1);
    pcm.steps.extend([
        PcmStep::Samples(ramp(320, 0)),
        PcmStep::Error(libc::EPIPE),
        PcmStep::Samples(ramp(320, 320)),
        PcmStep::Error(libc::EAGAIN),
        PcmStep::Error(libc::EPIPE),
        PcmStep::Samples(ramp(640, 640)),
    ]);
    let mut mic = Mic::start_with(Box::new(pcm), cfg()).unwrap();
    let got = read_until(&mut mic, 1280);
    let want: Vec<f32> = ramp(1280, 0)
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    assert_eq!(got, want);
    let events: Vec<MicEvent> = mic.events().try_iter().collect();
    let overruns = events
        .iter()
        .filter(|e| matches!(e, MicEvent::Overrun { device } if device == "hw:9,0"))
        .count();
    assert_eq!(overruns, 2, "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, MicEvent::Lost { .. })),
        "{events:?}"
    );
    assert_eq!(mic.position(), 1280);
}

#[test]
fn enodev_reopen() {
    let mut pcm = ScriptedPcm::new("hw:2,0", 16_000, 1);
    pcm.steps.extend([
        PcmStep::Samples(ramp(320, 0)),
        PcmStep::Unplug {
            errno: libc::ENODEV,
            reopen_failures: 2,
        },
        PcmStep::Samples(ramp(320, 320)),
    ]);
    let mut mic = Mic::start_with(Box::new(pcm), cfg()).unwrap();
    let got = read_until(&mut mic, 640);
    assert_eq!(got.len(), 640);
    let events: Vec<String> = mic.events().try_iter().map(|e| format!("{e:?}")).collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.split([' ', '{']).next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["Opened", "Lost", "Opened", "Back"],
        "{events:?}"
    );
}

#[test]
fn stereo_48k_is_downmixed_and_resampled() {
    let mut pcm = ScriptedPcm::new("hw:1,0", 48_000, 2);
    // 1 s of a 440 Hz tone, left and right at half amplitude each side of zero... both equal here.
    let tone: Vec<i16> = (0..48_000)
        .flat_map(|i| {
            let v = ((i as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin() * 16000.0) as i16;
            [v, v / 2]
        })
        .collect();
    for c in tone.chunks(960 * 2) {
        pcm.steps.push_back(PcmStep::Samples(c.to_vec()));
    }
    let mut mic = Mic::start_with(
        Box::new(pcm),
        MicConfig {
            period_frames: 960,
            ..cfg()
        },
    )
    .unwrap();
    assert_eq!(mic.format().rate, 48_000);
    let got = read_until(&mut mic, 15_000);
    assert!(got.len() >= 15_000, "{}", got.len());
    // Compare with the expected 16 kHz tone (amplitude (1 + 0.5) / 2 of 16000) away from the edges.
    let amp = 0.75 * 16000.0 / 32768.0;
    let mut err = 0f64;
    for (k, &v) in got.iter().enumerate().take(14_000).skip(1000) {
        let want = (k as f64 * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * amp;
        err = err.max((f64::from(v) - want).abs());
    }
    assert!(err < 0.01, "max error {err}");
}

#[test]
fn ring_is_bounded() {
    let mut pcm = ScriptedPcm::new("hw:0,0", 16_000, 1);
    for i in 0..10 {
        pcm.steps.push_back(PcmStep::Samples(ramp(320, i * 320)));
    }
    let mut mic = Mic::start_with(
        Box::new(pcm),
        MicConfig {
            ring_samples: 1000,
            overflow: Overflow::DropOldest,
            ..cfg()
        },
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while mic.dropped() < 2200 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = Vec::new();
    assert_eq!(mic.read(&mut out), 1000);
    let want: Vec<f32> = ramp(3200, 0)[2200..]
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    assert_eq!(out, want, "the newest 1000 samples are kept");
    assert_eq!(mic.dropped(), 2200);
    assert!(mic
        .events()
        .try_iter()
        .any(|e| matches!(e, MicEvent::Dropped { .. })));
}

#[test]
fn failed_recovery_is_a_loss() {
    let mut pcm = ScriptedPcm::new("hw:3,0", 16_000, 1);
    pcm.recover_ok = false;
    pcm.steps
        .extend([PcmStep::Error(libc::EPIPE), PcmStep::Samples(ramp(320, 0))]);
    let mut mic = Mic::start_with(Box::new(pcm), cfg()).unwrap();
    assert_eq!(read_until(&mut mic, 320).len(), 320);
    let kinds: Vec<String> = mic
        .events()
        .try_iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, vec!["Opened", "Overrun", "Lost", "Opened", "Back"]);
}
