//! Qwen2VLImageProcessor's config and its refusals: every bad field is refused naming the file and the field
//! (`size.longest_edge` for a nested one), sizes that would make absurd outputs are refused before anything is
//! allocated, the images the python refuses (aspect ratio over 200) are refused, and Qwen2-VL's own older
//! config form (`min_pixels` / `max_pixels`) is read. Also: `smart_resize_pixels` against transformers' python
//! (tests/data/smart_resize_qwen2_vl.tsv, written by tests/data/gen_smart_resize_qwen2_vl.py from the reference
//! source: 8649 sizes, factors and bounds, 954 of them refused).

use flint_media::qwen2_vl::{preprocess_named, Qwen2VlConfig};
use flint_media::{smart_resize_pixels, MediaError, RgbImage};
use std::path::Path;

fn parse(json: &str) -> Result<Qwen2VlConfig, MediaError> {
    Qwen2VlConfig::from_json(Path::new("qwen/preprocessor_config.json"), json.as_bytes())
}

/// The field a refused config names (and that the message names the file).
fn field_of(json: &str) -> String {
    let e = parse(json).expect_err(json);
    let s = e.to_string();
    assert!(s.contains("qwen/preprocessor_config.json"), "{s}");
    match e {
        MediaError::Config { field, .. } => {
            assert!(s.contains(&format!("`{field}`")), "{s}");
            field
        }
        other => panic!("{json}: not a config error: {other}"),
    }
}

