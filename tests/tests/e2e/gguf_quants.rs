//! GGUF block types against llama.cpp's own numpy dequantizer (the `gguf` PyPI package): random blocks of every
//! type Flint imports (with finite f16 scales), dequantized by both, equal within float rounding. x86_64 only (a
//! Python reference).
#![cfg(target_arch = "x86_64")]

use flint_quantize::import::gguf::dequantize;
use flint_tests::{python, root};
use std::process::Command;

/// (name in gguf's GGMLQuantizationType, ggml id, block bytes, byte offsets of the f16 fields in a block).
const TYPES: &[(&str, u32, usize, &[usize])] = &[
    ("Q4_0", 2, 18, &[0]),
    ("Q4_1", 3, 20, &[0, 2]),
    ("Q5_0", 6, 22, &[0]),
    ("Q5_1", 7, 24, &[0, 2]),
    ("Q8_0", 8, 34, &[0]),
    ("Q4_K", 12, 144, &[0, 2]),
    ("Q5_K", 13, 176, &[0, 2]),
    ("Q6_K", 14, 210, &[208]),
];

#[test]
fn every_block_type_matches_the_gguf_package() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut args = vec![root()
        .join("tests/serve/gguf_dequant.py")
        .display()
        .to_string()];
    let mut ours = Vec::new();
    for &(name, id, block, halves) in TYPES {
        let blocks = 64;
        let mut bytes: Vec<u8> = (0..blocks * block).map(|_| next() as u8).collect();
        for b in 0..blocks {
            for &o in halves {
                // A finite scale in about [-2, 2] (sign, exponent 0..15, any mantissa).
                let h = half::f16::from_f32(((next() % 4000) as f32 - 2000.0) / 1000.0);
                bytes[b * block + o..b * block + o + 2].copy_from_slice(&h.to_le_bytes());
            }
        }
        let src = dir.path().join(format!("{name}.bin"));
        let dst = dir.path().join(format!("{name}.f32"));
        std::fs::write(&src, &bytes).unwrap();
        args.extend([
            name.to_string(),
            src.display().to_string(),
            dst.display().to_string(),
        ]);
        ours.push((name, dequantize(id, &bytes).unwrap(), dst));
        // Not whole blocks: refused, not read past.
        assert!(dequantize(id, &bytes[..block - 1]).is_none());
    }
    let o = Command::new(python()).args(&args).output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for (name, got, dst) in ours {
        let want: Vec<f32> = std::fs::read(&dst)
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(got.len(), want.len(), "{name}: value count");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= scale * 1e-6,
            "{name}: differs by {worst} (values up to {scale})"
        );
        println!(
            "{name}: {} values, max |diff| {worst:e} of {scale}",
            got.len()
        );
    }
}

/// qwen2, qwen3 and qwen3moe through GGUF: the HF fixtures written as GGUF by the `gguf` package's writer (llama.cpp's
/// key and tensor names, MoE experts stacked as its converter stacks them), imported, and run: the logits equal
/// transformers' reference within 1e-4 of its largest.
#[test]
fn qwen2_qwen3_and_qwen3moe_from_gguf_match_transformers() {
    use flint_model::{KvDtype, KvOptions, Model};
    for case in ["qwen2", "qwen3", "qwen3_moe"] {
        let dir = tempfile::tempdir().unwrap();
        let fx = flint_tests::fixtures().join("hf").join(case);
        let g = dir.path().join("m.gguf");
        let o = Command::new(python())
            .arg(root().join("tests/serve/hf_to_gguf.py"))
            .arg(fx.join("model"))
            .arg(&g)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = dir.path().join("m.flint");
        flint_tests::import(&g, &out, flint_format::DType::F32);
        let model = Model::open(&out).unwrap();
        assert_eq!(model.config.arch, case);
        let io = flint_tests::read_safetensors(&fx.join("io.safetensors"));
        let ids: Vec<u32> = io["in.input_ids"].data.iter().map(|&v| v as u32).collect();
        let mut cache = model.new_cache_with(KvOptions::with_dtype(KvDtype::F32));
        let logits = model.forward(&ids, &mut cache, true, None).unwrap();
        let e = flint_tests::rel_err(&logits, &io["out.logits"].data);
        assert!(e < 1e-4, "{case} from GGUF: logits differ by {e:e}");
    }
}
