#!/usr/bin/env python3
"""The table of bench/qwen_omni.sh from its log: per thread count and prompt, each engine's tower encode and its
prompt-to-first-token time (the encode and the whole prompt's prefill; llama.cpp's `prompt eval time`, which spans
both), mean ± sd over the runs during which other processes used at most MAX_OTHERS cores, and the ratio of the means
(llama.cpp's time over Flint's: above 1 Flint is faster). For the image + audio prompt (Flint only) also end of speech
to first token as the glasses would see it with the frame encoded while the wearer speaks: the audio encode (the
encoder attends over windows of 8 s, so a question shorter than that is one window, encoded once it has ended) plus
the prefill.

Usage: qwen_omni_report.py LOG
"""
from __future__ import annotations

import re
import statistics
import sys

MAX_OTHERS = 0.2


def parse(path: str):
    runs, cur, loads, order = {}, None, {}, []
    for line in open(path):
        m = re.match(r"## set t=(\d+) load (.*)", line)
        if m:
            loads[m[1]] = m[2].strip()
            continue
        m = re.match(r"## others (-?[0-9.]+)", line)
        if m:
            cur["others"] = float(m[1])
            continue
        if line.startswith("## warning") or line.startswith("## end load"):
            print(line.strip()[3:])
            continue
        m = re.match(r"## (flint|llama) (\S+) (\d+)", line)
        if m:
            cur = {}
            runs.setdefault((m[1], m[2], m[3]), []).append(cur)
            if m[3] not in order:
                order.append(m[3])
            continue
        if re.search(r"\berror\b|failed", line, re.I):
            sys.exit("run failed: " + line.strip())
        m = re.match(r"(vision encode|audio encode): ([0-9.]+) s \((\d+) tokens\)", line)
        if m:
            cur[m[1]] = float(m[2])
            cur[m[1] + " tokens"] = int(m[3])
        m = re.match(r"(decode image|preprocess|read audio): ([0-9.]+) s", line)
        if m:
            cur["pre"] = cur.get("pre", 0.0) + float(m[2])
        m = re.search(r"prompt (\d+) tok, ([0-9.]+) tok/s", line)
        if m:
            cur["prompt"] = int(m[1])
            cur["prefill"] = int(m[1]) / float(m[2])
        m = re.search(r"mtmd batch encoding done in (\d+) ms", line)
        if m:
            cur["encode"] = cur.get("encode", 0.0) + int(m[1]) / 1000
        m = re.search(r"(?:image|audio) decoded \(batch \d+/\d+\) in (\d+) ms", line)
        if m:
            cur["rows"] = cur.get("rows", 0.0) + int(m[1]) / 1000
        m = re.search(r"prompt eval time =\s+([0-9.]+) ms /\s+(\d+) tokens", line)
        if m:
            cur["total"] = float(m[1]) / 1000
            cur["prompt"] = int(m[2])
        m = re.search(r"(?:total|n_tokens =) (\d+)(?: tokens)?$", line.strip())
        if m:
            cur["tokens"] = int(m[1])
    for (e, _, _), rs in runs.items():
        if e == "flint":
            for x in rs:
                x["encode"] = x.get("vision encode", 0.0) + x.get("audio encode", 0.0)
                x["tokens"] = x.get("vision encode tokens", 0) + x.get("audio encode tokens", 0)
                x["total"] = x["encode"] + x["prefill"]
    return runs, loads, order


def ms(xs):
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f} s"


def main() -> None:
    runs, loads, order = parse(sys.argv[1])
    print("samples (encode s / prompt to first token s, and in brackets the cores other processes used; run order):")
    for (e, p, t), rs in runs.items():
        print(f"- t={t} {p} {e}: " + ", ".join(
            f"{x.get('encode', 0):.2f}/{x.get('total', 0):.2f} ({x.get('others', 0):.2f})" for x in rs))
    print(f"\nTable: runs during which other processes used at most {MAX_OTHERS} cores (n: runs kept).\n")
    print("| threads | load before | prompt | measure | tokens: Flint / llama.cpp | Flint | llama.cpp | "
          "Flint speed / llama.cpp |\n|---:|---|---|---|---|---:|---:|---:|")
    for t in order:
        clean = {k: [x for x in v if x.get("others", 0) <= MAX_OTHERS] for k, v in runs.items() if k[2] == t}
        for p, label in (("image", "image (640x480 frame)"), ("audio", "audio (5.55 s question)")):
            f, l = clean.get(("flint", p, t), []), clean.get(("llama", p, t), [])
            if not f or not l:
                print(f"| {t} | {loads[t]} | {label} | no clean runs | | | | |")
                continue
            tok = f"{f[0]['tokens']} / {l[0].get('tokens', '?')}"
            ptok = f"{f[0]['prompt']} / {l[0].get('prompt', '?')}"
            for key, what, tk in (("encode", "tower encode", tok), ("total", "encode + prefill (to first token)", ptok)):
                fv, lv = [x[key] for x in f], [x[key] for x in l]
                print(f"| {t} | {loads[t]} | {label} | {what} | {tk} | {ms(fv)} (n {len(fv)}) | {ms(lv)} (n {len(lv)}) "
                      f"| {statistics.mean(lv) / statistics.mean(fv):.2f}x |")
        b = clean.get(("flint", "both", t), [])
        if b:
            for what, vals in (
                ("vision encode", [x["vision encode"] for x in b]),
                ("audio encode", [x["audio encode"] for x in b]),
                (f"prefill ({b[0]['prompt']} tokens)", [x["prefill"] for x in b]),
                ("encodes + prefill (to first token)", [x["total"] for x in b]),
                ("end of speech -> first token (audio encode + prefill)",
                 [x["audio encode"] + x["prefill"] for x in b]),
                ("preprocessing (decode + resize, WAV + log-mel)", [x["pre"] for x in b]),
            ):
                print(f"| {t} | {loads[t]} | image + audio | {what} | {b[0]['tokens']} / - | {ms(vals)} (n {len(vals)}) "
                      f"| not loadable | |")


if __name__ == "__main__":
    main()
