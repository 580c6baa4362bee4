//! The sample file covers every message type and round-trips byte for byte: JSON -> wire -> JSON.

use flint_bridge::json::{decode_stream, encode_stream};
use flint_bridge::message::kind;
use flint_bridge::Decoder;
use std::collections::BTreeSet;

const SAMPLE: &str = include_str!("../samples/messages.jsonl");

#[test]
fn sample_roundtrips_byte_exactly() {
    let mut wire = Vec::new();
    let n = encode_stream(SAMPLE.as_bytes(), &mut wire).unwrap();
    assert_eq!(n as usize, SAMPLE.lines().count());
    let mut text = Vec::new();
    let rep = decode_stream(&wire[..], &mut text, |at, why| panic!("byte {at}: {why}")).unwrap();
    assert_eq!(rep.frames, n);
    assert_eq!(rep.errors(), 0);
    assert_eq!(String::from_utf8(text).unwrap(), SAMPLE);
    // And wire -> JSON -> wire gives the same bytes.
    let mut again = Vec::new();
    encode_stream(SAMPLE.as_bytes(), &mut again).unwrap();
    assert_eq!(again, wire);
}

#[test]
fn sample_covers_every_message_type() {
    let mut wire = Vec::new();
    encode_stream(SAMPLE.as_bytes(), &mut wire).unwrap();
    let mut seen = BTreeSet::new();
    Decoder::new().feed(&wire, |r| {
        seen.insert(r.unwrap().kind);
    });
    let all: BTreeSet<u8> = [
        kind::HELLO,
        kind::HEARTBEAT,
        kind::ACK,
        kind::FLOW,
        kind::CLEAR,
        kind::TEXT,
        kind::RECT,
        kind::LINE,
        kind::POINT,
        kind::TILE,
        kind::PRESENT,
        kind::BRIGHTNESS,
        kind::POWER,
        kind::BUTTON,
        kind::IMU,
        kind::BATTERY,
        kind::THERMAL,
        kind::DISPLAY_ACK,
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, all);
}

#[test]
fn bad_lines_are_named() {
    let err = encode_stream(
        &b"{\"seq\":1,\"type\":\"flow\",\"window\":4}\n{\"seq\":2,\"type\":\"clear\"}\n"[..],
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = encode_stream(
        &b"{\"seq\":1,\"type\":\"clear\",\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"color\":[32,0,0]}\n"[..],
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = encode_stream(
        &b"{\"seq\":1,\"type\":\"tile\",\"x\":0,\"y\":0,\"w\":2,\"h\":2,\"runs\":[[3,[1,1,1]]]}\n"
            [..],
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}
