"""A fault-injecting HTTP proxy for routing tests: a real server on loopback in front of a
real upstream, set at any moment to fail in one of the ways upstreams fail.

    pass              forward the request and stream the answer back unchanged
    delay             wait ``delay_s`` first (past a deployment's timeout, or just slow),
                      then forward
    hang              send nothing until the fault is switched off, then forward (a
                      stalled upstream that resumes; requests whose client gave up are
                      dropped)
    500               answer 500 with an OpenAI error body
    429               answer 429 with ``Retry-After: retry_after``
    cut               start a 200 answer (a role-only chunk when streaming), then drop
                      the connection before any content
    error-event       a 200 stream whose first event after the role chunk is an error
                      (a whole answer: a 200 body that is an error, not a completion)
    cut-late          forward, and drop the connection after the first content chunk
    late-error-event  forward, and send an error event after the first content chunk

A ``Gate`` in front of a proxy adds the one failure HTTP cannot play: an upstream that
stops accepting connections (refused), and later listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
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
        body = await read_body(receive)
        self.hits += 1
        parsed = orjson.loads(body) if body else None
        self.bodies.append(parsed)
        streaming = isinstance(parsed, dict) and bool(parsed.get("stream"))
        if self.fault == "hang" and not await self._resumed(receive):
            return  # the client gave up while it hung: nothing to forward
        await self._answer(scope, body, streaming, send)

    async def _resumed(self, receive: Receive) -> bool:
        """Hang until the fault is switched off (True) or the client goes away (False)."""
        gone = asyncio.ensure_future(receive())  # the next message is the disconnect
        try:
            while self.fault == "hang" and not gone.done():  # noqa: ASYNC110 (set by another thread)
                await asyncio.sleep(0.02)
            return not gone.done()
        finally:
            gone.cancel()

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


async def read_body(receive: Receive) -> bytes:
    """A request's whole body, however many messages it came in."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


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


class Gate:
    """A TCP relay on a fixed loopback port in front of ``host:port``, in its own thread.

    ``refuse()`` stops listening, so new connections are refused; an answer already under
    way is delivered, but a new request on a connection opened before the refusal resets
    it (the upstream has stopped: clients see no answer, never half of one). ``admit()``
    resets what is left of those connections and listens on the same port again.
    """

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gate:
        self._thread.start()
        self.admit()
        return self

    def stop(self) -> None:
        self.refuse()
        self._call(self._reset())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def admit(self) -> None:
        self._call(self._listen())

    def refuse(self) -> None:
        self._call(self._close())

    def _call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _reset(self) -> None:
        for link in [link for link in self._links if link.draining]:
            link.abort()
            self._links.discard(link)

    async def _listen(self) -> None:
        await self._reset()
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in self._links:
            link.draining = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer, draining=self._server is None)
        self._links.add(link)
        await asyncio.gather(link.requests(reader), link.answers(up_reader))
        link.abort()
        self._links.discard(link)


@dataclass(eq=False)
class _Link:
    """One relayed connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    draining: bool = False  # opened before a refusal: no new request may pass

    async def requests(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.draining:
                    self.abort()
                    return
                self.upstream.write(data)
                await self.upstream.drain()
            self.upstream.write_eof()

    async def answers(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.client.write(data)
                await self.client.drain()
            self.client.write_eof()

    def abort(self) -> None:
        self.client.transport.abort()
        self.upstream.transport.abort()
