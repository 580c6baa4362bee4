//! `cargo fuzz run safetensors_config`: the body is `flint_tests::fuzz_targets::safetensors_config`, which `cargo test` also runs over the kept
//! corpus (tests/tests/e2e/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flint_tests::fuzz_targets::safetensors_config(data);
});
