//! Every class of bad or unusual input the crate reads, each giving either PIL's pixels or a typed error that
//! names the file: image headers of 0x0 and 100000x100000 (refused before any pixel buffer), truncated and
//! corrupt files, other formats, CMYK JPEG, 16-bit PNG, grey and alpha images; WAV files of every sample
//! format, stereo, 0 channels, absurd rates, empty and truncated clips; bad preprocessor configs; bad videos.

mod common;
use common::*;
use flint_media::glimmer::GlimmerImageConfig;
use flint_media::video::{preprocess_video, GlimmerVideoConfig};
use flint_media::{
    decode_image, decode_image_file, extract, read_wav, read_wav_file, MediaError, RgbImage,
    SparkAudioConfig,
};
use std::path::{Path, PathBuf};

fn names_file(e: &MediaError, name: &str) {
    let s = e.to_string();
    assert!(s.contains(name), "error does not name {name}: {s}");
    assert!(e.path().to_string_lossy().contains(name));
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_of(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG whose IHDR claims `w` x `h` (CRC fixed, so only the size is wrong).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = png_of(image::DynamicImage::ImageRgb8(image::RgbImage::new(2, 2)));
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(processors().join("images").join(name)).unwrap()
}

#[test]
fn image_sizes_refused_from_the_header() {
    for (w, h) in [
        (0, 0),
        (0, 5),
        (100_000, 100_000),
        (40_000, 2),
        (20_000, 20_000),
    ] {
        let e = decode_image(Path::new("claims.png"), &png_claiming(w, h)).unwrap_err();
        names_file(&e, "claims.png");
        assert!(
            matches!(
                e,
                MediaError::BadDimensions { .. } | MediaError::Decode { .. }
            ),
            "{w}x{h}: {e}"
        );
    }
    // 100000x100000 is refused by our check (not by an allocation failure).
    let e = decode_image(Path::new("bomb.png"), &png_claiming(100_000, 100_000)).unwrap_err();
    assert!(matches!(e, MediaError::BadDimensions { .. }), "{e}");
    // A JPEG whose SOF0 claims 60000x60000 (the largest a JPEG can say is 65535).
    let mut j = photo_bytes("chelsea_q90.jpg");
    let sof = j
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    j[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let e = decode_image(Path::new("bomb.jpg"), &j).unwrap_err();
    names_file(&e, "bomb.jpg");
    assert!(matches!(e, MediaError::BadDimensions { .. }), "{e}");
}

#[test]
fn truncated_and_corrupt_images() {
    for name in ["coffee.png", "coffee_q90.jpg", "astronaut_640x480_q90.jpg"] {
        let b = photo_bytes(name);
        // (PIL, like the image crate, ignores a cut inside the final IEND chunk: cut before it.)
        for cut in [b.len() / 2, b.len() - 16, 40, 3] {
            let e = decode_image(Path::new(name), &b[..cut]).unwrap_err();
            names_file(&e, name);
        }
    }
    // A PNG with a flipped byte inside its image data (CRC mismatch).
    let mut b = photo_bytes("chelsea.png");
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    names_file(
        &decode_image(Path::new("flipped.png"), &b).unwrap_err(),
        "flipped.png",
    );
    // JPEG markers around random bytes.
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11];
    j.extend((0..400u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    j.extend([0xFF, 0xD9]);
    names_file(
        &decode_image(Path::new("noise.jpg"), &j).unwrap_err(),
        "noise.jpg",
    );
    // Not an image at all, and a format we do not read.
    let e = decode_image(Path::new("notes.txt"), b"hello, world").unwrap_err();
    assert!(matches!(e, MediaError::UnsupportedFormat { .. }));
    names_file(&e, "notes.txt");
    let e = decode_image(
        Path::new("anim.gif"),
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    )
    .unwrap_err();
    assert!(matches!(e, MediaError::UnsupportedFormat { .. }), "{e}");
    // Missing file, and a (sparse) file over the size cap.
    names_file(
        &decode_image_file(Path::new("/nonexistent/missing.png")).unwrap_err(),
        "missing.png",
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.jpg");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(flint_media::limits::MAX_IMAGE_FILE_BYTES + 1)
        .unwrap();
    let e = decode_image_file(&big).unwrap_err();
    assert!(matches!(e, MediaError::TooLarge { .. }));
    names_file(&e, "huge.jpg");
}

#[test]
fn grey_alpha_and_16_bit_pngs_convert_like_pil() {
    let p = Path::new("x.png");
    // Grey: replicated.
    let g = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(x * 40 + y * 7) as u8]));
    let out = decode_image(p, &png_of(g.clone().into())).unwrap();
    assert_eq!(out.pixel(2, 1), [87, 87, 87]);
    // Alpha: composited onto white (PIL alpha_composite), opaque pixels kept, transparent ones white.
    let rgba = image::RgbaImage::from_raw(
        3,
        1,
        vec![10, 20, 30, 255, 10, 20, 30, 0, 100, 50, 200, 128],
    )
    .unwrap();
    let out = decode_image(p, &png_of(rgba.into())).unwrap();
    assert_eq!(out.pixel(0, 0), [10, 20, 30]);
    assert_eq!(out.pixel(1, 0), [255, 255, 255]);
    let want = |c: f64| (c * 128.0 / 255.0 + 255.0 * (127.0 / 255.0)).round();
    for (got, c) in out.pixel(2, 0).iter().zip([100.0, 50.0, 200.0]) {
        assert!(
            (f64::from(*got) - want(c)).abs() <= 1.0,
            "{got} vs {}",
            want(c)
        );
    }
    let la = image::GrayAlphaImage::from_raw(2, 1, vec![0, 0, 0, 255]).unwrap();
    let out = decode_image(p, &png_of(la.into())).unwrap();
    assert_eq!(out.data, vec![255, 255, 255, 0, 0, 0]);
    // 16-bit RGB: the high byte (PIL's RGB;16B).
    let rgb16 =
        image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(1, 1, vec![0x1234u16, 0xFF00, 0x00FF])
            .unwrap();
    let out = decode_image(p, &png_of(image::DynamicImage::ImageRgb16(rgb16))).unwrap();
    assert_eq!(out.data, vec![0x12, 0xFF, 0x00]);
    // 16-bit grey: PIL's I;16 -> RGB clips to 255 instead of scaling.
    let g16 =
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(3, 1, vec![7u16, 255, 40_000]).unwrap();
    let out = decode_image(p, &png_of(image::DynamicImage::ImageLuma16(g16))).unwrap();
    assert_eq!(out.data, vec![7, 7, 7, 255, 255, 255, 255, 255, 255]);
}

fn jpeg_of(space: mozjpeg::ColorSpace, w: usize, h: usize, px: &[u8]) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(w, h);
    c.set_quality(95.0);
    let mut c = c.start_compress(Vec::new()).unwrap();
    c.write_scanlines(px).unwrap();
    c.finish().unwrap()
}

