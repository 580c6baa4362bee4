//! rubato's FFT sinc resampler, 22.05 kHz -> 24 kHz, against `scipy.signal.resample_poly(x, 160, 147)` as the
//! fixtures made it (processors/audio/*_24k.wav, rounded to 16 bits). The filters differ (Kaiser β=5 at
//! Nyquist vs Blackman-Harris² at rubato's cutoff), so the bound is a measured one, with margin: measured
//! 47.6 / 49.8 dB SNR and 0.0078 / 0.0068 largest error (full scale 1); asserted SNR >= 45 dB, error < 0.012,
//! lengths equal.

mod common;
use common::*;
use flint_media::read_wav_file;
use flint_media::resample::resample;

fn compare(src: &std::path::Path, reference: &std::path::Path) -> (f64, f64) {
    let x = read_wav_file(src).unwrap();
    let r = read_wav_file(reference).unwrap();
    assert_eq!((x.sample_rate, r.sample_rate), (22050, 24000));
    let y = resample(src, &x.samples, x.sample_rate, 24000).unwrap();
    assert_eq!(
        y.len(),
        r.samples.len(),
        "{}: length as resample_poly",
        src.display()
    );
    let (mut sig, mut err, mut max) = (0f64, 0f64, 0f64);
    for (a, b) in y.iter().zip(&r.samples) {
        let (a, b) = (f64::from(*a), f64::from(*b));
        sig += b * b;
        err += (a - b) * (a - b);
        max = max.max((a - b).abs());
    }
    let snr = 10.0 * (sig / err).log10();
    println!(
        "{}: SNR {snr:.2} dB, max abs error {max:.5} (full scale 1.0)",
        src.display()
    );
    (snr, max)
}

#[test]
fn sinc_resampler_close_to_resample_poly() {
    let a = processors().join("audio");
    for (src, reference) in [
        (
            a.join("sign_question_22k.wav"),
            a.join("sign_question_24k.wav"),
        ),
        (
            fixtures().join("real/whisper-tiny-en/speech_22k.wav"),
            a.join("speech_22k_24k.wav"),
        ),
    ] {
        let (snr, max) = compare(&src, &reference);
        assert!(snr >= 45.0, "{}: SNR {snr} dB", src.display());
        assert!(max < 0.012, "{}: max error {max}", src.display());
    }
}

#[test]
fn same_rate_is_untouched_and_other_rates_have_the_right_length() {
    let x: Vec<f32> = (0..4410).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let p = std::path::Path::new("tone");
    assert_eq!(resample(p, &x, 24000, 24000).unwrap(), x);
    for (from, to, n) in [
        (44100, 24000, 2400),
        (16000, 24000, 6615),
        (48000, 16000, 1470),
    ] {
        assert_eq!(
            resample(p, &x, from, to).unwrap().len(),
            n,
            "{from} -> {to}"
        );
    }
    // A 1 kHz tone through 44.1 -> 24 kHz is the same tone sampled at 24 kHz (same phase: no delay left).
    let tone = |rate: f64, n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate).sin())
            .collect()
    };
    let x: Vec<f32> = tone(44100.0, 44100).iter().map(|&v| v as f32).collect();
    let y = resample(p, &x, 44100, 24000).unwrap();
    let want = tone(24000.0, 24000);
    let worst = (2000..22000)
        .map(|k| (f64::from(y[k]) - want[k]).abs())
        .fold(0f64, f64::max);
    assert!(worst < 1e-4, "tone error {worst}");
    assert!(resample(p, &[], 22050, 24000).is_err());
    assert!(resample(p, &x, 0, 24000).is_err());
}

#[test]
fn a_stream_in_pieces_equals_the_whole_clip() {
    // A real recording, fed as a microphone would give it (uneven pieces, some shorter than a chunk).
    let src = processors().join("audio");
    let wav = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "wav") && !p.to_string_lossy().contains("_24k")
        })
        .unwrap();
    let x = read_wav_file(&wav).unwrap();
    for (from, to) in [
        (x.sample_rate, 24000),
        (x.sample_rate, 16000),
        (16000, 24000),
    ] {
        let whole = resample(&wav, &x.samples, from, to).unwrap();
        let mut s = flint_media::resample::Stream::new(&wav, from, to).unwrap();
        let mut got = Vec::new();
        let mut pos = 0;
        for (i, n) in [512usize, 1, 7000, 4096, 333, 20000]
            .iter()
            .cycle()
            .enumerate()
        {
            if pos >= x.samples.len() || i > 10_000 {
                break;
            }
            let end = (pos + n).min(x.samples.len());
            got.extend(s.push(&x.samples[pos..end]).unwrap());
            pos = end;
        }
        let before_end = got.len();
        got.extend(s.finish().unwrap());
        assert_eq!(got.len(), whole.len(), "{from} -> {to}: length");
        assert!(
            got.iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{from} -> {to}: the stream's samples are the whole clip's"
        );
        // Most of it came out while the audio arrived: the end leaves at most two chunks and the filter's tail.
        assert!(
            whole.len() - before_end <= 2 * 4096 * to as usize / from as usize + 4096,
            "{from} -> {to}: {} of {} samples waited for the end",
            whole.len() - before_end,
            whole.len()
        );
    }
}
