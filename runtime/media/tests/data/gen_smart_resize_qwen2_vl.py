"""Writes smart_resize_qwen2_vl.tsv: transformers 5.23's own Qwen2-VL smart_resize (taken from the reference
source with ast, so the exact python runs) over a grid of image sizes, factors and pixel bounds. A size the python
refuses (aspect ratio over 200) is written as -1 -1.

    python3 gen_smart_resize_qwen2_vl.py <wheel>/transformers/models/qwen2_vl/image_processing_qwen2_vl.py"""
import ast
import itertools
import math
import sys

src = open(sys.argv[1]).read()
fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "smart_resize")
ns = {"math": math}
exec(compile(ast.Module(body=[fn], type_ignores=[]), "smart_resize", "exec"), ns)
smart_resize = ns["smart_resize"]

sides = [1, 2, 7, 13, 14, 27, 28, 29, 42, 55, 56, 57, 100, 201, 224, 300, 333, 451, 480, 512, 600, 640, 720, 1000,
         1024, 1080, 1280, 1920, 4000, 8192, 32768]
bounds = [(28, 3136, 28 * 28 * 1280), (28, 3136, 256 * 28 * 28), (28, 3136, 64 * 28 * 28), (28, 3136, 12845056),
          (28, 3136, 784), (28, 100000, 50000), (32, 4096, 16384 * 32 * 32), (16, 256, 1 << 26), (14, 1, 1)]
with open("smart_resize_qwen2_vl.tsv", "w") as f:
    f.write("height\twidth\tfactor\tmin_pixels\tmax_pixels\tout_height\tout_width\n")
    for h, w in itertools.product(sides, sides):
        for factor, lo, hi in bounds:
            try:
                oh, ow = smart_resize(h, w, factor, lo, hi)
            except ValueError:
                oh, ow = -1, -1
            f.write(f"{h}\t{w}\t{factor}\t{lo}\t{hi}\t{oh}\t{ow}\n")
