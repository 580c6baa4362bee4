//! Hostile and corrupt model folders: every one gives a clear error naming the file and the field or variable,
//! and nothing panics. The files are small synthetic CTranslate2 `model.bin`s written to a temporary folder.

use flint_asr::reader::ModelBin;
use flint_asr::{AsrError, Whisper};
use std::path::PathBuf;

/// A variable to serialize: name, shape, dtype id, payload.
struct Var(&'static str, Vec<u32>, u8, Vec<u8>);

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Serializes like CTranslate2's `ModelSpec._serialize` (binary version 6).
fn model_bin(vars: &[Var], aliases: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, "WhisperSpec");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for Var(name, shape, dtype, data) in vars {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.push(*dtype);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    out
}

fn f16s(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
        .collect()
}

/// A small valid file: an f16 matrix, an f32 vector, an int16 scalar and an alias.
fn sample() -> Vec<u8> {
    model_bin(
        &[
            Var("encoder/num_heads", vec![], 2, 6i16.to_le_bytes().to_vec()),
            Var("m", vec![2, 3], 4, f16s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])),
            Var(
                "v",
                vec![2],
                0,
                [0.5f32, -1.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
        ],
        &[("alias_of_m", "m")],
    )
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "flint-asr-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_bytes(dir: &TempDir, bytes: &[u8]) -> Result<ModelBin, AsrError> {
    ModelBin::open(&dir.write("model.bin", bytes))
}

#[test]
fn reads_a_valid_file() {
    let dir = TempDir::new("valid");
    let m = open_bytes(&dir, &sample()).unwrap();
    assert_eq!(
        (m.version, m.spec.as_str(), m.revision),
        (6, "WhisperSpec", 3)
    );
    assert_eq!(m.int("encoder/num_heads").unwrap(), 6);
    assert_eq!(
        m.floats("m", &[2, 3]).unwrap(),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]
    );
    assert_eq!(m.floats("alias_of_m", &[2, 3]).unwrap()[5], 6.5);
    assert_eq!(m.floats("v", &[2]).unwrap(), [0.5, -1.0]);
    let e = m.floats("m", &[3, 2]).unwrap_err().to_string();
    assert!(e.contains("`m`") && e.contains("[2, 3]"), "{e}");
    let e = m.floats("nope", &[1]).unwrap_err().to_string();
    assert!(
        e.contains("`nope`") && e.contains("missing") && e.contains("model.bin"),
        "{e}"
    );
}

#[test]
fn truncated_at_every_length_is_an_error() {
    let dir = TempDir::new("trunc");
    let full = sample();
    for n in 0..full.len() {
        let e = open_bytes(&dir, &full[..n]).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, AsrError::Format { .. }), "{n}: {s}");
        assert!(s.contains("model.bin"), "{s}");
    }
    let mut long = full.clone();
    long.push(0);
    let e = open_bytes(&dir, &long).unwrap_err().to_string();
    assert!(e.contains("trailing"), "{e}");
}

#[test]
fn flipped_bytes_never_panic() {
    let dir = TempDir::new("flip");
    let full = sample();
    for i in 0..full.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = full.clone();
            b[i] ^= x;
            // Payload bytes may flip without harm; header bytes must give an error, never a panic.
            if let Ok(m) = open_bytes(&dir, &b) {
                for name in m.names() {
                    let _ = m.int(name);
                }
            }
        }
    }
    let mut b = full.clone();
    b[0] ^= 0xff;
    let e = open_bytes(&dir, &b).unwrap_err().to_string();
    assert!(e.contains("binary version"), "{e}");
}

#[test]
fn absurd_headers_are_refused_before_allocating() {
    let dir = TempDir::new("absurd");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // A shape whose product overflows / exceeds the file.
        (
            model_bin(
                &[Var("big", vec![u32::MAX, u32::MAX, u32::MAX], 0, vec![])],
                &[],
            ),
            "byte size of variable `big`",
        ),
        // Rank over the limit.
        (
            model_bin(&[Var("r", vec![1; 9], 0, vec![0; 4])], &[]),
            "rank of variable `r`",
        ),
        // Unknown dtype.
        (
            model_bin(&[Var("t", vec![1], 9, vec![0])], &[]),
            "unknown dtype id 9",
        ),
        // Size not matching the shape.
        (
            model_bin(&[Var("s", vec![3], 0, vec![0; 8])], &[]),
            "needs 12",
        ),
        // Alias to nothing.
        (
            model_bin(&[Var("a", vec![1], 0, vec![0; 4])], &[("b", "zz")]),
            "`zz`",
        ),
        // Duplicate names.
        (
            model_bin(
                &[
                    Var("d", vec![1], 0, vec![0; 4]),
                    Var("d", vec![1], 0, vec![0; 4]),
                ],
                &[],
            ),
            "second variable",
        ),
    ];
    for (bytes, want) in cases {
        let e = open_bytes(&dir, &bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
    // A variable count of 2^32 - 1 in a small file.
    let mut b = sample();
    let at = 4 + 2 + "WhisperSpec".len() + 1 + 4;
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = open_bytes(&dir, &b).unwrap_err().to_string();
    assert!(e.contains("variable count"), "{e}");
}

#[test]
fn whisper_open_names_what_is_missing() {
    let dir = TempDir::new("open");
    // No config.json.
    dir.write("model.bin", &sample());
    let e = Whisper::open(&dir.0).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    // A config that is not JSON.
    dir.write("config.json", b"{not json");
    let e = Whisper::open(&dir.0).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("not JSON"), "{e}");
    // A valid file that is not a whole Whisper: the first missing variable is named.
    dir.write("config.json", b"{}");
    let e = Whisper::open(&dir.0).unwrap_err().to_string();
    assert!(
        e.contains("encoder/conv1/weight") && e.contains("missing"),
        "{e}"
    );
    // No model.bin at all.
    std::fs::remove_file(dir.0.join("model.bin")).unwrap();
    let e = Whisper::open(&dir.0).unwrap_err().to_string();
    assert!(e.contains("model.bin"), "{e}");
}
