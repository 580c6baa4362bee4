"""The glasses loop assembled from the peers a user would pick, on the same recording and models as `flint glasses`
(issue 17's speed comparison; bench/glasses.sh runs both side by side):

- voice activity: the same Silero file (silero_vad_16k.onnx) through onnxruntime, with Flint's state machine and
  thresholds (threshold 0.5 / 0.35, 250 ms minimum speech, 500 ms hangover), fed at the recording's own pace;
- text in view: rapidocr-onnxruntime (PP-OCRv4 det + rec, the same ONNX files), started at speech start on the
  sharpest frame of the last second (variance of the Laplacian), on its own thread, as Flint does;
- speech: faster-whisper on the same CTranslate2 Whisper tiny.en folder, greedy (beam 1), int8/float32 as
  --compute-type says, at the end of speech;
- the answer: llama-server (llama.cpp) on the same GGUF quantised to Q8_0, streamed over its OpenAI-compatible
  API with the same system message and user prompt as Flint's loop (runtime/glasses/src/turn.rs).

Prints one JSON line per turn with the same timing names as `flint glasses --json` (ms from the moment the
detector declared the end of speech): asr_ms, ocr_ms, encode_done_ms, first_token_ms, answer_done_ms; and the
transcript and answer.

Usage: python bench/glasses_peer.py --recording DIR --models DIR --server URL [--threads 2] [--max-tokens 64]
"""
import argparse
import glob
import json
import os
import threading
import time

import cv2
import numpy as np
import onnxruntime as ort
import requests
from faster_whisper import WhisperModel, decode_audio
from rapidocr_onnxruntime import RapidOCR

# The same words as runtime/glasses/src/turn.rs (SYSTEM, prompt(), MAX_OCR_CHARS).
SYSTEM = ("You are the voice of a pair of camera glasses. The wearer asks about what they see and hear. Answer in "
          "one or two short sentences. When the question is about text in view, quote that text.")
MAX_OCR_CHARS = 600
CHUNK, CONTEXT, RATE = 512, 64, 16000


def prompt(transcript, words):
    if not words:
        return transcript.strip()
    seen = ""
    for w in words:
        if len(seen) + len(w) + 3 > MAX_OCR_CHARS:
            break
        seen += (" / " if seen else "") + w.strip()
    return f"The camera sees this text (read by OCR, top to bottom): \"{seen}\"\nQuestion: {transcript.strip()}"


