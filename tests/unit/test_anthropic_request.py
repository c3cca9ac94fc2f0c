"""ChatRequest -> Anthropic Messages API body, without a network."""

from __future__ import annotations

from typing import Any

import pytest

from offramp.errors import InvalidRequest, UnsupportedParameter, UnsupportedSchema
from offramp.providers.anthropic.request import JSON_TOOL_FALLBACK_NAME, to_upstream
from offramp.types import (
    ChatRequest,
    Message,
    OutputFormat,
    Sampling,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

MODEL = "claude-sonnet-4-5"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="claude", messages=messages or (Message("user", "hi"),), **fields)


def test_plain_request_has_the_required_fields_and_no_defaults_spelled_out() -> None:
    body = to_upstream(_request(), MODEL, 1024)
    assert body == {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_system_messages_become_the_top_level_system() -> None:
    body = to_upstream(
        _request(
            Message("system", "Be terse."),
            Message("user", "hi"),
            Message("system", "Answer in French."),
        ),
        MODEL,
        64,
    )
    assert body["system"] == "Be terse.\n\nAnswer in French."
    assert [t["role"] for t in body["messages"]] == ["user"]


def test_sampling_is_translated() -> None:
    sampling = Sampling(temperature=0.2, top_p=0.9, top_k=40, max_tokens=77, stop=("END", "\n\n"))
    body = to_upstream(_request(sampling=sampling, user="u-42"), MODEL, 1024)
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["top_k"] == 40
    assert body["stop_sequences"] == ["END", "\n\n"]
    assert body["metadata"] == {"user_id": "u-42"}


@pytest.mark.parametrize(
    ("sampling", "param"),
    [
        (Sampling(seed=7), "seed"),
        (Sampling(presence_penalty=0.5), "presence_penalty"),
        (Sampling(frequency_penalty=0.5), "frequency_penalty"),
        (Sampling(logit_bias={42: 1.0}), "logit_bias"),
        (Sampling(logprobs=True), "logprobs"),
        (Sampling(min_p=0.1), "min_p"),
        (Sampling(repeat_penalty=1.2), "repeat_penalty"),
        (Sampling(temperature=1.5), "temperature"),
    ],
)
def test_parameters_without_an_anthropic_equivalent_are_refused(
    sampling: Sampling, param: str
) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        to_upstream(_request(sampling=sampling), MODEL, 1024)
    assert info.value.param == param


def test_n_above_one_is_refused() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        to_upstream(_request(n=2), MODEL, 1024)
    assert info.value.param == "n"


def test_tool_conversation_becomes_tool_use_and_tool_result_blocks() -> None:
    calls = (
        ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_2", "get_weather", '{"city": "Zürich"}'),
    )
    body = to_upstream(
        _request(
            Message("user", "Weather in Paris and Zürich?"),
            Message("assistant", "Checking.", tool_calls=calls),
            Message("tool", "18°C", tool_call_id="toolu_1"),
            Message("tool", "12°C", tool_call_id="toolu_2"),
            Message("user", "Which is warmer?"),
        ),
        MODEL,
        256,
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Zürich?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Zürich"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12°C"},
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_consecutive_turns_of_one_role_are_merged() -> None:
    body = to_upstream(
        _request(Message("user", "one"), Message("user", "two"), Message("assistant", "three")),
        MODEL,
        16,
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
    ]


def test_an_assistant_turn_with_only_tool_calls_has_no_text_block() -> None:
    call = ToolCall("toolu_9", "get_weather", "")
    body = to_upstream(
        _request(
            Message("user", "x"),
            Message("assistant", None, tool_calls=(call,)),
            Message("tool", "", tool_call_id="toolu_9"),
        ),
        MODEL,
        16,
    )
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}
    ]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_9"}]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ((Message("user", ""),), "messages[0].content"),
        ((Message("system", "only a system prompt"),), "messages"),
        ((Message("user", "x", name="alice"),), "messages[0].name"),
        (
            (
                Message("user", "x"),
                Message("assistant", None, tool_calls=(ToolCall("t", "f", "{not json"),)),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            (
                Message("user", "x"),
                Message("assistant", None, tool_calls=(ToolCall("t", "f", "[1, 2]"),)),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        ((Message("tool", "r"),), "messages[0].tool_call_id"),
    ],
)
def test_messages_anthropic_cannot_take_are_refused_naming_the_field(
    messages: tuple[Message, ...], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_upstream(_request(*messages), MODEL, 16)
    assert info.value.param == param


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), {"type": "auto"}),
        (ToolChoice("none"), {"type": "none"}),
        (ToolChoice("required"), {"type": "any"}),
        (ToolChoice("named", "get_weather"), {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tools_and_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    body = to_upstream(_request(tools=(WEATHER,), tool_choice=choice), MODEL, 16)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["tool_choice"] == expected


def test_a_tool_whose_parameters_are_not_an_object_is_refused() -> None:
    bad = ToolSpec("f", "", {"type": "array", "items": {"type": "string"}})
    with pytest.raises(UnsupportedSchema) as info:
        to_upstream(_request(tools=(WEATHER, bad)), MODEL, 16)
    assert info.value.param == "tools[1].function.parameters"


def test_json_schema_output_becomes_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = to_upstream(_request(output=OutputFormat("json_schema", schema, "city")), MODEL, 16)
    assert body["tools"][0]["name"] == "city"
    assert body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "city"}


def test_json_object_output_forces_a_tool_taking_any_object() -> None:
    body = to_upstream(_request(output=OutputFormat("json_object", None, "has spaces!")), MODEL, 16)
    assert body["tools"][0]["name"] == JSON_TOOL_FALLBACK_NAME
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL_FALLBACK_NAME}


def test_json_output_is_refused_where_a_forced_tool_cannot_carry_it() -> None:
    with pytest.raises(UnsupportedSchema) as schema_info:
        to_upstream(_request(output=OutputFormat("json_schema", {"type": "array"}, "x")), MODEL, 16)
    assert schema_info.value.param == "response_format.json_schema.schema"
    with pytest.raises(UnsupportedParameter) as tools_info:
        to_upstream(_request(output=OutputFormat("json_object"), tools=(WEATHER,)), MODEL, 16)
    assert tools_info.value.param == "response_format"
