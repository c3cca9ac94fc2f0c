"""Tool calling through the official SDK: every call the server returns is well-formed."""

from __future__ import annotations

import json

import openai

MODEL = "gpt-4o-mini"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a timezone",
        "parameters": {
            "type": "object",
            "properties": {"tz": {"type": "string"}},
            "required": ["tz"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What's the weather like in Paris today?"}]


def _assert_well_formed(call: object, allowed: set[str]) -> dict[str, object]:
    assert call.type == "function"  # type: ignore[attr-defined]
    assert call.id.startswith("call_")  # type: ignore[attr-defined]
    assert call.function.name in allowed  # type: ignore[attr-defined]
    args = json.loads(call.function.arguments)  # type: ignore[attr-defined]
    assert isinstance(args, dict)
    return args


def test_required_produces_a_valid_call(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER, TIME],  # type: ignore[arg-type]
        tool_choice="required",
        temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    args = _assert_well_formed(call, {"get_weather", "get_time"})
    if call.function.name == "get_weather":  # type: ignore[union-attr]
        assert set(args) == {"city", "unit"} and args["unit"] in ("celsius", "fahrenheit")


def test_named_choice_calls_that_function(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER, TIME],
        temperature=0,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    args = _assert_well_formed(call, {"get_time"})
    assert isinstance(args["tz"], str)


def test_none_never_calls(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER],  # type: ignore[arg-type]
        tool_choice="none",
        temperature=0,
        max_tokens=40,
    )
    assert not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason in ("stop", "length")


def test_auto_answers_or_calls_well_formed(client: openai.OpenAI) -> None:
    for seed in range(4):
        r = client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            tools=[WEATHER],  # type: ignore[arg-type]
            temperature=0.8,
            seed=seed,
            max_tokens=80,
        )
        choice = r.choices[0]
        if choice.message.tool_calls:
            assert choice.finish_reason == "tool_calls"
            for call in choice.message.tool_calls:
                _assert_well_formed(call, {"get_weather"})
        else:
            assert "<tool_call>" not in (choice.message.content or "") or (
                choice.finish_reason == "length"
            )


def test_streamed_call_arrives_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER],  # type: ignore[arg-type]
        tool_choice="required",
        temperature=0,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather"
    assert set(json.loads(calls[0]["arguments"])) == {"city", "unit"}


def test_tool_results_continue_the_conversation(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER],  # type: ignore[arg-type]
        tool_choice="required",
        temperature=0,
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    follow = client.chat.completions.create(
        model=MODEL,
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_tokens=40,  # type: ignore[arg-type]
        messages=[
            *QUESTION,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,  # type: ignore[union-attr]
                            "arguments": call.function.arguments,
                        },
                    }
                ],
            },  # type: ignore[union-attr]
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "clear"}'},
        ],
    )
    assert follow.choices[0].message.content
    assert not follow.choices[0].message.tool_calls


def test_forced_call_cut_by_max_tokens_comes_back_partial(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER],  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=13,  # the wrapper takes about ten tokens, the arguments start after it
    )
    choice = r.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert '"name"' not in call.function.arguments and "arguments" not in call.function.arguments
    assert call.function.arguments.startswith("{")


def test_streamed_call_cut_by_max_tokens_comes_back_partial(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER, TIME],  # type: ignore[arg-type]
        tool_choice="required",
        temperature=0,
        max_tokens=8,
        stream=True,
    )
    content, name, arguments, finish = "", "", "", None
    for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            content += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                name += (tc.function.name or "") if tc.function else ""
                arguments += (tc.function.arguments or "") if tc.function else ""
    assert finish == "length" and content == ""
    assert name in ("get_weather", "get_time")
    assert '"name"' not in arguments and (arguments == "" or arguments.startswith("{"))
