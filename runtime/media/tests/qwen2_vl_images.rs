//! Qwen2VLImageProcessor (torchvision) and Qwen2VLImageProcessorPil on the 12 photos of processors/images, for
//! the three settings (`qwen2_vl_image`, `_max256`, `_max64`), against transformers 5.23 + torchvision 0.29.2 +
//! Pillow 13.0.0. For every run and both backends:
//! - `image_grid_thw`, patch and token counts and the resized size equal the manifest's;
//! - the u8 pixel_values (resize + patchify) and the float pixel_values are bit-identical to the processor's
//!   (their sha256 in the manifest);
//! - the stored runs (`store_plan`): our resized image equals `resized_u8` value for value, our table equals
//!   `norm_lut` wherever the processor used a value, the full float pixel_values rebuilt here from the stored
//!   `norm_lut[c, resized_u8]` with the manifest's layout (written out independently below) hash to the
//!   manifest's sha256, start with `pixel_values_head` and equal ours bit for bit.
//!
//! Also: what the processor does when the two backends disagree (the yardstick) is printed for the stored runs.

mod common;
use common::*;
use flint_media::qwen2_vl::{preprocess_named, resize_image};
use flint_media::{decode_image_file, Backend, Qwen2VlConfig, RgbImage};
use std::path::Path;

/// The u8 image patchified like pixel_values (what `pixel_values_u8_sha256` hashes).
fn patchify_u8(cfg: &Qwen2VlConfig, img: &RgbImage) -> Vec<u8> {
    let c = Qwen2VlConfig {
        do_rescale: false,
        do_normalize: false,
        do_resize: false,
        ..cfg.clone()
    };
    let out = preprocess_named(Path::new("u8"), img, &c).unwrap();
    out.pixel_values.iter().map(|&v| v as u8).collect()
}

/// pixel_values from the manifest's `layout` string, independently of the crate: row `r` is cell
/// (block row, block column, row in block, column in block) in merge-block order; column `j` is
/// channel `j / (T P P)`, temporal copy `(j / (P P)) % T`, y `(j / P) % P`, x `j % P`.
fn rebuild(img: &RgbImage, lut: &[f32], p: usize, m: usize, t: usize) -> Vec<f32> {
    let (gh, gw) = (img.height / p, img.width / p);
    let row = 3 * t * p * p;
    let mut out = vec![0f32; gh * gw * row];
    for (r, dst) in out.chunks_exact_mut(row).enumerate() {
        let (block, within) = (r / (m * m), r % (m * m));
        let (cy, cx) = (
            (block / (gw / m)) * m + within / m,
            (block % (gw / m)) * m + within % m,
        );
        for (j, o) in dst.iter_mut().enumerate() {
            let c = j / (t * p * p);
            let (y, x) = ((j / p) % p, j % p);
            let v = img.data[((cy * p + y) * img.width + cx * p + x) * 3 + c];
            *o = lut[c * 256 + usize::from(v)];
        }
    }
    out
}

fn level_stats(a: &[u8], b: &[u8]) -> (u32, f64) {
    assert_eq!(a.len(), b.len());
    let (mut max, mut n) = (0u32, 0usize);
    for (x, y) in a.iter().zip(b) {
        let d = (i32::from(*x) - i32::from(*y)).unsigned_abs();
        max = max.max(d);
        n += usize::from(d > 0);
    }
    (max, n as f64 / a.len() as f64)
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Torchvision => "torchvision",
        Backend::Pil => "pil",
    }
}

