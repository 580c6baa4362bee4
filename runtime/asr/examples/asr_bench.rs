//! Times the encoder and greedy decoding on the real fixture clip:
//! `cargo run --release -p flint-asr --example asr_bench -- [threads] [runs]`.

use std::path::Path;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(2, |s| s.parse().expect("threads"));
    let runs: usize = args.next().map_or(3, |s| s.parse().expect("runs"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    flint_kernels::set_threads(threads);
    let m = flint_asr::Whisper::open(&root.join(".cache/models/whisper-tiny-en")).expect("model");
    let p = Path::new("/work/shared/fixtures/real/whisper-tiny-en/io.safetensors");
    let bytes = std::fs::read(p).expect("fixture");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mel: Vec<f32> = st
        .tensor("in.input_features")
        .expect("mel")
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let enc = m.encode(&mel).expect("encode"); // warm-up
    let _ = m.decode_greedy(&enc, 448).expect("decode");
    let (mut te, mut td, mut n) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let t = Instant::now();
        let e = m.encode(&mel).expect("encode");
        te.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        n = m.decode_greedy(&e, 448).expect("decode").len();
        td.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // The whole pipeline on the fixture's clip (features included in encode_ms).
    let wav = p.with_file_name("speech_22k.wav");
    let clip = flint_media::read_wav_file(&wav).expect("wav");
    let s16 = flint_media::resample::resample(&wav, &clip.samples, clip.sample_rate, 16000)
        .expect("resample");
    let (mut fe, mut fd) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = m.transcribe(&s16).expect("transcribe");
        fe.push(t.encode_ms);
        fd.push(t.decode_ms);
    }
    println!(
        "threads {threads}: transcribe: features + encoder {:.0} ms, decode {:.0} ms",
        mean(&fe),
        mean(&fd)
    );
    println!(
        "threads {threads}: encoder {:.0} ms (runs {:?}), decode {n} tokens {:.0} ms (runs {:?})",
        mean(&te),
        te.iter().map(|v| v.round()).collect::<Vec<_>>(),
        mean(&td),
        td.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
}
