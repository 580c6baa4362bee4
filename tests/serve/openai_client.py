"""flint serve against the official `openai` Python client (PyPI), as a real client sees it.

Run by tests/tests/e2e/serve_openai.rs with FLINT_URL (an open server) and FLINT_URL_KEYED + FLINT_KEY (one started
with --api-key). Every check raises on failure; the last line printed is "ok".
"""
import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import openai

URL = os.environ["FLINT_URL"]
KEYED = os.environ["FLINT_URL_KEYED"]
KEY = os.environ["FLINT_KEY"]
Q = [{"role": "user", "content": "Name the capital of France."}]

client = openai.OpenAI(base_url=URL + "/v1", api_key="unused", max_retries=0, timeout=120)


def metrics():
    with urllib.request.urlopen(URL + "/metrics", timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.split()
                out[k] = float(v)
        return out


def raw(path, body=None, headers=None):
    req = urllib.request.Request(URL + path, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_idle():
    t0 = time.time()
    while True:
        m = metrics()
        if m["flint_live_sequences"] == 0 and m["flint_queue_depth"] == 0:
            return m
        assert time.time() - t0 < 30, f"server not idle after 30 s: {m}"
        time.sleep(0.1)


# Models.
ids = [m.id for m in client.models.list().data]
assert len(ids) == 1, ids
model = ids[0]

# Plain chat, greedy.
r = client.chat.completions.create(model=model, messages=Q, temperature=0, max_tokens=30)
answer = r.choices[0].message.content
assert "Paris" in answer, answer
assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
assert r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 30, r.usage
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
first = r
idle = wait_idle()
print("chat:", repr(answer), r.usage)

# Streaming gives the same text, piece by piece, then the finish reason and the usage. The same prompt again
# comes from the prefix cache, all but its last token: the answer must not change.
cached0 = idle["flint_prompt_tokens_cached_total"]
pieces, finish, usage = [], None, None
for chunk in client.chat.completions.create(
    model=model, messages=Q, temperature=0, max_tokens=30, stream=True, stream_options={"include_usage": True}
):
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        assert c.index == 0
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
assert "".join(pieces) == answer, (pieces, answer)
assert len(pieces) > 3, pieces
assert finish == "stop" and usage.completion_tokens == r.usage.completion_tokens, (finish, usage)
assert metrics()["flint_prompt_tokens_cached_total"] - cached0 == first.usage.prompt_tokens - 1
print("stream:", len(pieces), "pieces, prompt from the prefix cache")

# n choices decoded together, reproducible with a seed.
def three(seed):
    r = client.chat.completions.create(
        model=model, messages=Q, temperature=1.0, max_tokens=12, n=3, seed=seed,
    )
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    return [c.message.content for c in sorted(r.choices, key=lambda c: c.index)]

a, b, c = three(7), three(7), three(8)
assert a == b, (a, b)
assert all(t for t in a), a
assert a != c, (a, c)
print("n=3:", a)

# Streamed n=3: every choice ends.
ends = set()
for chunk in client.chat.completions.create(model=model, messages=Q, max_tokens=5, n=3, seed=1, stream=True):
    for ch in chunk.choices:
        if ch.finish_reason:
            ends.add(ch.index)
assert ends == {0, 1, 2}, ends

# max_tokens ends with "length"; a stop string ends with "stop" and is not in the text.
r = client.chat.completions.create(model=model, messages=Q, temperature=0, max_tokens=3)
assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3, r
r = client.chat.completions.create(model=model, messages=Q, temperature=0, max_tokens=30, stop=["Paris"])
assert r.choices[0].finish_reason == "stop" and "Paris" not in r.choices[0].message.content, r
assert answer.startswith(r.choices[0].message.content), (answer, r.choices[0].message.content)
print("length and stop: ok")

# What the engine cannot enforce is refused, naming the field (fail closed).
for kwargs, param in [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "format": "email"}}}},
     "response_format.json_schema.schema"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
     "tools[0].function.parameters.type"),
    ({"logit_bias": {"1": 5}}, "logit_bias"),
    ({"n": 99}, "n"),
]:
    try:
        client.chat.completions.create(model=model, messages=Q, max_tokens=4, **kwargs)
        raise AssertionError(f"{param} was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == param, e.body
print("refusals: ok")

# Raw HTTP: health, unknown route, malformed and oversized bodies.
assert raw("/health")[0] == 200
assert raw("/nope")[0] == 404
st, body = raw("/v1/chat/completions", b"{not json", {"Content-Type": "application/json"})
assert st == 400 and json.loads(body)["error"]["param"] == "body", (st, body)
st, _ = raw("/v1/chat/completions", b"x" * (9 << 20), {"Content-Type": "application/json"})
assert st == 413, st
# Hostile bodies: each a 400 naming what is wrong, and the server keeps serving.
for body in [
    b'{"messages": "hi"}', b'{"messages": [{"role": "user", "content": 5}]}', b'{"messages": [{"content": "x"}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "n": "3"}',
    b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
    b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e30}',
    b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
    b'{"messages": [{"role": "user", "content": "x"}], "stop": [1, 2]}',
    b"[" * 100000, b'{"messages": [' + b'{"role": "user", "content": "x"},' * 5000 + b'{"role": "user"}]}',
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}', b"\xff\xfe\x00",
]:
    st, out = raw("/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert st == 400 and "error" in json.loads(out), (body[:60], st, out[:200])
assert raw("/health")[0] == 200

# 200 concurrent requests: all answered, batched (at most --parallel at once), nothing left behind.
async def crowd(n):
    ac = openai.AsyncOpenAI(base_url=URL + "/v1", api_key="unused", max_retries=0, timeout=300)
    async def one(i):
        r = await ac.chat.completions.create(model=model, messages=Q, temperature=0, max_tokens=8)
        return r.choices[0].message.content
    t0 = time.time()
    out = await asyncio.gather(*(one(i) for i in range(n)))
    await ac.close()
    return out, time.time() - t0

# Each answer equals the same request alone: batching with other sequences does not change a greedy result.
alone = client.chat.completions.create(model=model, messages=Q, temperature=0, max_tokens=8).choices[0].message.content
steps0 = metrics()["flint_decode_steps_total"]
out, secs = asyncio.run(crowd(200))
assert all(t == alone for t in out), [t for t in out if t != alone][:3]
m = wait_idle()
steps = m["flint_decode_steps_total"] - steps0
# 200 requests of up to 8 tokens one at a time would take ~1400 steps; batched they take far fewer.
assert steps < 600, steps
print(f"200 concurrent: {secs:.1f} s, {steps:.0f} decode steps")

# A client that disconnects mid-stream frees its sequence.
cancelled0 = metrics()["flint_requests_cancelled_total"]
stream = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Write a long story about a dragon."}],
    max_tokens=400, stream=True,
)
for i, _ in enumerate(stream):
    if i == 3:
        break
