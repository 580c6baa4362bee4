//! MuseGlimmerImageProcessor on the 12 photos of processors/images, for the three settings
//! (`muse_glimmer_image`, `_max256`, `_max64`), against transformers 5.23 + torchvision 0.29.2:
//! - grids, patch and token counts equal the manifest's for every image;
//! - every image (PNG and JPEG): the u8 and the float pixel_values are bit-identical to the processor's (their
//!   sha256 in the manifest);
//! - the stored `resized_u8` runs: our resized image within the manifest's yardstick (PIL vs torchvision
//!   Lanczos: max levels and fraction of values differing), our lut equal to `norm_lut`, `pixel_values_head`
//!   rebuilt bit for bit from the stored u8 through our patchify, and from ours within the level difference.

mod common;
use common::*;
use flint_media::{decode_image_file, preprocess_image, GlimmerImageConfig};

/// The u8 image patchified like pixel_values (what `pixel_values_u8_sha256` hashes).
fn patchify_u8(cfg: &GlimmerImageConfig, img: &flint_media::RgbImage) -> Vec<u8> {
    let c = GlimmerImageConfig {
        do_rescale: false,
        do_normalize: false,
        ..cfg.clone()
    };
    let out = preprocess_image(&c, std::path::Path::new("u8"), img).unwrap();
    out.pixel_values.iter().map(|&v| v as u8).collect()
}

struct Stats {
    max_level: u32,
    frac: f64,
}

fn level_stats(a: &[u8], b: &[u8]) -> Stats {
    assert_eq!(a.len(), b.len());
    let mut max_level = 0;
    let mut n = 0usize;
    for (x, y) in a.iter().zip(b) {
        let d = (i32::from(*x) - i32::from(*y)).unsigned_abs();
        max_level = max_level.max(d);
        n += usize::from(d > 0);
    }
    Stats {
        max_level,
        frac: n as f64 / a.len() as f64,
    }
}

fn run_setting(setting: &str) {
    let dir = processors().join(setting);
    let cfg = GlimmerImageConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    let man = json(&dir.join("manifest.json"));
    let st = read_st(&dir.join("out.safetensors"));
    let runs = man["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 12, "{setting}: 12 photos");
    let (mut png_exact, mut jpeg_exact, mut jpeg_n) = (0, 0, 0);
    for (key, run) in runs {
        let file = processors()
            .join("images")
            .join(run["image"].as_str().unwrap());
        let img = decode_image_file(&file).unwrap();
        let wh = &run["image_size_wh"];
        assert_eq!(
            [img.width as u64, img.height as u64],
            [wh[0].as_u64().unwrap(), wh[1].as_u64().unwrap()]
        );
        let b = &run["backends"]["torchvision"];
        let out = preprocess_image(&cfg, &file, &img).unwrap();
        let grid: Vec<u64> = b["image_grid_thw"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            out.grid_thw.map(|v| v as u64).to_vec(),
            grid,
            "{setting}/{key}: grid"
        );
        assert_eq!(
            out.tokens as u64,
            b["tokens"].as_u64().unwrap(),
            "{setting}/{key}: tokens"
        );
        let patches = b["patches"].as_u64().unwrap() as usize;
        assert_eq!(
            out.pixel_values.len(),
            patches * out.row_len(&cfg),
            "{setting}/{key}: shape"
        );
        let hw = &b["resized_hw"];
        assert_eq!(
            [out.resized.height as u64, out.resized.width as u64],
            [hw[0].as_u64().unwrap(), hw[1].as_u64().unwrap()]
        );

        let u8_same = sha256_hex(&patchify_u8(&cfg, &out.resized))
            == b["pixel_values_u8_sha256"].as_str().unwrap();
        let f_same =
            sha256_hex(&f32_bytes(&out.pixel_values)) == b["pixel_values_sha256"].as_str().unwrap();
        // PNG through the image crate and JPEG through libjpeg-turbo both decode as PIL does, and the resize is
        // torchvision's integer arithmetic: every run is bit-exact.
        assert!(
            u8_same && f_same,
            "{setting}/{key}: pixel_values differ from the processor's (sha256)"
        );
        if file.extension().unwrap() == "png" {
            png_exact += 1;
        } else {
            jpeg_n += 1;
            jpeg_exact += 1;
        }

        let stem = file.file_stem().unwrap().to_str().unwrap();
        let Some(stored) = st.get(&format!("{stem}.torchvision.resized_u8")) else {
            continue;
        };
        assert_eq!(stored.shape, vec![out.resized.height, out.resized.width, 3]);
        let s = level_stats(&out.resized.data, &stored.bytes);
        let y = &run["yardstick_vs_pil_lanczos_resize"]["u8_levels"];
        let (ymax, yfrac) = (
            y["max_abs_diff"].as_f64().unwrap(),
            y["frac_differing"].as_f64().unwrap(),
        );
        println!(
            "{setting}/{key}: resized u8 vs torchvision: max {} levels, {:.4} % of values differ (yardstick {ymax} levels, {:.4} %)",
            s.max_level,
            s.frac * 100.0,
            yfrac * 100.0
        );
        assert!(
            f64::from(s.max_level) <= ymax && s.frac <= yfrac,
            "{setting}/{key}: outside the yardstick"
        );

        // Our normalisation equals the processor's, value for value.
        let lut = st[&format!("{stem}.torchvision.norm_lut")].f32();
        let ours = cfg.norm_lut();
        for c in 0..3 {
            for v in 0..256 {
                let r = lut[c * 256 + v];
                if !r.is_nan() {
                    assert_eq!(ours[c][v].to_bits(), r.to_bits(), "norm_lut[{c}][{v}]");
                }
            }
        }
        // Layout: the stored u8 through our patchify + lut is the processor's head, bit for bit.
        let head = st[&format!("{stem}.torchvision.pixel_values_head")].f32();
        let stored_img =
            flint_media::RgbImage::new(out.resized.width, out.resized.height, stored.bytes.clone())
                .unwrap();
        let no_resize = GlimmerImageConfig {
            do_resize: false,
            ..cfg.clone()
        };
        let rebuilt = preprocess_image(&no_resize, &file, &stored_img).unwrap();
        assert_eq!(
            f32_bytes(&rebuilt.pixel_values[..head.len()]),
            f32_bytes(&head),
            "{setting}/{key}: head layout"
        );
        let step = 1.0 / 127.5 * s.max_level as f32 + 1e-6;
        let worst = out.pixel_values[..head.len()]
            .iter()
            .zip(&head)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= step, "{setting}/{key}: head differs by {worst}");
    }
    println!("{setting}: {png_exact} PNGs bit-exact, {jpeg_exact} of {jpeg_n} JPEGs bit-exact");
}

#[test]
fn muse_glimmer_image_default() {
    run_setting("muse_glimmer_image");
}

#[test]
fn muse_glimmer_image_max256() {
    run_setting("muse_glimmer_image_max256");
}

#[test]
fn muse_glimmer_image_max64() {
    run_setting("muse_glimmer_image_max64");
}