#[test]
fn grey_and_cmyk_jpegs() {
    let p = Path::new("x.jpg");
    let g = jpeg_of(mozjpeg::ColorSpace::JCS_GRAYSCALE, 16, 8, &[90u8; 128]);
    let out = decode_image(p, &g).unwrap();
    assert!(out.data.iter().all(|&v| v.abs_diff(90) <= 1), "grey JPEG");
    assert!(out.data.chunks(3).all(|c| c[0] == c[1] && c[1] == c[2]));
    // CMYK as stored by Photoshop (inverted, which PIL assumes for every CMYK JPEG): raw (0, 255, 255, 255) is
    // full cyan, raw k = 0 black.
    let mut px = Vec::new();
    for i in 0..16 * 8 {
        px.extend(if i % 16 < 8 {
            [0u8, 255, 255, 255]
        } else {
            [255, 255, 255, 0]
        });
    }
    let out = decode_image(p, &jpeg_of(mozjpeg::ColorSpace::JCS_CMYK, 16, 8, &px)).unwrap();
    let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 4);
    assert!(
        close(out.pixel(2, 4), [0, 255, 255]),
        "{:?}",
        out.pixel(2, 4)
    );
    assert!(close(out.pixel(13, 4), [0, 0, 0]), "{:?}", out.pixel(13, 4));
}

fn wav_bytes(
    spec: hound::WavSpec,
    write: impl FnOnce(&mut hound::WavWriter<std::io::Cursor<&mut Vec<u8>>>),
) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut buf), spec).unwrap();
        write(&mut w);
        w.finalize().unwrap();
    }
    buf
}

fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 16000,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