#[test]
fn bad_fields_are_named() {
    for (json, field) in [
        (r#"{"patch_size": "14"}"#, "patch_size"),
        (r#"{"patch_size": 0}"#, "patch_size"),
        (r#"{"patch_size": 14.5}"#, "patch_size"),
        (r#"{"patch_size": 4096}"#, "patch_size"),
        (r#"{"merge_size": 0}"#, "merge_size"),
        (r#"{"merge_size": 17}"#, "merge_size"),
        (r#"{"patch_size": 1000, "merge_size": 2}"#, "merge_size"),
        (r#"{"temporal_patch_size": 0}"#, "temporal_patch_size"),
        (r#"{"temporal_patch_size": 1000000}"#, "temporal_patch_size"),
        (r#"{"size": 5}"#, "size"),
        (
            r#"{"size": {"shortest_edge": 3136, "longest_edge": 0}}"#,
            "size.longest_edge",
        ),
        (
            r#"{"size": {"shortest_edge": 3136, "longest_edge": 1e12}}"#,
            "size.longest_edge",
        ),
        (
            r#"{"size": {"shortest_edge": 3136, "longest_edge": 99999999999}}"#,
            "size.longest_edge",
        ),
        (
            r#"{"size": {"shortest_edge": -1, "longest_edge": 1003520}}"#,
            "size.shortest_edge",
        ),
        (
            r#"{"size": {"longest_edge": 1003520}}"#,
            "size.shortest_edge",
        ),
        (r#"{"size": {"shortest_edge": 3136}}"#, "size.longest_edge"),
        (
            r#"{"size": {"height": 224, "width": 224}}"#,
            "size.shortest_edge",
        ),
        (r#"{"max_pixels": 18446744073709551615}"#, "max_pixels"),
        (r#"{"min_pixels": "3136"}"#, "min_pixels"),
        (r#"{"resample": 2}"#, "resample"),
        (r#"{"resample": 0}"#, "resample"),
        (r#"{"resample": 9}"#, "resample"),
        (r#"{"image_std": [0.5, 0, 0.5]}"#, "image_std"),
        (r#"{"image_std": [0.5, 0.5, 1e300]}"#, "image_std"),
        (r#"{"image_mean": [0.5, 0.5]}"#, "image_mean"),
        (r#"{"image_mean": "clip"}"#, "image_mean"),
        (r#"{"rescale_factor": 0}"#, "rescale_factor"),
        (r#"{"rescale_factor": -0.5}"#, "rescale_factor"),
        (r#"{"do_resize": "yes"}"#, "do_resize"),
        (r#"{"do_normalize": 1}"#, "do_normalize"),
        (r#"{"do_convert_rgb": false}"#, "do_convert_rgb"),
        (
            r#"{"image_processor_type": "SiglipImageProcessor"}"#,
            "image_processor_type",
        ),
        (r#"[1, 2]"#, "(file)"),
        (r#"{"patch_size": 14"#, "(file)"),
    ] {
        assert_eq!(field_of(json), field, "{json}");
    }
}

#[test]
fn accepted_forms() {
    let d = parse("{}").unwrap();
    assert_eq!(d, Qwen2VlConfig::default());
    assert_eq!((d.min_pixels, d.max_pixels), (3136, 1003520));
    // Qwen2-VL-7B-Instruct's file: top-level min/max_pixels (they win over `size`), the old keys in `size`.
    let hub = parse(
        r#"{"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
            "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2VLProcessor", "size": {"max_pixels": 12845056, "min_pixels": 3136}}"#,
    )
    .unwrap();
    assert_eq!((hub.min_pixels, hub.max_pixels), (3136, 12845056));
    let over =
        parse(r#"{"max_pixels": 50176, "size": {"shortest_edge": 3136, "longest_edge": 1003520}}"#)
            .unwrap();
    assert_eq!((over.min_pixels, over.max_pixels), (3136, 50176));
    let old = parse(r#"{"size": {"min_pixels": 100, "max_pixels": 200000}}"#).unwrap();
    assert_eq!((old.min_pixels, old.max_pixels), (100, 200000));
    // Without do_resize the bounds are not used, so a partial `size` is no error (as in transformers).
    assert!(parse(r#"{"do_resize": false, "size": {"longest_edge": 1000}}"#).is_ok());
    assert_eq!(
        parse(r#"{"resample": 1}"#).unwrap().resample,
        flint_media::Filter::Lanczos3
    );
    assert!(parse(r#"{"image_processor_type": "Qwen2VLImageProcessorFast"}"#).is_ok());
}

fn image(w: usize, h: usize) -> RgbImage {
    RgbImage::new(w, h, vec![77; w * h * 3]).unwrap()
}

fn input_error(cfg: &Qwen2VlConfig, img: &RgbImage) -> String {
    let e = preprocess_named(Path::new("photo.jpg"), img, cfg).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::Input { .. } | MediaError::BadDimensions { .. }
        ),
        "{e}"
    );
    let s = e.to_string();
    assert!(s.contains("photo.jpg"), "{s}");
    s
}

#[test]
fn images_and_sizes_refused_before_allocating() {
    let d = Qwen2VlConfig::default();
    // The python raises for an aspect ratio over 200.
    assert!(input_error(&d, &image(201, 1)).contains("aspect ratio"));
    assert!(preprocess_named(Path::new("ok"), &image(200, 1), &d).is_ok());
    // min_pixels at the cap: the grown image is over the pixel cap, refused before any buffer.
    let huge = Qwen2VlConfig {
        min_pixels: 1 << 26,
        ..d.clone()
    };
    input_error(&huge, &image(1, 1));
    // pixel_values over 2^30 values (2^25 pixels x 3 channels x 16 temporal copies) are refused.
    let many = Qwen2VlConfig {
        min_pixels: 1 << 25,
        max_pixels: 1 << 26,
        temporal_patch_size: 16,
        ..d.clone()
    };
    assert!(input_error(&many, &image(64, 64)).contains("over the cap"));
    // Without do_resize, sides must be multiples of patch_size x merge_size.
    let keep = Qwen2VlConfig {
        do_resize: false,
        ..d.clone()
    };
    assert!(input_error(&keep, &image(57, 56)).contains("multiple"));
    let out = preprocess_named(Path::new("ok"), &image(56, 84), &keep).unwrap();
    assert_eq!((out.grid_thw, out.tokens), ([1, 6, 4], 6));
    // Tiny images grow to min_pixels.
    let out = preprocess_named(Path::new("ok"), &image(3, 2), &d).unwrap();
    assert_eq!(
        (out.resized.height, out.resized.width, out.tokens),
        (56, 84, 6)
    );
}

#[test]
fn smart_resize_pixels_equals_the_python() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smart_resize_qwen2_vl.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut n, mut refused) = (0, 0);
    for line in text.lines().skip(1) {
        let v: Vec<i64> = line.split('\t').map(|s| s.parse().unwrap()).collect();
        let u = |i: usize| v[i] as usize;
        let got = smart_resize_pixels(u(0), u(1), u(2), u(3), u(4));
        let want = (v[5] >= 0).then(|| (u(5), u(6)));
        assert_eq!(got, want, "smart_resize{:?}", &v[..5]);
        n += 1;
        refused += usize::from(want.is_none());
    }
    assert_eq!((n, refused), (8649, 954));
}
