//! `flint bridge` end to end through the real binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const FLINT: &str = env!("CARGO_BIN_EXE_flint");
const SAMPLE: &str = include_str!("../../../firmware-bridge/samples/messages.jsonl");

/// The `flint` command, under `FLINT_TEST_RUNNER` (e.g. qemu-user) when the tests themselves run emulated.
fn flint() -> Command {
    let runner = std::env::var("FLINT_TEST_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    match parts.next() {
        Some(r) => {
            let mut c = Command::new(r);
            c.args(parts).arg(FLINT);
            c
        }
        None => Command::new(FLINT),
    }
}

fn run(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut c = flint()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = c.stdin.take().unwrap();
    let data = stdin.to_vec();
    let w = std::thread::spawn(move || {
        let _ = i.write_all(&data);
    });
    let out = c.wait_with_output().unwrap();
    w.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn random(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

#[test]
fn a_megabyte_of_random_bytes_decodes_cleanly() {
    let (code, out, err) = run(&["bridge", "decode"], &random(1, 1 << 20));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.is_empty(),
        "random bytes produced frames: {}",
        String::from_utf8_lossy(&out)
    );
    assert!(err.contains("bytes: 1048576, frames: 0, errors: "), "{err}");
}

#[test]
fn encode_then_decode_gives_the_sample_back() {
    let (code, wire, err) = run(&["bridge", "encode"], SAMPLE.as_bytes());
    assert_eq!(code, 0, "{err}");
    let (code, text, err) = run(&["bridge", "decode", "-"], &wire);
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8(text).unwrap(), SAMPLE);
    assert!(err.contains("errors: 0"), "{err}");
}

#[test]
fn every_frame_surrounded_by_garbage_is_recovered() {
    let mut stream = Vec::new();
    for (i, line) in SAMPLE.lines().enumerate() {
        let (code, wire, err) = run(&["bridge", "encode"], line.as_bytes());
        assert_eq!(code, 0, "{err}");
        stream.extend_from_slice(&random(i as u64 + 7, 50 + 97 * i));
        stream.extend_from_slice(&wire);
    }
    stream.extend_from_slice(&random(99, 3000));
    let (code, text, err) = run(&["bridge", "decode"], &stream);
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8(text).unwrap(), SAMPLE);
    assert!(
        !err.contains("errors: 0 "),
        "garbage should have been counted: {err}"
    );
}

#[test]
fn bad_json_fails_with_the_line_number() {
    let (code, _, err) = run(
        &["bridge", "encode"],
        b"{\"seq\":1,\"type\":\"flow\",\"window\":2}\nnot json\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn send_to_the_simulator_over_a_pty() {
    if std::env::var("FLINT_QEMU_CPU").is_ok() {
        // qemu-user does not translate the serial port's termios ioctls; this runs natively only.
        eprintln!("skipped under qemu-user");
        return;
    }
    let dir = std::env::temp_dir().join(format!("flint-bridge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("tty");
    let png = dir.join("display.png");
    let mut sim = flint()
        .args(["bridge", "sim", "--pty", "--exit-after", "1"])
        .arg("--link")
        .arg(&link)
        .arg("--png")
        .arg(&png)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("/dev/pts/"), "{first}");
    // Only the host's commands; the device's own messages would be answered `unsupported`.
    let cmds: String = SAMPLE
        .lines()
        .filter(|l| {
            ![
                "hello",
                "heartbeat",
                "ack",
                "flow",
                "button",
                "imu",
                "battery",
                "thermal",
                "display_ack",
            ]
            .iter()
            .any(|t| l.contains(&format!("\"type\":\"{t}\"")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, events, err) = run(
        &["bridge", "send", "--device", link.to_str().unwrap()],
        cmds.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let events = String::from_utf8(events).unwrap();
    assert!(
        events.contains("\"type\":\"display_ack\",\"frame\":1"),
        "{events}"
    );
    assert!(events.contains("\"type\":\"battery\""), "{events}");
    let status = sim.wait().unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).unwrap();
}
