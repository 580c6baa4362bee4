#!/usr/bin/env python3
"""One line of bench/mix.sh from a quantized file's report (JSON on stdin): size, bits/weight, KL, top-1, mix."""
import json
import sys

model, name = sys.argv[1], sys.argv[2]
q = json.load(sys.stdin)
e = q["eval"]
x = q.get("experts") or {}
mix = " ".join(f"{n} {t}" for t, n in sorted(x["counts"].items())) if x else "-"
print(f"{model:14} {name:9} {q['file_bytes']:>11} B  {q['bits_per_weight']:.3f} bpw  "
      f"KL {e['kl_mean']:.6f}  top-1 {100 * e['top1_agreement']:.2f}%  {mix}")
