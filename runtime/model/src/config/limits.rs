//! Caps on everything a model description or a user may hand the runtime, in one place (docs/FORMAT.md,
//! "Limits", lists them). A model file, a config.json or a GGUF header comes from outside: every count is checked
//! against its cap, and every product used as a size is computed with checked arithmetic, before anything is
//! allocated or looped over. The importers and the runtime call the same [`check_config`] (through
//! [`ModelConfig::validate`]), so neither can write or load what the other would refuse.
//!
//! The caps are far above any released model (the largest today have ~128 layers, 128 heads, 256 experts, 256k
//! vocabularies) and far below what would exhaust a device's memory or time before a tensor is even read.

// Sizes here come from outside the process: no unchecked arithmetic or indexing.
#![warn(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use super::ModelConfig;

/// Decoder blocks.
pub const MAX_LAYERS: usize = 1024;
/// Attention heads, and key/value heads.
pub const MAX_HEADS: usize = 1024;
/// Values per head.
pub const MAX_HEAD_DIM: usize = 1024;
/// Hidden (residual stream) width.
pub const MAX_HIDDEN: usize = 1 << 16;
/// Width of a dense feed-forward layer.
pub const MAX_INTERMEDIATE: usize = 1 << 18;
/// Routed experts per MoE layer.
pub const MAX_EXPERTS: usize = 1024;
/// Experts chosen per token.
pub const MAX_TOP_K: usize = 64;
/// Width of one expert (routed or shared).
pub const MAX_EXPERT_WIDTH: usize = 1 << 18;
/// Vocabulary entries.
pub const MAX_VOCAB: usize = 1 << 22;
/// Positions (`max_position_embeddings`, the context).
pub const MAX_POSITIONS: usize = 1 << 24;
/// `position_id_per_seconds` of an Omni thinker (13 and 25 in the releases).
pub const MAX_POSITION_PER_SECOND: u32 = 1 << 16;
/// `heads × head_dim` (the q projection's rows) and `kv_heads × head_dim`.
pub const MAX_PROJ: usize = 1 << 18;
/// Elements of one matrix (`vocab × hidden`, `inter × hidden`, …): 2^34, 32 GiB at f16.
pub const MAX_MATRIX_ELEMS: usize = 1 << 34;
/// End-of-sequence ids.
pub const MAX_EOS_IDS: usize = 64;
/// `rms_norm_eps` must lie in `(0, MAX_EPS]`.
pub const MAX_EPS: f32 = 1.0;

/// Bytes of a config.json, tokenizer_config.json or chat template read by the importer.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Bytes of a tokenizer.json read by the importer (the largest real ones are ~20 MB).
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;
/// Bytes of one line of a line-oriented input (`flint bridge encode`, `--ids-file`).
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Total bytes of a line-oriented input.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;
/// minijinja fuel for one chat-template render (roughly one unit per instruction; real templates use < 10^4 per
/// message).
pub const TEMPLATE_FUEL: u64 = 1_000_000;
/// Bytes of a rendered chat template.
pub const MAX_TEMPLATE_OUTPUT: usize = 1 << 20;

/// The architectures the decoder runs (`arch`).
pub const ARCHITECTURES: &[&str] = &[
    "llama",
    "qwen2",
    "qwen3",
    "gemma3_text",
    "qwen2_moe",
    "qwen3_moe",
    "olmoe",
    "mixtral",
    "muse_spark",
    "muse_glimmer",
    "qwen3_vl_moe",
    "qwen3_omni_moe_thinker",
    "qwen2_5_omni_thinker",
];

/// Reads the file at `path` as UTF-8 text of at most `max` bytes. A directory, a file over the cap or a
/// stream without end is an error, not an allocation without bound.
pub fn read_to_string_capped(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let f = std::fs::File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(Error::new(
            ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    }
    let mut s = String::new();
    f.take(max.saturating_add(1)).read_to_string(&mut s)?;
    if s.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::FileTooLarge,
            format!("larger than the cap of {max} bytes"),
        ));
    }
    Ok(s)
}

/// What is wrong with a model description, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {msg}")]
pub struct Invalid {
    pub field: &'static str,
    pub msg: String,
}

