#!/usr/bin/env python3
"""Generates the random-weight Qwen3-Omni-shaped benchmark thinker (issue 14) as a Hugging Face folder laid out as
the released Qwen/Qwen3-Omni-30B-A3B-Instruct is: `Qwen3OmniMoeForConditionalGeneration`, model_type
`qwen3_omni_moe`, the thinker's config under `thinker_config` and its tensors under `thinker.` with the original
release's names (per-expert 2-D matrices, `thinker.model.*`, `thinker.visual.*`, `thinker.audio_tower.*`,
`thinker.lm_head.weight`), written without a talker (`enable_audio_output: false`), so that both
`flint-quantize import` and llama.cpp's convert_hf_to_gguf.py read the same folder.

Shape: the towers as released (vision: 27 layers of 1152, MLP 4304, 16 heads, patch 16, temporal patch 2, merge
2, a 48x48 position table, deepstack from layers 8, 16 and 24; audio: 32 layers of 1280, MLP 5120, 20 heads, 128
mel bins, chunks of 100 frames through three 3x3 stride-2 convolutions of 480 channels, attention within 800
frames), and a decoder a board can hold: hidden 1024, 16 layers, 16 query / 4 KV heads of 128 (interleaved M-RoPE
sections 24/20/20, as released), every layer MoE with 64 experts top-8 of width 512 (the release: 2048 wide, 48
layers, 128 experts of 768), vocab 32000. 2.93 B parameters: decoder 1.76 B (0.32 B active per token with the
head), vision 0.52 B (0.10 B of it the merger and the three deepstack mergers), audio 0.65 B. The tokenizer is gen_moe.py's byte-level BPE with the Qwen3-Omni special tokens;
preprocessor_config.json holds the release's Qwen2VLImageProcessor and WhisperFeatureExtractor settings in one
file, as the release does.

Weights: float16, drawn from numpy's PCG64 with std 0.02 (norm weights around 1), seed below.

Usage: bench/gen_qwen_omni.py [--out-dir DIR] [--force] [--tiny]
  --tiny writes a 2-layer miniature (qwen-omni-tiny) of the same layout, for checking the names quickly.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_moe  # noqa: E402  (its tokenizer)

NAME, SEED = "qwen-omni-rand", 20261203
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
            "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                 "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                 "{% endif %}")


def shape(tiny: bool) -> dict:
    if tiny:
        return dict(H=64, LAYERS=2, HEADS=4, KV=2, HD=24, SECTIONS=[4, 4, 4], EXPERTS=8, TOP_K=2, FF=40, VOCAB=32000,
                    VH=64, VLAYERS=2, VHEADS=4, VFF=128, PATCH=16, POS=64, DEEP=[0],
                    AD=64, ALAYERS=2, AHEADS=4, AFF=128, MELS=128, DS=32)
    return dict(H=1024, LAYERS=16, HEADS=16, KV=4, HD=128, SECTIONS=[24, 20, 20], EXPERTS=64, TOP_K=8, FF=512,
                VOCAB=32000, VH=1152, VLAYERS=27, VHEADS=16, VFF=4304, PATCH=16, POS=2304, DEEP=[8, 16, 24],
                AD=1280, ALAYERS=32, AHEADS=20, AFF=5120, MELS=128, DS=480)


def decoder(s: dict, mat, vec) -> None:
    H, HD = s["H"], s["HD"]
    mat("thinker.model.embed_tokens.weight", s["VOCAB"], H, std=1.0)
    for l in range(s["LAYERS"]):
        p = f"thinker.model.layers.{l}"
        vec(f"{p}.input_layernorm.weight", H, 1.0)
        mat(f"{p}.self_attn.q_proj.weight", s["HEADS"] * HD, H)
        mat(f"{p}.self_attn.k_proj.weight", s["KV"] * HD, H)
        mat(f"{p}.self_attn.v_proj.weight", s["KV"] * HD, H)
        mat(f"{p}.self_attn.o_proj.weight", H, s["HEADS"] * HD)
        vec(f"{p}.self_attn.q_norm.weight", HD, 1.0)
        vec(f"{p}.self_attn.k_norm.weight", HD, 1.0)
        vec(f"{p}.post_attention_layernorm.weight", H, 1.0)
        mat(f"{p}.mlp.gate.weight", s["EXPERTS"], H)
        for e in range(s["EXPERTS"]):
            mat(f"{p}.mlp.experts.{e}.gate_proj.weight", s["FF"], H)
            mat(f"{p}.mlp.experts.{e}.up_proj.weight", s["FF"], H)
            mat(f"{p}.mlp.experts.{e}.down_proj.weight", H, s["FF"])
    vec("thinker.model.norm.weight", H, 1.0)
    mat("thinker.lm_head.weight", s["VOCAB"], H)


def linear(mat, vec, name: str, out: int, inp: int) -> None:
    mat(f"{name}.weight", out, inp)
    vec(f"{name}.bias", out)


def norm(vec, name: str, n: int) -> None:
    vec(f"{name}.weight", n, 1.0)
    vec(f"{name}.bias", n)


def vision(s: dict, mat, vec) -> None:
    VH, P = s["VH"], s["PATCH"]
    t = "thinker.visual"
    mat(f"{t}.patch_embed.proj.weight", VH, 3, 2, P, P)
    vec(f"{t}.patch_embed.proj.bias", VH)
    mat(f"{t}.pos_embed.weight", s["POS"], VH)
    for l in range(s["VLAYERS"]):
        b = f"{t}.blocks.{l}"
        norm(vec, f"{b}.norm1", VH)
        norm(vec, f"{b}.norm2", VH)
        linear(mat, vec, f"{b}.attn.qkv", 3 * VH, VH)
        linear(mat, vec, f"{b}.attn.proj", VH, VH)
        linear(mat, vec, f"{b}.mlp.linear_fc1", s["VFF"], VH)
        linear(mat, vec, f"{b}.mlp.linear_fc2", VH, s["VFF"])
    m = 4 * VH  # 2x2 merge
    norm(vec, f"{t}.merger.ln_q", VH)
    linear(mat, vec, f"{t}.merger.mlp.0", m, m)
    linear(mat, vec, f"{t}.merger.mlp.2", s["H"], m)
    for i in range(len(s["DEEP"])):
        norm(vec, f"{t}.merger_list.{i}.ln_q", m)
        linear(mat, vec, f"{t}.merger_list.{i}.mlp.0", m, m)
        linear(mat, vec, f"{t}.merger_list.{i}.mlp.2", s["H"], m)


def audio(s: dict, mat, vec) -> None:
    D, DS = s["AD"], s["DS"]
    t = "thinker.audio_tower"
    mat(f"{t}.conv2d1.weight", DS, 1, 3, 3, std=0.2)
    vec(f"{t}.conv2d1.bias", DS)
    for c in ("conv2d2", "conv2d3"):
        mat(f"{t}.{c}.weight", DS, DS, 3, 3)
        vec(f"{t}.{c}.bias", DS)
    mat(f"{t}.conv_out.weight", D, DS * (s["MELS"] // 8))
    for l in range(s["ALAYERS"]):
        b = f"{t}.layers.{l}"
        norm(vec, f"{b}.self_attn_layer_norm", D)
        for pr in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(mat, vec, f"{b}.self_attn.{pr}", D, D)
        norm(vec, f"{b}.final_layer_norm", D)
        linear(mat, vec, f"{b}.fc1", s["AFF"], D)
        linear(mat, vec, f"{b}.fc2", D, s["AFF"])
    norm(vec, f"{t}.ln_post", D)
    linear(mat, vec, f"{t}.proj1", D, D)
    linear(mat, vec, f"{t}.proj2", s["H"], D)


def thinker_config(s: dict, ids: dict) -> dict:
    return {
        "model_type": "qwen3_omni_moe_thinker",
        "audio_token_id": ids["<|audio_pad|>"], "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"], "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"], "audio_start_token_id": ids["<|audio_start|>"],
        "audio_end_token_id": ids["<|audio_end|>"], "user_token_id": ids["<|im_start|>"],
        "position_id_per_seconds": 13, "seconds_per_chunk": 2, "initializer_range": 0.02, "dtype": "float16",
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "qwen3_omni_moe_text", "attention_bias": False, "attention_dropout": 0.0,
            "decoder_sparse_step": 1, "head_dim": s["HD"], "hidden_act": "silu", "hidden_size": s["H"],
            "intermediate_size": 3072, "max_position_embeddings": 65536, "mlp_only_layers": [],
            "moe_intermediate_size": s["FF"], "norm_topk_prob": True, "num_attention_heads": s["HEADS"],
            "num_experts": s["EXPERTS"], "num_experts_per_tok": s["TOP_K"], "num_hidden_layers": s["LAYERS"],
            "num_key_value_heads": s["KV"], "rms_norm_eps": 1e-6, "sliding_window": None,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "interleaved": True,
                                "mrope_section": s["SECTIONS"]},
            "router_aux_loss_coef": 0.001, "tie_word_embeddings": False, "vocab_size": s["VOCAB"],
            "use_cache": True,
        },
        "vision_config": {
            "model_type": "qwen3_omni_moe_vision_encoder", "depth": s["VLAYERS"], "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": s["VH"], "in_channels": 3, "intermediate_size": s["VFF"], "num_heads": s["VHEADS"],
            "num_position_embeddings": s["POS"], "out_hidden_size": s["H"], "patch_size": s["PATCH"],
            "spatial_merge_size": 2, "temporal_patch_size": 2, "deepstack_visual_indexes": s["DEEP"],
            "initializer_range": 0.02, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "axial"},
        },
        "audio_config": {
            "model_type": "qwen3_omni_moe_audio_encoder", "activation_function": "gelu", "conv_chunksize": 500,
            "d_model": s["AD"], "downsample_hidden_size": s["DS"], "encoder_attention_heads": s["AHEADS"],
            "encoder_ffn_dim": s["AFF"], "encoder_layers": s["ALAYERS"], "max_source_positions": 1500,
            "n_window": 50, "n_window_infer": 800, "num_mel_bins": s["MELS"], "output_dim": s["H"],
            "scale_embedding": False, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
            "initializer_range": 0.02,
        },
    }


# The release's preprocessor_config.json (both processors in one file).
PREPROCESSOR = {
    "processor_class": "Qwen3OmniMoeProcessor", "image_processor_type": "Qwen2VLImageProcessor",
    "feature_extractor_type": "WhisperFeatureExtractor", "do_convert_rgb": True, "do_normalize": True,
    "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "min_pixels": 3136, "max_pixels": 12845056, "merge_size": 2, "patch_size": 16, "temporal_patch_size": 2,
    "resample": 3, "rescale_factor": 0.00392156862745098, "feature_size": 128, "hop_length": 160, "n_fft": 400,
    "n_samples": 4800000, "nb_max_frames": 30000, "chunk_length": 300, "dither": 0.0, "padding_side": "right",
    "padding_value": 0.0, "return_attention_mask": True, "sampling_rate": 16000,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / ".cache" / "models"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    out = Path(a.out_dir) / ("qwen-omni-tiny" if a.tiny else NAME)
    if (out / "model.safetensors").exists() and not a.force:
        print(f"have {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    s = shape(a.tiny)
    rng = np.random.Generator(np.random.PCG64(SEED))
    t: dict[str, np.ndarray] = {}

    def mat(name, *shp, std=0.02):
        t[name] = (rng.standard_normal(shp, dtype=np.float32) * std).astype(np.float16)

    def vec(name, n, base=0.0, std=0.02):
        t[name] = (base + rng.standard_normal(n, dtype=np.float32) * std).astype(np.float16)

    decoder(s, mat, vec)
    vision(s, mat, vec)
    audio(s, mat, vec)
    tmp = out / "model.safetensors.tmp"
    save_file(t, str(tmp), metadata={"format": "pt"})

    tj, ids = gen_moe.tokenizer_with_specials(SPECIALS)  # the first filler tokens become them
    (out / "tokenizer.json").write_text(json.dumps(tj))
    added = {str(x["id"]): {k: v for k, v in x.items() if k != "id"} for x in tj["added_tokens"]}
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 65536, "added_tokens_decoder": added,
        "eos_token": "<|im_end|>", "pad_token": "<|pad|>", "chat_template": CHAT_TEMPLATE}, indent=1))
    config = {
        "architectures": ["Qwen3OmniMoeForConditionalGeneration"], "model_type": "qwen3_omni_moe",
        "enable_audio_output": False, "im_start_token_id": ids["<|im_start|>"], "im_end_token_id": ids["<|im_end|>"],
        "thinker_config": thinker_config(s, ids), "transformers_version": "5.23.0",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": ids["<|im_end|>"]}))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=1))
    tmp.rename(out / "model.safetensors")
    n = sum(v.size for v in t.values())
    print(f"wrote {out}: {n / 1e9:.2f} B parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
