"""Tool-call parsing and the streaming content gate."""

from __future__ import annotations

import json

from offramp.providers.llamacpp import tools
from offramp.types import ToolChoice, ToolSpec

WEATHER = ToolSpec(
    "get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def test_required_output_is_one_call() -> None:
    content, calls = tools.parse(
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}', ToolChoice("required")
    )
    assert content is None and len(calls) == 1
    assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Oslo"}


def test_auto_output_splits_content_and_call() -> None:
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
    content, calls = tools.parse(text, ToolChoice("auto"))
    assert content == "Let me check." and calls[0].name == "get_weather"


def test_broken_call_stays_content() -> None:
    text = '<tool_call>{"name": "get_weath'
    assert tools.parse(text, ToolChoice("auto")) == (text, ())


def test_gate_streams_text_and_holds_a_call() -> None:
    gate = tools.ContentGate(ToolChoice("auto"), active=True)
    assert gate.feed("Hello <to") == "Hello "
    assert gate.feed("ol_call>{") == ""
    assert gate.text == "Hello <tool_call>{"
    other = tools.ContentGate(ToolChoice("auto"), active=True)
    assert other.feed("a <b") == "a <b"


def test_grammars_per_choice() -> None:
    assert tools.grammar_for((WEATHER,), ToolChoice("none")) is None
    required = tools.grammar_for((WEATHER,), ToolChoice("required"))
    assert required is not None and required.trigger is None
    auto = tools.grammar_for((WEATHER,), ToolChoice("auto"))
    assert auto is not None and auto.trigger and auto.gbnf.startswith('root ::= "<tool_call>"')
