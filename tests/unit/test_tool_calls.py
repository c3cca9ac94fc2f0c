"""Tool-call parsing and the streaming content gate."""

from __future__ import annotations

import json

from offramp.providers.llamacpp import tools
from offramp.types import ToolChoice, ToolSpec
from tests import gbnf

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


def test_a_forced_call_cut_off_keeps_its_partial_arguments() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Osl'
    content, calls = tools.parse_cut(text, ToolChoice("required"), ("get_weather", "get_time"))
    assert content is None
    assert calls[0].name == "get_weather" and calls[0].arguments == '{"city": "Osl'
    assert calls[0].id.startswith("call_")


def test_a_call_cut_inside_its_name_is_completed_from_the_tools() -> None:
    content, calls = tools.parse_cut(
        '{"name": "get_ti', ToolChoice("required"), ("get_weather", "get_time")
    )
    assert content is None and calls[0].name == "get_time" and calls[0].arguments == ""
    _, named = tools.parse_cut("{", ToolChoice("named", "get_time"), ("get_weather", "get_time"))
    assert named[0].name == "get_time" and named[0].arguments == ""


def test_whole_arguments_lose_the_wrapper_brace() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Oslo"}'
    _, calls = tools.parse_cut(text, ToolChoice("named", "get_weather"), ("get_weather",))
    assert json.loads(calls[0].arguments) == {"city": "Oslo"}


def test_auto_text_before_a_cut_call_stays_content() -> None:
    text = 'Checking.\n<tool_call>\n{"name": "get_weather", "argu'
    content, calls = tools.parse_cut(text, ToolChoice("auto"), ("get_weather",))
    assert content == "Checking." and calls[0].name == "get_weather" and calls[0].arguments == ""
    assert tools.parse_cut("plain text", ToolChoice("auto"), ("get_weather",)) == ("plain text", ())
    assert tools.parse_cut("Hi <tool_c", ToolChoice("auto"), ("get_weather",)) == ("Hi ", ())


def test_auto_grammar_admits_a_wrapped_call_even_for_a_tool_named_call() -> None:
    named_call = ToolSpec("call", "", {"type": "object", "properties": {"x": {"type": "integer"}}})
    auto = tools.grammar_for((named_call,), ToolChoice("auto"))
    assert auto is not None
    grammar = gbnf.parse(auto.gbnf)
    assert grammar.admits('<tool_call> {"name": "call", "arguments": {"x": 1}} </tool_call>')
    assert not grammar.admits('<tool_call> {"name": "call", "arguments": {"x": "1"}} </tool_call>')
