//! Real ALSA capture (alsa-lib's own code path) from a raw file through the `file` plugin, as there is no sound
//! card here. ALSA reads `ALSA_CONFIG_PATH` at its first open, so the capture runs in a child process (this
//! test binary again, filtered to `child_capture`) with the variable set only there.

use flint_sensors::{AlsaPcm, Mic, MicConfig, Overflow, PcmSource};
use std::path::Path;
use std::time::{Duration, Instant};

const WAV: &str = "/work/shared/fixtures/processors/audio/sign_question_16k.wav";
const CHILD: &str = "FLINT_SENSORS_ALSA_RAW";

fn fixture_samples() -> Vec<i16> {
    hound::WavReader::open(WAV)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn capture_through_the_file_plugin_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("s16le_16k.raw");
    let bytes: Vec<u8> = fixture_samples()
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(&raw, &bytes).unwrap();
    let conf = dir.path().join("extra.conf");
    std::fs::write(
        &conf,
        format!(
            "pcm.!default {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{}\"; format \"raw\" }}\n",
            raw.display()
        ),
    )
    .unwrap();
    let out = child_command()
        .args([
            "--exact",
            "child_capture",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "ALSA_CONFIG_PATH",
            format!("/usr/share/alsa/alsa.conf:{}", conf.display()),
        )
        .env(CHILD, &raw)
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("child: pcm exact") && log.contains("child: mic exact"),
        "{log}"
    );
}

/// This test binary as a command. Cross-tested under qemu-user (an aarch64 build run on an x86_64 host with no
/// binfmt_misc) the child cannot be exec'ed directly: then it is run under `qemu-aarch64-static` too (the
/// emulator passes an x86_64 host's /proc/cpuinfo through or emulates it, so the host arch is read from it
/// only as a hint; `FLINT_SENSORS_CHILD_RUNNER` overrides).
fn child_command() -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::var("FLINT_SENSORS_CHILD_RUNNER")
        .ok()
        .or_else(|| {
            let direct = std::process::Command::new(&exe).arg("--list").output();
            let runs = direct.is_ok_and(|o| o.status.success());
            (cfg!(target_arch = "aarch64")
                && !runs
                && Path::new("/usr/bin/qemu-aarch64-static").exists())
            .then(|| "/usr/bin/qemu-aarch64-static".to_string())
        });
    match runner {
        Some(r) => {
            let mut c = std::process::Command::new(r);
            c.arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    }
}

/// Runs only as the child of the test above.
#[test]
fn child_capture() {
    let Some(raw) = std::env::var_os(CHILD) else {
        return;
    };
    let bytes = std::fs::read(Path::new(&raw)).unwrap();
    let want: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let cfg = MicConfig {
        ring_samples: want.len() + 16_000,
        overflow: Overflow::DropNewest,
        ..MicConfig::default()
    };

    // The seam's real implementation, straight.
    let mut pcm = AlsaPcm::new("default");
    let fmt = pcm.open(&cfg).unwrap();
    assert_eq!((fmt.rate, fmt.channels), (16_000, 1), "{fmt:?}");
    let mut got = Vec::with_capacity(want.len() + 320);
    let mut buf = vec![0i16; fmt.period_frames.max(1)];
    while got.len() < want.len() {
        let n = pcm.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    pcm.close();
    let got_bytes: Vec<u8> = got[..want.len()]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert_eq!(got_bytes, bytes);
    println!("child: pcm exact ({} samples, {fmt:?})", want.len());

    // The whole microphone loop on top of it.
    let mut mic = Mic::start("default", cfg).unwrap();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while out.len() < want.len() && Instant::now() < end {
        if mic.read(&mut out) == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(out.len() >= want.len(), "{} of {}", out.len(), want.len());
    let back: Vec<u8> = out[..want.len()]
        .iter()
        .flat_map(|&x| ((x * 32768.0) as i16).to_le_bytes())
        .collect();
    assert_eq!(back, bytes);
    mic.stop();
    println!("child: mic exact");
}
