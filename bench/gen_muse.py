#!/usr/bin/env python3
"""Generates the random-weight Muse-Spark-shaped benchmark model (issue 12) as a Hugging Face folder.

Shape: decoder hidden 1024, 16 layers (3 sliding of every 4, the 4th full and NoPE), 16 query / 4 KV heads of 64,
vocab 32000, every layer MoE with 64 experts top-8 at moe_hidden (pooled width) 512 and expert width 1024
(decoder about 1.75B parameters, 0.26B active per token; 2.2B with the towers); vision tower hidden 1024, 24 layers, 16 heads, MLP 4096, patch
14, temporal patch 2, merge 2, a 32x32 position table (full attention every 4th and the last layer); adapter 2048;
audio tower as the released config's pyramid (patches 16/6/5/4 = 1920 samples per token, widths
256/512/1024/2048, depths 2, kernel 7, MLP ratio 4) projecting to 1024. Tensor names and layouts are the ones
`save_pretrained` writes for MuseSparkForConditionalGeneration (experts fused, 3-D), as in
../shared/fixtures/hf/muse_spark/model. The tokenizer is gen_moe.py's byte-level BPE with the Muse placeholders
as special tokens; processor_config.json holds the Muse processors' defaults.

Weights: float16, drawn from numpy's PCG64 with std 0.02 (norm weights around 1, gates around 0), seed below.

--glimmer writes `glimmer-rand` instead: MuseGlimmerForConditionalGeneration (model_type `muse_glimmer`) with the
same vision tower shape, adapter and projection (its own draws), a small dense decoder (hidden 1024, 2 layers:
sliding then full, 16 / 4 heads of 64, SwiGLU 2816, vocab 32000) and no audio tower, the config fields as in the
transformers 5.23 fixture (../shared/fixtures/hf/muse_glimmer/model). It exists for the vision-tower comparison
with llama.cpp's mtmd (bench/mtmd.sh): only the image encode is timed, so the decoder is kept small, but it is a
valid model for both `flint-quantize import` and llama.cpp's convert_hf_to_gguf.py (a tokenizer_config.json lets
transformers' AutoTokenizer read tokenizer.json).

Usage: bench/gen_muse.py [--out-dir DIR] [--force] [--glimmer]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_moe  # noqa: E402  (its tokenizer)

NAME = "muse-rand"
SEED = 20261201
GLIMMER_NAME, GLIMMER_SEED, GLIMMER_LAYERS = "glimmer-rand", 20261202, 2
H, LAYERS, HEADS, KV, HD, VOCAB = 1024, 16, 16, 4, 64, 32000
EXPERTS, TOP_K, POOLED, EXPERT_FF, DENSE_FF = 64, 8, 512, 1024, 2816
VH, VLAYERS, VHEADS, VFF, PATCH, TEMP, MERGE, POS = 1024, 24, 16, 4096, 14, 2, 2, 32
ADAPTER = 2048
A_PATCH, A_HID, A_DEPTH, A_KERNEL, A_RATIO = [16, 6, 5, 4], [256, 512, 1024, 2048], [2, 2, 2, 2], 7, 4.0
SPECIALS = ["<|patch|>", "<|video|>", "<|audio|>", "<|image_start|>", "<|image_end|>", "<|vid_start|>",
            "<|vid_frame_separator|>", "<|vid_end|>", "<|soft_audio_start|>", "<|soft_audio_end|>"]


LM = "model.language_model"


def embeddings(mat, vec) -> None:
    mat(f"{LM}.embed_tokens.weight", VOCAB, H, std=1.0)
    mat("lm_head.weight", VOCAB, H)
    vec(f"{LM}.norm.weight", H, 1.0)


def gated_attention(mat, p: str) -> None:
    """A Muse decoder layer's attention projections (q, its sigmoid gate, k, v, o), in this draw order."""
    mat(f"{p}.self_attn.q_proj.weight", HEADS * HD, H)
    mat(f"{p}.self_attn.gate_proj.weight", HEADS * HD, H)
    mat(f"{p}.self_attn.k_proj.weight", KV * HD, H)
    mat(f"{p}.self_attn.v_proj.weight", KV * HD, H)
    mat(f"{p}.self_attn.o_proj.weight", H, HEADS * HD)


