//! The bodies of the `cargo fuzz` targets in fuzz/ (each a thin `fuzz_target!` over one of these), kept here so
//! that `cargo test` (tests/tests/e2e/fuzz_corpus.rs) replays every corpus file and kept crash input through exactly
//! the code the fuzzer ran, on stable and in seconds. Each returns whether the input was accepted; none may panic,
//! hang or allocate without bound whatever the bytes.

use flint_format::FlintFile;
use flint_model::text::{render_template, Message};
use flint_model::{Model, ModelConfig};
use flint_quantize::import::{self, gguf, plan::Plan, source::TensorSource};
use std::path::Path;

/// A target's body: whether the input was accepted.
pub type Body = fn(&[u8]) -> bool;

/// The targets, by name: the fuzz/ binaries, the corpus folders and this table agree.
pub const TARGETS: &[(&str, Body)] = &[
    ("flint_file", flint_file),
    ("gguf", gguf_file),
    ("safetensors_config", safetensors_config),
    ("chat_template", chat_template),
    ("bridge_encode", bridge_encode),
    ("image_decode", image_decode),
    ("wav_decode", wav_decode),
];

/// Writes `crc` over the header, metadata and directory into bytes 72..76 when the header's offsets lie inside
/// `b`, so that random mutations reach the validation behind the checksum instead of stopping at it.
pub fn fix_index_crc(b: &mut [u8]) {
    let word = |b: &[u8], at: usize| -> Option<usize> {
        let v = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?);
        usize::try_from(v).ok()
    };
    let span = |b: &[u8], off: usize, len: usize| -> Option<(usize, usize)> {
        let (o, l) = (word(b, off)?, word(b, len)?);
        let e = o.checked_add(l)?;
        (e <= b.len()).then_some((o, e))
    };
    let (Some(m), Some(d)) = (span(b, 32, 40), span(b, 48, 56)) else {
        return;
    };
    if b.len() < 80 {
        return;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..72]);
    h.update(&b[m.0..m.1]);
    h.update(&b[d.0..d.1]);
    let crc = h.finalize();
    b[72..76].copy_from_slice(&crc.to_le_bytes());
}

/// The .flint reader and the model description's validation, then the loader binding every tensor. The first
/// byte chooses whether the index CRC is recomputed (mostly yes) or left as found.
pub fn flint_file(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let mut b = rest.to_vec();
    if mode % 8 != 0 {
        fix_index_crc(&mut b);
    }
    let Ok(f) = FlintFile::from_bytes("fuzz.flint", &b) else {
        return false;
    };
    if let Some(c) = f.meta("model.config") {
        if let Ok(c) = serde_json::from_value::<ModelConfig>(c.clone()) {
            let _ = c.validate();
        }
    }
    Model::load(f).is_ok()
}

/// The GGUF parser and the GGUF importer's config and plan (no tensor is read: the plan is checked against the
/// shapes).
pub fn gguf_file(data: &[u8]) -> bool {
    let Ok(g) = gguf::GgufFile::from_bytes(Path::new("fuzz.gguf"), data) else {
        return false;
    };
    match gguf::from_file(g) {
        Ok(ck) => ck.plan.check(ck.source.as_ref()).is_ok(),
        Err(_) => false,
    }
}

/// Shapes of an in-memory safetensors file.
struct Shapes(std::collections::HashMap<String, Vec<usize>>);

impl TensorSource for Shapes {
    fn path(&self) -> &Path {
        Path::new("fuzz")
    }
    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.0.get(key).cloned()
    }
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, flint_quantize::ImportError> {
        Err(flint_quantize::ImportError::MissingTensor {
            path: "fuzz".into(),
            name: key.into(),
        })
    }
}

