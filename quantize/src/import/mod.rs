//! Importers: a checkpoint in, one `.flint` file out.

mod gemma3;
pub mod gguf;
mod gguf_file;
mod gguf_quants;
mod gguf_tokenizer;
pub mod hf;
pub mod muse_audio;
pub mod muse_spark;
pub mod muse_vision;
pub mod plan;
mod precheck;
mod processor;
pub mod qwen2_5_omni;
pub mod qwen3_omni;
pub mod qwen3_vl;
pub mod source;

use crate::ImportError;
use flint_format::{DType, Writer};
use flint_model::config::limits;
use flint_model::config::vision::names::{splits_tail, tail};
use flint_model::text::{KEY_BOS, KEY_CHAT_TEMPLATE, KEY_EOS, KEY_TOKENIZER};
use flint_model::ModelConfig;
use plan::{Fetcher, Plan};
use source::TensorSource;
use std::path::Path;

/// A checkpoint ready to be written: its config, where each tensor comes from, and its tokenizer.
pub struct Checkpoint {
    pub config: ModelConfig,
    pub plan: Plan,
    pub source: Box<dyn TensorSource>,
    pub tokenizer_json: Option<String>,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// The processors' settings (`processor::KEY`): `{"image_processor": …, "video_processor": …,
    /// "feature_extractor": …}`, the ones the checkpoint has.
    pub processor: Option<serde_json::Value>,
    /// What the checkpoint was (format, path), recorded in the file.
    pub provenance: serde_json::Value,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("arch", &self.config.arch)
            .field("tensors", &self.plan.items.len())
            .finish()
    }
}

/// Opens `src`: a GGUF file, or a Hugging Face folder (config.json + safetensors).
pub fn open(src: &Path) -> Result<Checkpoint, ImportError> {
    let (mut ck, part) = if src.is_dir() {
        open_hf(src)?
    } else {
        (gguf::open(src)?, None)
    };
    ck.plan.split_tails(splits_tail, tail);
    ck.plan.check(ck.source.as_ref()).map_err(|e| match part {
        Some(w) => e.within(w.section, w.prefix),
        None => e,
    })?;
    Ok(ck)
}

/// A full release whose text-answering part Flint reads: the thinker of Qwen3-Omni-MoE
/// (`Qwen3OmniMoeForConditionalGeneration`) and of Qwen2.5-Omni (`Qwen2_5OmniForConditionalGeneration`), as
/// published on the hub. Their config.json holds the thinker's under `section`, and its tensors sit under `prefix`
/// beside the talker's and the speech decoder's, which turn the answer into speech and are not read.
#[derive(Clone, Copy, Debug)]
struct Wrapper {
    model_type: &'static str,
    thinker: &'static str,
    section: &'static str,
    prefix: &'static str,
}

const WRAPPERS: [Wrapper; 2] = [
    Wrapper {
        model_type: "qwen3_omni_moe",
        thinker: qwen3_omni::ARCH,
        section: "thinker_config",
        prefix: "thinker.",
    },
    Wrapper {
        model_type: "qwen2_5_omni",
        thinker: qwen2_5_omni::ARCH,
        section: "thinker_config",
        prefix: "thinker.",
    },
];

/// The wrapper `v` is (by its `model_type`), and the thinker's config inside it, its own `model_type` checked.
fn unwrap_thinker(
    v: &serde_json::Value,
    path: &Path,
) -> Result<Option<(Wrapper, serde_json::Value)>, ImportError> {
    let ty = v.get("model_type").and_then(|t| t.as_str());
    let Some(w) = WRAPPERS.into_iter().find(|w| Some(w.model_type) == ty) else {
        return Ok(None);
    };
    let bad = |msg: String| ImportError::Config {
        path: path.display().to_string(),
        key: w.section.into(),
        msg,
    };
    let mut t = v
        .get(w.section)
        .filter(|t| t.is_object())
        .cloned()
        .ok_or_else(|| bad("missing or not an object".into()))?;
    match t.get("model_type").and_then(|m| m.as_str()) {
        Some(m) if m != w.thinker => {
            return Err(bad(format!(
                "model_type `{m}` is not {}'s thinker `{}`",
                w.model_type, w.thinker
            )))
        }
        Some(_) => {}
        None => {
            t["model_type"] = w.thinker.into();
        }
    }
    Ok(Some((w, t)))
}

/// Reads a text file of at most `max` bytes; `Ok(None)` when it does not exist.
fn read_opt(p: &Path, max: u64) -> Result<Option<String>, ImportError> {
    match limits::read_to_string_capped(p, max) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImportError::io(p, e)),
    }
}

/// The model description of a config.json (`v`, read from `path`): its raw counts and types checked, translated,
/// and validated.
pub fn hf_config(v: &serde_json::Value, path: &Path) -> Result<ModelConfig, ImportError> {
    precheck::hf_config(v, path)?;
    hf::config_from_json(v, path)
}