def spark_decoder(mat, vec) -> None:
    embeddings(mat, vec)
    for l in range(LAYERS):
        p = f"{LM}.layers.{l}"
        for n in ["input_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]:
            vec(f"{p}.{n}.weight", H)
        for n in ["post_attention_residual_gate", "post_feedforward_residual_gate"]:
            vec(f"{p}.{n}.gate", H, std=0.5)
        gated_attention(mat, p)
        mat(f"{p}.mlp.gate.weight", EXPERTS, H, std=0.1)
        vec(f"{p}.mlp.gate.e_score_correction_bias", EXPERTS, std=0.05)
        mat(f"{p}.mlp.pre_expert_proj.weight", POOLED, H)
        vec(f"{p}.mlp.pre_expert_norm.weight", POOLED)
        mat(f"{p}.mlp.experts.gate_up_proj", EXPERTS, 2 * EXPERT_FF, POOLED)
        mat(f"{p}.mlp.experts.down_proj", EXPERTS, POOLED, EXPERT_FF)
        vec(f"{p}.mlp.experts.post_expert_norm.weight", POOLED)
        mat(f"{p}.mlp.post_expert_proj.weight", H, POOLED)


def vision_tower(mat, vec) -> None:
    vt = "model.vision_tower"
    mat(f"{vt}.patch_embedder.patch_embedding.weight", VH, TEMP * 3 * PATCH * PATCH)
    mat(f"{vt}.patch_embedder.position_embedding_table.weight", POS * POS, VH)
    for n in ["ln_pre", "ln_post"]:
        vec(f"{vt}.{n}.weight", VH, 1.0)
        vec(f"{vt}.{n}.bias", VH)
    for l in range(VLAYERS):
        p = f"{vt}.layers.{l}"
        for n in ["norm1", "norm2"]:
            vec(f"{p}.{n}.weight", VH, 1.0)
            vec(f"{p}.{n}.bias", VH)
        for n in ["q_proj", "k_proj", "v_proj", "proj"]:
            mat(f"{p}.attn.{n}.weight", VH, VH)
            vec(f"{p}.attn.{n}.bias", VH)
        mat(f"{p}.mlp.fc1.weight", VFF, VH)
        vec(f"{p}.mlp.fc1.bias", VFF)
        mat(f"{p}.mlp.fc2.weight", VH, VFF)
        vec(f"{p}.mlp.fc2.bias", VH)
    mat("model.vision_adapter.fc1.weight", ADAPTER, VH * MERGE * MERGE)
    mat("model.vision_adapter.fc2.weight", ADAPTER, ADAPTER)
    mat("model.vision_projection.weight", H, ADAPTER)


def audio_tower(mat, vec) -> None:
    at = "model.audio_tower"
    below = 1
    for i, (ps, w, d) in enumerate(zip(A_PATCH, A_HID, A_DEPTH)):
        p = f"{at}.layers.{i}"
        mat(f"{p}.patch_embedder.proj.weight", w, ps * below)
        vec(f"{p}.patch_embedder.proj.bias", w)
        vec(f"{p}.patch_embedder.norm.weight", w, 1.0)
        m = int(w * A_RATIO)
        for b in range(d):
            q = f"{p}.conv_blocks.{b}"
            mat(f"{q}.conv.weight", w, 1, A_KERNEL, std=0.2)
            vec(f"{q}.conv.bias", w)
            vec(f"{q}.norm.weight", w, 1.0)
            mat(f"{q}.mlp.fc1.weight", m, w)
            vec(f"{q}.mlp.fc1.bias", m)
            mat(f"{q}.mlp.fc2.weight", w, m)
            vec(f"{q}.mlp.fc2.bias", w)
        below = w
    vec(f"{at}.norm.weight", below, 1.0)
    mat(f"{at}.proj.weight", H, below)
    vec(f"{at}.proj.bias", H)
    vec(f"{at}.post_proj_norm.weight", H, 1.0)


def glimmer_decoder(mat, vec) -> None:
    embeddings(mat, vec)
    for l in range(GLIMMER_LAYERS):
        p = f"{LM}.layers.{l}"
        for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"]:
            vec(f"{p}.{n}.weight", H)
        gated_attention(mat, p)
        mat(f"{p}.mlp.gate_proj.weight", DENSE_FF, H)
        mat(f"{p}.mlp.up_proj.weight", DENSE_FF, H)
        mat(f"{p}.mlp.down_proj.weight", H, DENSE_FF)


def write_glimmer_config(out: Path, ids: dict, vision: dict, image_processor: dict) -> None:
    """config.json (fields as the transformers 5.23 fixture's), processor_config.json, tokenizer_config.json."""
    layer_types = ["sliding_attention", "full_attention"][:GLIMMER_LAYERS]
    config = {
        "architectures": ["MuseGlimmerForConditionalGeneration"], "model_type": "muse_glimmer", "dtype": "float16",
        "image_token_id": ids["<|patch|>"], "video_token_id": ids["<|video|>"],
        "out_hidden_size": VH * MERGE * MERGE, "projector_hidden_size": ADAPTER, "projector_hidden_act": "gelu",
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "muse_glimmer_text", "vocab_size": VOCAB, "hidden_size": H, "intermediate_size": DENSE_FF,
            "num_hidden_layers": GLIMMER_LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV,
            "head_dim": HD, "attention_bias": False, "attention_dropout": 0.0, "hidden_activation": "silu",
            "max_position_embeddings": 65536, "rms_norm_eps": 1e-5, "post_norm_eps": 1e-8,
            "layer_types": layer_types,
            "layer_rope_theta": [0 if f == "full_attention" else 500000.0 for f in layer_types],
            "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}, "sliding_window": 2048,
            "final_logit_softcapping": 20.0, "output_multiplier": 2.0, "qk_scale_factor": 3.87,
            "tie_word_embeddings": False, "bos_token_id": gen_moe.EOS_ID,
            "eos_token_id": gen_moe.EOS_ID, "pad_token_id": gen_moe.PAD_ID,
        },
        "vision_config": vision,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    # The processor's defaults spelled out (llama.cpp's converter reads image_mean / image_std from the file).
    image_processor = {**image_processor, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                       "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (out / "processor_config.json").write_text(json.dumps({
        "processor_class": "MuseGlimmerProcessor", "image_processor": image_processor}, indent=1))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 65536}, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / ".cache" / "models"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--glimmer", action="store_true", help="write the Muse Glimmer model glimmer-rand instead")
    a = ap.parse_args()
    out = Path(a.out_dir) / (GLIMMER_NAME if a.glimmer else NAME)
    if (out / "model.safetensors").exists() and not a.force:
        print(f"have {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    rng = np.random.Generator(np.random.PCG64(GLIMMER_SEED if a.glimmer else SEED))
    t: dict[str, np.ndarray] = {}

    def mat(name, *shape, std=0.02):
        t[name] = (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float16)

    def vec(name, n, base=0.0, std=0.02):
        t[name] = (base + rng.standard_normal(n, dtype=np.float32) * std).astype(np.float16)

    if a.glimmer:
        glimmer_decoder(mat, vec)
    else:
        spark_decoder(mat, vec)
    vision_tower(mat, vec)
    if not a.glimmer:
        audio_tower(mat, vec)
    save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})

    tj, ids = gen_moe.tokenizer_with_specials(SPECIALS)  # the first filler tokens become them
    (out / "tokenizer.json").write_text(json.dumps(tj))
    vision = {
        "model_type": "muse_glimmer_vision" if a.glimmer else "muse_spark_vision", "hidden_size": VH,
        "intermediate_size": VFF, "num_hidden_layers": VLAYERS, "num_attention_heads": VHEADS, "patch_size": PATCH,
        "patch_temporal": TEMP, "merge_size": MERGE, "pos_emb_height": POS, "pos_emb_width": POS,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "max_position_embeddings": POS * POS,
        "rope_parameters": {"rope_theta": 10000.0, "rope_type": "axial"},
        "layer_types": ["full_attention" if (l + 1) % 4 == 0 or l == VLAYERS - 1 else "window_attention"
                        for l in range(VLAYERS)],
    }
    image_processor = {"image_processor_type": "MuseGlimmerImageProcessor", "patch_size": PATCH,
                       "temporal_patch_size": TEMP, "merge_size": MERGE, "max_image_tokens": 4096}
    if a.glimmer:
        write_glimmer_config(out, ids, vision, image_processor)
        print(f"wrote {out}")
        return 0
    full = ["full_attention" if (LAYERS - 1 - l) % 4 == 0 else "sliding_attention" for l in range(LAYERS)]
    config = {
        "architectures": ["MuseSparkForConditionalGeneration"], "model_type": "muse_spark",
        "image_token_id": ids["<|patch|>"], "video_token_id": ids["<|video|>"], "audio_token_id": ids["<|audio|>"],
        "out_hidden_size": VH * MERGE * MERGE, "projector_hidden_size": ADAPTER, "projector_hidden_act": "gelu",
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "muse_spark_text", "vocab_size": VOCAB, "hidden_size": H, "intermediate_size": DENSE_FF,
            "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV, "head_dim": HD,
            "max_position_embeddings": 65536, "rms_norm_eps": 1e-5, "layer_types": full,
            "layer_rope_theta": [0 if f == "full_attention" else 500000.0 for f in full],
            "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}, "sliding_window": 2048,
            "mlp_layer_types": ["sparse"] * LAYERS, "num_local_experts": EXPERTS, "num_experts_per_tok": TOP_K,
            "moe_intermediate_size": EXPERT_FF, "moe_hidden_size": POOLED, "routed_scaling_factor": 1.0,
            "eos_token_id": gen_moe.EOS_ID, "pad_token_id": gen_moe.PAD_ID,
        },
        "vision_config": vision,
        "audio_config": {
            "model_type": "muse_spark_audio", "patch_sizes": A_PATCH, "hidden_sizes": A_HID, "depths": A_DEPTH,
            "num_hidden_layers": len(A_PATCH), "mlp_ratio": A_RATIO, "conv_kernel_size": A_KERNEL,
            "out_hidden_size": H,
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "processor_config.json").write_text(json.dumps({
        "processor_class": "MuseSparkProcessor",
        "image_processor": image_processor,
        "feature_extractor": {"feature_extractor_type": "MuseSparkFeatureExtractor", "samples_per_token": 1920,
                              "sampling_rate": 24000, "feature_size": 1},
    }, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
