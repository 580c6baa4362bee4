//! Runs the fuzz target's entry point over the kept corpus and over pseudo-random inputs, so the normal
//! test suite (and CI, without nightly) exercises what fuzzing found.

use flint_bridge::fuzz_decode;
use std::path::Path;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn kept_corpus_decodes_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut n = 0;
    let mut messages = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        messages += fuzz_decode(&data).messages;
        n += 1;
    }
    assert!(n >= 10, "corpus at {} has only {n} files", dir.display());
    // The seeds include valid frames: if none decodes, the decoder (or the corpus) is broken.
    assert!(messages > 0);
}

#[test]
fn random_inputs_decode_without_panic() {
    let mut rng = Rng(0x5EED_F11E);
    for i in 0..2000 {
        let len = (rng.next() % 3000) as usize;
        let mut data = rng.bytes(len);
        // Bias some inputs towards the decoder's edges: many delimiters, or none at all.
        match i % 3 {
            0 => data.iter_mut().filter(|b| **b < 40).for_each(|b| *b = 0),
            1 => data.iter_mut().for_each(|b| *b |= 1),
            _ => {}
        }
        let st = fuzz_decode(&data);
        assert!(st.messages + st.frame_errors + st.message_errors <= data.len());
    }
}

#[test]
fn a_megabyte_of_random_bytes_yields_no_frame() {
    let data = Rng(42).bytes(1 << 20);
    let st = fuzz_decode(&data);
    assert_eq!(st.messages, 0);
    assert!(st.frame_errors > 1000, "{st:?}");
}