fn bad(field: &'static str, msg: String) -> Invalid {
    Invalid { field, msg }
}

/// `v` must be in `1..=max`.
pub fn count(field: &'static str, v: usize, max: usize) -> Result<usize, Invalid> {
    if v == 0 {
        return Err(bad(field, "must be positive".into()));
    }
    at_most(field, v, max)
}

/// `v` must be at most `max`.
pub fn at_most(field: &'static str, v: usize, max: usize) -> Result<usize, Invalid> {
    if v > max {
        return Err(bad(field, format!("= {v} exceeds the cap {max}")));
    }
    Ok(v)
}

/// The product of `factors` (a size), which must not overflow and must be at most `max`. `field` names the
/// product, e.g. `num_heads × head_dim`.
pub fn product(field: &'static str, factors: &[usize], max: usize) -> Result<usize, Invalid> {
    let p = factors
        .iter()
        .try_fold(1usize, |a, &f| a.checked_mul(f))
        .filter(|&p| p <= max);
    p.ok_or_else(|| {
        bad(
            field,
            format!("= {factors:?} multiplied exceeds the cap {max}"),
        )
    })
}

/// A float that must be finite and in `(0, max]`.
pub fn positive(field: &'static str, v: f32, max: f32) -> Result<f32, Invalid> {
    if !(v.is_finite() && v > 0.0 && v <= max) {
        return Err(bad(
            field,
            format!("= {v} must be finite and in (0, {max}]"),
        ));
    }
    Ok(v)
}

/// A token id, which must lie inside the vocabulary.
pub fn token_id(field: &'static str, id: u32, vocab: usize) -> Result<u32, Invalid> {
    if id as usize >= vocab {
        return Err(bad(
            field,
            format!("= {id} is outside the vocabulary of {vocab}"),
        ));
    }
    Ok(id)
}

/// Every check of [`ModelConfig::validate`].
pub fn check_config(c: &ModelConfig) -> Result<(), Invalid> {
    if !ARCHITECTURES.contains(&c.arch.as_str()) {
        return Err(bad(
            "arch",
            format!(
                "`{}` is not one the decoder runs ({})",
                c.arch,
                ARCHITECTURES.join(", ")
            ),
        ));
    }
    let vocab = count("vocab_size", c.vocab_size, MAX_VOCAB)?;
    let h = count("hidden_size", c.hidden_size, MAX_HIDDEN)?;
    let layers = count("num_layers", c.num_layers, MAX_LAYERS)?;
    let heads = count("num_heads", c.num_heads, MAX_HEADS)?;
    let kv_heads = count("num_kv_heads", c.num_kv_heads, MAX_HEADS)?;
    let hd = count("head_dim", c.head_dim, MAX_HEAD_DIM)?;
    count(
        "max_position_embeddings",
        c.max_position_embeddings,
        MAX_POSITIONS,
    )?;
    at_most("intermediate_size", c.intermediate_size, MAX_INTERMEDIATE)?;
    if heads.checked_rem(kv_heads) != Some(0) {
        return Err(bad(
            "num_heads",
            format!("({heads}) is not a multiple of `num_kv_heads` ({kv_heads})"),
        ));
    }
    if hd % 2 != 0 {
        return Err(bad("head_dim", format!("({hd}) must be even for RoPE")));
    }
    positive("rope_theta", c.rope_theta, f32::MAX)?;
    positive("rms_norm_eps", c.rms_norm_eps, MAX_EPS)?;
    let qd = product("num_heads × head_dim", &[heads, hd], MAX_PROJ)?;
    product("num_kv_heads × head_dim", &[kv_heads, hd], MAX_PROJ)?;
    product("vocab_size × hidden_size", &[vocab, h], MAX_MATRIX_ELEMS)?;
    product(
        "num_heads × head_dim × hidden_size",
        &[qd, h],
        MAX_MATRIX_ELEMS,
    )?;
    product(
        "intermediate_size × hidden_size",
        &[c.intermediate_size, h],
        MAX_MATRIX_ELEMS,
    )?;
    if let Some(id) = c.bos_token_id {
        token_id("bos_token_id", id, vocab)?;
    }
    at_most("eos_token_ids", c.eos_token_ids.len(), MAX_EOS_IDS)?;
    for &id in &c.eos_token_ids {
        token_id("eos_token_ids", id, vocab)?;
    }
    let mut dense = true;
    if let Some(m) = &c.moe {
        let e = count("moe.num_experts", m.num_experts, MAX_EXPERTS)?;
        count("moe.top_k", m.top_k, MAX_TOP_K.min(e))?;
        let w = count("moe.expert_width", m.expert_width, MAX_EXPERT_WIDTH)?;
        product("moe.expert_width × hidden_size", &[w, h], MAX_MATRIX_ELEMS)?;
        product("moe.num_experts × hidden_size", &[e, h], MAX_MATRIX_ELEMS)?;
        if let Some(sw) = m.shared_expert_width {
            count("moe.shared_expert_width", sw, MAX_EXPERT_WIDTH)?;
            product(
                "moe.shared_expert_width × hidden_size",
                &[sw, h],
                MAX_MATRIX_ELEMS,
            )?;
        }
        if m.shared_expert_gate && m.shared_expert_width.is_none() {
            return Err(bad(
                "moe.shared_expert_gate",
                "is set without a `shared_expert_width`".into(),
            ));
        }
        if m.moe_layers.len() != layers {
            return Err(bad(
                "moe.moe_layers",
                format!("has {} entries for {layers} layers", m.moe_layers.len()),
            ));
        }
        dense = m.moe_layers.iter().any(|&x| !x);
    }
    if dense && c.intermediate_size == 0 {
        return Err(bad(
            "intermediate_size",
            "must be positive when a layer is dense".into(),
        ));
    }
    if let Some(v) = &c.vision {
        check_vision(v, c)?;
    }
    if let Some(a) = &c.audio {
        check_audio(a, h, vocab)?;
    }
    if let Some(a) = &c.mel_audio {
        check_mel_audio(a, h, vocab)?;
    }
    Ok(())
}

