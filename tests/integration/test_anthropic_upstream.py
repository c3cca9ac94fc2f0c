"""The Anthropic provider against a loopback server that speaks the Messages API.

The server checks every request the way the real API does (headers, required fields,
alternating turns, block shapes) and replays recorded responses and SSE streams.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from offramp.errors import ContextLengthExceeded, UnsupportedParameter, UpstreamError
from offramp.providers.anthropic.config import AnthropicConfig
from offramp.providers.anthropic.provider import AnthropicProvider
from offramp.types import (
    ChatRequest,
    ChoiceDelta,
    Message,
    OutputFormat,
    Sampling,
    StreamEnd,
    StreamItem,
    ToolSpec,
    Usage,
)
from tests.servers import free_port

FIXTURES = Path(__file__).parents[1] / "fixtures" / "anthropic"
ERRORS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "errors.json").read_text())
KEY_ENV = "OFFRAMP_TEST_ANTHROPIC_KEY"
KEY = "sk-ant-loopback-test"
TOP_LEVEL = {
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "tools", "tool_choice", "metadata",
}  # fmt: skip


@dataclass
class Reply:
    """What the loopback server answers next."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    sse: str | None = None  # a recorded stream, replayed event by event
    endless: bool = False  # stream text deltas until the client leaves
    delay: float = 0.0


def recorded(name: str) -> Reply:
    if name.endswith(".sse"):
        return Reply(sse=(FIXTURES / name).read_text(encoding="utf-8"))
    if name in ERRORS:
        case = ERRORS[name]
        return Reply(case["status"], json.dumps(case["body"]).encode(), case.get("headers", {}))
    return Reply(body=(FIXTURES / name).read_bytes())


def _anthropic_error(status: int, message: str) -> JSONResponse:
    kind = {400: "invalid_request_error", 401: "authentication_error"}[status]
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status)


def shape_problem(body: dict[str, Any]) -> str | None:
    """What the real Messages API would refuse in ``body``, or None."""
    if set(body) - TOP_LEVEL:
        return f"unknown fields {sorted(set(body) - TOP_LEVEL)}"
    if not isinstance(body.get("model"), str) or not isinstance(body.get("max_tokens"), int):
        return "model and max_tokens are required"
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        return "messages: at least one message is required"
    for i, turn in enumerate(turns):
        if turn.get("role") != ("user", "assistant")[i % 2]:
            return f"messages.{i}: roles must alternate, starting with user"
        for block in turn.get("content", []):
            if block.get("type") not in {"text", "tool_use", "tool_result"}:
                return f"messages.{i}: unknown block {block.get('type')}"
            if block["type"] == "text" and not block.get("text"):
                return f"messages.{i}: text content blocks must be non-empty"
    for tool in body.get("tools", []):
        if tool.get("input_schema", {}).get("type") != "object" or not tool.get("name"):
            return "tools: each needs a name and an object input_schema"
    return None


