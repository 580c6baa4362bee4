//! `cargo fuzz run image_decode`: the body is `flint_tests::fuzz_targets::image_decode`, which `cargo test` also runs
//! over the kept corpus (tests/tests/e2e/fuzz_corpus.rs).
//!
//! libjpeg reports errors by unwinding (mozjpeg's error manager) and flint-media catches them; libfuzzer-sys's
//! panic hook would abort on those first, so the hook is wrapped once to let exactly those pass
//! (`flint_media::jpeg::in_libjpeg`). Every other panic still aborts and is reported as a crash.
#![no_main]

static HOOK: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !flint_media::jpeg::in_libjpeg() {
                prev(info);
            }
        }));
    });
    let _ = flint_tests::fuzz_targets::image_decode(data);
});
