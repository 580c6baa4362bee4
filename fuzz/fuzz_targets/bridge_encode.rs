//! `cargo fuzz run bridge_encode`: the body is `flint_tests::fuzz_targets::bridge_encode`, which `cargo test` also runs over the kept
//! corpus (tests/tests/e2e/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flint_tests::fuzz_targets::bridge_encode(data);
});
