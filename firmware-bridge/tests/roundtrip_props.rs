//! Property tests: every message round-trips through the wire, and garbage or corruption on the line
//! loses only the frames it touches.

use flint_bridge::*;
use proptest::prelude::*;

/// An owned description of a message, so proptest can generate borrowed variants too.
#[derive(Debug, Clone)]
enum Gen {
    Fixed(Message<'static>),
    Text {
        x: i16,
        y: i16,
        font: Font,
        fg: u16,
        bg: Option<u16>,
        text: String,
    },
    Tile {
        x: u16,
        y: u16,
        w: u16,
        pixels: Vec<u16>,
    },
}

fn color() -> impl Strategy<Value = Rgb565> {
    any::<u16>().prop_map(Rgb565)
}

fn fixed() -> impl Strategy<Value = Message<'static>> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(v, m, c, w, h)| {
                Message::Hello(Hello {
                    version: v,
                    max_payload: m,
                    caps: Caps(c),
                    width: w,
                    height: h,
                })
            }),
        any::<u32>().prop_map(|u| Message::Heartbeat { uptime_ms: u }),
        (any::<u16>(), 0u8..4).prop_map(|(s, st)| Message::Ack {
            seq: s,
            status: AckStatus::from_u8(st).unwrap()
        }),
        any::<u8>().prop_map(|w| Message::Flow { window: w }),
        (
            any::<i16>(),
            any::<i16>(),
            any::<u16>(),
            any::<u16>(),
            color()
        )
            .prop_map(|(x, y, w, h, color)| Message::Clear { x, y, w, h, color }),
        (
            any::<(i16, i16, u16, u16)>(),
            any::<(u8, u8)>(),
            color(),
            proptest::option::of(color())
        )
            .prop_map(|((x, y, w, h), (radius, stroke_width), stroke, fill)| {
                Message::Rect {
                    x,
                    y,
                    w,
                    h,
                    radius,
                    stroke_width,
                    stroke,
                    fill,
                }
            }),
        (any::<(i16, i16, i16, i16)>(), any::<u8>(), color()).prop_map(
            |((x0, y0, x1, y1), width, color)| Message::Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color
            }
        ),
        (any::<i16>(), any::<i16>(), any::<u8>(), color()).prop_map(|(x, y, radius, color)| {
            Message::Point {
                x,
                y,
                radius,
                color,
            }
        }),
        any::<u16>().prop_map(|f| Message::Present { frame: f }),
        any::<u8>().prop_map(|l| Message::Brightness { level: l }),
        (0u8..3).prop_map(|m| Message::Power {
            mode: PowerMode::from_u8(m).unwrap()
        }),
        (any::<u8>(), 0u8..3, any::<u32>()).prop_map(|(id, a, t)| Message::Button {
            id,
            action: ButtonAction::from_u8(a).unwrap(),
            t_ms: t
        }),
        (any::<u32>(), any::<[i16; 3]>(), any::<[i16; 3]>()).prop_map(|(t, a, g)| Message::Imu {
            t_ms: t,
            accel_mg: a,
            gyro_cdps: g
        }),
        (any::<u16>(), any::<u8>(), any::<bool>()).prop_map(|(mv, p, c)| Message::Battery {
            millivolts: mv,
            percent: p,
            charging: c
        }),
        (any::<u8>(), any::<i16>()).prop_map(|(s, c)| Message::Thermal {
            sensor: s,
            centi_celsius: c
        }),
        any::<u16>().prop_map(|f| Message::DisplayAck { frame: f }),
    ]
}

fn gen() -> impl Strategy<Value = Gen> {
    prop_oneof![
        4 => fixed().prop_map(Gen::Fixed),
        1 => (any::<i16>(), any::<i16>(), 0u8..3, any::<u16>(), proptest::option::of(any::<u16>()), "\\PC{0,60}")
            .prop_filter("fits in 255 bytes", |t| t.5.len() <= 255)
            .prop_map(|(x, y, f, fg, bg, text)| Gen::Text { x, y, font: Font::from_u8(f).unwrap(), fg, bg, text }),
        // Few colours so runs form; up to 320 pixels stays under MAX_PAYLOAD even uncompressed.
        1 => (any::<u16>(), any::<u16>(), 1u16..=16, proptest::collection::vec(0u16..3, 1..=20))
            .prop_flat_map(|(x, y, w, _)| (Just(x), Just(y), Just(w), 1u16..=20))
            .prop_flat_map(|(x, y, w, h)| (Just(x), Just(y), Just(w),
                proptest::collection::vec(prop_oneof![Just(0u16), Just(0xF800), any::<u16>()], (w * h) as usize)))
            .prop_map(|(x, y, w, pixels)| Gen::Tile { x, y, w, pixels }),
    ]
}

