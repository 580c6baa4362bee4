//! The byte-exact examples of docs/BRIDGE.md. The test reads the document itself, so the document and
//! the code cannot drift apart; a few examples are also pinned here in case the document loses them.

use flint_bridge::json::JsonFrame;
use flint_bridge::{encode_frame, Decoder, Message, MAX_WIRE};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

fn encode_json(line: &str) -> Vec<u8> {
    let fr: JsonFrame = serde_json::from_str(line).unwrap();
    let mut out = Vec::new();
    fr.encode_into(&mut out).unwrap();
    out
}

#[test]
fn examples_in_bridge_md_are_exact() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/BRIDGE.md")).unwrap();
    let mut checked = 0;
    let mut message = None;
    let (mut payload, mut frame) = (None, None);
    for line in doc.lines() {
        if let Some(m) = line.strip_prefix("message: ") {
            message = Some(m.to_string());
        } else if let Some(p) = line.strip_prefix("payload: ") {
            payload = Some(hex(p));
        } else if let Some(f) = line.strip_prefix("frame:   ") {
            frame = Some(hex(f));
        } else if let Some(w) = line.strip_prefix("wire:    ") {
            let m = message.take().expect("wire: without message:");
            let want = hex(w);
            assert_eq!(encode_json(&m), want, "encoding {m}");
            // Decoding the wire bytes gives the documented frame fields and the same JSON line back.
            let mut text = Vec::new();
            flint_bridge::json::decode_stream(&want[..], &mut text, |_, e| panic!("{e}")).unwrap();
            assert_eq!(String::from_utf8(text).unwrap().trim_end(), m);
            let frame = frame.take().unwrap();
            let payload = payload.take().unwrap();
            assert_eq!(&frame[3..frame.len() - 4], &payload[..]);
            let mut seen = 0;
            Decoder::new().feed(&want, |r| {
                let f = r.unwrap();
                assert_eq!(f.payload, &payload[..]);
                assert_eq!(f.seq, u16::from_le_bytes([frame[0], frame[1]]));
                seen += 1;
            });
            assert_eq!(seen, 1);
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "docs/BRIDGE.md should hold 6 examples");
}

#[test]
fn pinned_examples() {
    let mut out = [0u8; MAX_WIRE];
    let n = encode_frame(7, &Message::Heartbeat { uptime_ms: 1000 }, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &hex("00 02 07 04 02 e8 03 01 05 1e 65 86 33 00")[..]
    );
    let n = encode_frame(
        2,
        &Message::Ack {
            seq: 12,
            status: flint_bridge::AckStatus::Ok,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        &out[..n],
        &hex("00 02 02 03 03 0c 01 05 22 56 a5 e7 00")[..]
    );
}

#[test]
fn largest_frame_fits_the_compile_time_bounds() {
    // 255 bytes of text is the longest text message; a tile of 338 single-pixel runs ((1024 - 8) / 3) the longest payload.
    let text = "x".repeat(255);
    let m = Message::Text {
        x: 0,
        y: 0,
        font: flint_bridge::Font::Small,
        fg: flint_bridge::Rgb565(0),
        bg: None,
        text: &text,
    };
    let mut out = [0u8; MAX_WIRE];
    assert!(encode_frame(0, &m, &mut out).is_ok());
    let mut runs = Vec::new();
    for i in 0..338u16 {
        runs.extend_from_slice(&[0, i as u8, 0]);
    }
    let rle = flint_bridge::Rle::new(&runs, 338).unwrap();
    let n = encode_frame(
        0,
        &Message::Tile {
            x: 0,
            y: 0,
            w: 338,
            h: 1,
            rle,
        },
        &mut out,
    )
    .unwrap();
    assert!(n <= MAX_WIRE);
    // One run more and the payload exceeds MAX_PAYLOAD: refused, not truncated.
    runs.extend_from_slice(&[0, 1, 0]);
    let rle = flint_bridge::Rle::new(&runs, 339).unwrap();
    assert_eq!(
        encode_frame(
            0,
            &Message::Tile {
                x: 0,
                y: 0,
                w: 339,
                h: 1,
                rle
            },
            &mut out
        ),
        Err(flint_bridge::EncodeError::PayloadTooLarge)
    );
}
