"""Writes a transformers qwen2 / qwen3 / qwen3_moe checkpoint folder (config.json + model.safetensors, f32) as a GGUF
file with the `gguf` package's writer (PyPI; llama.cpp's own), under llama.cpp's key and tensor names for these
architectures (no tokenizer): `hf_to_gguf.py FOLDER OUT.gguf`. A MoE layer's experts are stacked into one
`[experts, rows, cols]` tensor per projection, as llama.cpp's converter does (`torch.stack(datas, dim=0)` in its
Qwen2MoeModel). Prints "ok"."""
import json
import struct
import sys

import numpy as np
from gguf import GGUFWriter

folder, out = sys.argv[1:3]
cfg = json.load(open(f"{folder}/config.json"))
arch = cfg["model_type"]
assert arch in ("qwen2", "qwen3", "qwen3_moe"), arch
gguf_arch = {"qwen3_moe": "qwen3moe"}.get(arch, arch)

raw = open(f"{folder}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + n])
base = 8 + n


def tensor(name):
    h = header[name]
    assert h["dtype"] == "F32", h
    a, b = h["data_offsets"]
    return np.frombuffer(raw[base + a : base + b], dtype="<f4").reshape(h["shape"])


w = GGUFWriter(out, gguf_arch)
heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
head_dim = cfg.get("head_dim") or hidden // heads
w.add_block_count(cfg["num_hidden_layers"])
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(hidden)
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(heads)
w.add_head_count_kv(cfg["num_key_value_heads"])
w.add_rope_freq_base(float(cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta", 10000.0))))
w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
w.add_key_length(head_dim)
w.add_value_length(head_dim)
if arch == "qwen3_moe":
    assert cfg.get("decoder_sparse_step", 1) == 1 and not cfg.get("mlp_only_layers"), "every layer MoE"
    n_experts = cfg.get("num_experts") or cfg["num_local_experts"]
    w.add_expert_count(n_experts)
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
w.add_tensor("token_embd.weight", tensor("model.embed_tokens.weight"))
w.add_tensor("output_norm.weight", tensor("model.norm.weight"))
if "lm_head.weight" in header:
    w.add_tensor("output.weight", tensor("lm_head.weight"))
names = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
for l in range(cfg["num_hidden_layers"]):
    for theirs, ours in names.items():
        key = f"model.layers.{l}.{theirs}"
        if key in header:
            w.add_tensor(f"blk.{l}.{ours}", tensor(key))
    if arch == "qwen3_moe":
        w.add_tensor(f"blk.{l}.ffn_gate_inp.weight", tensor(f"model.layers.{l}.mlp.gate.weight"))
        for theirs, ours in [("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps"), ("down_proj", "ffn_down_exps")]:
            stack = [tensor(f"model.layers.{l}.mlp.experts.{e}.{theirs}.weight") for e in range(n_experts)]
            w.add_tensor(f"blk.{l}.{ours}.weight", np.stack(stack, axis=0))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("ok")
