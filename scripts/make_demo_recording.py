"""Makes the bundled demo recording of `flint glasses` from real material.

Layout (docs/GLASSES.md): OUT/audio.wav (espeak-ng's 22050 Hz mono 16-bit, the questions with silence between)
and OUT/frames/<ms>.jpg (640x480, 5 frames per second), plus OUT/questions.json: each question, when it is
spoken, the photo in view and the words its answer must contain (any one of each inner list).

The photos are scikit-image 0.26.0's sample data (skimage/data/, read from the wheel): coffee.png (CC0), page.png
(a photograph of a book page: the text the OCR question is about) and astronaut.png (NASA, public domain). Camera
shake is imitated: of every three frames two are blurred (Gaussian, radius 1.5 and 3), so that picking the sharpest
frame matters. The questions are spoken by espeak-ng (`-v en-us -s 160`).

Usage: python make_demo_recording.py SKIMAGE_WHEEL OUT_DIR    (deterministic: same inputs, same bytes)
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import wave
import zipfile

from PIL import Image, ImageFilter, ImageOps

RATE = 22050
FPS = 5
SIZE = (640, 480)
# (photo, seconds in view, question or None, seconds into the scene it starts, words the answer must contain)
SCENES = [
    ("coffee.png", 9.0, "What is the capital of France?", 1.0, [["Paris"]]),
    ("page.png", 10.0, "What is the title of the page in front of me?", 1.0, [["segmentation", "Segmentation"]]),
    ("astronaut.png", 9.0, "How many days are there in a week?", 1.0, [["seven", "Seven", "7"]]),
]


def speak(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "q.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", path, text], check=True)
        with wave.open(path) as w:
            assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
            return w.readframes(w.getnframes())


def frame(photo, k):
    img = ImageOps.pad(photo, SIZE, method=Image.LANCZOS, color=(16, 16, 16))
    radius = (0.0, 1.5, 3.0)[k % 3]
    if radius:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def main():
    wheel, out = sys.argv[1], sys.argv[2]
    frames_dir = os.path.join(out, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    for name in os.listdir(frames_dir):
        os.remove(os.path.join(frames_dir, name))
    audio = bytearray()
    questions = []
    t0 = 0.0
    with zipfile.ZipFile(wheel) as z:
        for photo_name, seconds, question, at, expect in SCENES:
            photo = Image.open(io.BytesIO(z.read("skimage/data/" + photo_name))).convert("RGB")
            n_frames = int(seconds * FPS)
            for k in range(n_frames):
                ms = round((t0 + k / FPS) * 1000)
                with open(os.path.join(frames_dir, f"{ms}.jpg"), "wb") as f:
                    f.write(frame(photo, k))
            scene = bytearray(int(seconds * RATE) * 2)
            if question:
                speech = speak(question)
                start = int(at * RATE) * 2
                assert start + len(speech) <= len(scene), f"{question!r} does not fit its scene"
                scene[start : start + len(speech)] = speech
                questions.append({
                    "question": question,
                    "t_ms": round((t0 + at) * 1000),
                    "speech_ms": round(len(speech) / 2 / RATE * 1000),
                    "photo": photo_name,
                    "expect": expect,
                })
            audio += scene
            t0 += seconds
    tmp = os.path.join(out, "audio.wav.tmp")
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(audio))
    os.replace(tmp, os.path.join(out, "audio.wav"))
    with open(os.path.join(out, "questions.json.tmp"), "w") as f:
        json.dump({"source": "scikit-image 0.26.0 skimage/data, espeak-ng -v en-us -s 160",
                   "questions": questions}, f, indent=1)
    os.replace(os.path.join(out, "questions.json.tmp"), os.path.join(out, "questions.json"))
    print(f"wrote {out}: {t0:.0f} s, {len(os.listdir(frames_dir))} frames, {len(questions)} questions")


if __name__ == "__main__":
    main()
