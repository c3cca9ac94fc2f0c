"""Chat parameters that change nothing for a local model are accepted and ignored; the
legacy ``functions`` / ``function_call`` work as OpenAI's API answers them."""

from __future__ import annotations

import json
from typing import Any

import openai

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER_FN = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
    },
}
IGNORED: dict[str, Any] = {
    "metadata": {"app": "tests", "run": "1"},
    "prompt_cache_key": "user-42",
    "prompt_cache_retention": "24h",
    "safety_identifier": "hashed-user",
    "reasoning_effort": "low",
    "verbosity": "low",
    "store": False,
    "service_tier": "flex",
    "prediction": {"type": "content", "content": "Hello there"},
}


def test_parameters_that_change_nothing_change_nothing(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=8)
    hinted = client.chat.completions.create(
        model=MODEL, messages=HELLO, temperature=0, max_tokens=8, extra_body=IGNORED
    )
    assert hinted.choices[0].message.content == plain.choices[0].message.content
    assert hinted.usage == plain.usage


def test_legacy_functions_answer_with_function_call(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    r = client.chat.completions.create(
        model=MODEL,
        messages=question,
        functions=[WEATHER_FN],
        function_call={"name": "get_weather"},
        temperature=0,
        max_tokens=40,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "function_call" and not choice.message.tool_calls
    call = choice.message.function_call
    assert call is not None and call.name == "get_weather"
    args = json.loads(call.arguments)
    assert isinstance(args["city"], str)
    follow = client.chat.completions.create(
        model=MODEL,
        messages=[
            *question,
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": call.name, "arguments": call.arguments},
            },
            {"role": "function", "name": "get_weather", "content": '{"temp_c": 21}'},
        ],
        functions=[WEATHER_FN],
        function_call="none",
        temperature=0,
        max_tokens=20,
    )
    assert follow.choices[0].message.content and follow.choices[0].message.function_call is None


def test_legacy_function_call_streams(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        functions=[WEATHER_FN],
        function_call={"name": "get_weather"},
        temperature=0,
        max_tokens=40,
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            assert not c.delta.tool_calls
            if c.delta.function_call:
                name += c.delta.function_call.name or ""
                arguments += c.delta.function_call.arguments or ""
    assert finish == "function_call" and name == "get_weather"
    assert set(json.loads(arguments)) == {"city"}
