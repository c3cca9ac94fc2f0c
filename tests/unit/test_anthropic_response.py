"""Recorded Anthropic responses -> domain CompletionResult, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offramp.providers.anthropic.response import finish_reason, from_upstream
from offramp.providers.anthropic.wire import WireMessage
from offramp.types import OutputFormat, Usage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "anthropic"
TEXT = OutputFormat()


def _message(name: str) -> WireMessage:
    return WireMessage.model_validate_json((FIXTURES / name).read_bytes())


def test_text_blocks_are_joined() -> None:
    result = from_upstream(_message("message_text.json"), "claude", TEXT)
    assert result.model == "claude"
    (choice,) = result.choices
    assert choice.text == "Recursion is when a function calls itself on a smaller input."
    assert choice.finish_reason == "stop"
    assert choice.tool_calls == ()
    assert result.usage == Usage(prompt_tokens=21, completion_tokens=13)


def test_tool_use_blocks_become_tool_calls_and_cache_tokens_are_counted() -> None:
    result = from_upstream(_message("message_tool_use.json"), "claude", TEXT)
    (choice,) = result.choices
    assert choice.text == "I'll check the weather in both cities."
    assert choice.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in choice.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather"),
        ("toolu_01B7xZ2mPq4kR9sT3vW6yU8n", "get_weather"),
    ]
    assert json.loads(choice.tool_calls[1].arguments) == {"location": "Zürich", "unit": "celsius"}
    assert "Zürich" in choice.tool_calls[1].arguments  # not \u-escaped
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (412 + 1024 + 2048, 91)
    assert (usage.cached_tokens, usage.cache_write_tokens) == (2048, 1024)


def test_tool_calls_alone_leave_content_null() -> None:
    message = _message("message_tool_use.json")
    only_tools = message.model_copy(update={"content": message.content[1:]})
    (choice,) = from_upstream(only_tools, "claude", TEXT).choices
    assert choice.text is None
    assert len(choice.tool_calls) == 2


def test_in_json_mode_the_forced_tool_input_is_the_answer() -> None:
    output = OutputFormat("json_schema", {"type": "object"}, "city")
    (choice,) = from_upstream(_message("message_json_tool.json"), "claude", output).choices
    assert json.loads(choice.text or "") == {"name": "Paris", "population": 2102650}
    assert choice.finish_reason == "stop"
    assert choice.tool_calls == ()


@pytest.mark.parametrize(
    ("name", "finish", "text"),
    [
        ("message_max_tokens.json", "length", "Once upon a time, in a land"),
        ("message_stop_sequence.json", "stop", "1, 2, 3, 4"),
    ],
)
def test_stop_reasons(name: str, finish: str, text: str) -> None:
    (choice,) = from_upstream(_message(name), "claude", TEXT).choices
    assert choice.finish_reason == finish
    assert choice.text == text


def test_finish_reason_table() -> None:
    assert finish_reason("end_turn", TEXT) == "stop"
    assert finish_reason("stop_sequence", TEXT) == "stop"
    assert finish_reason("max_tokens", TEXT) == "length"
    assert finish_reason("tool_use", TEXT) == "tool_calls"
    assert finish_reason("tool_use", OutputFormat("json_object")) == "stop"
    assert finish_reason("max_tokens", OutputFormat("json_object")) == "length"
    assert finish_reason("a_reason_added_later", TEXT) == "stop"


def test_null_usage_fields_count_as_zero() -> None:
    usage = from_upstream(_message("message_stop_sequence.json"), "c", TEXT).usage
    assert usage == Usage(prompt_tokens=18, completion_tokens=10)
    assert usage.total_tokens == 28