/// config.json and a safetensors header: `[u32 n][n bytes of config.json][safetensors file]`. The config goes
/// through the importer's checks and translation; the safetensors file through the safetensors crate; then the
/// plan built from the config is checked against the file's shapes.
pub fn safetensors_config(data: &[u8]) -> bool {
    let Some((n, rest)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let n = (u32::from_le_bytes(*n) as usize).min(rest.len());
    let (cfg, st) = rest.split_at(n);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(cfg) else {
        return false;
    };
    let config = import::hf_config(&v, Path::new("fuzz/config.json"));
    let Ok(st) = safetensors::SafeTensors::deserialize(st) else {
        return false;
    };
    let shapes = Shapes(
        st.tensors()
            .into_iter()
            .map(|(k, t)| (k, t.shape().to_vec()))
            .collect(),
    );
    let Ok(config) = config else {
        return false;
    };
    let plan: Plan = import::hf::plan(&config, &shapes);
    plan.check(&shapes).is_ok()
}

/// The chat template renderer with its fuel and output cap, over a fixed conversation.
pub fn chat_template(data: &[u8]) -> bool {
    let Ok(tpl) = std::str::from_utf8(data) else {
        return false;
    };
    let msgs = [
        Message::new("system", "Be brief."),
        Message::new("user", "What is the capital of France?"),
    ];
    render_template(tpl, &msgs, "<s>", "</s>").is_ok()
}

/// The bridge's JSON-lines encoder, with a decode of what it wrote.
pub fn bridge_encode(data: &[u8]) -> bool {
    flint_bridge::json::fuzz_encode(data).is_some()
}

/// An image file (JPEG or PNG, by content) through flint-media's decoder, then MuseGlimmerImageProcessor at a
/// small token cap (resize, normalise, patchify).
pub fn image_decode(data: &[u8]) -> bool {
    let name = Path::new("fuzz.img");
    let Ok(img) = flint_media::decode_image(name, data) else {
        return false;
    };
    let cfg = flint_media::GlimmerImageConfig {
        max_tokens: 16,
        ..flint_media::GlimmerImageConfig::default_image()
    };
    flint_media::preprocess_image(&cfg, name, &img).is_ok()
}

/// A WAV file through flint-media's reader, resampled to 24 kHz, then MuseSparkFeatureExtractor.
pub fn wav_decode(data: &[u8]) -> bool {
    let name = Path::new("fuzz.wav");
    let Ok(clip) = flint_media::read_wav(name, data) else {
        return false;
    };
    let cfg = flint_media::SparkAudioConfig::default();
    let Ok(x) =
        flint_media::resample::resample(name, &clip.samples, clip.sample_rate, cfg.sampling_rate)
    else {
        return false;
    };
    flint_media::extract(&cfg, name, &[&x]).is_ok()
}

/// Small valid images for the `image_decode` corpus: PNGs of every pixel type PIL distinguishes and JPEGs
/// (baseline grey and colour).
pub fn image_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use image::{DynamicImage, ImageBuffer};
    let rgb = image::RgbImage::from_fn(20, 13, |x, y| {
        image::Rgb([(x * 12) as u8, (y * 19) as u8, ((x + y) * 5) as u8])
    });
    let png = |img: DynamicImage| {
        let mut c = std::io::Cursor::new(Vec::new());
        img.write_to(&mut c, image::ImageFormat::Png).expect("png");
        c.into_inner()
    };
    let jpeg = |img: DynamicImage| {
        let mut v = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 80)
            .encode_image(&img)
            .expect("jpeg");
        v
    };
    let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
    let g16: ImageBuffer<image::Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(9, 7, |x, y| image::Luma([(x * 7000 + y * 300) as u16]));
    vec![
        ("rgb.png", png(DynamicImage::ImageRgb8(rgb.clone()))),
        (
            "grey.png",
            png(DynamicImage::ImageRgb8(rgb.clone()).grayscale()),
        ),
        ("rgba.png", png(DynamicImage::ImageRgba8(rgba))),
        ("grey16.png", png(DynamicImage::ImageLuma16(g16))),
        (
            "rgb16.png",
            png(DynamicImage::ImageRgb16(
                DynamicImage::ImageRgb8(rgb.clone()).to_rgb16(),
            )),
        ),
        ("rgb.jpg", jpeg(DynamicImage::ImageRgb8(rgb.clone()))),
        ("grey.jpg", jpeg(DynamicImage::ImageRgb8(rgb).grayscale())),
    ]
}

/// Small valid WAV files for the `wav_decode` corpus: 8/16/24/32-bit integer and 32-bit float, mono and stereo.
pub fn wav_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (bits, float, channels, rate) in [
        (16u16, false, 1u16, 22050u32),
        (8, false, 1, 16000),
        (24, false, 2, 48000),
        (32, false, 1, 24000),
        (32, true, 2, 44100),
    ] {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut buf = Vec::new();
        {
            let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut buf), spec).expect("wav");
            for i in 0..200 * i32::from(channels) {
                let v = ((i as f32) * 0.07).sin() * 0.6;
                if float {
                    w.write_sample(v).expect("sample");
                } else {
                    let full = ((1i64 << (bits - 1)) - 1) as f32;
                    w.write_sample((v * full) as i32).expect("sample");
                }
            }
            w.finalize().expect("finalize");
        }
        out.push((
            format!(
                "{bits}bit{}-{channels}ch-{rate}.wav",
                if float { "f" } else { "" }
            ),
            buf,
        ));
    }
    out
}

/// The fuzz/ folder at the workspace root.
pub fn fuzz_dir() -> std::path::PathBuf {
    crate::root().join("fuzz")
}

