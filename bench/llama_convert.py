#!/usr/bin/env python3
"""Runs llama.cpp's convert_hf_to_gguf.py from TREE on a random bench model, with one patch.

The converter names a BPE tokenizer's pre-tokenizer by hashing the ids it gives for a test string and refuses a
hash it does not list. The bench models' tokenizer (bench/gen_moe.py: a made-up byte-level BPE vocabulary behind
the GPT-2 pre-tokenizer) is in no such list, so an unknown hash is taken as "gpt-2", the pre-tokenizer it has.

A second patch, for the Qwen3-Omni mmproj only: this tree's Qwen3OmniMmprojModel renames the released layout's
vision tensors `thinker.visual.*` to `model.visual.*` and hands them to the Qwen3-VL vision code, which maps only
`visual.*` names ("Can not map tensor 'model.visual.blocks.0.attn.proj.bias'"), so the hub layout does not convert.
The patch names them `visual.*` before the converter sees them (the name its own filter gives `model.visual.*`).
Two options of this script (taken out before the converter sees its arguments) work around what this tree's mtmd
cannot load: a Qwen3-Omni mmproj with both towers is refused ("mismatch between vision and audio mmproj (n_embd_v
= 4096, n_embd_a = 1024)": the Qwen3-VL tower's rows carry its deepstack features, 1024 x (1 + 3), the audio rows
do not), and the converted Omni text model declares no deepstack layers (`add_num_deepstack_layers(0)`), so its
input width (1024) does not match the vision rows either:
  --omni-part vision|audio   writes an mmproj of that tower alone;
  --omni-deepstack           writes the text model with the vision config's deepstack layers, as the Qwen3-VL-MoE
                             text model is written (what the Qwen3-Omni thinker does with them, in transformers).
Everything else (tensor names, RoPE permutations, the mmproj) is the converter's own. Needs torch, transformers,
numpy, safetensors, sentencepiece and protobuf (bench/prepare_mtmd.sh sets up such a venv).

Usage: llama_convert.py TREE [--omni-part vision|audio] [--omni-deepstack] [convert_hf_to_gguf.py arguments...]
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

    from conversion import qwen3vl

    omni = qwen3vl.Qwen3OmniMmprojModel
    omni_filter = omni.filter_tensors.__func__

    def filter_tensors(cls, item):
        name, gen = item
        if name.startswith("thinker.visual."):
            name = name.removeprefix("thinker.")
        return omni_filter(cls, (name, gen))

    omni.filter_tensors = classmethod(filter_tensors)

    args = sys.argv[2:]
    if "--omni-part" in args:
        i = args.index("--omni-part")
        part = args[i + 1]
        del args[i:i + 2]
        if part not in ("vision", "audio"):
            sys.exit(f"--omni-part {part}: vision or audio")
        if part == "vision":
            # The audio config is still read at construction (Qwen25AudioModel asserts it), then the tower is
            # dropped: no audio hparams, no audio tensors.
            omni_init = omni.__init__

            def init(self, *a, **k):
                omni_init(self, *a, **k)
                self.has_audio_encoder = False

            omni.__init__ = init
            omni_modify = omni.modify_tensors

            def modify_tensors(self, data, name, bid):
                # including the sinusoid table the converter makes up for the audio tower
                return iter(()) if "audio_tower." in name else omni_modify(self, data, name, bid)

            omni.modify_tensors = modify_tensors
            vision_filter = omni.filter_tensors.__func__
            omni.filter_tensors = classmethod(
                lambda cls, item: None if "audio_tower." in item[0] else vision_filter(cls, item))
        else:
            omni.has_vision_encoder = False
            audio_filter = omni.filter_tensors.__func__
            omni.filter_tensors = classmethod(
                lambda cls, item: None if "visual." in item[0] else audio_filter(cls, item))
    if "--omni-deepstack" in args:
        args.remove("--omni-deepstack")
        text = qwen3vl.Qwen3OmniMoeTextModel

        def set_gguf_parameters(self):
            qwen3vl.Qwen3VLMoeTextModel.set_gguf_parameters(self)
            v = self.hparams.get("thinker_config", {}).get("vision_config", {})
            self.gguf_writer.add_num_deepstack_layers(len(v.get("deepstack_visual_indexes", [])))

        text.set_gguf_parameters = set_gguf_parameters
    sys.argv = [str(tree / "convert_hf_to_gguf.py")] + args
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
