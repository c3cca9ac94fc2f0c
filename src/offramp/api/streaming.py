"""Server-sent events and client-disconnect handling.

A stream's first item is produced before the response starts, so a request that fails
validation, does not fit the context, or finds the queue full gets a real status code
(and a client that leaves while its request waits in the queue is noticed there).
After that, an error becomes a final SSE error event. A client that goes away cancels
the work it asked for, whether it was streaming or waiting for a whole answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from offramp.api.drain import Drain
from offramp.errors import OfframpError, ShuttingDown

T = TypeVar("T")
DONE = b"data: [DONE]\n\n"


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` in the current task; cancel it and raise ClientGone if the client
    disconnects first, or ShuttingDown if the server's drain deadline cuts it. (In the
    current task rather than one of its own: a task per request showed in the profile.)"""
    drain = _drain_of(request)
    current = asyncio.current_task()
    assert current is not None, "until_disconnect runs inside a task"
    watcher = asyncio.ensure_future(_disconnected(request))
    gone = finished = False

    def on_disconnect(done: asyncio.Future[None]) -> None:
        nonlocal gone
        if not done.cancelled() and not finished:
            gone = True
            current.cancel()

    watcher.add_done_callback(on_disconnect)
    if drain is not None:
        drain.track(current)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone() from None
        if drain is not None and drain.was_cut(current):
            current.uncancel()
            raise ShuttingDown("the server stopped before the answer was ready") from None
        raise
    finally:
        finished = True
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
        if drain is not None:
            drain.untrack(current)


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(name: str, payload: dict[str, Any]) -> bytes:
    """A frame with an ``event:`` line, as the Responses and Messages APIs send them."""
    return b"event: " + name.encode() + b"\n" + sse(payload)


def _error_frames(error: OfframpError) -> list[bytes]:
    return [sse(error.envelope())]


async def start_sse(
    request: Request,
    items: AsyncIterator[T],
    render: Callable[[T], list[bytes]],
    headers: dict[str, str] | None = None,
    trailer: Callable[[], bytes] | None = None,
    *,
    failed: Callable[[OfframpError], list[bytes]] = _error_frames,
    done: bytes = DONE,
) -> SSEResponse:
    """Produce the first item now (errors become plain HTTP errors), then stream the rest.

    ``render`` turns each item into zero or more SSE frames; the stream ends with
    ``trailer()`` (if given and the stream succeeded) and ``done`` (``data: [DONE]``), or
    with the frames ``failed(error)`` renders (OpenAI's error envelope unless given) and
    ``done`` if it fails midway or the server's drain deadline cuts it. APIs whose streams
    end with a closing event of their own pass ``done=b""``.
    The items are read by a task of their own (the pump), so a drain can stop them
    without touching the response's own task.
    """
    pump = _Pump(items, _drain_of(request))
    try:
        first = await until_disconnect(request, pump.next())
    except BaseException:
        pump.stop()
        raise

    async def body() -> AsyncIterator[bytes]:
        # Once streaming, a disconnect cancels this generator (Starlette watches for it)
        # or fails the next send; either way the finally below stops the generation.
        # Items already waiting are sent in one write with the one before them (never
        # waiting for more): a write per frame cost more than rendering it.
        out: list[bytes] = []
        try:
            item = first
            while not isinstance(item, _End):
                out.extend(render(item))
                ready = pump.poll()
                if ready is None:
                    if out:
                        yield b"".join(out)
                        out = []
                    ready = await pump.next()
                item = ready
            out.append(trailer() if trailer is not None else b"")
        except OfframpError as exc:
            out.extend(failed(exc))
        finally:
            pump.stop()
        out.append(done)
        yield _Last(b"".join(out))

    return SSEResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


class _Last(bytes):
    """A stream's last piece: it goes out with the end of the body, in one write."""


class SSEResponse(StreamingResponse):
    """A streamed response that watches for the client leaving with one plain task (the
    framework's response runs a task group of two per stream): a disconnect cancels the
    streaming, whose generator then stops its generation. A piece marked ``_Last`` ends
    the body in the same write."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        gone = False
        finished = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished and streaming is not None:
                gone = True
                streaming.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            ended = False
            async for chunk in self.body_iterator:
                ended = isinstance(chunk, _Last)
                data = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
                await send({"type": "http.response.body", "body": data, "more_body": not ended})
            if not ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone or streaming is None:
                raise
            streaming.uncancel()  # the client left: nothing more to send
        finally:
            finished = True
            watcher.cancel()
            closer = getattr(self.body_iterator, "aclose", None)
            if closer is not None:
                await closer()


class _End:
    """The pump's marker for a stream that ended."""


_END = _End()


class _Pump(Generic[T]):
    """Reads ``items`` in a task of its own into a small queue. ``next`` returns the next
    item, ``_END`` at the end, or raises the error the stream failed with (ShuttingDown
    when the server's drain deadline cut it)."""

    def __init__(self, items: AsyncIterator[T], drain: Drain | None):
        self._items = items
        self._drain = drain
        self._queue: asyncio.Queue[T | _End | OfframpError] = asyncio.Queue(maxsize=16)
        self._task = asyncio.ensure_future(self._run())
        if drain is not None:
            drain.track(self._task)

    async def next(self) -> T | _End:
        got = await self._queue.get()
        if isinstance(got, OfframpError):
            raise got
        return got

    def poll(self) -> T | _End | None:
        """The next item if it is already here (else None), as ``next`` gives it."""
        try:
            got = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if isinstance(got, OfframpError):
            raise got
        return got

    def stop(self) -> None:
        """Stop reading (the client left, or the response ended)."""
        self._task.cancel()

    async def _run(self) -> None:
        try:
            async for item in self._items:
                await self._queue.put(item)
            end: T | _End | OfframpError = _END
        except OfframpError as exc:
            end = exc
        except asyncio.CancelledError:
            if self._drain is None or not self._drain.was_cut(self._task):
                raise
            end = ShuttingDown("the server stopped before the answer ended")
        finally:
            await _close(self._items)
            if self._drain is not None:
                self._drain.untrack(self._task)
        self._queue.put_nowait(end) if not self._queue.full() else await self._queue.put(end)


def _drain_of(request: Request) -> Drain | None:
    drain: Drain | None = getattr(request.app.state, "drain", None)
    return drain


async def _close(items: AsyncIterator[Any]) -> None:
    closer = getattr(items, "aclose", None)
    if closer is not None:
        await closer()
