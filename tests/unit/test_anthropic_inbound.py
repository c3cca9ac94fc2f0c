"""The Messages API's inbound translation, its event stream and its error envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offramp.api.anthropic import errors, translate
from offramp.api.anthropic.events import MessageEvents
from offramp.api.anthropic.protocol import MessagesRequest
from offramp.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    OfframpError,
    Overloaded,
    PermissionDenied,
    RateLimited,
    ShuttingDown,
    UpstreamError,
)
from offramp.types import (
    Choice,
    ChoiceDelta,
    CompletionResult,
    Message,
    StreamEnd,
    ToolCall,
    Usage,
)

TOOL = {"name": "w", "input_schema": {"type": "object"}}


def _chat(**fields: Any) -> Any:
    body = {"model": "m", "max_tokens": 5, **fields}
    return translate.chat_request(MessagesRequest.model_validate(body))


def test_system_blocks_tool_use_and_tool_results_become_chat_turns() -> None:
    chat = _chat(
        system=[{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"c": "P"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "boom"}]},
                {"type": "text", "text": "Thanks"}]},
        ],
    )  # fmt: skip
    assert chat.messages == (
        Message("system", "A\nB"),
        Message("user", "Weather?"),
        Message("assistant", "Checking.", tool_calls=(ToolCall("toolu_1", "w", '{"c": "P"}'),)),
        Message("tool", "sunny", tool_call_id="toolu_1"),
        Message("tool", "Error: boom", tool_call_id="toolu_2"),
        Message("user", "Thanks"),
    )


@pytest.mark.parametrize(
    ("choice", "mode", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "tool", "name": "w"}, "named", None),
        ({"type": "none"}, "none", None),
    ],
)
def test_tool_choice(choice: dict[str, Any], mode: str, parallel: bool | None) -> None:
    chat = _chat(messages=[{"role": "user", "content": "x"}], tools=[TOOL], tool_choice=choice)
    assert chat.tool_choice.mode == mode and chat.parallel_tool_calls is parallel


def test_sampling_and_stop_sequences() -> None:
    chat = _chat(
        messages=[{"role": "user", "content": "x"}],
        temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END"],
        metadata={"user_id": "u1"},
    )  # fmt: skip
    s = chat.sampling
    assert (s.temperature, s.top_p, s.top_k, s.max_tokens, s.stop) == (0.2, 0.9, 5, 5, ("END",))
    assert chat.user == "u1"


def test_usage_input_tokens_exclude_the_cache() -> None:
    usage = translate.usage_object(Usage(100, 7, cached_tokens=30, cache_write_tokens=20))
    assert usage["input_tokens"] == 50 and usage["cache_read_input_tokens"] == 30
    assert usage["cache_creation_input_tokens"] == 20 and usage["output_tokens"] == 7


def _events(raw: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw:
        head, data = frame.split(b"\ndata: ", 1)
        out.append((head.removeprefix(b"event: ").decode(), json.loads(data)))
    return out


def test_stream_events_of_text_then_a_tool_use() -> None:
    events = MessageEvents("msg_1", "claude-x")
    call = ToolCall("call_ab", "w", '{"c": "P"}')
    raw = (
        events.render(ChoiceDelta(0, "Hi", prompt_tokens=9))
        + events.render(ChoiceDelta(0, tool_calls=(call,), finish_reason="tool_calls"))
        + events.render(StreamEnd(Usage(9, 4)))
    )
    got = _events(raw)
    assert [name for name, _ in got] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(name == data["type"] for name, data in got)
    assert got[0][1]["message"]["usage"]["input_tokens"] == 9
    assert got[5][1]["content_block"] == {"type": "tool_use", "id": "toolu_ab", "name": "w",
                                          "input": {}}  # fmt: skip
    assert got[6][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"c": "P"}'}
    assert got[8][1]["delta"]["stop_reason"] == "tool_use"
    assert got[8][1]["usage"]["output_tokens"] == 4


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("bad", param="messages[0]"), 400, "invalid_request_error"),
        (AuthenticationFailed("no key"), 401, "authentication_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (ModelNotFound("no model"), 404, "not_found_error"),
        (RateLimited("slow down", retry_after=1), 429, "rate_limit_error"),
        (Overloaded("full"), 529, "overloaded_error"),
        (ShuttingDown(), 529, "overloaded_error"),
        (UpstreamError("down", status=500, retryable=True), 502, "api_error"),
        (OfframpError("boom"), 500, "api_error"),
    ],
)
def test_error_envelope(error: OfframpError, status: int, kind: str) -> None:
    got_status, body = errors.envelope(error)
    assert got_status == status and body["type"] == "error"
    assert body["error"]["type"] == kind
    if error.param:
        assert body["error"]["message"].startswith(f"{error.param}: ")


def test_a_call_cut_by_max_tokens_is_a_tool_use_with_the_stop_reason() -> None:
    cut = ToolCall("call_1", "w", '{"c": "Pa')
    result = CompletionResult("m", (Choice(0, None, "length", (cut,)),), Usage(3, 5))
    message = translate.message_object("msg_1", "claude-x", result)
    assert message["stop_reason"] == "max_tokens"
    assert message["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]
    whole = CompletionResult("m", (Choice(0, None, "tool_calls", (cut,)),), Usage(3, 5))
    with pytest.raises(OfframpError):
        translate.message_object("msg_1", "claude-x", whole)  # a finished call must be JSON
