#!/usr/bin/env python3
"""Runs llama.cpp's convert_hf_to_gguf.py from TREE on a random bench model, with one patch.

The converter names a BPE tokenizer's pre-tokenizer by hashing the ids it gives for a test string and refuses a
hash it does not list. The bench models' tokenizer (bench/gen_moe.py: a made-up byte-level BPE vocabulary behind
the GPT-2 pre-tokenizer) is in no such list, so an unknown hash is taken as "gpt-2", the pre-tokenizer it has.
Everything else (tensor names, RoPE permutations, the mmproj) is the converter's own. Needs torch, transformers,
numpy, safetensors, sentencepiece and protobuf (bench/prepare_mtmd.sh sets up such a venv).

Usage: llama_convert.py TREE [convert_hf_to_gguf.py arguments...]
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    tree = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(tree))
    sys.path.insert(0, str(tree / "gguf-py"))
    from conversion import base

    known = base.TextModel.get_vocab_base_pre

    def pre(self, tokenizer) -> str:
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            base.logger.warning("unknown pre-tokenizer hash: the bench tokenizer's GPT-2 pre-tokenizer, as gpt-2")
            return "gpt-2"

    base.TextModel.get_vocab_base_pre = pre
    sys.argv = [str(tree / "convert_hf_to_gguf.py")] + sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
