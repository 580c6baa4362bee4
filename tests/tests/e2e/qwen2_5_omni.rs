//! The thinker of Qwen2.5-Omni against transformers (../shared/fixtures/hf/qwen2_5_omni_thinker, the original
//! release's names): imported at f32; the Qwen2.5-VL tower (window attention on the layers that are not full, in
//! window order as transformers records it), the audio encoder (1-D convolutions, attention per chunk, pairs
//! averaged), the sectioned M-RoPE positions, then the image + audio + text prompt through the dense decoder and
//! `flint logits --inputs`, each within 1e-4 of the reference's largest magnitude.

use crate::qwen3_omni::{conformance, conformance_of, release_folder};
use crate::qwen3_vl::type_refusals;

#[test]
fn matches_transformers() {
    conformance("qwen2_5_omni_thinker", "model");
}

/// The thinker of a full Qwen2.5-Omni release (`Qwen2_5OmniForConditionalGeneration`: config under
/// `thinker_config`, tensors under `thinker.` beside the talker's and token2wav's) matches as the thinker alone.
#[test]
fn full_release_layout_matches_transformers() {
    let dir = release_folder(
        "qwen2_5_omni_thinker",
        "qwen2_5_omni",
        &[
            "talker.model.norm.weight",
            "token2wav.code2wav_dit_model.norm.weight",
        ],
    );
    conformance_of("qwen2_5_omni_thinker", dir.path());
}

/// Tower settings the runtime would not honour are refused at import, naming the key.
#[test]
fn refused_configs_name_their_key() {
    type_refusals(
        "qwen2_5_omni_thinker",
        &[
            ("window_size", |c| {
                c["vision_config"]["window_size"] = 8.into()
            }),
            ("fullatt_block_indexes", |c| {
                c["vision_config"]["fullatt_block_indexes"] = serde_json::json!([2])
            }),
            ("hidden_act", |c| {
                c["vision_config"]["hidden_act"] = "gelu".into()
            }),
            ("mrope.sections", |c| {
                c["text_config"]["rope_parameters"]["mrope_section"] = serde_json::json!([2, 3, 4])
            }),
        ],
    );
}
