"""flint serve with images and audio in content parts, through the official openai client (driven by
tests/tests/e2e/serve_openai.rs on the tiny Muse Spark and the tiny Qwen3-Omni thinker). Env: FLINT_URL,
FLINT_IMAGE (a photo under the server's --allow-path), FLINT_WAV, FLINT_PROMPT. Prints one JSON object: the answers by how the media were sent."""
import base64
import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["FLINT_URL"] + "/v1", api_key="unused", max_retries=0, timeout=120)
image, wav, prompt = os.environ["FLINT_IMAGE"], os.environ["FLINT_WAV"], os.environ["FLINT_PROMPT"]
model = client.models.list().data[0].id


def ask(parts):
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": parts}], temperature=0, max_tokens=8
    )
    return r.choices[0].message.content


def data_url(path, mime):
    return f"data:{mime};base64," + base64.b64encode(open(path, "rb").read()).decode()


text = {"type": "text", "text": prompt}
out = {
    "image_data_url": ask([{"type": "image_url", "image_url": {"url": data_url(image, "image/png")}}, text]),
    "image_path": ask([{"type": "image_url", "image_url": {"url": "file://" + image}}, text]),
    "image_audio": ask([
        {"type": "image_url", "image_url": {"url": data_url(image, "image/png")}},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(open(wav, "rb").read()).decode(),
                                                "format": "wav"}},
        text,
    ]),
}
# Refused, naming the part: a file outside --allow-path, bytes that are no image.
for url, why in [("file:///etc/hostname", "allow-path"), ("data:image/png;base64,aGVsbG8=", "")]:
    try:
        ask([{"type": "image_url", "image_url": {"url": url}}, text])
        raise AssertionError(f"{url} was accepted")
    except openai.BadRequestError as e:
        msg = e.body["message"]
        assert e.body["param"] in ("messages[0].content[0]", "messages"), e.body
        assert why in msg, msg
        out.setdefault("refused", []).append(msg)
print(json.dumps(out))