/// Side of a vision patch, in pixels.
pub const MAX_PATCH_SIZE: usize = 1024;
/// Frames in one vision patch.
pub const MAX_PATCH_TEMPORAL: usize = 64;
/// Side of a vision position table, and of a patch merge.
pub const MAX_POS_GRID: usize = 1024;
/// `merge_size`: patches merged per token along each side.
pub const MAX_MERGE: usize = 16;
/// Patches one vision call may encode (all images and frames together): 2^18, far above a 4096-token image.
pub const MAX_VISION_PATCHES: usize = 1 << 18;
/// Images and videos in one vision call.
pub const MAX_VISION_GRIDS: usize = 4096;

/// The checks of `model.config.vision` (called from [`check_config`]); `c` is the decoder it feeds.
pub fn check_vision(v: &super::vision::VisionConfig, c: &ModelConfig) -> Result<(), Invalid> {
    let d = count("vision.hidden_size", v.hidden_size, MAX_HIDDEN)?;
    let inter = count(
        "vision.intermediate_size",
        v.intermediate_size,
        MAX_INTERMEDIATE,
    )?;
    let layers = count("vision.num_layers", v.num_layers, MAX_LAYERS)?;
    let heads = count("vision.num_heads", v.num_heads, MAX_HEADS)?;
    if d.checked_rem(heads) != Some(0) || d.checked_div(heads).unwrap_or(1) % 4 != 0 {
        return Err(bad(
            "vision.num_heads",
            format!("({heads}) must split `vision.hidden_size` ({d}) into heads of a multiple of 4 values (axial RoPE)"),
        ));
    }
    let p = count("vision.patch_size", v.patch_size, MAX_PATCH_SIZE)?;
    let t = count(
        "vision.patch_temporal",
        v.patch_temporal,
        MAX_PATCH_TEMPORAL,
    )?;
    let row = product(
        "vision.patch_temporal × 3 × patch_size²",
        &[t, 3, p, p],
        MAX_PROJ,
    )?;
    product("vision patch embedding", &[row, d], MAX_MATRIX_ELEMS)?;
    let side = count("vision.pos_emb_height", v.pos_emb_height, MAX_POS_GRID)?;
    if v.pos_emb_width != side {
        return Err(bad(
            "vision.pos_emb_width",
            format!(
                "({}) must equal `vision.pos_emb_height` ({side}): the table is square",
                v.pos_emb_width
            ),
        ));
    }
    product("vision position table", &[side, side, d], MAX_MATRIX_ELEMS)?;
    let m = count("vision.merge_size", v.merge_size, MAX_MERGE)?;
    let merged = product("vision.hidden_size × merge_size²", &[d, m, m], MAX_HIDDEN)?;
    let a = count("vision.adapter_size", v.adapter_size, MAX_INTERMEDIATE)?;
    product(
        "vision adapter",
        &[merged.max(a).max(c.hidden_size), a],
        MAX_MATRIX_ELEMS,
    )?;
    product("vision MLP", &[inter, d], MAX_MATRIX_ELEMS)?;
    positive("vision.layer_norm_eps", v.layer_norm_eps, MAX_EPS)?;
    positive("vision.rope_theta", v.rope_theta, f32::MAX)?;
    if v.full_layers.len() != layers {
        return Err(bad(
            "vision.full_layers",
            format!("has {} entries for {layers} layers", v.full_layers.len()),
        ));
    }
    token_id("vision.image_token_id", v.image_token_id, c.vocab_size)?;
    token_id("vision.video_token_id", v.video_token_id, c.vocab_size)?;
    let deep = &v.deepstack_layers;
    if !deep.is_empty() && v.kind != super::vision::VisionKind::Qwen3Vl {
        return Err(bad(
            "vision.deepstack_layers",
            "are only read by the `qwen3_vl` tower".into(),
        ));
    }
    if deep.iter().zip(deep.iter().skip(1)).any(|(a, b)| a >= b) {
        return Err(bad(
            "vision.deepstack_layers",
            format!("{deep:?} must be strictly increasing"),
        ));
    }
    if let Some(&l) = deep.iter().find(|&&l| l >= layers) {
        return Err(bad(
            "vision.deepstack_layers",
            format!("entry {l} is not one of the {layers} vision layers"),
        ));
    }
    if deep.len() > c.num_layers {
        return Err(bad(
            "vision.deepstack_layers",
            format!(
                "has {} entries for {} decoder layers to add them into",
                deep.len(),
                c.num_layers
            ),
        ));
    }
    let qwen = matches!(
        v.kind,
        super::vision::VisionKind::Qwen3Vl | super::vision::VisionKind::Qwen25Vl
    );
    if v.kind == super::vision::VisionKind::Qwen25Vl {
        count("vision.window", v.window, MAX_POS_GRID)?;
    }
    if qwen && v.adapter_size != merged {
        return Err(bad(
            "vision.adapter_size",
            format!("({a}) must be the merged width {merged} for a Qwen tower"),
        ));
    }
    Ok(())
}

