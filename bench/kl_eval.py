#!/usr/bin/env python3
"""One evaluator for every model file: KL and top-1 against a reference on a text, from `flint logits`.

The text is tokenized once (llama.cpp's `llama-tokenize` on a GGUF of the same vocabulary), cut into chunks of
--ctx tokens, and every model runs each chunk from an empty f32 KV cache through `flint logits`. KL(ref || model)
and top-1 agreement are averaged over all positions. A llama.cpp file is scored by importing it into a float .flint
(`flint-quantize import --dtype f32`: its quantized values, dequantized exactly) and naming its GGUF for the size.

Usage: bench/kl_eval.py --ref REF.flint --text FILE --vocab-gguf G.gguf [--ctx 256] [--threads 2]
                        NAME=MODEL.flint[:SIZE_FILE] ...
Prints one line per model: name, size in bytes (of SIZE_FILE if given, else of the model), KL mean, top-1.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tokenize(llama_bin, gguf, text):
    out = subprocess.run(
        [os.path.join(llama_bin, "llama-tokenize"), "-m", gguf, "-f", text, "--ids", "--log-disable"],
        check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("[")][-1]
    return [int(x) for x in line.strip("[]").split(",") if x.strip()]


def logits(flint, model, ids, threads, tmp):
    ids_file, out = os.path.join(tmp, "ids.txt"), os.path.join(tmp, "logits.npy")
    with open(ids_file, "w") as f:
        f.write(",".join(map(str, ids)))
    subprocess.run([flint, "logits", "-m", model, "--ids-file", ids_file, "-o", out, "--kv", "f32",
                    "-t", str(threads)], check=True, stdout=subprocess.DEVNULL)
    return np.load(out).astype(np.float64)


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--vocab-gguf", required=True)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flint", default=os.environ.get("FLINT_BIN", os.path.join(ROOT, "target/release/flint")))
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_BIN", os.path.join(ROOT, ".cache/llama.cpp/bin")))
    ap.add_argument("models", nargs="+", metavar="NAME=MODEL.flint[:SIZE_FILE]")
    a = ap.parse_args()
    ids = tokenize(a.llama_bin, a.vocab_gguf, a.text)
    chunks = [ids[i:i + a.ctx] for i in range(0, len(ids), a.ctx)]
    print(f"{len(ids)} tokens of {a.text} in {len(chunks)} chunks of at most {a.ctx}; reference {a.ref}")
    with tempfile.TemporaryDirectory() as tmp:
        ref = [log_softmax(logits(a.flint, a.ref, c, a.threads, tmp)) for c in chunks]
        for spec in a.models:
            name, _, path = spec.partition("=")
            model, _, size_file = path.partition(":")
            kl, same, n = 0.0, 0, 0
            for c, lp in zip(chunks, ref):
                lq = log_softmax(logits(a.flint, model, c, a.threads, tmp))
                kl += float((np.exp(lp) * (lp - lq)).sum())
                same += int((lp.argmax(-1) == lq.argmax(-1)).sum())
                n += lp.shape[0]
            size = os.path.getsize(size_file or model)
            print(f"{name:18} {size:>11} B  KL {kl / n:.6f}  top-1 {100 * same / n:.2f}%", flush=True)


if __name__ == "__main__":
    sys.exit(main())