/// Encodes `g` as one wire frame.
fn wire(seq: u16, g: &Gen) -> Vec<u8> {
    let mut out = [0u8; MAX_WIRE];
    let mut rle_buf = [0u8; 1024];
    let n = match g {
        Gen::Fixed(m) => encode_frame(seq, m, &mut out),
        Gen::Text {
            x,
            y,
            font,
            fg,
            bg,
            text,
        } => encode_frame(
            seq,
            &Message::Text {
                x: *x,
                y: *y,
                font: *font,
                fg: Rgb565(*fg),
                bg: bg.map(Rgb565),
                text,
            },
            &mut out,
        ),
        Gen::Tile { x, y, w, pixels } => {
            let k = rle::encode(pixels.iter().map(|&p| Rgb565(p)), &mut rle_buf).unwrap();
            let h = pixels.len() as u16 / w;
            let rle = Rle::new(&rle_buf[..k], pixels.len() as u32).unwrap();
            encode_frame(
                seq,
                &Message::Tile {
                    x: *x,
                    y: *y,
                    w: *w,
                    h,
                    rle,
                },
                &mut out,
            )
        }
    }
    .unwrap();
    out[..n].to_vec()
}

/// Decodes a stream into (seq, re-encoded frame) pairs.
fn decode_all(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut dec = Decoder::new();
    let mut got = Vec::new();
    dec.feed(bytes, |r| {
        if let Ok(f) = r {
            if let Ok(m) = f.message() {
                let mut out = [0u8; MAX_WIRE];
                let n = encode_frame(f.seq, &m, &mut out).unwrap();
                got.push((f.seq, out[..n].to_vec()));
            }
        }
    });
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_roundtrip(seq in any::<u16>(), g in gen()) {
        let w = wire(seq, &g);
        prop_assert!(w.len() <= MAX_WIRE);
        prop_assert_eq!(w[0], 0);
        prop_assert_eq!(*w.last().unwrap(), 0);
        prop_assert!(!w[1..w.len() - 1].contains(&0));
        // Any chunking gives the same result: feed it one byte at a time.
        let got = decode_all(&w);
        prop_assert_eq!(got, vec![(seq, w.clone())]);
    }

    #[test]
    fn garbage_between_frames_loses_nothing(
        gs in proptest::collection::vec(gen(), 1..8),
        garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 9),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, g) in gs.iter().enumerate() {
            stream.extend_from_slice(&garbage[i]);
            let w = wire(i as u16, g);
            stream.extend_from_slice(&w);
            want.push((i as u16, w));
        }
        stream.extend_from_slice(&garbage[8]);
        prop_assert_eq!(decode_all(&stream), want);
    }

    #[test]
    fn corruption_loses_only_the_corrupted_frame(
        gs in proptest::collection::vec(gen(), 2..8),
        victim in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        insert in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let frames: Vec<Vec<u8>> = gs.iter().enumerate().map(|(i, g)| wire(i as u16, g)).collect();
        let v = victim.index(frames.len());
        let mut bad = frames[v].clone();
        let p = pos.index(bad.len());
        bad[p] ^= byte | 1; // always changes the byte
        bad.splice(p..p, insert.iter().copied());
        let mut stream = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            stream.extend_from_slice(if i == v { &bad } else { f });
        }
        let got = decode_all(&stream);
        let others: Vec<(u16, Vec<u8>)> =
            frames.iter().enumerate().filter(|(i, _)| *i != v).map(|(i, f)| (i as u16, f.clone())).collect();
        // Every other frame survives, in order; the victim at most survives if the damage hit only a
        // delimiter, never comes back altered.
        let without_victim: Vec<_> = got.iter().filter(|(s, _)| *s as usize != v).cloned().collect();
        prop_assert_eq!(without_victim, others);
        for (s, f) in &got {
            if *s as usize == v {
                prop_assert_eq!(f, &frames[v]);
            }
        }
    }
}
