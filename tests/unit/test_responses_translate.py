"""The Responses API's translation to chat and its event stream, without a model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offramp.api.responses_api import translate
from offramp.api.responses_api.events import ResponseEvents
from offramp.api.responses_api.protocol import ResponsesRequest
from offramp.errors import InvalidRequest, UnsupportedParameter
from offramp.types import (
    Choice,
    ChoiceDelta,
    CompletionResult,
    Message,
    StreamEnd,
    ToolCall,
    Usage,
)


def _request(**fields: Any) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "m", **fields})


def _chat(history: list[dict[str, Any]] | None = None, **fields: Any) -> Any:
    body = _request(**fields)
    return translate.chat_request(body, history or [], translate.input_items(body))


def test_string_input_and_instructions_become_system_and_user_turns() -> None:
    chat = _chat(input="Hi", instructions="Be brief.", max_output_tokens=7, temperature=0.5)
    assert chat.messages == (Message("system", "Be brief."), Message("user", "Hi"))
    assert chat.sampling.max_tokens == 7 and chat.sampling.temperature == 0.5


def test_calls_and_their_outputs_become_assistant_calls_and_tool_results() -> None:
    items = [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_2", "name": "w", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "rain"}]},
    ]  # fmt: skip
    chat = _chat(input=items)
    assert chat.messages == (
        Message("system", "Use tools."),
        Message("user", "Weather?"),
        Message(
            "assistant",
            None,
            tool_calls=(ToolCall("call_1", "w", "{}"), ToolCall("call_2", "w", '{"a":1}')),
        ),
        Message("tool", "sunny", tool_call_id="call_1"),
        Message("tool", "rain", tool_call_id="call_2"),
    )


def test_stored_items_have_ids_and_typed_parts() -> None:
    body = _request(input=[{"role": "assistant", "content": "Hello"}, {"role": "user",
                                                                        "content": "Hi"}])  # fmt: skip
    first, second = translate.input_items(body)
    assert first["id"].startswith("msg_") and first["type"] == "message"
    assert first["content"] == [{"type": "output_text", "text": "Hello"}]
    assert second["content"] == [{"type": "input_text", "text": "Hi"}]


def test_history_comes_first_and_its_errors_name_previous_response_id() -> None:
    history = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                               "text": "Earlier"}]}]  # fmt: skip
    chat = _chat(history, input="Now")
    assert [m.content for m in chat.messages] == ["Earlier", "Now"]
    with pytest.raises(UnsupportedParameter) as caught:
        _chat([{"type": "reasoning", "summary": []}], input="Now")
    assert caught.value.param == "previous_response_id"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({}, "text"),
        ({"text": {"format": {"type": "text"}}}, "text"),
        ({"text": {"format": {"type": "json_object"}}}, "json_object"),
        ({"text": {"format": {"type": "json_schema", "name": "x",
                              "schema": {"type": "object"}}}}, "json_schema"),
    ],
)  # fmt: skip
def test_text_format_is_the_output_format(fields: dict[str, Any], kind: str) -> None:
    assert _chat(input="Hi", **fields).output.kind == kind


def test_a_json_schema_needs_its_name_and_schema() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _chat(input="Hi", text={"format": {"type": "json_schema", "schema": {}}})
    assert caught.value.param == "text.format.name"


def test_named_tool_choice_must_name_a_tool() -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    chat = _chat(input="Hi", tools=[tool], tool_choice={"type": "function", "name": "f"})
    assert chat.tool_choice.mode == "named" and chat.tool_choice.name == "f"
    with pytest.raises(InvalidRequest):
        _chat(input="Hi", tools=[tool], tool_choice={"type": "function", "name": "g"})


def _shape(**fields: Any) -> translate.Shape:
    return translate.Shape("resp_1", 0, "msg_1", _request(input="Hi", **fields))


def _frames(raw: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(f.split(b"data: ", 1)[1]) for f in raw]


def test_events_of_text_then_a_call_keep_their_order_and_numbers() -> None:
    events = ResponseEvents(_shape())
    call = ToolCall("call_9", "f", '{"x": 1}')
    raw = (
        events.render(ChoiceDelta(0, "Hel", prompt_tokens=5))
        + events.render(ChoiceDelta(0, "lo", tool_calls=(call,), finish_reason="tool_calls"))
        + events.render(StreamEnd(Usage(5, 3)))
    )
    frames = _frames(raw)
    assert [f["sequence_number"] for f in frames] == list(range(len(frames)))
    assert [f["type"] for f in frames] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    final = frames[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["id"] == "fc_9" and final["usage"]["total_tokens"] == 8
    whole = CompletionResult("m", (Choice(0, "Hello", "tool_calls", (call,)),), Usage(5, 3))
    assert translate.output_items(_shape(), whole) == final["output"]


def test_a_failed_stream_ends_with_response_failed_and_error() -> None:
    events = ResponseEvents(_shape())
    events.render(ChoiceDelta(0, "Hi"))
    failed = _frames(events.failed(InvalidRequest("bad", param="x")))
    assert [f["type"] for f in failed] == ["response.failed", "error"]
    assert failed[0]["response"]["status"] == "failed"
    assert failed[1]["code"] == "invalid_value" and failed[1]["param"] == "x"


def test_a_call_cut_by_max_output_tokens_is_incomplete() -> None:
    cut = ToolCall("call_1", "f", '{"x": ')
    result = CompletionResult("m", (Choice(0, None, "length", (cut,)),), Usage(3, 5))
    [item] = translate.output_items(_shape(), result)
    assert item["type"] == "function_call" and item["status"] == "incomplete"
    assert item["arguments"] == '{"x": ' and translate.finished_status(result) == "incomplete"
    events = ResponseEvents(_shape())
    frames = _frames(
        events.render(ChoiceDelta(0, tool_calls=(cut,), finish_reason="length"))
        + events.render(StreamEnd(Usage(3, 5)))
    )
    assert frames[-1]["type"] == "response.incomplete"
    assert frames[-1]["response"]["output"] == [item]