stream.close()
m = wait_idle()
assert m["flint_requests_cancelled_total"] >= cancelled0 + 1, m
# Memory is back near its idle level (the KV cache is dropped when idle).
grown = m["flint_resident_bytes"] - idle["flint_resident_bytes"]
assert grown < 48 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB after the load"
print(f"disconnect: freed; resident memory {grown / 2**20:+.1f} MiB against idle")

# The next turn of a chat re-sends the history: its prefix comes from the cache (the first turn's prompt and
# answer), and the answer equals that of a server without a prefix cache (the keyed one runs --prefix-cache 0).
turns = Q + [{"role": "assistant", "content": answer}, {"role": "user", "content": "And of Germany?"}]
cached0 = metrics()["flint_prompt_tokens_cached_total"]
second = client.chat.completions.create(model=model, messages=turns, temperature=0, max_tokens=20)
reused = metrics()["flint_prompt_tokens_cached_total"] - cached0
assert reused >= first.usage.prompt_tokens, (reused, first.usage.prompt_tokens)
uncached = openai.OpenAI(base_url=KEYED + "/v1", api_key=KEY, max_retries=0, timeout=60).chat.completions.create(
    model=model, messages=turns, temperature=0, max_tokens=20)
assert second.choices[0].message.content == uncached.choices[0].message.content, (second, uncached)
print(f"second turn: {reused:.0f} of {second.usage.prompt_tokens} prompt tokens reused:",
      repr(second.choices[0].message.content))

# The API key.
keyed = openai.OpenAI(base_url=KEYED + "/v1", api_key="wrong", max_retries=0, timeout=60)
try:
    keyed.chat.completions.create(model=model, messages=Q, max_tokens=2)
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401
keyed = openai.OpenAI(base_url=KEYED + "/v1", api_key=KEY, max_retries=0, timeout=60)
assert keyed.chat.completions.create(model=model, messages=Q, max_tokens=2).choices[0].finish_reason == "length"
print("api key: ok")
print("ok")
