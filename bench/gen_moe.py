#!/usr/bin/env python3
"""Generates the random-weight Qwen3-MoE benchmark model, deterministically, in two formats.

Shape (issue 3): hidden 1024, 16 layers, 32 experts top-4, expert width 512, 16 query / 4 KV heads,
head_dim 64, vocab 32000, untied lm_head.

Outputs, under OUT_DIR (default <repo>/.cache/models):
  qwen3moe-rand/                 Hugging Face folder as transformers writes it for model_type "qwen3_moe":
    config.json, generation_config.json, model.safetensors (all tensors float16, per-expert 2-D
    `model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj.weight`), tokenizer.json (byte-level BPE).
  qwen3moe-rand.f16.gguf         the same weights for llama.cpp (arch `qwen3moe`): matrices F16, 1-D norms F32
                                 (the layout convert_hf_to_gguf.py writes), experts stacked into 3-D
                                 `blk.N.ffn_{gate,up,down}_exps`, plus the same tokenizer in GGUF metadata.

Weights are drawn in float32 from numpy's PCG64 (seed below), rounded once to float16, and both files are
written from those float16 values, so the HF folder and the F16 GGUF hold bit-identical weights
(norms are float16 values widened to float32 in the GGUF, which is exact).

Conventions checked against llama.cpp's vendored tree (src/models/qwen3moe.cpp, llama-arch.cpp):
qwen3moe uses NEOX RoPE, so q/k rows are stored as in HF (no permutation, unlike the llama arch);
ggml dims are numpy dims reversed, so HF [out, in] matrices go in unchanged and the expert stacks are
numpy [n_expert, out, in]. llama.cpp always renormalises the top-k router weights for qwen3moe,
which matches `norm_topk_prob: true`.

Usage: bench/gen_moe.py [--out-dir DIR] [--seed N] [--force]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HIDDEN = 1024
LAYERS = 16
EXPERTS = 32
TOP_K = 4
EXPERT_FF = 512
HEADS = 16
KV_HEADS = 4
HEAD_DIM = 64
VOCAB = 32000
DENSE_FF = 3072  # intermediate_size: unused (every layer is MoE) but part of the config
ROPE_THETA = 1_000_000.0
RMS_EPS = 1e-6
CTX = 4096
SEED = 20260401
LM_HEAD_GAIN = 4.0
NAME = "qwen3moe-rand"

# Token ids of the tokenizer below. ids 0..255 are the 256 byte tokens, so no special token sits there.
EOS_ID = VOCAB - 1  # "<|endoftext|>"
PAD_ID = VOCAB - 2  # "<|pad|>"


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-unicode map used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build_vocab() -> tuple[list[str], list[str], list[int]]:
    """A small but real byte-level BPE: 256 byte tokens, a few English merges, filler tokens to VOCAB.

    Returns (tokens, merges, token_types) where token_types use GGUF's codes (1 normal, 3 control,
    4 user-defined). Filler tokens are never produced by the merges; they exist so the embedding and
    lm_head have the benchmark's vocab size, and random-token benchmarks still touch them.
    """
    b2u = byte_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    sp = b2u[ord(" ")]
    pairs = [(sp, c) for c in "abcdefghijklmnopqrstuvwxyz"]
    pairs += [("t", "h"), ("h", "e"), ("i", "n"), ("e", "r"), ("a", "n"), ("r", "e"), ("o", "n"), ("e", "n")]
    merges = []
    for a, b in pairs:
        merges.append(f"{a} {b}")
        tokens.append(a + b)
    types = [1] * len(tokens)
    n_fill = VOCAB - 2 - len(tokens)
    tokens += [f"<|filler_{i}|>" for i in range(n_fill)]
    types += [4] * n_fill
    tokens += ["<|pad|>", "<|endoftext|>"]
    types += [3, 3]
    assert len(tokens) == VOCAB and tokens[EOS_ID] == "<|endoftext|>" and tokens[PAD_ID] == "<|pad|>"
    return tokens, merges, types


def tokenizer_json(tokens: list[str], merges: list[str]) -> dict:
    """The same tokenizer in Hugging Face `tokenizers` format (byte-level BPE, GPT-2 pre-tokenizer)."""
    added = [
        {"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i in (PAD_ID, EOS_ID)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": [m.split(" ") for m in merges],
        },
    }


def tokenizer_with_specials(specials: list[str]) -> tuple[dict, dict[str, int]]:
    """The tokenizer with `specials` as special tokens in place of the first filler tokens: (tokenizer.json, ids)."""
    tokens, merges, _ = build_vocab()
    ids = {}
    for i, s in enumerate(specials):
        k = tokens.index(f"<|filler_{i}|>")
        tokens[k] = s
        ids[s] = k
    tj = tokenizer_json(tokens, merges)
    tj["added_tokens"] += [{"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True} for s in specials]
    return tj, ids


def hf_config() -> dict:
    """config.json with the keys transformers 5.x writes for qwen3_moe (see shared fixtures)."""
    return {
        "architectures": ["Qwen3MoeForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": EOS_ID,
        "decoder_sparse_step": 1,
        "dtype": "float16",
        "eos_token_id": EOS_ID,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": DENSE_FF,
        "max_position_embeddings": CTX,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": EXPERT_FF,
        "norm_topk_prob": True,
        "num_attention_heads": HEADS,
        "num_experts_per_tok": TOP_K,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "num_local_experts": EXPERTS,
        "output_router_logits": False,
        "pad_token_id": PAD_ID,
        "rms_norm_eps": RMS_EPS,
        "rope_parameters": {"rope_theta": ROPE_THETA, "rope_type": "default"},
        "router_aux_loss_coef": 0.001,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "transformers_version": "5.23.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


def gen_weights(seed: int) -> dict[str, np.ndarray]:
    """All tensors by HF name, float16. Scales keep activations O(1) through 16 layers so routing and
    logits are not degenerate: matrices ~ N(0, 1/fan_in), embeddings ~ N(0, 1), norm gains ~ 1 + N(0, 0.1);
    lm_head ~ N(0, (LM_HEAD_GAIN^2)/fan_in) so next-token distributions are peaked like a trained model's
    (with gain 1 they are near uniform, entropy ~9.9 of 10.4 nats, and every KL divergence is ~0)."""
    rng = np.random.default_rng(seed)

    def mat(out_f: int, in_f: int, gain_: float = 1.0) -> np.ndarray:
        w = rng.standard_normal((out_f, in_f), dtype=np.float32)
        w *= np.float32(gain_ / np.sqrt(in_f))
        return w.astype(np.float16)

    def gain(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float16)

    w: dict[str, np.ndarray] = {}
    w["model.embed_tokens.weight"] = rng.standard_normal((VOCAB, HIDDEN), dtype=np.float32).astype(np.float16)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = gain(HIDDEN)
        w[p + "self_attn.q_proj.weight"] = mat(HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = mat(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = mat(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = mat(HIDDEN, HEADS * HEAD_DIM)
        w[p + "self_attn.q_norm.weight"] = gain(HEAD_DIM)
        w[p + "self_attn.k_norm.weight"] = gain(HEAD_DIM)
        w[p + "post_attention_layernorm.weight"] = gain(HIDDEN)
        w[p + "mlp.gate.weight"] = mat(EXPERTS, HIDDEN)
        for e in range(EXPERTS):
            q = f"{p}mlp.experts.{e}."
            w[q + "gate_proj.weight"] = mat(EXPERT_FF, HIDDEN)
            w[q + "up_proj.weight"] = mat(EXPERT_FF, HIDDEN)
            w[q + "down_proj.weight"] = mat(HIDDEN, EXPERT_FF)
    w["model.norm.weight"] = gain(HIDDEN)
    w["lm_head.weight"] = mat(VOCAB, HIDDEN, LM_HEAD_GAIN)
    return w


def skew_routers(w: dict[str, np.ndarray], s: float, seed: int) -> list[np.ndarray]:
    """Scales each layer's router rows so that random inputs pick expert e (top-4 of 32) with a Zipf(s) popularity
    over a per-layer random order of the experts: P(rank r chosen) proportional to 1 / r^s, scaled to sum to TOP_K
    and capped at 1. A router row with a larger norm gives logits of a larger spread, which wins the top-k more often;
    the norms are fitted by a Monte Carlo of Gaussian logits (the rms-normed hidden states against random rows are
    close to that). Zero-mean logits make an expert win at most about half the tokens however wide its spread, so
    the skew is bounded: s = 0.5 (the top expert 40% of tokens, the last 7%) is fitted to within 0.001, s = 0.6 is
    not. Returns each layer's target popularity (in expert order)."""
    rng = np.random.default_rng(seed + 1)
    ranks = np.arange(1, EXPERTS + 1, dtype=np.float64)
    p = ranks ** -s
    p = p / p.sum() * TOP_K
    for _ in range(64):  # cap at 1 and redistribute the excess
        over = p > 1.0
        if not over.any():
            break
        p[over] = 1.0
        rest = ~over
        p[rest] *= (TOP_K - over.sum()) / p[rest].sum()
    z = rng.standard_normal((20000, EXPERTS))
    sigma = np.ones(EXPERTS)
    for _ in range(200):
        top = np.argsort(-(z * sigma), axis=1)[:, :TOP_K]
        obs = np.bincount(top.ravel(), minlength=EXPERTS) / z.shape[0]
        sigma *= (p / np.maximum(obs, 1e-4)) ** 0.3
        sigma /= np.exp(np.log(sigma).mean())
        sigma = np.clip(sigma, 1 / 50, 50)
    targets = []
    for i in range(LAYERS):
        order = rng.permutation(EXPERTS)  # expert order[r] gets rank r
        scale = np.empty(EXPERTS)
        pop = np.empty(EXPERTS)
        scale[order] = sigma
        pop[order] = p
        k = f"model.layers.{i}.mlp.gate.weight"
        w[k] = (w[k].astype(np.float32) * scale[:, None].astype(np.float32)).astype(np.float16)
        targets.append(pop)
    return targets


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_hf(folder: Path, w: dict[str, np.ndarray], tokens: list[str], merges: list[str]) -> None:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", hf_config())
    write_json(folder / "generation_config.json",
               {"bos_token_id": EOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID,
                "transformers_version": "5.23.0"})
    write_json(folder / "tokenizer.json", tokenizer_json(tokens, merges))
    write_json(folder / "tokenizer_config.json",
               {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                "pad_token": "<|pad|>", "add_bos_token": False, "model_max_length": CTX})
    tmp = folder / "model.safetensors.tmp"
    save_file(w, str(tmp), metadata={"format": "pt"})
    os.chmod(tmp, 0o644)  # safetensors creates the file 0600
    os.replace(tmp, folder / "model.safetensors")


