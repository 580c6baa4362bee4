"""Writes smart_resize.tsv: transformers 5.23's own smart_resize (taken from the reference source with ast, so the
exact python runs, set iteration order included) over a grid of image sizes, patch sizes and token caps.

    python3 gen_smart_resize.py /work/ref/transformers/models/muse_glimmer/image_processing_muse_glimmer.py

CPython 3.11 made the committed file (tuple hashes and set order are stable across 64-bit CPython >= 3.8)."""
import ast
import itertools
import math
import sys

src = open(sys.argv[1]).read()
fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "smart_resize")
ns = {"itertools": itertools, "math": math}
exec(compile(ast.Module(body=[fn], type_ignores=[]), "smart_resize", "exec"), ns)
smart_resize = ns["smart_resize"]

sides = [1, 2, 7, 13, 27, 28, 29, 55, 56, 100, 224, 300, 333, 451, 480, 512, 600, 640, 720, 1000, 1024, 1080,
         1280, 1920, 4000]
with open("smart_resize.tsv", "w") as f:
    f.write("height\twidth\tpatch\tmax_tokens\tout_height\tout_width\n")
    for h, w in itertools.product(sides, sides):
        for patch, cap in [(28, 4096), (28, 256), (28, 64), (28, 1), (8, 15), (8, 6), (28, 144)]:
            oh, ow = smart_resize(h, w, patch, cap)
            f.write(f"{h}\t{w}\t{patch}\t{cap}\t{oh}\t{ow}\n")
