//! `flint overlay` and `flint run --overlay` at the CLI: a recorded answer's boxes drawn onto a real photo (the box
//! colour on its outline, the photo untouched inside), and refusals that name the option or file.

use flint_tests::muse::muse_spark_with_processors;
use flint_tests::{fixtures, run_bin};

fn rgb(path: &std::path::Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn draws_a_recorded_answer_onto_the_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = fixtures().join("processors/images/coffee.png");
    let out = tmp.path().join("o.png");
    // Qwen2.5-VL's absolute pixels of the resized image (here resized to twice the photo's 600x400).
    let answer = r#"```json
[{"bbox_2d": [200, 160, 1000, 640], "label": "cup"}]
```"#;
    let o = run_bin(
        "flint",
        &[
            "overlay",
            "--image",
            photo.to_str().unwrap(),
            "--box-format",
            "qwen2.5-vl",
            "--resized",
            "1200x800",
            "-t",
            answer,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 box(es)") && err.contains("cup"), "{err}");
    let (src, got) = (rgb(&photo), rgb(&out));
    assert_eq!(got.dimensions(), src.dimensions());
    // The box is x 100..500, y 80..320 in the photo: its outline is red, its inside and outside are the photo.
    let red = image::Rgb([255, 40, 40]);
    for (x, y) in [(100, 200), (499, 200), (300, 80), (300, 319), (101, 250)] {
        assert_eq!(*got.get_pixel(x, y), red, "outline at ({x}, {y})");
    }
    for (x, y) in [(300, 200), (50, 50), (550, 380)] {
        assert_eq!(
            got.get_pixel(x, y),
            src.get_pixel(x, y),
            "untouched at ({x}, {y})"
        );
    }
}

#[test]
fn refusals_name_the_option_or_file() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = fixtures().join("processors/images/coffee.png");
    let (p, out) = (photo.to_str().unwrap(), tmp.path().join("o.png"));
    let o_ = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--image", p, "--box-format", "yolo", "-t", "x", "-o", o_],
            "--box-format",
        ),
        (
            vec![
                "--image",
                p,
                "--box-format",
                "qwen3-vl",
                "--resized",
                "0x5",
                "-t",
                "x",
                "-o",
                o_,
            ],
            "--resized",
        ),
        (
            vec![
                "--image",
                "/nonexistent.png",
                "--box-format",
                "qwen3-vl",
                "-t",
                "x",
                "-o",
                o_,
            ],
            "/nonexistent.png",
        ),
        (
            vec!["--image", p, "--box-format", "qwen3-vl", "-o", o_],
            "--text",
        ),
    ] {
        let mut a = vec!["overlay"];
        a.extend(args);
        let o = run_bin("flint", &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{a:?}: {err}");
        assert!(!out.exists());
    }
}

/// `flint run --overlay` on the tiny Muse Spark: its random answer has no boxes, so the PNG is the photo itself;
/// two images are refused.
#[test]
fn run_writes_the_overlay_png() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_with_processors(tmp.path());
    let photo = fixtures().join("processors/images/coffee.png");
    let out = tmp.path().join("o.png");
    let (m, p, o_) = (
        model.to_str().unwrap(),
        photo.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let o = run_bin(
        "flint",
        &[
            "run",
            "-m",
            m,
            "--chat",
            "--image",
            p,
            "-p",
            "Where?",
            "-n",
            "4",
            "--overlay",
            o_,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("in the qwen3-vl format"), "{err}");
    assert_eq!(rgb(&out), rgb(&photo));
    let o = run_bin(
        "flint",
        &[
            "run",
            "-m",
            m,
            "--image",
            p,
            "--image",
            p,
            "-p",
            "x",
            "--overlay",
            o_,
        ],
    );
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--overlay"));
}