/// Mel bins of a log-mel encoder's input.
pub const MAX_MEL_BINS: usize = 1024;
/// Frames of a log-mel encoder's chunk (`2 · n_window`) and window.
pub const MAX_MEL_WINDOW: usize = 1 << 16;

/// The checks of a log-mel audio encoder; `hidden` and `vocab` are the decoder's.
pub fn check_mel_audio(
    a: &super::mel_audio::MelAudioConfig,
    hidden: usize,
    vocab: usize,
) -> Result<(), Invalid> {
    count("mel_audio.num_mel_bins", a.num_mel_bins, MAX_MEL_BINS)?;
    let ds = count("mel_audio.downsample", a.downsample, MAX_HIDDEN)?;
    let d = count("mel_audio.d_model", a.d_model, MAX_HIDDEN)?;
    count("mel_audio.num_layers", a.num_layers, MAX_LAYERS)?;
    let heads = count("mel_audio.num_heads", a.num_heads, MAX_HEADS)?;
    if d.checked_rem(heads) != Some(0) {
        return Err(bad(
            "mel_audio.num_heads",
            format!("({heads}) does not divide `mel_audio.d_model` ({d})"),
        ));
    }
    let ffn = count("mel_audio.ffn_dim", a.ffn_dim, MAX_INTERMEDIATE)?;
    product("mel_audio MLP", &[ffn, d], MAX_MATRIX_ELEMS)?;
    product("mel_audio convolutions", &[ds, ds, 9], MAX_MATRIX_ELEMS)?;
    product(
        "mel_audio conv_out",
        &[a.conv_out_in(), d],
        MAX_MATRIX_ELEMS,
    )?;
    let w = count("mel_audio.n_window", a.n_window, MAX_MEL_WINDOW / 2)?;
    let inf = count("mel_audio.n_window_infer", a.n_window_infer, MAX_MEL_WINDOW)?;
    let chunk = w.saturating_mul(2);
    if inf.checked_rem(chunk) != Some(0) {
        return Err(bad(
            "mel_audio.n_window_infer",
            format!("({inf}) must be a multiple of 2 · n_window ({chunk})"),
        ));
    }
    let steps = super::mel_audio::MelAudioConfig::after_convs(chunk);
    let p = count(
        "mel_audio.max_source_positions",
        a.max_source_positions,
        MAX_POSITIONS,
    )?;
    if p < steps {
        return Err(bad(
            "mel_audio.max_source_positions",
            format!("({p}) is below the {steps} steps of a chunk"),
        ));
    }
    if a.output_dim != hidden {
        return Err(bad(
            "mel_audio.output_dim",
            format!(
                "({}) must be the decoder's hidden_size ({hidden})",
                a.output_dim
            ),
        ));
    }
    token_id("mel_audio.token_id", a.token_id, vocab)?;
    Ok(())
}