#[test]
fn wav_sample_formats_and_channels() {
    let p = Path::new("clip.wav");
    let b = wav_bytes(spec(1, 8, false), |w| {
        [-128i8, 0, 64]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert_eq!(read_wav(p, &b).unwrap().samples, vec![-1.0, 0.0, 0.5]);
    let b = wav_bytes(spec(1, 16, false), |w| {
        [-32768i16, 16384, 1]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert_eq!(
        read_wav(p, &b).unwrap().samples,
        vec![-1.0, 0.5, 1.0 / 32768.0]
    );
    let b = wav_bytes(spec(1, 24, false), |w| {
        [-8_388_608i32, 4_194_304]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert_eq!(read_wav(p, &b).unwrap().samples, vec![-1.0, 0.5]);
    let b = wav_bytes(spec(1, 32, false), |w| {
        [i32::MIN, 1 << 30]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert_eq!(read_wav(p, &b).unwrap().samples, vec![-1.0, 0.5]);
    let b = wav_bytes(spec(1, 32, true), |w| {
        [0.25f32, -0.75]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert_eq!(read_wav(p, &b).unwrap().samples, vec![0.25, -0.75]);
    // Stereo: the channels are averaged.
    let b = wav_bytes(spec(2, 16, false), |w| {
        [16384i16, 0, -32768, -16384]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    let c = read_wav(p, &b).unwrap();
    assert_eq!(
        (c.samples.clone(), c.source_channels),
        (vec![0.25, -0.75], 2)
    );
}

#[test]
fn bad_wavs_name_the_file() {
    let good = wav_bytes(spec(1, 16, false), |w| {
        (0..100i16).for_each(|s| w.write_sample(s).unwrap())
    });
    let check = |b: &[u8], name: &str| {
        let e = read_wav(Path::new(name), b).unwrap_err();
        names_file(&e, name);
        e.to_string()
    };
    let mut zero_ch = good.clone();
    zero_ch[22..24].copy_from_slice(&0u16.to_le_bytes());
    check(&zero_ch, "zero_channels.wav");
    let mut many_ch = good.clone();
    many_ch[22..24].copy_from_slice(&1000u16.to_le_bytes());
    check(&many_ch, "many_channels.wav");
    for (rate, name) in [(5u32, "slow.wav"), (4_000_000_000, "fast.wav")] {
        let mut b = good.clone();
        b[24..28].copy_from_slice(&rate.to_le_bytes());
        let s = check(&b, name);
        assert!(s.contains("rate") || s.contains("WAV"), "{s}");
    }
    let empty = wav_bytes(spec(1, 16, false), |_| {});
    assert!(check(&empty, "empty.wav").contains("empty"));
    let s = check(&good[..good.len() - 51], "cut.wav");
    assert!(s.contains("truncated"), "{s}");
    check(&good[..30], "header_only.wav");
    check(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "junk.wav");
    names_file(
        &read_wav_file(Path::new("/nonexistent/missing.wav")).unwrap_err(),
        "missing.wav",
    );
    // NaN / infinite float samples (the FFT resampler would panic on them).
    let nan = wav_bytes(spec(1, 32, true), |w| {
        [0.5f32, f32::NAN, f32::INFINITY]
            .iter()
            .for_each(|&s| w.write_sample(s).unwrap())
    });
    assert!(check(&nan, "nan.wav").contains("NaN"));
    assert!(
        flint_media::resample::resample(Path::new("nan"), &[0.1, f32::NAN], 22050, 24000).is_err()
    );
    // The extractor refuses an empty clip too.
    let e = extract(&SparkAudioConfig::default(), Path::new("mic"), &[&[]]).unwrap_err();
    names_file(&e, "mic");
}

fn config_error(json: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p: PathBuf = dir.path().join("preprocessor_config.json");
    std::fs::write(&p, json).unwrap();
    let e = GlimmerImageConfig::from_file(&p).unwrap_err();
    names_file(&e, "preprocessor_config.json");
    e.to_string()
}

#[test]
fn bad_configs_name_file_and_field() {
    assert!(config_error(r#"{"patch_size": "14"}"#).contains("`patch_size`"));
    assert!(config_error(r#"{"patch_size": 0}"#).contains("`patch_size`"));
    assert!(config_error(r#"{"max_image_tokens": 1e12}"#).contains("`max_image_tokens`"));
    assert!(config_error(r#"{"max_image_tokens": 99999999999}"#).contains("`max_image_tokens`"));
    assert!(config_error(r#"{"resample": 3}"#).contains("`resample`"));
    assert!(config_error(r#"{"image_std": [0.5, 0, 0.5]}"#).contains("`image_std`"));
    assert!(config_error(r#"{"image_mean": [0.5, 0.5]}"#).contains("`image_mean`"));
    assert!(
        config_error(r#"{"image_processor_type": "SiglipImageProcessor"}"#)
            .contains("`image_processor_type`")
    );
    assert!(config_error(r#"[1, 2]"#).contains("not a JSON object"));
    assert!(config_error(r#"{"patch_size": 14"#).contains("not valid JSON"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("spark_config.json");
    std::fs::write(&p, r#"{"samples_per_token": 0, "sampling_rate": 24000}"#).unwrap();
    assert!(SparkAudioConfig::from_file(&p)
        .unwrap_err()
        .to_string()
        .contains("`samples_per_token`"));
    std::fs::write(&p, r#"{"sampling_rate": 10}"#).unwrap();
    assert!(SparkAudioConfig::from_file(&p)
        .unwrap_err()
        .to_string()
        .contains("`sampling_rate`"));
    let v = dir.path().join("video_preprocessor_config.json");
    std::fs::write(&v, r#"{"frame_timestamp_format": "{frame}"}"#).unwrap();
    assert!(GlimmerVideoConfig::from_file(&v)
        .unwrap_err()
        .to_string()
        .contains("`frame_timestamp_format`"));
}

#[test]
fn bad_videos() {
    let cfg = GlimmerVideoConfig::default_video();
    let p = Path::new("cam0");
    names_file(
        &preprocess_video(&cfg, p, &[], Some(30.0)).unwrap_err(),
        "cam0",
    );
    let a = RgbImage::new(4, 4, vec![0; 48]).unwrap();
    let b = RgbImage::new(4, 5, vec![0; 60]).unwrap();
    names_file(
        &preprocess_video(&cfg, p, &[a, b], Some(30.0)).unwrap_err(),
        "cam0",
    );
}
