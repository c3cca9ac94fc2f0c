"""A fault-injecting HTTP proxy for routing tests: a real server on loopback in front of a
real upstream, set at any moment to fail in one of the ways upstreams fail.

    pass              forward the request and stream the answer back unchanged
    delay             wait ``delay_s`` first (past a deployment's timeout), then forward
    500               answer 500 with an OpenAI error body
    429               answer 429 with ``Retry-After: retry_after``
    cut               start a 200 answer (a role-only chunk when streaming), then drop
                      the connection before any content
    error-event       a 200 stream whose first event after the role chunk is an error
                      (a whole answer: a 200 body that is an error, not a completion)
    cut-late          forward, and drop the connection after the first content chunk
    late-error-event  forward, and send an error event after the first content chunk
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ROLE_CHUNK = b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
ERROR_EVENT = b'data: {"error":{"message":"injected failure","type":"server_error","code":500}}\n\n'


class Dropped(Exception):
    """Raised inside the app to make the server drop the connection mid-answer."""


class FaultProxy:
    """The ASGI app of the proxy; ``fault`` may be changed from the test at any time."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.fault = "pass"
        self.delay_s = 3.0
        self.retry_after = 30
        self.hits = 0
        self.bodies: list[Any] = []
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.hits += 1
        parsed = orjson.loads(body) if body else None
        self.bodies.append(parsed)
        streaming = isinstance(parsed, dict) and bool(parsed.get("stream"))
        await self._answer(scope, body, streaming, send)

    async def _answer(self, scope: Scope, body: bytes, streaming: bool, send: Send) -> None:
        fault = self.fault
        if fault == "500":
            await _send(send, 500, b'{"error":{"message":"injected 500","type":"server_error"}}')
        elif fault == "429":
            headers = [(b"retry-after", str(self.retry_after).encode())]
            await _send(send, 429, b'{"error":{"message":"injected 429"}}', headers)
        elif fault == "cut":
            await _start(send, 200, streaming)
            await _body(send, ROLE_CHUNK if streaming else b'{"id":"x","choi', more=True)
            raise Dropped()
        elif fault == "error-event":
            if not streaming:
                await _send(send, 200, b'{"error":{"message":"injected failure"}}')
                return
            await _start(send, 200, True)
            await _body(send, ROLE_CHUNK + ERROR_EVENT + b"data: [DONE]\n\n")
        else:
            if fault == "delay":
                await asyncio.sleep(self.delay_s)
            await self._forward(scope, body, fault, send)

    async def _forward(self, scope: Scope, body: bytes, fault: str, send: Send) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=60)
        url = self.upstream + scope["path"]
        headers = {"content-type": "application/json"}
        async with self._client.stream(scope["method"], url, content=body, headers=headers) as r:
            streaming = r.headers.get("content-type", "").startswith("text/event-stream")
            await _start(send, r.status_code, streaming)
            if not streaming:
                await _body(send, await r.aread())
                return
            content = False  # the fault strikes once the first content event is complete
            async for line in r.aiter_lines():
                await _body(send, line.encode() + b"\n", more=True)
                content = content or _has_content(line)
                if content and not line and fault in ("cut-late", "late-error-event"):
                    if fault == "cut-late":
                        raise Dropped()
                    await _body(send, ERROR_EVENT + b"data: [DONE]\n\n")
                    return
            await _body(send, b"")


def _has_content(line: str) -> bool:
    if not line.startswith("data: {"):
        return False
    chunk = orjson.loads(line[6:])
    for choice in chunk.get("choices") or ():
        if (choice.get("delta") or {}).get("content") or choice.get("text"):
            return True
    return False


async def _start(send: Send, status: int, streaming: bool, extra: list[Any] | None = None) -> None:
    kind = b"text/event-stream" if streaming else b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), *(extra or [])],
        }
    )


async def _body(send: Send, data: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _send(send: Send, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    await _start(send, status, False, headers)
    await _body(send, body)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