fn open_hf(dir: &Path) -> Result<(Checkpoint, Option<Wrapper>), ImportError> {
    let cfg_path = dir.join("config.json");
    let raw = read_opt(&cfg_path, limits::MAX_CONFIG_BYTES)?
        .ok_or_else(|| ImportError::io(&cfg_path, std::io::ErrorKind::NotFound.into()))?;
    let v: serde_json::Value =
        serde_json::from_str(&raw).map_err(|e| ImportError::parse(&cfg_path, e.to_string()))?;
    let (v, config, wrapper) = match unwrap_thinker(&v, &cfg_path)? {
        Some((w, t)) => {
            let c = hf_config(&t, &cfg_path).map_err(|e| e.within(w.section, w.prefix))?;
            (t, c, Some(w))
        }
        None => {
            let c = hf_config(&v, &cfg_path)?;
            (v, c, None)
        }
    };
    let files = source::SafetensorsDir::open(dir)?;
    let source: Box<dyn TensorSource> = match wrapper {
        Some(w) => Box::new(source::Part {
            inner: files,
            prefix: w.prefix,
        }),
        None => Box::new(files),
    };
    let source_ref = source.as_ref();
    let plan = if [muse_spark::ARCH, muse_spark::GLIMMER_ARCH].contains(&config.arch.as_str()) {
        muse_spark::plan(&config, source_ref, muse_spark::temperature(&v, &cfg_path)?)
    } else if config.arch == qwen3_vl::ARCH {
        qwen3_vl::plan(&config, source_ref)
    } else if config.arch == qwen3_omni::ARCH {
        qwen3_omni::plan(&config, source_ref)
    } else if config.arch == qwen2_5_omni::ARCH {
        qwen2_5_omni::plan(&config, source_ref)
    } else {
        hf::plan(&config, source_ref)
    };
    let tokenizer_json = read_opt(&dir.join("tokenizer.json"), limits::MAX_TOKENIZER_BYTES)?;
    // The chat template lives in chat_template.jinja (newer) or tokenizer_config.json (older).
    let tc_path = dir.join("tokenizer_config.json");
    let tc: Option<serde_json::Value> = read_opt(&tc_path, limits::MAX_CONFIG_BYTES)?
        .map(|s| serde_json::from_str(&s).map_err(|e| ImportError::parse(&tc_path, e.to_string())))
        .transpose()?;
    let tc_str = |k: &str| {
        tc.as_ref()
            .and_then(|t| t.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let chat_template = match read_opt(&dir.join("chat_template.jinja"), limits::MAX_CONFIG_BYTES)?
    {
        Some(t) => Some(t),
        None => tc_str("chat_template"),
    };
    let mut provenance =
        serde_json::json!({"format": "huggingface", "path": dir.display().to_string()});
    if let Some(w) = wrapper {
        provenance["part"] =
            format!("{} of {}", w.prefix.trim_end_matches('.'), w.model_type).into();
    }
    let ck = Checkpoint {
        config,
        plan,
        source,
        tokenizer_json,
        chat_template,
        bos_token: tc_str("bos_token"),
        eos_token: tc_str("eos_token"),
        processor: processor::read(dir)?,
        provenance,
    };
    Ok((ck, wrapper))
}

/// Converts f32 values into the bytes of a float `dtype`.
pub fn encode_floats(v: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        DType::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// The metadata every model file carries.
pub fn model_metadata(ck: &Checkpoint, dtype: DType) -> serde_json::Value {
    let mut m = serde_json::json!({
        "general.architecture": ck.config.arch,
        "model.config": ck.config,
        "provenance": ck.provenance,
        "general.weight_type": dtype.name(),
        "general.writer": concat!("flint-quantize ", env!("CARGO_PKG_VERSION")),
    });
    let o = m.as_object_mut().expect("object literal");
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(s) = v {
            o.insert(k.to_string(), serde_json::Value::String(s.clone()));
        }
    };
    put(KEY_TOKENIZER, &ck.tokenizer_json);
    put(KEY_CHAT_TEMPLATE, &ck.chat_template);
    put(KEY_BOS, &ck.bos_token);
    put(KEY_EOS, &ck.eos_token);
    if let Some(p) = &ck.processor {
        o.insert(
            flint_model::multimodal::KEY_PROCESSOR.to_string(),
            p.clone(),
        );
    }
    m
}

/// Writes the checkpoint as a `.flint` file with matrices in `dtype` (vectors stay f32). `progress` is called after
/// each tensor with (done, total).
pub fn write(
    ck: &Checkpoint,
    out: &Path,
    dtype: DType,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), ImportError> {
    if dtype.is_quantized() {
        return Err(ImportError::Parse {
            path: out.display().to_string(),
            msg: format!(
                "import writes f32, f16 or bf16; use `flint-quantize quantize` for {dtype}"
            ),
        });
    }
    // The same check `Model::load` makes: never write a file the runtime would refuse.
    ck.config.validate().map_err(|msg| ImportError::Config {
        path: ck.source.path().display().to_string(),
        key: "model.config".into(),
        msg,
    })?;
    let mut w = Writer::create(out)?;
    w.set_metadata(model_metadata(ck, dtype));
    let fetcher = Fetcher::new(ck.source.as_ref());
    let total = ck.plan.items.len();
    for (i, it) in ck.plan.items.iter().enumerate() {
        let v = fetcher.fetch(it)?;
        let dt = if it.kind.always_f32() {
            DType::F32
        } else {
            dtype
        };
        if it.begin_group {
            w.begin_group()?;
        }
        w.add(&it.name, dt, &it.shape, &encode_floats(&v, dt))?;
        if it.end_group {
            w.end_group();
        }
        progress(i + 1, total);
    }
    w.finish()?;
    Ok(())
}
