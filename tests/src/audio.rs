//! Shared pieces of the audio tower tests (muse_audio.rs, muse_audio_files.rs): the Muse Spark fixture imported
//! with its tower loaded, a collector of the tower's stage rows, and an edited copy of the fixture's config.

use flint_format::{DType, FlintFile};
use flint_model::{AudioStage, AudioTower};
use std::collections::HashMap;

use crate::{fixtures, import, read_safetensors, rel_err, Ref};

/// The fixture imported at f32 into a temp dir, its tower loaded, and its reference tensors.
#[derive(Debug)]
pub struct Fixture {
    /// Holds the imported file.
    pub tmp: tempfile::TempDir,
    pub flint: std::path::PathBuf,
    pub tower: AudioTower,
    pub io: HashMap<String, Ref>,
}

/// Imports hf/muse_spark/model and loads its audio tower.
pub fn fixture() -> Fixture {
    let dir = fixtures().join("hf/muse_spark");
    let tmp = tempfile::tempdir().unwrap();
    let flint = tmp.path().join("m.flint");
    import(&dir.join("model"), &flint, DType::F32);
    let tower = AudioTower::load(&FlintFile::open(&flint).unwrap()).unwrap();
    let io = read_safetensors(&dir.join("io.safetensors"));
    Fixture {
        tmp,
        flint,
        tower,
        io,
    }
}

/// Every stage's rows, concatenated over the chunks they came in, keyed as the fixture's taps
/// (`audio_layer{i}`, `audio_tower`).
#[derive(Default, Debug)]
pub struct Taps(pub HashMap<String, Vec<f32>>);

impl Taps {
    pub fn tap(&mut self) -> impl FnMut(AudioStage, &[f32]) + '_ {
        |s, rows| {
            let key = match s {
                AudioStage::Layer(i) => format!("audio_layer{i}"),
                AudioStage::Tower => "audio_tower".into(),
            };
            self.0.entry(key).or_default().extend_from_slice(rows)
        }
    }
}

/// Asserts `got` is within `tol` of `want` relative to its largest magnitude; returns the error.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let e = rel_err(got, want);
    assert!(e < tol, "{what} differs by {e:e}");
    e
}

/// A copy of the fixture's model folder with its config.json edited by `edit` (the weights linked).
pub fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let src = fixtures().join("hf/muse_spark/model");
    let tmp = tempfile::tempdir().unwrap();
    let raw = std::fs::read(src.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    edit(&mut v);
    std::fs::write(tmp.path().join("config.json"), v.to_string()).unwrap();
    std::os::unix::fs::symlink(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    tmp
}
