"""Structured answers from `flint serve` through the official openai client: response_format json_schema (n=3,
sampled warm, and streamed) and json_object, an unsupported schema refused, tools (required, named and streamed,
auto), a tool's result back into the conversation, reasoning_effort. Every JSON value is checked with the
`jsonschema` package. Prints "ok" at the end."""
import json
import os

import jsonschema
import openai

client = openai.OpenAI(base_url=os.environ["FLINT_URL"] + "/v1", api_key="none")
MODEL = client.models.list().data[0].id

person = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "city": {"enum": ["Paris", "Rome", "Oslo"]},
    },
    "required": ["name", "age", "city"],
}
ask = [{"role": "user", "content": "Invent a person living in Europe and describe them as JSON."}]

# json_schema, three choices sampled warm: each one validates.
r = client.chat.completions.create(
    model=MODEL, messages=ask, n=3, temperature=1.0, seed=7, max_tokens=128,
    response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": person, "strict": True}},
)
assert len(r.choices) == 3
for c in r.choices:
    assert c.finish_reason == "stop", c
    jsonschema.validate(json.loads(c.message.content), person)
print("json_schema n=3:", [c.message.content for c in r.choices])

# Streamed: the pieces join into a valid value.
s = client.chat.completions.create(
    model=MODEL, messages=ask, stream=True, temperature=0.8, seed=3, max_tokens=128,
    response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": person}},
)
text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
jsonschema.validate(json.loads(text), person)
print("json_schema stream:", text)

# json_object: an object.
r = client.chat.completions.create(
    model=MODEL, messages=ask, max_tokens=96, response_format={"type": "json_object"},
)
c = r.choices[0]
if c.finish_reason == "stop":
    assert isinstance(json.loads(c.message.content), dict), c.message.content
else:
    assert c.finish_reason == "length", c
print("json_object:", c.finish_reason, c.message.content)

# A schema the grammar cannot enforce: refused before generation, naming the field.
try:
    client.chat.completions.create(
        model=MODEL, messages=ask,
        response_format={"type": "json_schema", "json_schema": {"name": "z", "schema": {"type": "string", "pattern": "^a+$"}}},
    )
    raise SystemExit("a pattern schema was accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "response_format.json_schema.schema" and "pattern" in e.body["message"], e.body
print("unsupported schema refused")

weather = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
clock = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a time zone.",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 30}}, "required": ["zone"]},
    },
}
tools = [weather, clock]
by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
q = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def check_calls(calls):
    assert calls, "no tool calls"
    for call in calls:
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, by_name[call.function.name])
    return [(c.function.name, json.loads(c.function.arguments)) for c in calls]


# required, three choices: each is a valid call.
r = client.chat.completions.create(
    model=MODEL, messages=q, tools=tools, tool_choice="required", n=3, temperature=1.0, seed=11, max_tokens=96,
)
for c in r.choices:
    assert c.finish_reason == "tool_calls", c
    print("required:", check_calls(c.message.tool_calls))
first = r.choices[0].message.tool_calls[0]

# A named function, streamed.
s = client.chat.completions.create(
    model=MODEL, messages=q, tools=tools, stream=True, max_tokens=96,
    tool_choice={"type": "function", "function": {"name": "get_weather"}},
)
calls, finish = {}, None
for ch in s:
    if not ch.choices:
        continue
    d = ch.choices[0].delta
    for tc in d.tool_calls or []:
        e = calls.setdefault(tc.index, {"name": "", "arguments": ""})
        e["name"] += (tc.function.name or "")
        e["arguments"] += (tc.function.arguments or "")
    finish = ch.choices[0].finish_reason or finish
assert finish == "tool_calls" and len(calls) == 1 and calls[0]["name"] == "get_weather", (finish, calls)
jsonschema.validate(json.loads(calls[0]["arguments"]), by_name["get_weather"])
print("named, streamed:", calls)

# auto: the model may answer or call; a call is valid either way.
r = client.chat.completions.create(model=MODEL, messages=q, tools=tools, max_tokens=96)
c = r.choices[0]
if c.message.tool_calls:
    assert c.finish_reason == "tool_calls"
    print("auto: called", check_calls(c.message.tool_calls))
else:
    print("auto: answered", repr(c.message.content), c.finish_reason)

# The call and its result go back: the model answers in words, and the prompt grew by the result.
turn = q + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": first.id, "type": "function", "function": {"name": first.function.name, "arguments": first.function.arguments}}]},
]
with_result = turn + [{"role": "tool", "tool_call_id": first.id, "content": json.dumps({"temperature": 18, "sky": "clear"})}]
r1 = client.chat.completions.create(model=MODEL, messages=with_result, tools=tools, tool_choice="none", max_tokens=32)
assert r1.choices[0].message.content and not r1.choices[0].message.tool_calls, r1
r0 = client.chat.completions.create(model=MODEL, messages=turn, tools=tools, tool_choice="none", max_tokens=1)
assert r1.usage.prompt_tokens > r0.usage.prompt_tokens + 5, (r1.usage, r0.usage)
print("after the result:", repr(r1.choices[0].message.content))

# reasoning_effort goes to the template (SmolLM2's ignores it).
r = client.chat.completions.create(model=MODEL, messages=q, reasoning_effort="low", max_tokens=4)
assert r.choices[0].message.content is not None
print("ok")