class Vad:
    """Silero through onnxruntime with Flint's event state machine (runtime/onnx/src/vad.rs)."""

    def __init__(self, path, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.done = 0
        self.candidate = self.silence = None
        self.speaking = False
        self.last_end = 0

    def push_chunk(self, chunk):
        x = np.concatenate([self.context, chunk]).astype(np.float32)[None, :]
        names = [i.name for i in self.s.get_inputs()]
        p, self.state = self.s.run(None, {names[0]: x, names[1]: self.state})
        self.context = chunk[-CONTEXT:]
        self.done += CHUNK
        p = float(np.ravel(p)[0])
        end, begin = self.done, self.done - CHUNK
        if p >= 0.5:
            self.silence = None
            if self.candidate is None:
                self.candidate = begin
        elif p < 0.35 and self.candidate is not None and self.silence is None:
            self.silence = begin
        if self.candidate is None:
            return None
        if not self.speaking and self.silence is None and end - self.candidate >= 250 * 16:
            self.speaking = True
            return ("start", max(self.candidate - 300 * 16, self.last_end))
        if self.silence is not None and end - self.silence >= 500 * 16:
            ev = None
            if self.speaking:
                self.last_end = self.silence
                ev = ("end", self.silence)
            self.candidate = self.silence = None
            self.speaking = False
            return ev
        return None


def read_wav(path):
    # Any rate and channel count, resampled to 16 kHz mono the way a faster-whisper user would (PyAV's resampler).
    return decode_audio(path, sampling_rate=RATE).astype(np.float32)


def sharpness(img):
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.Laplacian(g, cv2.CV_64F).var()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recording", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--compute-type", default="float32")
    a = ap.parse_args()

    t_load = time.perf_counter()
    vad = Vad(os.path.join(a.models, "silero_vad_16k.onnx"), a.threads)
    asr = WhisperModel(os.path.join(a.models, "whisper-tiny-en"), device="cpu", compute_type=a.compute_type,
                       cpu_threads=a.threads)
    ocr = RapidOCR(det_model_path=os.path.join(a.models, "ppocr/det.onnx"),
                   rec_model_path=os.path.join(a.models, "ppocr/rec.onnx"), intra_op_num_threads=1)
    session = requests.Session()
    # Warm every stage once, as Flint's loop has its models loaded and planned before the recording starts.
    list(asr.transcribe(np.zeros(RATE, np.float32), beam_size=1, language="en")[0])
    ocr(np.zeros((64, 64, 3), np.uint8))
    session.post(f"{a.server}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0}).raise_for_status()
    print(json.dumps({"event": "start", "load_ms": (time.perf_counter() - t_load) * 1e3}), flush=True)

    audio = read_wav(os.path.join(a.recording, "audio.wav"))
    frames = sorted((int(os.path.splitext(os.path.basename(p))[0]), p)
                    for p in glob.glob(os.path.join(a.recording, "frames", "*")))
    loaded = {}
    early = None
    speech_from = None
    turn = 0
    t0 = time.perf_counter()
    for i in range(0, len(audio) - CHUNK + 1, CHUNK):
        # The recording's own pace: this chunk is available once its last sample has been "spoken".
        due = t0 + (i + CHUNK) / RATE
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        now_ms = (i + CHUNK) * 1000 // RATE
        ev = vad.push_chunk(audio[i:i + CHUNK])
        if ev is None:
            continue
        kind, at = ev
        if kind == "start":
            speech_from = at
            recent = [(t, p) for t, p in frames if t <= now_ms and t + 1000 >= now_ms] or \
                     [max(((t, p) for t, p in frames if t <= now_ms), default=frames[0])]
            imgs = [(t, loaded.setdefault(p, cv2.imread(p))) for t, p in recent]
            t_frame, img = max(imgs, key=lambda x: sharpness(x[1]))
            box = {}

            def read(img=img, box=box):
                s = time.perf_counter()
                res, _ = ocr(img)
                box["words"] = [r[1] for r in (res or [])]
                box["ms"] = (time.perf_counter() - s) * 1e3
                box["at"] = time.perf_counter()

            th = threading.Thread(target=read)
            th.start()
            early = (th, box)
            continue
        if speech_from is None:
            continue
        speech_end = time.perf_counter()
        ms = lambda t: (t - speech_end) * 1e3  # noqa: E731
        turn += 1
        clip = audio[speech_from:at]
        segs, _ = asr.transcribe(clip, beam_size=1, language="en", without_timestamps=True,
                                 condition_on_previous_text=False, vad_filter=False)
        text = "".join(s.text for s in segs)
        asr_done = time.perf_counter()
        th, box = early
        th.join()
        ocr_done = max(box["at"], speech_end)
        encode_done = max(asr_done, ocr_done)
        first = None
        answer = ""
        body = {"messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": prompt(text, box["words"])}],
                "max_tokens": a.max_tokens, "temperature": 0, "stream": True}
        with session.post(f"{a.server}/v1/chat/completions", json=body, stream=True) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0].get("delta", {}).get("content") or ""
                if delta and first is None:
                    first = time.perf_counter()
                answer += delta
        done = time.perf_counter()
        print(json.dumps({"event": "timings", "turn": turn, "transcript": text.strip(), "ocr_words": len(box["words"]),
                          "answer": answer.strip(), "asr_ms": ms(asr_done), "ocr_ms": box["ms"],
                          "encode_done_ms": ms(encode_done), "first_token_ms": ms(first) if first else None,
                          "answer_done_ms": ms(done)}), flush=True)
        speech_from = None
        early = None


if __name__ == "__main__":
    main()
