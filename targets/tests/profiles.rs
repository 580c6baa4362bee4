//! The built-in profiles load, and every kind of bad profile is refused with the file and key named.

use flint_targets::{load, load_file, parse, try_list, TargetsError, BUILTIN};

const PI5: &str = include_str!("../boards/raspberry-pi-5.toml");

/// Replaces exactly one occurrence of `from` in the Pi 5 profile.
fn pi5_with(from: &str, to: &str) -> String {
    assert_eq!(
        PI5.matches(from).count(),
        1,
        "test edit `{from}` must hit one place"
    );
    PI5.replacen(from, to, 1)
}

fn parse_err(text: &str) -> TargetsError {
    parse(text, "boards/bad.toml").expect_err("profile should be refused")
}

#[test]
fn builtin_profiles_are_valid_and_named_after_their_files() {
    let all = try_list().expect("every built-in parses");
    assert_eq!(all.len(), BUILTIN.len());
    for ((file, _), p) in BUILTIN.iter().zip(&all) {
        assert_eq!(format!("{}.toml", p.name), *file);
        assert_eq!(p.source, format!("built-in:{file}"));
    }
    // Names and aliases are unique across boards, so `--board X` is never ambiguous.
    let mut names: Vec<&str> = all
        .iter()
        .flat_map(|p| std::iter::once(&p.name).chain(&p.aliases))
        .map(|s| s.as_str())
        .collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate board name or alias");
}

#[test]
fn builtin_files_on_disk_match_the_embedded_copies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("boards/ exists in the source tree")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = BUILTIN.iter().map(|(f, _)| f.to_string()).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "add new board files to BUILTIN in src/lib.rs"
    );
}

#[test]
fn the_issue_boards_have_their_topology() {
    let pi = load("raspberry-pi-5").unwrap();
    assert_eq!(
        (pi.topology().as_str(), pi.threads(), pi.memory.total_mib),
        ("4x cortex-a76", 4, 8192)
    );
    assert!(pi.target.features.iter().any(|f| f == "dotprod"));
    let rk = load("rk3588").unwrap();
    assert_eq!(rk.topology(), "4x cortex-a76 + 4x cortex-a55");
    // Big cores first: the A76s are cpu4-7 on RK3588.
    assert_eq!(
        (rk.core_for_thread(0), rk.core_for_thread(4)),
        (Some(4), Some(0))
    );
    assert_eq!(rk.accelerators, ["rknpu2"]);
    assert_eq!(
        load("jetson-orin-nano").unwrap().topology(),
        "6x cortex-a78ae"
    );
    let generic = load("generic-armv8.2-a").unwrap();
    assert_eq!(generic.target.features, ["neon"]);
    assert_eq!(
        generic.threads_or(3),
        3,
        "no pinning: one thread per available core"
    );
    assert_eq!(
        load("x86_64-host").unwrap().target.triple,
        "x86_64-unknown-linux-gnu"
    );
    assert_eq!(pi.memory_budget_bytes(), 6144 * 1024 * 1024);
}

#[test]
fn aliases_and_paths_load() {
    assert_eq!(load("pi5").unwrap().name, "raspberry-pi-5");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my-board.toml");
    std::fs::write(
        &path,
        pi5_with("name = \"raspberry-pi-5\"", "name = \"my-board\""),
    )
    .unwrap();
    let p = load(path.to_str().unwrap()).unwrap();
    assert_eq!(
        (p.name.as_str(), p.source.as_str()),
        ("my-board", path.to_str().unwrap())
    );
}

