//! The container at its boundary: write a file, read it back, and feed the reader damaged copies.

use flint_format::{DType, FlintFile, FormatError, Writer};
use std::path::Path;

fn sample(path: &Path) {
    let mut w = Writer::create(path).unwrap();
    w.set_metadata(serde_json::json!({"general.architecture": "llama", "n": 3}));
    let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
    w.add("a", DType::F32, &[2, 3], bytemuck::cast_slice(&a))
        .unwrap();
    w.begin_group().unwrap();
    let h: Vec<half::f16> = (0..64).map(|i| half::f16::from_f32(i as f32)).collect();
    w.add(
        "expert.0.up",
        DType::F16,
        &[2, 32],
        bytemuck::cast_slice(&h),
    )
    .unwrap();
    w.add("expert.0.q", DType::Q8, &[1, 64], &[7u8; 68])
        .unwrap();
    w.end_group();
    w.add("norm", DType::BF16, &[5], &[1u8; 10]).unwrap();
    w.finish().unwrap();
}

#[test]
fn round_trip_zero_copy_views() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.flint");
    sample(&p);
    let f = FlintFile::open(&p).unwrap();
    assert_eq!(f.meta("n"), Some(&serde_json::json!(3)));
    let a = f.tensor("a").unwrap();
    assert_eq!(a.info.shape, vec![2, 3]);
    assert_eq!(a.as_f32().unwrap(), &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    // Zero copy: the view points into the map.
    let base = f.bytes().as_ptr() as usize;
    assert_eq!(a.bytes.as_ptr() as usize - base, a.info.offset);
    let up = f.tensor("expert.0.up").unwrap();
    assert_eq!(up.info.offset % 4096, 0, "a group starts page aligned");
    assert!(up.info.group > 0);
    let q = f.tensor("expert.0.q").unwrap();
    assert_eq!(q.info.group, up.info.group);
    assert_eq!(
        q.info.offset,
        up.info.offset + 128,
        "a group is contiguous (64-byte aligned)"
    );
    assert_eq!(f.tensor("norm").unwrap().info.group, 0);
    for t in f.tensors() {
        assert_eq!(t.offset % 64, 0);
    }
    f.verify().unwrap();
    assert!(matches!(
        f.tensor("nope"),
        Err(FormatError::MissingTensor { .. })
    ));
}

#[test]
fn writer_rejects_bad_shapes_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.flint");
    let mut w = Writer::create(&p).unwrap();
    let e = w
        .add("x", DType::F32, &[2, 2], &[0u8; 12])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`x`") && e.contains("16"), "{e}");
    let e = w
        .add("q", DType::Q4, &[1, 33], &[0u8; 18])
        .unwrap_err()
        .to_string();
    assert!(e.contains("block"), "{e}");
    drop(w);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file removed, nothing at target"
    );
}

#[test]
fn truncated_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.flint");
    sample(&p);
    let full = std::fs::read(&p).unwrap();
    let t = dir.path().join("t.flint");
    let mut cuts: Vec<usize> = (0..200).collect();
    cuts.extend((200..full.len()).step_by(7));
    for cut in cuts {
        std::fs::write(&t, &full[..cut]).unwrap();
        let r = FlintFile::open(&t);
        assert!(
            r.is_err(),
            "truncated at {cut} of {} should not open",
            full.len()
        );
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("t.flint"), "error names the file: {msg}");
    }
}

#[test]
fn flipped_index_bytes_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.flint");
    sample(&p);
    let full = std::fs::read(&p).unwrap();
    let f = FlintFile::open(&p).unwrap();
    let h = *f.header();
    let t = dir.path().join("t.flint");
    let index: Vec<usize> = (0..80).chain(h.meta_off as usize..full.len()).collect();
    for &i in &index {
        for bit in [0x01u8, 0x80, 0xff] {
            let mut b = full.clone();
            b[i] ^= bit;
            std::fs::write(&t, &b).unwrap();
            assert!(
                FlintFile::open(&t).is_err(),
                "flip {bit:#x} at byte {i} went unnoticed"
            );
        }
    }
}

#[test]
fn verify_catches_flipped_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.flint");
    sample(&p);
    let f = FlintFile::open(&p).unwrap();
    let off = f.tensor("expert.0.up").unwrap().info.offset + 5;
    drop(f);
    let mut b = std::fs::read(&p).unwrap();
    b[off] ^= 0x10;
    std::fs::write(&p, &b).unwrap();
    let f = FlintFile::open(&p).unwrap();
    let e = f.verify().unwrap_err().to_string();
    assert!(e.contains("expert.0.up") && e.contains("checksum"), "{e}");
}
