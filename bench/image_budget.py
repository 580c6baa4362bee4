#!/usr/bin/env python3
"""`--image-tokens auto` judged (issue 12): tokens saved, and whether a real OCR model reads the same words.

For each photo of ../shared/fixtures/processors/images, and for signs with text pasted onto three camera-size
photos (made here with Pillow), `flint preprocess --save-resized` writes the image as the processor resized it at
the default cap and at `--image-tokens auto`. PP-OCRv4 (PyPI `rapidocr-onnxruntime` 1.4.4, ONNX Runtime) reads
both, and the words it finds at the full budget must also be found at the auto budget.

Usage: bench/image_budget.py --flint BIN --model MUSE.flint [--out DIR]
(run with a Python that has rapidocr-onnxruntime and Pillow, e.g. a venv: pip install rapidocr-onnxruntime==1.4.4)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rapidocr_onnxruntime import RapidOCR

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / "shared" / "fixtures" / "processors" / "images"
SIGNS = [
    ("coffee_640x480_q90.jpg", "OPEN DAILY 7AM - 9PM", (60, 40)),
    ("chelsea_640x480_q90.jpg", "PLATFORM 4 NORTHBOUND", (40, 380)),
    ("astronaut_640x480_q90.jpg", "EXIT 24 MAIN STREET", (300, 60)),
]


def make_signs(out: Path) -> list[Path]:
    paths = []
    for src, text, (x, y) in SIGNS:
        img = Image.open(IMAGES / src).convert("RGB")
        d = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=22)
        box = d.textbbox((x, y), text, font=font)
        d.rectangle((box[0] - 8, box[1] - 6, box[2] + 8, box[3] + 6), fill=(245, 245, 235), outline=(20, 20, 20))
        d.text((x, y), text, fill=(15, 15, 15), font=font)
        p = out / f"sign_{src.replace('_q90.jpg', '.png')}"
        img.save(p)
        paths.append(p)
    return paths


def preprocess(flint: str, model: str, image: Path, auto: bool, out: Path) -> tuple[int, str, Path]:
    args = [flint, "preprocess", "-m", model, "--image", str(image), "-o", str(out / "p.safetensors"),
            "--save-resized", str(out)]
    if auto:
        args += ["--image-tokens", "auto"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"flint preprocess failed on {image}: {r.stderr}")
    tokens = int(re.search(r"preprocess: [0-9.]+ s \((\d+) image tokens\)", r.stderr)[1])
    note = re.search(r"image tokens auto: .*", r.stderr)
    return tokens, note[0] if note else "", out / "image0.png"


def words(ocr: RapidOCR, png: Path) -> set[str]:
    res, _ = ocr(str(png))
    found = set()
    for _, text, score in res or []:
        if float(score) >= 0.5:
            found |= {w for w in re.findall(r"[A-Za-z0-9]+", text.upper()) if len(w) > 1}
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flint", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    ocr = RapidOCR()
    work = Path(a.out or tempfile.mkdtemp(prefix="budget-"))
    work.mkdir(parents=True, exist_ok=True)
    images = sorted(IMAGES.glob("*.png")) + sorted(IMAGES.glob("*.jpg")) + make_signs(work)
    rows, total_full, total_auto, lost = [], 0, 0, 0
    for img in images:
        out_f, out_a = work / (img.stem + ".full"), work / (img.stem + ".auto")
        out_f.mkdir(exist_ok=True)
        out_a.mkdir(exist_ok=True)
        tf, _, pf = preprocess(a.flint, a.model, img, False, out_f)
        ta, note, pa = preprocess(a.flint, a.model, img, True, out_a)
        wf, wa = words(ocr, pf), words(ocr, pa)
        missing = sorted(wf - wa)
        lost += len(missing)
        total_full += tf
        total_auto += ta
        detail = re.search(r"detail ([0-9.]+)", note)[1]
        rows.append(f"| {img.name} | {detail} | {tf} | {ta} | {', '.join(sorted(wf)) or '-'} | "
                    f"{', '.join(missing) or 'none'} |")
    print("| image | detail | tokens, default | tokens, auto | OCR words at default | missing at auto |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\ntotal tokens: default {total_full}, auto {total_auto} "
          f"({100 * (1 - total_auto / total_full):.1f} % fewer); OCR words lost at auto: {lost}")
    print(json.dumps({"default": total_full, "auto": total_auto, "lost": lost}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