#[test]
fn unknown_board_lists_the_known_ones() {
    let e = load("pi6").unwrap_err().to_string();
    assert!(
        e.contains("pi6") && e.contains("raspberry-pi-5") && e.contains("rk3588"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = load_file(std::path::Path::new("/nonexistent/board.toml")).unwrap_err();
    assert!(matches!(e, TargetsError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/board.toml"), "{e}");
}

fn assert_parse(e: TargetsError, want_key: &str, want_line: usize, want_in_message: &str) {
    let shown = e.to_string();
    match e {
        TargetsError::Parse {
            file,
            key,
            line,
            message,
            ..
        } => {
            assert_eq!(file, "boards/bad.toml");
            assert_eq!(key, want_key, "{shown}");
            assert_eq!(line, want_line, "{shown}");
            assert!(message.contains(want_in_message), "{shown}");
            assert!(
                shown.starts_with(&format!("boards/bad.toml:{want_line}:")),
                "{shown}"
            );
            assert!(shown.contains(&format!("`{want_key}`")), "{shown}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle in text")]
        .matches('\n')
        .count()
        + 1
}

#[test]
fn misspelt_key_is_named() {
    let text = pi5_with("\nthreads = 4", "\nthread = 4");
    assert_parse(
        parse_err(&text),
        "cpu.thread",
        line_of(&text, "thread = 4"),
        "unknown field",
    );
}

#[test]
fn wrong_type_is_named() {
    let text = pi5_with("baud = 2000000", "baud = \"fast\"");
    assert_parse(
        parse_err(&text),
        "bridge.baud",
        line_of(&text, "baud ="),
        "invalid type",
    );
}

#[test]
fn missing_key_is_named() {
    let text = pi5_with("budget_mib = 6144\n", "");
    assert_parse(
        parse_err(&text),
        "memory.budget_mib",
        line_of(&text, "[memory]"),
        "missing field",
    );
}

#[test]
fn missing_table_is_named() {
    let text = pi5_with(
        "[display]\n# Official 7\" DSI touch display.\nwidth = 800\nheight = 480\n",
        "",
    );
    let e = parse_err(&text);
    assert!(
        matches!(&e, TargetsError::Parse { key, .. } if key == "display"),
        "{e}"
    );
}

#[test]
fn broken_toml_gives_a_line() {
    let text = pi5_with("fps = 15", "fps = = 15");
    let e = parse_err(&text);
    assert!(
        matches!(&e, TargetsError::Parse { line, .. } if *line == line_of(&text, "fps")),
        "{e}"
    );
}

fn assert_invalid(text: &str, want_key: &str) {
    let e = parse_err(text);
    let shown = e.to_string();
    assert!(
        matches!(&e, TargetsError::Invalid { file, key, .. } if file == "boards/bad.toml" && key == want_key),
        "{shown}"
    );
    assert!(shown.starts_with("boards/bad.toml: key `"), "{shown}");
}

#[test]
fn rule_breaks_are_named() {
    assert_invalid(&pi5_with("\nthreads = 4", "\nthreads = 5"), "cpu.threads");
    assert_invalid(&pi5_with("\nthreads = 4", "\nthreads = 0"), "cpu.threads");
    assert_invalid(
        &pi5_with("encoder_threads = 3", "encoder_threads = 5"),
        "cpu.encoder_threads",
    );
    assert_invalid(
        &pi5_with("decoder_threads = 4", "decoder_threads = 0"),
        "cpu.decoder_threads",
    );
    assert_invalid(
        &pi5_with("format = \"mjpeg\"", "format = \"h264\""),
        "camera.format",
    );
    assert_invalid(&pi5_with("width = 640", "width = 0"), "camera.width");
    assert_invalid(&pi5_with("fps = 15", "fps = 1000"), "camera.fps");
    assert_invalid(&pi5_with("rate = 48000", "rate = 4000"), "microphone.rate");
    assert_invalid(
        &pi5_with("period_frames = 960", "period_frames = 4"),
        "microphone.period_frames",
    );
    assert_invalid(
        &pi5_with("buffer_frames = 3840", "buffer_frames = 1000"),
        "microphone.buffer_frames",
    );
    assert_invalid(
        &pi5_with("cores = [0, 1, 2, 3]", "cores = [0, 1, 1, 3]"),
        "cpu.cores[2]",
    );
    assert_invalid(
        &pi5_with("cores = [0, 1, 2, 3]", "cores = [0, 1, 2, 9]"),
        "cpu.cores[3]",
    );
    assert_invalid(
        &pi5_with("ids = [0, 1, 2, 3]", "ids = []"),
        "cpu.clusters[0].ids",
    );
    assert_invalid(
        &pi5_with("budget_mib = 6144", "budget_mib = 9000"),
        "memory.budget_mib",
    );
    assert_invalid(
        &pi5_with("\"neon\", \"dotprod\"", "\"neon\", \"avx2\""),
        "target.features[1]",
    );
    assert_invalid(
        &pi5_with(
            "triple = \"aarch64-unknown-linux-gnu\"",
            "triple = \"aarch64-apple-darwin\"",
        ),
        "target.triple",
    );
    assert_invalid(&pi5_with("baud = 2000000", "baud = 0"), "bridge.baud");
    assert_invalid(&pi5_with("width = 800", "width = 0"), "display.width");
    assert_invalid(
        &pi5_with("device = \"/dev/video0\"", "device = \" \""),
        "camera.device",
    );
    assert_invalid(
        &pi5_with("name = \"raspberry-pi-5\"", "name = \"Raspberry Pi\""),
        "name",
    );
    for bad in ["image_tokens_max = 0", "image_tokens_max = 16385"] {
        assert_invalid(
            &pi5_with("image_tokens_max = 1024", bad),
            "camera.image_tokens_max",
        );
    }
    assert_eq!(
        load("raspberry-pi-5").unwrap().camera.image_tokens_max,
        Some(1024)
    );
    assert_eq!(load("x86_64-host").unwrap().camera.image_tokens_max, None);
}

/// What `flint glasses` takes from a profile: the camera mode, the microphone's periods, the thread split; and
/// the defaults a profile without them gets.
#[test]
fn glasses_settings_load_with_defaults() {
    let pi = load("raspberry-pi-5").unwrap();
    assert_eq!(
        (
            pi.camera.format.as_str(),
            pi.camera.width,
            pi.camera.height,
            pi.camera.fps
        ),
        ("mjpeg", 640, 480, 15)
    );
    assert_eq!(
        (
            pi.microphone.rate,
            pi.microphone.period_frames,
            pi.microphone.buffer_frames
        ),
        (48000, 960, 3840)
    );
    assert_eq!(pi.glasses_threads(), (3, 4));
    let mut bare = PI5.to_string();
    for block in [
        "format = \"mjpeg\"\nwidth = 640\nheight = 480\nfps = 15\n",
        "rate = 48000\nperiod_frames = 960\nbuffer_frames = 3840\n",
        "encoder_threads = 3\ndecoder_threads = 4\n",
    ] {
        assert_eq!(bare.matches(block).count(), 1, "{block}");
        bare = bare.replace(block, "");
    }
    let p = parse(&bare, "boards/bare.toml").unwrap();
    assert_eq!(
        (p.camera.width, p.camera.height, p.camera.fps),
        (640, 480, 15)
    );
    assert_eq!(p.camera.format, "mjpeg");
    assert_eq!(
        (p.microphone.rate, p.microphone.period_frames),
        (16000, 320)
    );
    assert_eq!(p.glasses_threads(), (4, 4));
}

#[test]
fn missing_features_compares_with_detection() {
    let pi = load("raspberry-pi-5").unwrap();
    assert_eq!(pi.missing_features(|f| f == "neon"), ["dotprod", "fp16"]);
    assert!(pi.missing_features(|_| true).is_empty());
}
