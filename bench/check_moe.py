#!/usr/bin/env python3
"""Checks that llama.cpp reads the generated GGUF as the same model the HF folder describes.

A plain numpy forward pass of the Hugging Face Qwen3-MoE (qwen3moe-rand/, float16 weights computed in
float32, transformers' semantics: RMSNorm, per-head q/k RMSNorm, rotate-half RoPE, GQA, softmax router
with top-k renormalised, SiLU experts) is compared with the log-probabilities llama.cpp saved for the F16
GGUF (`llama-perplexity --kl-divergence-base FILE`, written by `bench/peer.py kl`). Both see the same
token ids (read from that file). Prints the KL divergence numpy -> llama.cpp, the largest log-prob
difference on the top tokens, and the top-1 agreement, and exits 1 if they disagree beyond what F16
arithmetic explains (mean KL > 0.05 or top-1 agreement < 90 %).

Calibration, measured on the first 256-token chunk of bench/calibration.txt: this random model is chaotic
(router top-4 flips), so even F16 rounding leaves a visible KL. Correct model: mean KL 1.1e-2, top-1 96 %
(1.3e-2 / 95 % without --f16 emulation). Same numpy model with GPT-J (interleaved) RoPE instead of
rotate-half, i.e. one wrong convention: mean KL 1.02, top-1 42 %. llama.cpp's own Q8_0 vs F16: 0.071 / 82 %.

Usage: bench/check_moe.py LOGITS.kld [--hf DIR] [--chunks 1]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def read_kld_base(path: Path, n_chunks: int) -> tuple[int, int, np.ndarray, list[np.ndarray]]:
    """Parses llama-perplexity's logits file: '_logits_', n_ctx, n_vocab, n_chunk (int32), the tokens
    (int32, n_chunk*n_ctx), then per chunk n_ctx-1-n_ctx/2 rows of [f32 scale, f32 min_log_prob, u16 x n_vocab]
    padded to nv = 2*((n_vocab+1)/2)+4 u16 slots. log p_i = min_log_prob + scale * q_i."""
    raw = path.read_bytes()
    if raw[:8] != b"_logits_":
        raise SystemExit(f"{path}: not a llama-perplexity logits file (bad magic)")
    n_ctx, n_vocab, n_chunk = np.frombuffer(raw, dtype=np.int32, count=3, offset=8)
    off = 20
    tokens = np.frombuffer(raw, dtype=np.int32, count=n_chunk * n_ctx, offset=off)
    off += tokens.nbytes
    nv = 2 * ((n_vocab + 1) // 2) + 4
    rows = n_ctx - 1 - n_ctx // 2
    out = []
    for c in range(min(n_chunks, n_chunk)):
        block = np.frombuffer(raw, dtype=np.uint16, count=rows * nv, offset=off + c * rows * nv * 2).reshape(rows, nv)
        hdr = block[:, :4].copy().view(np.float32)  # [rows, 2]: scale, min_log_prob
        lp = hdr[:, 1:2] + hdr[:, 0:1] * block[:, 4:4 + n_vocab].astype(np.float32)
        out.append(lp)
    return int(n_ctx), int(n_vocab), tokens.reshape(n_chunk, n_ctx), out


def rms(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def forward(w, cfg: dict, ids: np.ndarray, f16_acts: bool = False) -> np.ndarray:
    """Logits [T, vocab] of the HF model on token ids, float32.

    f16_acts rounds what llama.cpp's CPU backend rounds for an F16 model: the activations entering each
    matmul with an F16 weight (ggml converts them to F16 first) and the K/V cache (F16 by default)."""
    f = lambda k: np.asarray(w.get_tensor(k), dtype=np.float32)  # noqa: E731
    r16 = (lambda a: a.astype(np.float16).astype(np.float32)) if f16_acts else (lambda a: a)  # noqa: E731
    T = len(ids)
    H, D = cfg["num_attention_heads"], cfg["head_dim"]
    KV, E, K = cfg["num_key_value_heads"], cfg["num_local_experts"], cfg["num_experts_per_tok"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_parameters"]["rope_theta"]
    inv = 1.0 / theta ** (np.arange(0, D, 2, dtype=np.float64) / D)
    ang = np.outer(np.arange(T), inv)
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1).astype(np.float32)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1).astype(np.float32)[:, None, :]

    def rope(x):  # x [T, heads, D], rotate_half convention (NEOX in llama.cpp terms)
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return x * cos + np.concatenate([-x2, x1], axis=-1) * sin

    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    x = f("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, f(p + "input_layernorm.weight"), eps)
        h = r16(h)
        q = (h @ f(p + "self_attn.q_proj.weight").T).reshape(T, H, D)
        k = (h @ f(p + "self_attn.k_proj.weight").T).reshape(T, KV, D)
        v = r16((h @ f(p + "self_attn.v_proj.weight").T).reshape(T, KV, D))
        q = rope(rms(q, f(p + "self_attn.q_norm.weight"), eps))
        k = r16(rope(rms(k, f(p + "self_attn.k_norm.weight"), eps)))
        rep = H // KV
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = np.einsum("hts,shd->thd", s, v).reshape(T, H * D)
        x = x + r16(a) @ f(p + "self_attn.o_proj.weight").T
        h = r16(rms(x, f(p + "post_attention_layernorm.weight"), eps))
        r = h @ f(p + "mlp.gate.weight").T
        r = np.exp(r - r.max(-1, keepdims=True))
        r /= r.sum(-1, keepdims=True)
        top = np.argsort(-r, axis=-1)[:, :K]
        wt = np.take_along_axis(r, top, -1)
        if cfg.get("norm_topk_prob", True):
            wt /= wt.sum(-1, keepdims=True)
        out = np.zeros_like(x)
        for e in range(E):
            rows, slot = np.nonzero(top == e)
            if len(rows) == 0:
                continue
            he = h[rows]
            g = he @ f(f"{p}mlp.experts.{e}.gate_proj.weight").T
            u = he @ f(f"{p}mlp.experts.{e}.up_proj.weight").T
            y = r16(g / (1 + np.exp(-g)) * u) @ f(f"{p}mlp.experts.{e}.down_proj.weight").T
            out[rows] += wt[rows, slot][:, None] * y
        x = x + out
    x = r16(rms(x, f("model.norm.weight"), eps))
    return x @ f("lm_head.weight").T


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("logits", type=Path)
    ap.add_argument("--hf", type=Path, default=ROOT / ".cache" / "models" / "qwen3moe-rand")
    ap.add_argument("--chunks", type=int, default=1)
    ap.add_argument("--f32", action="store_true", help="pure float32 reference (no F16 rounding of activations)")
    a = ap.parse_args()
    from safetensors import safe_open

    cfg = json.loads((a.hf / "config.json").read_text())
    n_ctx, n_vocab, tokens, lps = read_kld_base(a.logits, a.chunks)
    if n_vocab != cfg["vocab_size"]:
        raise SystemExit(f"{a.logits}: vocab {n_vocab} != config vocab_size {cfg['vocab_size']}")
    first = n_ctx // 2
    kls, agree, maxdiff = [], [], 0.0
    with safe_open(str(a.hf / "model.safetensors"), framework="np") as w:
        for c, lp_ref in enumerate(lps):
            logits = forward(w, cfg, tokens[c], f16_acts=not a.f32).astype(np.float64)
            lp = logits - logits.max(-1, keepdims=True)
            lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
            lp = lp[first:n_ctx - 1]
            # llama.cpp clamps log-probs more than 16 below the max; compare where both are meaningful.
            p = np.exp(lp)
            kls.append(np.sum(p * (lp - lp_ref), axis=-1))
            agree.append(lp.argmax(-1) == lp_ref.argmax(-1))
            topm = lp > lp.max(-1, keepdims=True) - 5
            maxdiff = max(maxdiff, float(np.abs(lp - lp_ref)[topm].max()))
    kl = np.concatenate(kls)
    ag = np.concatenate(agree).mean() * 100
    print(f"numpy HF forward vs llama.cpp F16 GGUF on {kl.size} positions: mean KL {kl.mean():.2e}, "
          f"max KL {kl.max():.2e}, top-1 agreement {ag:.1f} %, max |dlogp| on tokens within 5 nats of the top {maxdiff:.3f}")
    ok = kl.mean() < 0.05 and ag >= 90
    print("OK: same model" if ok else "MISMATCH: llama.cpp and the HF folder do not compute the same model")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
