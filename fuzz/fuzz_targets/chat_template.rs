//! `cargo fuzz run chat_template`: the body is `flint_tests::fuzz_targets::chat_template`, which `cargo test` also runs over the kept
//! corpus (tests/tests/e2e/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flint_tests::fuzz_targets::chat_template(data);
});