/// Layers of an audio tower's pyramid.
pub const MAX_AUDIO_LAYERS: usize = 16;
/// Conv blocks in one audio layer.
pub const MAX_AUDIO_DEPTH: usize = 256;
/// Kernel of an audio convolution.
pub const MAX_AUDIO_KERNEL: usize = 1024;
/// Waveform samples per audio token (the product of `patch_sizes`; 1920 in the released model).
pub const MAX_SAMPLES_PER_TOKEN: usize = 1 << 16;
/// Waveform samples handed to the audio tower in one call (10 minutes at 24 kHz).
pub const MAX_AUDIO_SAMPLES: usize = 24_000 * 600;

/// The checks of an audio tower description; `hidden` and `vocab` are the decoder's.
pub fn check_audio(a: &super::AudioConfig, hidden: usize, vocab: usize) -> Result<(), Invalid> {
    let n = count("audio.patch_sizes", a.patch_sizes.len(), MAX_AUDIO_LAYERS)?;
    for (field, len) in [
        ("audio.hidden_sizes", a.hidden_sizes.len()),
        ("audio.depths", a.depths.len()),
        ("audio.mlp_sizes", a.mlp_sizes.len()),
    ] {
        if len != n {
            return Err(bad(
                field,
                format!("has {len} entries for {n} layers (`audio.patch_sizes`)"),
            ));
        }
    }
    product("audio.patch_sizes", &a.patch_sizes, MAX_SAMPLES_PER_TOKEN)?;
    let kernel = count("audio.conv_kernel", a.conv_kernel, MAX_AUDIO_KERNEL)?;
    let mut below = 1;
    for i in 0..n {
        let at = |v: &[usize]| v.get(i).copied().unwrap_or(0);
        let p = count(
            "audio.patch_sizes",
            at(&a.patch_sizes),
            MAX_SAMPLES_PER_TOKEN,
        )?;
        let w = count("audio.hidden_sizes", at(&a.hidden_sizes), MAX_HIDDEN)?;
        at_most("audio.depths", at(&a.depths), MAX_AUDIO_DEPTH)?;
        let m = count("audio.mlp_sizes", at(&a.mlp_sizes), MAX_INTERMEDIATE)?;
        product(
            "audio patch embedding (hidden × patch × width below)",
            &[w, p, below],
            MAX_MATRIX_ELEMS,
        )?;
        product("audio.mlp_sizes × hidden_sizes", &[m, w], MAX_MATRIX_ELEMS)?;
        product(
            "audio.conv_kernel × hidden_sizes",
            &[kernel, w],
            MAX_MATRIX_ELEMS,
        )?;
        below = w;
    }
    if a.out_size != hidden {
        return Err(bad(
            "audio.out_size",
            format!(
                "({}) must equal `hidden_size` ({hidden}): the embeddings replace token rows",
                a.out_size
            ),
        ));
    }
    product(
        "audio.out_size × hidden_sizes",
        &[a.out_size, below],
        MAX_MATRIX_ELEMS,
    )?;
    positive("audio.rms_norm_eps", a.rms_norm_eps, MAX_EPS)?;
    token_id("audio.token_id", a.token_id, vocab)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MoeConfig;

    fn good() -> ModelConfig {
        ModelConfig {
            arch: "qwen3_moe".into(),
            vocab_size: 256,
            hidden_size: 64,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            intermediate_size: 128,
            rope_theta: 1e6,
            rms_norm_eps: 1e-6,
            max_position_embeddings: 4096,
            tie_word_embeddings: false,
            qkv_bias: false,
            o_bias: false,
            qk_norm: crate::QkNorm::PerHead,
            moe: Some(MoeConfig {
                num_experts: 8,
                top_k: 2,
                expert_width: 32,
                norm_topk_prob: true,
                shared_expert_width: None,
                shared_expert_gate: false,
                moe_layers: vec![true, false],
                ..Default::default()
            }),
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
            ..Default::default()
        }
    }

    fn field(f: impl FnOnce(&mut ModelConfig)) -> &'static str {
        let mut c = good();
        f(&mut c);
        check_config(&c).expect_err("should be refused").field
    }

    #[test]
    fn every_field_is_checked_and_named() {
        assert_eq!(check_config(&good()), Ok(()));
        assert_eq!(field(|c| c.num_layers = 1_000_000_000), "num_layers");
        assert_eq!(field(|c| c.num_layers = 0), "num_layers");
        assert_eq!(field(|c| c.arch = "gpt-neox".into()), "arch");
        assert_eq!(field(|c| c.vocab_size = usize::MAX), "vocab_size");
        assert_eq!(field(|c| c.hidden_size = 1 << 20), "hidden_size");
        assert_eq!(field(|c| c.num_heads = 3), "num_heads");
        assert_eq!(field(|c| c.num_kv_heads = 5000), "num_kv_heads");
        assert_eq!(field(|c| c.head_dim = 15), "head_dim");
        assert_eq!(
            field(|c| c.intermediate_size = 1 << 40),
            "intermediate_size"
        );
        assert_eq!(
            field(|c| c.max_position_embeddings = 1 << 40),
            "max_position_embeddings"
        );
        assert_eq!(field(|c| c.rms_norm_eps = -1.0), "rms_norm_eps");
        assert_eq!(field(|c| c.rms_norm_eps = f32::NAN), "rms_norm_eps");
        assert_eq!(field(|c| c.rope_theta = f32::INFINITY), "rope_theta");
        assert_eq!(field(|c| c.bos_token_id = Some(256)), "bos_token_id");
        assert_eq!(
            field(|c| c.eos_token_ids = vec![2, 1 << 30]),
            "eos_token_ids"
        );
        let moe = |f: fn(&mut MoeConfig)| field(move |c| f(c.moe.as_mut().unwrap()));
        assert_eq!(moe(|m| m.num_experts = 1 << 30), "moe.num_experts");
        assert_eq!(moe(|m| m.top_k = 9), "moe.top_k");
        assert_eq!(moe(|m| m.expert_width = 0), "moe.expert_width");
        assert_eq!(moe(|m| m.moe_layers.push(true)), "moe.moe_layers");
        assert_eq!(
            moe(|m| m.shared_expert_gate = true),
            "moe.shared_expert_gate"
        );
    }

    #[test]
    fn products_are_checked_not_wrapped() {
        // heads × head_dim would wrap to a small number in a release build without checked arithmetic.
        let e = product("num_heads × head_dim", &[1 << 33, 1 << 31], usize::MAX).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
        assert_eq!(
            field(|c| {
                c.num_heads = 1024;
                c.num_kv_heads = 1024;
                c.head_dim = 1024
            }),
            "num_heads × head_dim"
        );
        assert_eq!(
            field(|c| {
                c.vocab_size = MAX_VOCAB;
                c.hidden_size = MAX_HIDDEN
            }),
            "vocab_size × hidden_size"
        );
    }
}
