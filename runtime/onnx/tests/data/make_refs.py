"""Reference outputs for flint-onnx's tests, from the implementations nobody here wrote.

- vad_refs.json: Silero VAD speech probability per 512-sample chunk, from onnxruntime running
  silero_vad_openvino_16k.onnx (silero-vad 6.2.3) with the streaming protocol of silero_vad/utils_vad.py's
  OnnxWrapper: state (2, 1, 128) starts at zero, each call feeds the previous call's last 64 samples (zeros at
  first) followed by the 512 new ones, and the returned state is fed back. Only whole chunks are run.
- ocr_refs.json: RapidOCR 1.4.4 (rapidocr-onnxruntime, default config) on the committed images, with and without
  its angle classifier: boxes (original-image pixels), texts, scores.
- exit_sign.png: rendered here with PIL, so its words are known.
- page.png: copied from scikit-image 0.26.0's skimage/data/page.png (a photographed book page).

Run (from the repository root):
    python3 -m venv /tmp/ocrref
    /tmp/ocrref/bin/pip install rapidocr-onnxruntime==1.4.4 onnxruntime==1.32.0 scikit-image==0.26.0
    /tmp/ocrref/bin/pip install --no-deps silero-vad==6.2.3
    bench/fetch_models.sh
    /tmp/ocrref/bin/python runtime/onnx/tests/data/make_refs.py
"""

import importlib.metadata as md
import json
import os
import platform
import shutil
import sys
import wave

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
MODELS = os.path.join(ROOT, ".cache", "models")
AUDIO = "/work/shared/fixtures/processors/audio"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def versions():
    pkgs = ["rapidocr-onnxruntime", "onnxruntime", "numpy", "opencv-python", "pyclipper", "shapely", "pillow",
            "silero-vad", "scikit-image"]
    v = {p: md.version(p) for p in pkgs}
    v["python"] = platform.python_version()
    return v


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return rate, x


def vad_probs(sess, x):
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, 64), dtype=np.float32)
    probs = []
    for i in range(len(x) // 512):
        chunk = x[i * 512:(i + 1) * 512][None, :]
        inp = np.concatenate([context, chunk], axis=1)
        out, state = sess.run(None, {"input": inp, "state": state})
        context = inp[:, -64:]
        probs.append(float(out[0, 0]))
    return probs


def make_vad():
    path = os.path.join(MODELS, "silero_vad_16k.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    clips = {}
    for name in ["sign_question_16k.wav", "speech_22k_16k.wav"]:
        rate, x = read_wav16(os.path.join(AUDIO, name))
        assert rate == 16000
        voiced = np.nonzero(np.abs(x) > 0.01)[0]
        clips[name] = {
            "samples": int(len(x)),
            "first_voiced_sample": int(voiced[0]),
            "last_voiced_sample": int(voiced[-1]),
            "probs": [round(p, 8) for p in vad_probs(sess, x)],
        }
    clips["zeros_2s"] = {"samples": 32000, "probs": [round(p, 8) for p in vad_probs(sess, np.zeros(32000, np.float32))]}
    out = {
        "made_by": "runtime/onnx/tests/data/make_refs.py",
        "versions": versions(),
        "model": "silero_vad_openvino_16k.onnx from silero-vad 6.2.3 (.cache/models/silero_vad_16k.onnx)",
        "protocol": "state zeros(2,1,128); input = last 64 samples of previous input (zeros first) + 512 new; "
                    "int16/32768 samples; whole chunks only",
        "clips": clips,
    }
    with open(os.path.join(HERE, "vad_refs.json"), "w") as f:
        json.dump(out, f, indent=1)


def render_sign(path):
    big = ImageFont.truetype(FONT, 56)
    small = ImageFont.truetype(FONT, 44)
    lines = [("EXIT 12 NORTH", big), ("PLATFORM 4", small)]
    widths = [int(f.getlength(t)) for t, f in lines]
    w = max(widths) + 120
    img = Image.new("RGB", (w, 220), (235, 240, 232))
    d = ImageDraw.Draw(img)
    d.rectangle([20, 20, w - 21, 199], fill=(20, 110, 60))
    y = 45
    for (text, font), tw in zip(lines, widths):
        d.text(((w - tw) // 2, y), text, font=font, fill=(255, 255, 255))
        y += 90
    img.save(path, optimize=True)


def ocr(engine, path, use_cls):
    res, _ = engine(path, use_cls=use_cls)
    return [{"quad": [[float(v) for v in p] for p in box], "text": text, "score": float(score)}
            for box, text, score in (res or [])]


def make_ocr():
    from rapidocr_onnxruntime import RapidOCR
    import skimage

    sign = os.path.join(HERE, "exit_sign.png")
    render_sign(sign)
    page = os.path.join(HERE, "page.png")
    shutil.copyfile(os.path.join(os.path.dirname(skimage.__file__), "data", "page.png"), page)
    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    images = {}
    for name, path, words in [("exit_sign.png", sign, ["EXIT 12 NORTH", "PLATFORM 4"]),
                              ("page.png", page, None)]:
        w, h = Image.open(path).size
        images[name] = {
            "width": w,
            "height": h,
            "rendered_words": words,
            "rapidocr_default": ocr(engine, path, True),
            "rapidocr_no_cls": ocr(engine, path, False),
        }
    out = {
        "made_by": "runtime/onnx/tests/data/make_refs.py",
        "versions": versions(),
        "models": "ch_PP-OCRv4_det_infer.onnx, ch_PP-OCRv4_rec_infer.onnx from rapidocr-onnxruntime 1.4.4 "
                  "(.cache/models/ppocr/det.onnx, rec.onnx); angle classifier ch_ppocr_mobile_v2.0_cls "
                  "(rapidocr's own copy) for rapidocr_default only",
        "images": images,
    }
    with open(os.path.join(HERE, "ocr_refs.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    make_vad()
    make_ocr()
    print("wrote", HERE, file=sys.stderr)
