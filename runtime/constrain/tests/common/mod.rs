//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use flint_constrain::{Constraint, Grammar, Vocab};

/// Id of the end token in [`byte_vocab`].
pub const END: u32 = 256;

/// One token per byte value, and an end token.
pub fn byte_vocab() -> Arc<Vocab> {
    let tokens = (0..=255u8).map(|b| Some(vec![b])).collect();
    Arc::new(Vocab::new(tokens, vec![END]))
}

pub fn gbnf(src: &str) -> Arc<Grammar> {
    match Grammar::from_gbnf(src) {
        Ok(g) => Arc::new(g),
        Err(e) => panic!("grammar does not compile: {e}\n{src}"),
    }
}

/// The grammar matches `s` as a whole (fed byte by byte as tokens).
pub fn matches(g: &Arc<Grammar>, s: &[u8]) -> bool {
    let mut c = Constraint::new(g.clone(), byte_vocab());
    for &b in s {
        let allowed = c.allows(u32::from(b));
        if c.accept(u32::from(b)).is_err() {
            assert!(
                !allowed,
                "allows() said yes to byte {b:#x} but accept() refused it"
            );
            return false;
        }
        assert!(allowed, "accept() took byte {b:#x} that allows() refused");
    }
    let complete = c.is_complete();
    assert_eq!(c.allows(END), complete);
    complete
}

/// `s` can start some text of the grammar.
pub fn prefix(g: &Arc<Grammar>, s: &[u8]) -> bool {
    let mut c = Constraint::new(g.clone(), byte_vocab());
    c.accept_bytes(s).is_ok()
}

pub fn schema(v: serde_json::Value) -> Arc<Grammar> {
    match Grammar::from_json_schema(&v) {
        Ok(g) => Arc::new(g),
        Err(e) => panic!("schema does not compile: {e}\n{v}"),
    }
}

pub fn schema_err(v: serde_json::Value) -> String {
    match Grammar::from_json_schema(&v) {
        Ok(g) => panic!("schema compiled but should not have: {v}\n{}", g.to_gbnf()),
        Err(e) => e.to_string(),
    }
}

/// splitmix64.
#[allow(dead_code)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}