/// A small config.json of `arch` (2 layers, hidden 16; MoE archs with 4 experts) and a safetensors file with
/// every tensor its plan asks for (zeros), framed as [`safetensors_config`] takes them: a valid seed.
pub fn tiny_hf_seed(arch: &str) -> Vec<u8> {
    let mut cfg = serde_json::json!({
        "model_type": arch, "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 8, "num_hidden_layers": 2, "intermediate_size": 32, "vocab_size": 32,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": [2],
    });
    if arch.contains("moe") || arch == "mixtral" {
        let o = cfg.as_object_mut().expect("object");
        o.insert("num_experts".into(), 4.into());
        o.insert("num_local_experts".into(), 4.into());
        o.insert("num_experts_per_tok".into(), 2.into());
        o.insert("moe_intermediate_size".into(), 8.into());
        if arch == "qwen2_moe" {
            o.insert("shared_expert_intermediate_size".into(), 8.into());
        }
    }
    let config =
        import::hf_config(&cfg, Path::new("seed/config.json")).expect("a valid seed config");
    let plan = import::hf::plan(&config, &Shapes(Default::default()));
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = plan
        .items
        .iter()
        .map(|it| {
            let n: usize = it.shape.iter().product();
            (
                it.fetch.key().to_string(),
                it.shape.clone(),
                vec![0u8; n * 4],
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .expect("view");
            (k.clone(), v)
        })
        .collect();
    let st = safetensors::serialize(views, None).expect("serialize");
    let cfg = cfg.to_string().into_bytes();
    let mut out = (cfg.len() as u32).to_le_bytes().to_vec();
    out.extend(cfg);
    out.extend(st);
    assert!(safetensors_config(&out), "the {arch} seed is accepted");
    out
}

/// Chat templates in the styles of real models (ChatML, Llama 3, one with macros, filters and namespaces).
pub const TEMPLATE_SEEDS: &[&str] = &[
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    "{%- macro render(m) -%}[{{ m.role | upper }}] {{ m.content | replace('France', 'F') }}{%- endmacro -%}{%- set ns = namespace(n=0) -%}{%- for m in messages -%}{%- set ns.n = ns.n + 1 -%}{{ render(m) }}{% if not loop.last %}\n{% endif %}{%- endfor -%}{{ '\n' ~ ns.n ~ eos_token if add_generation_prompt else raise_exception('no prompt') }}",
    "{% if messages | length > 5 %}{{ raise_exception('too long') }}{% endif %}{% for m in messages | reverse %}{{ m.content[:4] }}{{ range(3) | join(',') }}{% endfor %}",
];

/// Writes the seed corpora from valid inputs: `fuzz/corpus/<target>/seed-*`.
pub fn write_seeds() {
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&d).expect("corpus dir");
        std::fs::write(d.join(format!("seed-{name}")), data).expect("seed");
    };
    // Images and WAV files (flint-media).
    for (name, b) in image_seeds() {
        assert!(image_decode(&b), "the {name} seed is accepted");
        put("image_decode", name, &b);
    }
    for (name, b) in wav_seeds() {
        assert!(wav_decode(&b), "the {name} seed is accepted");
        put("wav_decode", &name, &b);
    }
    // .flint: the tiny llama GGUF imported (with and without tensors), mode byte 1 (recompute the CRC).
    let tmp = tempfile::tempdir().expect("tmp");
    let g = tmp.path().join("t.gguf");
    std::fs::write(&g, crate::hostile::llama_gguf(16, 32, 1).bytes()).expect("gguf");
    let full = tmp.path().join("t.flint");
    let ck = import::open(&g).expect("tiny gguf");
    import::write(&ck, &full, flint_format::DType::F16, |_, _| {}).expect("write");
    let b = std::fs::read(&full).expect("read");
    assert!(
        flint_file(&[[1u8].as_slice(), &b].concat()),
        "the .flint seed loads"
    );
    put(
        "flint_file",
        "tiny-llama-f16",
        &[[1u8].as_slice(), &b].concat(),
    );
    let meta_only = tmp.path().join("m.flint");
    let mut w = flint_format::Writer::create(&meta_only).expect("writer");
    w.set_metadata(import::model_metadata(&ck, flint_format::DType::F16));
    w.finish().expect("finish");
    let m = std::fs::read(&meta_only).expect("read");
    put(
        "flint_file",
        "metadata-only",
        &[[1u8].as_slice(), &m].concat(),
    );
    // GGUF: the tiny llama, and one without a vocabulary.
    let gb = crate::hostile::llama_gguf(16, 32, 1).bytes();
    assert!(gguf_file(&gb), "the GGUF seed is accepted");
    put("gguf", "tiny-llama", &gb);
    let nv = crate::hostile::llama_gguf(16, 32, 1)
        .without("tokenizer.ggml.tokens")
        .u32("llama.vocab_size", 32)
        .bytes();
    put("gguf", "no-vocab", &nv);
    for &arch in flint_model::config::limits::ARCHITECTURES {
        put("safetensors_config", arch, &tiny_hf_seed(arch));
    }
    for (i, t) in TEMPLATE_SEEDS.iter().enumerate() {
        assert!(chat_template(t.as_bytes()), "template seed {i} renders");
        put("chat_template", &i.to_string(), t.as_bytes());
    }
    let jl = std::fs::read(crate::root().join("firmware-bridge/samples/messages.jsonl"))
        .expect("samples");
    assert!(bridge_encode(&jl), "the sample stream encodes");
    put("bridge_encode", "messages", &jl);
    for (i, line) in jl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        put("bridge_encode", &format!("line{i}"), line);
    }
}
