//! Pillow's resize ([`Backend::Pil`]) with the Lanczos filter, which no HF processor of the fixtures runs as its
//! own backend: `muse_glimmer_image{,_max256,_max64}` record, for each of the 12 photos, how far PIL's
//! `Image.resize(LANCZOS)` to the processor's target is from torchvision's (`yardstick_vs_pil_lanczos_resize`:
//! max, mean and fraction of differing u8 values). Our torchvision Lanczos is bit-exact (glimmer_images), so our
//! PIL Lanczos must reproduce those three numbers exactly. (Bicubic PIL is checked value for value in
//! qwen2_vl_images.)

mod common;
use common::*;
use flint_media::resize::{resize, resize_lanczos};
use flint_media::{decode_image_file, Backend, Filter, GlimmerImageConfig};

fn run_setting(setting: &str) {
    let dir = processors().join(setting);
    let cfg = GlimmerImageConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    let man = json(&dir.join("manifest.json"));
    let runs = man["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 12);
    for (key, run) in runs {
        let file = processors()
            .join("images")
            .join(run["image"].as_str().unwrap());
        let img = decode_image_file(&file).unwrap();
        let (th, tw) = cfg.target_size(img.height, img.width);
        let tv = resize_lanczos(&img, tw, th);
        let pil = resize(&img, tw, th, Filter::Lanczos3, Backend::Pil);
        let (mut max, mut n, mut sum) = (0u32, 0u64, 0u64);
        for (a, b) in tv.data.iter().zip(&pil.data) {
            let d = (i32::from(*a) - i32::from(*b)).unsigned_abs();
            max = max.max(d);
            n += u64::from(d > 0);
            sum += u64::from(d);
        }
        let len = tv.data.len() as f64;
        let y = &run["yardstick_vs_pil_lanczos_resize"]["u8_levels"];
        let (ymax, ymean, yfrac) = (
            y["max_abs_diff"].as_f64().unwrap(),
            y["mean_abs_diff"].as_f64().unwrap(),
            y["frac_differing"].as_f64().unwrap(),
        );
        println!(
            "{setting}/{key}: {}x{} -> {tw}x{th}: ours torchvision vs PIL {max} levels, mean {:.6}, {:.4} % \
             (recorded {ymax}, {ymean:.6}, {:.4} %)",
            img.width,
            img.height,
            sum as f64 / len,
            n as f64 / len * 100.0,
            yfrac * 100.0
        );
        // The recorded stats are over the patchified u8 values: the same multiset of values (each repeated
        // temporal_patch_size times), so the same max, mean and fraction.
        assert_eq!(f64::from(max), ymax, "{setting}/{key}: max");
        assert!(
            (n as f64 / len - yfrac).abs() < 1e-12,
            "{setting}/{key}: fraction"
        );
        assert!(
            (sum as f64 / len - ymean).abs() < 1e-12,
            "{setting}/{key}: mean"
        );
    }
}

#[test]
fn pil_lanczos_default() {
    run_setting("muse_glimmer_image");
}

#[test]
fn pil_lanczos_max256() {
    run_setting("muse_glimmer_image_max256");
}

#[test]
fn pil_lanczos_max64() {
    run_setting("muse_glimmer_image_max64");
}