def write_gguf(path: Path, w: dict[str, np.ndarray], tokens: list[str], merges: list[str], types: list[int]) -> None:
    import gguf

    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN3MOE]
    tmp = path.with_name(path.name + ".tmp")
    wr = gguf.GGUFWriter(str(tmp), arch)
    wr.add_name(NAME)
    wr.add_context_length(CTX)
    wr.add_embedding_length(HIDDEN)
    wr.add_block_count(LAYERS)
    wr.add_feed_forward_length(DENSE_FF)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(KV_HEADS)
    wr.add_key_length(HEAD_DIM)
    wr.add_value_length(HEAD_DIM)
    wr.add_rope_freq_base(ROPE_THETA)
    wr.add_layer_norm_rms_eps(RMS_EPS)
    wr.add_expert_count(EXPERTS)
    wr.add_expert_used_count(TOP_K)
    wr.add_expert_feed_forward_length(EXPERT_FF)
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre("gpt-2")
    wr.add_token_list(tokens)
    wr.add_token_types(types)
    wr.add_token_merges(merges)
    wr.add_eos_token_id(EOS_ID)
    wr.add_bos_token_id(EOS_ID)
    wr.add_pad_token_id(PAD_ID)
    wr.add_add_bos_token(False)

    def norm(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)  # llama.cpp keeps 1-D norm gains in F32

    wr.add_tensor("token_embd.weight", w["model.embed_tokens.weight"])
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        b = f"blk.{i}."
        wr.add_tensor(b + "attn_norm.weight", norm(w[p + "input_layernorm.weight"]))
        wr.add_tensor(b + "attn_q.weight", w[p + "self_attn.q_proj.weight"])
        wr.add_tensor(b + "attn_k.weight", w[p + "self_attn.k_proj.weight"])
        wr.add_tensor(b + "attn_v.weight", w[p + "self_attn.v_proj.weight"])
        wr.add_tensor(b + "attn_output.weight", w[p + "self_attn.o_proj.weight"])
        wr.add_tensor(b + "attn_q_norm.weight", norm(w[p + "self_attn.q_norm.weight"]))
        wr.add_tensor(b + "attn_k_norm.weight", norm(w[p + "self_attn.k_norm.weight"]))
        wr.add_tensor(b + "ffn_norm.weight", norm(w[p + "post_attention_layernorm.weight"]))
        wr.add_tensor(b + "ffn_gate_inp.weight", w[p + "mlp.gate.weight"])
        for proj, gname in (("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps"), ("down_proj", "ffn_down_exps")):
            stack = np.stack([w[f"{p}mlp.experts.{e}.{proj}.weight"] for e in range(EXPERTS)])
            wr.add_tensor(b + gname + ".weight", stack)
    wr.add_tensor("output_norm.weight", norm(w["model.norm.weight"]))
    wr.add_tensor("output.weight", w["lm_head.weight"])

    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".cache" / "models")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--force", action="store_true", help="regenerate even if the outputs exist")
    ap.add_argument("--skew", type=float, default=None,
                    help="bias the routers to a Zipf(S) expert popularity (outputs named qwen3moe-skew)")
    args = ap.parse_args()

    name = NAME if args.skew is None else "qwen3moe-skew"
    hf_dir = args.out_dir / name
    gguf_path = args.out_dir / f"{name}.f16.gguf"
    if not args.force and (hf_dir / "model.safetensors").is_file() and gguf_path.is_file():
        print(f"have {hf_dir} and {gguf_path}")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tokens, merges, types = build_vocab()
    w = gen_weights(args.seed)
    if args.skew is not None:
        targets = skew_routers(w, args.skew, args.seed)
        write_json(args.out_dir / f"{name}.popularity.json",
                   {"zipf_s": args.skew, "top_k": TOP_K, "layers": [t.tolist() for t in targets]})
    n = sum(a.size for a in w.values())
    print(f"generated {len(w)} tensors, {n / 1e6:.1f} M parameters (seed {args.seed})")
    write_hf(hf_dir, w, tokens, merges)
    print(f"wrote {hf_dir}")
    write_gguf(gguf_path, w, tokens, merges, types)
    print(f"wrote {gguf_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
