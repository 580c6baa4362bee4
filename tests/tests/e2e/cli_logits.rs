//! `flint logits` at its boundary: the .npy it writes holds transformers' logits for the fixture's ids, read back
//! by parsing the file as NumPy would.

use flint_format::DType;
use flint_tests::{fixtures, import, read_npy, read_safetensors, rel_err, run_bin};

#[test]
fn logits_npy_matches_transformers_from_ids_and_ids_file() {
    let dir = fixtures().join("hf/qwen2_moe");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.flint");
    import(&dir.join("model"), &model, DType::F32);
    let io = read_safetensors(&dir.join("io.safetensors"));
    let ids: Vec<String> = io["in.input_ids"]
        .data
        .iter()
        .map(|&v| (v as u32).to_string())
        .collect();
    let ids_file = tmp.path().join("ids.txt");
    std::fs::write(&ids_file, ids.join(" \n")).unwrap();
    let m = model.to_str().unwrap();
    for (i, source) in [
        ["--ids", &ids.join(",")],
        ["--ids-file", ids_file.to_str().unwrap()],
    ]
    .iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("out{i}.npy"));
        let o = run_bin(
            "flint",
            &[
                "logits",
                "-m",
                m,
                "--kv",
                "f32",
                source[0],
                source[1],
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (shape, data) = read_npy(&std::fs::read(&out).unwrap());
        assert_eq!(shape, vec![ids.len(), 512]);
        let e = rel_err(&data, &io["out.logits"].data);
        assert!(e < 1e-4, "npy logits differ by {e:e}");
    }
    let o = run_bin(
        "flint",
        &["logits", "-m", m, "--ids", "1,x,3", "-o", "/dev/null"],
    );
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("`x` is not a token id")
    );
}

/// `-o /dev/null` writes into the device: it must not rename a temp file over it (which, as root, would replace
/// the device node with a regular file).
#[test]
fn output_to_a_device_leaves_the_device_alone() {
    use std::os::unix::fs::FileTypeExt;
    let dir = fixtures().join("hf/llama");
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m.flint");
    import(&dir.join("model"), &m, DType::F32);
    let o = run_bin(
        "flint",
        &[
            "logits",
            "-m",
            m.to_str().unwrap(),
            "--ids",
            "1,2",
            "-o",
            "/dev/null",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ft = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(ft.is_char_device(), "/dev/null is no longer a device");
}
