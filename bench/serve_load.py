"""Load generator for bench/serve.sh: R chat requests, C in flight at once, through the official openai client
(the same client for every server). Each request streams `max_tokens` tokens with ignore_eos (so every server
generates the same count), greedy, on its own prompt. Prints one JSON line: wall time, aggregate generated tok/s,
mean time to first token, mean per-stream decode rate.

Usage: python serve_load.py URL --concurrency C --requests R --max-tokens N --label NAME
"""
import argparse
import asyncio
import json
import time

import openai

TOPICS = ["a lighthouse", "a red fox", "the moon", "a violin", "an old map", "a storm", "a garden", "a train",
          "a glacier", "a library", "a kite", "a volcano", "a market", "a robot", "a river", "a clock"]


async def one(client, model, i, n):
    t0 = time.perf_counter()
    first = None
    pieces = 0
    usage = None
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Write a story about {TOPICS[i % len(TOPICS)]} (number {i})."}],
        max_tokens=n, temperature=0, stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    tokens = usage.completion_tokens if usage is not None else pieces
    return {"ttft": (first or end) - t0, "total": end - t0, "tokens": tokens}


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    client = openai.AsyncOpenAI(base_url=a.url + "/v1", api_key="unused", max_retries=0, timeout=600)
    model = (await client.models.list()).data[0].id
    sem = asyncio.Semaphore(a.concurrency)

    async def limited(i):
        async with sem:
            return await one(client, model, i, a.max_tokens)

    t0 = time.perf_counter()
    rs = await asyncio.gather(*(limited(i) for i in range(a.requests)))
    wall = time.perf_counter() - t0
    await client.close()
    tokens = sum(r["tokens"] for r in rs)
    stream_rates = [(r["tokens"] - 1) / max(r["total"] - r["ttft"], 1e-9) for r in rs]
    print(json.dumps({
        "label": a.label, "concurrency": a.concurrency, "requests": a.requests, "wall_s": round(wall, 3),
        "tokens": tokens, "agg_tok_s": round(tokens / wall, 2),
        "ttft_mean_s": round(sum(r["ttft"] for r in rs) / len(rs), 4),
        "stream_tok_s_mean": round(sum(stream_rates) / len(stream_rates), 2),
    }))


asyncio.run(main())
