//! `cargo fuzz run flint_file`: the body is `flint_tests::fuzz_targets::flint_file`, which `cargo test` also runs over the kept
//! corpus (tests/tests/e2e/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flint_tests::fuzz_targets::flint_file(data);
});
