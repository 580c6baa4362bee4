#!/usr/bin/env python3
"""References for a video in an Omni thinker's prompt, made by transformers 5.23 from the shared tiny checkpoints.

../shared/fixtures has no Omni video case, so this script makes one from what it does have: the tiny
Qwen3-Omni-MoE and Qwen2.5-Omni thinkers (../shared/fixtures/hf/*/model) and three real photos
(../shared/fixtures/processors/images/*_640x480_q90.jpg) as the frames of a video at 2 fps (the Rust test
copies them to frames/0.jpg, 500.jpg, 1000.jpg). Per case it writes
tests/refs/<case>_video.safetensors:

  in.input_ids              [1, n] int64: text, <vision_start>, one video pad per merged token, <vision_end>, text
  in.pixel_values_videos    what Qwen2VLVideoProcessor (torchvision) gives for the frames: [rows, 3*2*8*8]
  in.video_grid_thw         [1, 3] int64: (2, h, w): three frames, the last repeated to fill the second temporal patch
  in.video_second_per_grid  [1]: temporal_patch_size / fps at the fps the frames are sampled at (2)
  out.position_ids          [3, 1, n]: the M-RoPE positions get_rope_index gives (seconds on the time axis)
  out.logits                [1, n, vocab]

Run with the bench's torch venv (bench/torch_venv.sh) plus the video processor's torchvision and pillow:
  .cache/torchenv/bin/pip install --no-deps torchvision==0.29.2 pillow
  .cache/torchenv/bin/python tests/refs/gen_omni_video.py
"""
import os
import sys

import numpy as np
import torch
import transformers as T
from PIL import Image
from safetensors.torch import save_file
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "..", "shared", "fixtures")
FPS = 2.0
# The video processor's settings for these tiny towers (patch 8, merge 2): at most 2048 pixels a frame.
VIDEO = dict(patch_size=8, temporal_patch_size=2, merge_size=2,
             size={"shortest_edge": 256, "longest_edge": 2048}, do_sample_frames=False)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def frames():
    names = ["coffee", "chelsea", "astronaut"]
    return np.stack([np.asarray(Image.open(os.path.join(FIX, "processors", "images", f"{n}_640x480_q90.jpg"))
                                .convert("RGB")) for n in names])


def case(name, cls):
    model = cls.from_pretrained(os.path.join(FIX, "hf", name, "model"), attn_implementation="eager")
    model.eval()
    if getattr(model, "_can_set_experts_implementation", lambda: False)():
        model.set_experts_implementation("eager")
    c = model.config
    vp = Qwen2VLVideoProcessor(**VIDEO)
    fr = frames()
    out = vp(videos=[torch.from_numpy(fr).permute(0, 3, 1, 2)], return_tensors="pt", cap_pixels_per_frame=False)
    pv, thw = out["pixel_values_videos"], out["video_grid_thw"]
    n_vid = int(thw.prod()) // 4
    vstart = c.vision_start_token_id
    vend = c.vision_end_token_id
    video = c.video_token_id if hasattr(c, "video_token_id") else c.video_token_index
    text = lambda s: [256 + ord(ch) - 32 for ch in s]
    ids = torch.tensor([text("see ") + [vstart] + [video] * n_vid + [vend] + text(" what?")])
    spg = torch.tensor([VIDEO["temporal_patch_size"] / FPS])
    pos = {}

    def pre(m, args, kwargs):
        pos["p"] = kwargs["position_ids"].detach().clone()

    h = model.model.language_model.register_forward_pre_hook(pre, with_kwargs=True) if hasattr(model, "model") \
        and hasattr(model.model, "language_model") else model.get_submodule("model").register_forward_pre_hook(
            pre, with_kwargs=True)
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=pv,
                  video_grid_thw=thw, video_second_per_grid=spg, use_cache=False)
    h.remove()
    p = pos["p"]
    if p.dim() == 3 and p.shape[0] == 4:  # text positions first, then the three M-RoPE axes
        p = p[1:]
    res = {
        "in.input_ids": ids,
        "in.pixel_values_videos": pv.float(),
        "in.video_grid_thw": thw,
        "in.video_second_per_grid": spg.float(),
        "out.position_ids": p.float(),
        "out.logits": o.logits.float(),
    }
    path = os.path.join(HERE, f"{name}_video.safetensors")
    save_file({k: v.contiguous() for k, v in res.items()}, path,
              metadata={"transformers": T.__version__, "torch": torch.__version__, "fps": str(FPS)})
    print(name, "grid", thw.tolist(), "ids", ids.shape[1], "t positions", sorted(set(p[0, 0].tolist()))[:12],
          "->", path)


def main():
    cases = {"qwen3_omni_moe_thinker": T.Qwen3OmniMoeThinkerForConditionalGeneration,
             "qwen2_5_omni_thinker": T.Qwen2_5OmniThinkerForConditionalGeneration}
    for name in sys.argv[1:] or cases:
        case(name, cases[name])


if __name__ == "__main__":
    main()