fn u64s(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn run_setting(setting: &str, backend: Backend) {
    let bname = backend_name(backend);
    let dir = processors().join(setting);
    let cfg = Qwen2VlConfig {
        backend,
        ..Qwen2VlConfig::from_file(&dir.join("preprocessor_config.json")).unwrap()
    };
    let man = json(&dir.join("manifest.json"));
    let st = read_st(&dir.join("out.safetensors"));
    let runs = man["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 12, "{setting}: 12 photos");
    let (p, m, t) = (cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size);
    let mut stored_runs = 0;
    for (key, run) in runs {
        let file = processors()
            .join("images")
            .join(run["image"].as_str().unwrap());
        let img = decode_image_file(&file).unwrap();
        assert_eq!(
            [img.width as u64, img.height as u64].to_vec(),
            u64s(&run["image_size_wh"])
        );
        let b = &run["backends"][bname];
        let out = preprocess_named(&file, &img, &cfg).unwrap();
        let grid: Vec<usize> = out.grid_thw.to_vec();
        assert_eq!(
            grid.iter().map(|&v| v as u64).collect::<Vec<_>>(),
            u64s(&b["image_grid_thw"][0]),
            "{setting}/{key}/{bname}: image_grid_thw"
        );
        assert_eq!(out.tokens as u64, b["tokens"].as_u64().unwrap(), "tokens");
        assert_eq!(
            cfg.tokens_for(&file, img.height, img.width).unwrap(),
            out.tokens
        );
        assert_eq!(out.patches() as u64, b["patches"].as_u64().unwrap());
        assert_eq!(
            vec![out.resized.height as u64, out.resized.width as u64],
            u64s(&b["resized_hw"])
        );
        let shape = u64s(&b["pixel_values"][1]);
        assert_eq!(shape, vec![out.patches() as u64, cfg.row_len() as u64]);
        assert_eq!(out.pixel_values.len(), out.patches() * cfg.row_len());

        let resized = resize_image(&cfg, &file, &img).unwrap();
        let u8_sha = sha256_hex(&patchify_u8(&cfg, &resized));
        let f_sha = sha256_hex(&f32_bytes(&out.pixel_values));
        println!(
            "{setting}/{key}/{bname}: {}x{} -> {}x{}: u8 {}, float {}",
            img.width,
            img.height,
            out.resized.width,
            out.resized.height,
            if u8_sha == b["pixel_values_u8_sha256"] {
                "bit-exact"
            } else {
                "DIFFERENT"
            },
            if f_sha == b["pixel_values_sha256"] {
                "bit-exact"
            } else {
                "DIFFERENT"
            },
        );
        assert_eq!(
            u8_sha, b["pixel_values_u8_sha256"],
            "{setting}/{key}/{bname}: u8 pixel_values differ from the processor's (sha256)"
        );
        assert_eq!(
            f_sha, b["pixel_values_sha256"],
            "{setting}/{key}/{bname}: float pixel_values differ from the processor's (sha256)"
        );

        let stem = file.file_stem().unwrap().to_str().unwrap();
        let pre = format!("{stem}.{bname}.");
        let Some(stored) = st.get(&format!("{pre}resized_u8")) else {
            continue;
        };
        stored_runs += 1;
        let g = st[&format!("{pre}image_grid_thw")].i64();
        assert_eq!(
            g,
            grid.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            "stored grid"
        );
        assert_eq!(stored.shape, vec![resized.height, resized.width, 3]);
        let (max, frac) = level_stats(&resized.data, &stored.bytes);
        let y = &run["yardstick_torchvision_vs_pil"]["u8_levels"];
        println!(
            "{setting}/{key}/{bname}: resized u8 vs stored: max {max} levels, {:.4} % differ \
             (torchvision vs PIL: {} levels, {:.4} %)",
            frac * 100.0,
            y["max_abs_diff"],
            y["frac_differing"].as_f64().unwrap() * 100.0
        );
        assert_eq!(max, 0, "{setting}/{key}/{bname}: resized_u8");

        // Our table equals the processor's wherever it used a value.
        let lut = st[&format!("{pre}norm_lut")].f32();
        let ours = cfg.norm_lut();
        let mut used = 0;
        for c in 0..3 {
            for v in 0..256 {
                let r = lut[c * 256 + v];
                if !r.is_nan() {
                    used += 1;
                    assert_eq!(ours[c][v].to_bits(), r.to_bits(), "norm_lut[{c}][{v}]");
                }
            }
        }
        assert!(used > 300, "{used} table entries used");
        // Layout: the stored u8 and table, patchified from the layout string, are the processor's output.
        let stored_img =
            RgbImage::new(resized.width, resized.height, stored.bytes.clone()).unwrap();
        let full = rebuild(&stored_img, &lut, p, m, t);
        assert_eq!(
            sha256_hex(&f32_bytes(&full)),
            b["pixel_values_sha256"],
            "{setting}/{key}/{bname}: rebuilt pixel_values"
        );
        let head = &st[&format!("{pre}pixel_values_head")];
        assert_eq!(head.shape, vec![4, cfg.row_len()]);
        assert_eq!(f32_bytes(&full[..4 * cfg.row_len()]), head.bytes, "head");
        assert_eq!(
            f32_bytes(&out.pixel_values),
            f32_bytes(&full),
            "full pixel_values"
        );
    }
    let planned = man["store_plan"]
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v.as_array().unwrap().iter().any(|b| b == bname))
        .count();
    assert_eq!(
        stored_runs, planned,
        "{setting}/{bname}: stored runs checked"
    );
}

#[test]
fn qwen2_vl_image_torchvision() {
    run_setting("qwen2_vl_image", Backend::Torchvision);
}

#[test]
fn qwen2_vl_image_max256_torchvision() {
    run_setting("qwen2_vl_image_max256", Backend::Torchvision);
}

#[test]
fn qwen2_vl_image_max64_torchvision() {
    run_setting("qwen2_vl_image_max64", Backend::Torchvision);
}

#[test]
fn qwen2_vl_image_pil() {
    run_setting("qwen2_vl_image", Backend::Pil);
}

#[test]
fn qwen2_vl_image_max256_pil() {
    run_setting("qwen2_vl_image_max256", Backend::Pil);
}

#[test]
fn qwen2_vl_image_max64_pil() {
    run_setting("qwen2_vl_image_max64", Backend::Pil);
}
