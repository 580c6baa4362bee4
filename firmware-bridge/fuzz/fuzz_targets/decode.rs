//! Feeds arbitrary bytes to the frame decoder and message parser. `fuzz_decode` panics only if an
//! accepted message fails to re-encode to the frame it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = flint_bridge::fuzz_decode(data);
});