class Upstream:
    """A Messages API on a free loopback port, served by uvicorn in a thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.replies: deque[Reply] = deque()
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.disconnected = threading.Event()
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Upstream:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("loopback Anthropic server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def answer(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def _messages(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != KEY:
            return _anthropic_error(401, "invalid x-api-key")
        if request.headers.get("anthropic-version") != "2023-06-01":
            return _anthropic_error(400, "anthropic-version header is required")
        body = json.loads(await request.body())
        self.received.append(body)
        self.headers.append(dict(request.headers))
        problem = shape_problem(body)
        if problem:
            return _anthropic_error(400, problem)
        reply = self.replies.popleft()
        await asyncio.sleep(reply.delay)
        if reply.endless:
            return StreamingResponse(self._endless(), media_type="text/event-stream")
        if reply.sse is not None:
            return StreamingResponse(_events(reply.sse), media_type="text/event-stream")
        return Response(reply.body, reply.status, reply.headers, media_type="application/json")

    async def _endless(self) -> AsyncIterator[bytes]:
        start = (FIXTURES / "stream_text.sse").read_text().split("\n\n")[:2]
        try:
            for event in start:
                yield (event + "\n\n").encode()
            while True:
                data = {"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": "more "}}  # fmt: skip
                yield f"event: content_block_delta\ndata: {json.dumps(data)}\n\n".encode()
                await asyncio.sleep(0.01)
        finally:
            self.disconnected.set()


async def _events(sse: str) -> AsyncIterator[bytes]:
    for event in sse.strip().split("\n\n"):
        yield (event + "\n\n").encode()
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def provider_for(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    upstream.replies.clear()
    upstream.disconnected.clear()

    def build(key: str = KEY, **options: Any) -> AnthropicProvider:
        monkeypatch.setenv(KEY_ENV, key)
        config = AnthropicConfig(
            model="claude-sonnet-4-5",
            base_url=options.pop("base_url", upstream.base_url),
            api_key_env=KEY_ENV,
            **{"timeout_s": 5.0, **options},
        )
        return AnthropicProvider("claude", config, context_length=200_000)

    yield build


def _request(**fields: Any) -> ChatRequest:
    messages = (Message("system", "Be brief."), Message("user", "Say hello."))
    return ChatRequest(model="claude", messages=messages, **fields)


async def _collect(provider: AnthropicProvider, request: ChatRequest) -> list[StreamItem]:
    try:
        return [item async for item in provider.stream_chat(request)]
    finally:
        await provider.aclose()


def test_chat_sends_the_messages_api_shape_and_reads_the_answer(
    upstream: Upstream, provider_for: Any
) -> None:
    upstream.answer(recorded("message_text.json"))
    provider = provider_for()

    async def scenario() -> Any:
        try:
            return await provider.chat(_request(sampling=Sampling(temperature=0.3)))
        finally:
            await provider.aclose()

    result = asyncio.run(scenario())
    assert result.choices[0].text.startswith("Recursion is when a function calls itself")
    assert result.usage == Usage(prompt_tokens=21, completion_tokens=13)
    body, headers = upstream.received[-1], upstream.headers[-1]
    assert body == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        "max_tokens": 4096,
        "temperature": 0.3,
    }
    assert headers["x-api-key"] == KEY and headers["content-type"] == "application/json"


def test_a_tool_round_trip(upstream: Upstream, provider_for: Any) -> None:
    upstream.answer(recorded("message_tool_use.json"), recorded("stream_tool_use.sse"))
    weather = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {}})
    first = _request(tools=(weather,))
    provider = provider_for()

    async def scenario() -> tuple[Any, list[StreamItem]]:
        result = await provider.chat(first)
        calls = result.choices[0].tool_calls
        follow_up = ChatRequest(
            model="claude",
            messages=(
                *first.messages,
                Message("assistant", result.choices[0].text, tool_calls=calls),
                *(Message("tool", "18°C", tool_call_id=c.id) for c in calls),
            ),
            tools=(weather,),
        )
        return result, await _collect(provider, follow_up)

    result, items = asyncio.run(scenario())
    assert result.choices[0].finish_reason == "tool_calls"
    sent = upstream.received[-1]
    assert sent["stream"] is True
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][2]["content"]] == ["tool_result"] * 2
    last = [i for i in items if isinstance(i, ChoiceDelta)][-1]
    assert last.finish_reason == "tool_calls"
    assert [c.name for c in last.tool_calls] == ["get_weather", "get_time"]
    assert isinstance(items[-1], StreamEnd) and items[-1].usage.completion_tokens == 89


def test_streamed_text_and_json_output(upstream: Upstream, provider_for: Any) -> None:
    upstream.answer(recorded("stream_text.sse"), recorded("stream_json_tool.sse"))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    json_request = _request(output=OutputFormat("json_schema", schema, "city"))

    async def scenario() -> tuple[list[StreamItem], list[StreamItem]]:
        return await _collect(provider_for(), _request()), await _collect(
            provider_for(), json_request
        )

    text_items, json_items = asyncio.run(scenario())
    text = "".join(i.text for i in text_items if isinstance(i, ChoiceDelta))
    assert text == "Hello! How can I help?"
    assert text_items[-1] == StreamEnd(
        Usage(prompt_tokens=125, completion_tokens=15, cached_tokens=100)
    )
    answer = "".join(i.text for i in json_items if isinstance(i, ChoiceDelta))
    assert json.loads(answer) == {"name": "Paris", "population": 2102650}
    assert upstream.received[-1]["tool_choice"] == {"type": "tool", "name": "city"}


def test_an_error_event_inside_a_200_stream_is_a_retryable_failure(
    upstream: Upstream, provider_for: Any
) -> None:
    upstream.answer(recorded("stream_error.sse"))
    seen: list[StreamItem] = []

    async def scenario() -> None:
        provider = provider_for()
        try:
            async for item in provider.stream_chat(_request()):
                seen.append(item)
        finally:
            await provider.aclose()

    with pytest.raises(UpstreamError) as info:
        asyncio.run(scenario())
    assert info.value.retryable and info.value.status == 529
    assert [i.text for i in seen if isinstance(i, ChoiceDelta)] == ["The answer"]


@pytest.mark.parametrize("stream", [False, True])
def test_http_errors_map_onto_the_error_tree(
    upstream: Upstream, provider_for: Any, stream: bool
) -> None:
    upstream.answer(recorded("rate_limit"), recorded("overloaded"), recorded("prompt_too_long"))
    provider = provider_for()

    async def attempt() -> Exception:
        try:
            if stream:
                await _first(provider)
            else:
                await provider.chat(_request())
        except Exception as exc:
            return exc
        raise AssertionError("the upstream's error was not raised")

    async def scenario() -> list[Exception]:
        try:
            return [await attempt() for _ in range(3)]
        finally:
            await provider.aclose()

    limited, overloaded, too_long = asyncio.run(scenario())
    assert isinstance(limited, UpstreamError) and limited.status == 429
    assert limited.retryable and limited.retry_after == 17.0
    assert isinstance(overloaded, UpstreamError) and overloaded.status == 529
    assert overloaded.retryable and overloaded.code == "upstream_overloaded"
    assert isinstance(too_long, ContextLengthExceeded)


async def _first(provider: AnthropicProvider) -> StreamItem:
    stream = provider.stream_chat(_request())
    try:
        return await anext(stream)
    finally:
        await stream.aclose()


def test_a_wrong_key_is_not_retryable(upstream: Upstream, provider_for: Any) -> None:
    provider = provider_for(key="sk-ant-wrong")

    async def scenario() -> None:
        try:
            await provider.chat(_request())
        finally:
            await provider.aclose()

    with pytest.raises(UpstreamError) as info:
        asyncio.run(scenario())
    assert (info.value.status, info.value.retryable) == (401, False)


def test_closing_a_stream_early_closes_the_upstream_response(
    upstream: Upstream, provider_for: Any
) -> None:
    upstream.answer(Reply(endless=True))

    async def scenario() -> tuple[list[str], bool]:
        provider = provider_for()
        stream = provider.stream_chat(_request())
        texts = []
        async for item in stream:
            if isinstance(item, ChoiceDelta):
                texts.append(item.text)
            if len(texts) == 3:
                break
        await stream.aclose()
        # Seen before the client (and its connection pool) is closed.
        left = await asyncio.to_thread(upstream.disconnected.wait, 5)
        await provider.aclose()
        return texts, left

    texts, left = asyncio.run(scenario())
    assert texts == ["more "] * 3
    assert left, "the upstream kept streaming after the stream was closed"


def test_timeouts_and_refused_connections_are_retryable(
    upstream: Upstream, provider_for: Any
) -> None:
    upstream.answer(Reply(body=b"{}", delay=0.6))
    slow = provider_for(timeout_s=0.2)
    refused = provider_for(base_url=f"http://127.0.0.1:{free_port()}")

    async def failure(provider: AnthropicProvider) -> UpstreamError:
        try:
            await provider.chat(_request())
        except UpstreamError as exc:
            return exc
        finally:
            await provider.aclose()
        raise AssertionError("no error")

    async def scenario() -> tuple[UpstreamError, UpstreamError]:
        return await failure(slow), await failure(refused)

    timed_out, unreachable = asyncio.run(scenario())
    assert (timed_out.code, timed_out.status, timed_out.retryable) == (
        "upstream_timeout",
        None,
        True,
    )
    assert (unreachable.code, unreachable.retryable) == ("upstream_unreachable", True)


def test_refused_parameters_never_reach_the_upstream(upstream: Upstream, provider_for: Any) -> None:
    before = len(upstream.received)
    provider = provider_for()

    async def scenario() -> None:
        try:
            await provider.chat(_request(sampling=Sampling(seed=1)))
        finally:
            await provider.aclose()

    with pytest.raises(UnsupportedParameter) as info:
        asyncio.run(scenario())
    assert info.value.param == "seed"
    assert len(upstream.received) == before
