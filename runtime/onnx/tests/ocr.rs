//! PP-OCRv4 through tract against RapidOCR 1.4.4 (tests/data/ocr_refs.json): a rendered sign with known words
//! and a photographed page (scikit-image's page.png).
//!
//! x86_64 only: under qemu the detector alone takes minutes per image, which CI's time limit cannot hold (the
//! VAD tests, small, run on aarch64 too).
#![cfg(target_arch = "x86_64")]

mod common;

use flint_onnx::{Backend, Ocr, OcrWord, OnnxError};
use std::sync::OnceLock;

fn ocr() -> &'static Ocr {
    static OCR: OnceLock<Ocr> = OnceLock::new();
    OCR.get_or_init(|| common::open_ocr(Backend::Tract))
}

struct Ref {
    text: String,
    score: f64,
    quad: Vec<[f64; 2]>,
}

fn refs(image: &str) -> (serde_json::Value, Vec<Ref>) {
    let all = common::json("ocr_refs.json");
    let img = all["images"][image].clone();
    let words = img["rapidocr_default"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| Ref {
            text: w["text"].as_str().unwrap().to_string(),
            score: w["score"].as_f64().unwrap(),
            quad: w["quad"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
                .collect(),
        })
        .collect();
    assert_eq!(
        img["rapidocr_default"], img["rapidocr_no_cls"],
        "{image}: the angle classifier changed RapidOCR's result"
    );
    (img, words)
}

fn run(image: &str) -> Vec<OcrWord> {
    let img = flint_media::decode_image_file(&common::data(image)).unwrap();
    let ocr = ocr();
    // Warm-up, then the timed run.
    ocr.read(&img.data, img.width as u32, img.height as u32)
        .unwrap();
    let (words, t) = ocr
        .read_timed(&img.data, img.width as u32, img.height as u32)
        .unwrap();
    println!(
        "ocr {image} ({}x{}): det {:.1} ms, rec {:.1} ms for {} boxes (1 thread)",
        img.width,
        img.height,
        t.det.as_secs_f64() * 1e3,
        t.rec.as_secs_f64() * 1e3,
        t.boxes
    );
    words
}

/// Largest corner distance (px) and score difference against RapidOCR; texts must be equal.
fn compare(image: &str, got: &[OcrWord], want: &[Ref]) -> (f64, f64) {
    for w in got {
        println!("  tract: {:?} {:.4} {:?}", w.text, w.score, w.quad);
    }
    for w in want {
        println!("  rapid: {:?} {:.4} {:?}", w.text, w.score, w.quad);
    }
    let gt: Vec<&str> = got.iter().map(|w| w.text.as_str()).collect();
    let wt: Vec<&str> = want.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(gt, wt, "{image}: texts differ from RapidOCR's");
    let (mut dq, mut ds) = (0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        for (p, q) in g.quad.iter().zip(&w.quad) {
            dq = dq.max(
                (f64::from(p[0]) - q[0])
                    .abs()
                    .max((f64::from(p[1]) - q[1]).abs()),
            );
        }
        ds = ds.max((f64::from(g.score) - w.score).abs());
    }
    println!("ocr {image}: {} words equal to RapidOCR's; max corner diff {dq} px, max score diff {ds:.2e}", got.len());
    (dq, ds)
}

#[test]
fn rendered_sign_reads_the_known_words() {
    let (img, want) = refs("exit_sign.png");
    let got = run("exit_sign.png");
    let (dq, ds) = compare("exit_sign.png", &got, &want);
    let rendered: Vec<&str> = img["rendered_words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let read: Vec<&str> = got.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(
        read.join(" "),
        rendered.join(" "),
        "the words drawn on the sign"
    );
    assert!(dq <= 3.0, "boxes {dq} px from RapidOCR's");
    assert!(ds < 0.01, "scores {ds} from RapidOCR's");
}

#[test]
fn photographed_page_matches_rapidocr() {
    let (_, want) = refs("page.png");
    let got = run("page.png");
    let (dq, ds) = compare("page.png", &got, &want);
    assert!(dq <= 3.0, "boxes {dq} px from RapidOCR's");
    assert!(ds < 0.02, "scores {ds} from RapidOCR's");
}

#[test]
fn odd_images_do_not_panic() {
    let ocr = ocr();
    for (w, h) in [(1u32, 1u32), (3, 700), (900, 5)] {
        let px = vec![200u8; (w * h * 3) as usize];
        let words = ocr.read(&px, w, h).unwrap();
        assert!(words.iter().all(|x| x.score >= 0.5), "{w}x{h}");
    }
}

#[test]
fn wrong_sizes_and_files_give_clear_errors() {
    let ocr = ocr();
    let e = ocr.read(&[0u8; 100], 10, 10).unwrap_err();
    println!("size mismatch: {e}");
    assert!(
        matches!(e, OnnxError::Input(_)) && e.to_string().contains("300"),
        "{e}"
    );
    assert!(matches!(ocr.read(&[], 0, 0), Err(OnnxError::Input(_))));
    let e = ocr.read(&[0u8; 3], 1, u32::MAX).unwrap_err();
    println!("too large: {e}");
    assert!(matches!(e, OnnxError::Input(_)));

    let det = common::model("ppocr/det.onnx");
    let rec = common::model("ppocr/rec.onnx");
    let bad = common::scratch("corrupt_det.onnx");
    std::fs::write(&bad, b"\x08\x07garbage").unwrap();
    let e = Ocr::open(&bad, &rec).unwrap_err();
    println!("corrupt: {e}");
    assert!(
        matches!(e, OnnxError::NotOnnx { .. }) && e.to_string().contains("corrupt_det.onnx"),
        "{e}"
    );
    std::fs::remove_file(&bad).ok();

    let e = Ocr::open(&det, &det).unwrap_err();
    println!("det as rec: {e}");
    assert!(e.to_string().contains("det.onnx"), "{e}");
    let e = Ocr::open(&det, &common::root().join("nope/rec.onnx")).unwrap_err();
    assert!(
        matches!(e, OnnxError::Missing { .. }) && e.to_string().contains("fetch_models.sh"),
        "{e}"
    );
}
