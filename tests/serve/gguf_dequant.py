"""Dequantizes raw ggml blocks with the `gguf` package (PyPI; llama.cpp's own numpy reference): reads
`TYPE_NAME IN OUT` triples from argv, writes each OUT as little-endian float32. Prints "ok"."""
import sys

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

args = sys.argv[1:]
for i in range(0, len(args), 3):
    name, src, dst = args[i : i + 3]
    qtype = GGMLQuantizationType[name]
    raw = np.fromfile(src, dtype=np.uint8)
    out = dequantize(raw, qtype).astype("<f4")
    out.tofile(dst)
print("ok")
