"""Recorded Anthropic SSE streams -> domain stream items, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offramp.errors import UpstreamError
from offramp.providers.anthropic.stream import SSEDecoder, StreamTranslator, parse_event
from offramp.types import ChoiceDelta, OutputFormat, StreamEnd, StreamItem, Usage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "anthropic"


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def _translate(lines: list[str], output: OutputFormat = OutputFormat()) -> list[StreamItem]:
    decoder = SSEDecoder()
    translator = StreamTranslator(output)
    items: list[StreamItem] = []
    for line in lines:
        for data in decoder.feed(line):
            items += translator.feed(parse_event(data))
    for data in decoder.close():
        items += translator.feed(parse_event(data))
    translator.finish()
    return items


def _text(items: list[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, ChoiceDelta))


def test_text_stream() -> None:
    items = _translate(_lines("stream_text.sse"))
    deltas = [i for i in items if isinstance(i, ChoiceDelta)]
    assert [d.text for d in deltas[:-1]] == ["Hello", "! How can", " I help?"]
    assert deltas[-1] == ChoiceDelta(index=0, finish_reason="stop")
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert items[-1] == StreamEnd(Usage(prompt_tokens=125, completion_tokens=15, cached_tokens=100))
    assert sum(isinstance(i, StreamEnd) for i in items) == 1


def test_tool_calls_arrive_whole_in_the_last_delta() -> None:
    items = _translate(_lines("stream_tool_use.sse"))
    deltas = [i for i in items if isinstance(i, ChoiceDelta)]
    assert _text(items) == "Let me check both cities."
    assert all(not d.tool_calls for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in last.tool_calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        ("toolu_01Lm5y6tVgm8QjBZkX9iP4rC", "get_time"),
    ]
    assert json.loads(last.tool_calls[0].arguments) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert last.tool_calls[1].arguments == "{}"  # a tool called without arguments
    assert items[-1] == StreamEnd(Usage(prompt_tokens=472, completion_tokens=89))


def test_json_mode_streams_the_forced_tool_input_as_text() -> None:
    output = OutputFormat("json_schema", {"type": "object"}, "city")
    items = _translate(_lines("stream_json_tool.sse"), output)
    assert json.loads(_text(items)) == {"name": "Paris", "population": 2102650}
    deltas = [i for i in items if isinstance(i, ChoiceDelta)]
    assert deltas[-1].finish_reason == "stop" and not deltas[-1].tool_calls
    assert all(d.text for d in deltas[:-1])  # the empty first fragment is not a delta
    assert items[-1] == StreamEnd(Usage(prompt_tokens=849, completion_tokens=47))


def test_an_error_event_inside_a_200_stream_raises_a_retryable_error() -> None:
    decoder = SSEDecoder()
    translator = StreamTranslator(OutputFormat())
    seen: list[StreamItem] = []
    with pytest.raises(UpstreamError) as info:
        for line in _lines("stream_error.sse"):
            for data in decoder.feed(line):
                seen += translator.feed(parse_event(data))
    assert _text(seen) == "The answer"
    error = info.value
    assert error.retryable and error.status == 529 and error.code == "upstream_overloaded"
    assert "Overloaded" in error.message


def test_a_stream_cut_before_message_stop_is_an_error() -> None:
    lines = _lines("stream_text.sse")
    cut = lines[: lines.index("event: message_delta")]
    with pytest.raises(UpstreamError) as info:
        _translate(cut)
    assert info.value.retryable and info.value.code == "upstream_stream_cut"


def test_malformed_event_data_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError) as info:
        parse_event('{"type": "content_block_delta", "index": "x"}')
    assert info.value.code == "upstream_malformed_response"
    with pytest.raises(UpstreamError):
        parse_event("not json")


def test_unknown_events_and_deltas_are_ignored() -> None:
    translator = StreamTranslator(OutputFormat())
    assert translator.feed(parse_event('{"type": "a_future_event", "foo": 1}')) == []
    thinking = (
        '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}'
    )
    assert translator.feed(parse_event(thinking)) == []


def test_sse_decoder_handles_comments_crlf_and_multiline_data() -> None:
    decoder = SSEDecoder()
    out: list[str] = []
    for line in [": keep-alive", "event: ping\r", 'data: {"a":\r', "data: 1}", "", ""]:
        out += decoder.feed(line)
    assert out == ['{"a":\n1}']
    assert list(decoder.close()) == []
