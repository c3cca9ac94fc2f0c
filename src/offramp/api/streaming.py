"""Server-sent events and client-disconnect handling.

A stream's first item is produced before the response starts, so a request that fails
validation, does not fit the context, or finds the queue full gets a real status code
(and a client that leaves while its request waits in the queue is noticed there).
After that, an error becomes a final SSE error event. A client that goes away cancels
the work it asked for, whether it was streaming or waiting for a whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

from offramp.api.drain import Drain
from offramp.errors import DRAIN_CUT, OfframpError, ShuttingDown

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
    """Await ``work``; cancel it and raise ClientGone if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone()
    finally:
        watcher.cancel()


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def start_sse(
    request: Request,
    items: AsyncIterator[T],
    render: Callable[[T], list[bytes]],
    headers: dict[str, str] | None = None,
    trailer: Callable[[], bytes] | None = None,
) -> StreamingResponse:
    """Produce the first item now (errors become plain HTTP errors), then stream the rest.

    ``render`` turns each item into zero or more SSE frames; the stream ends with
    ``trailer()`` (if given and the stream succeeded) and ``data: [DONE]``, or with an
    error event and ``[DONE]`` if it fails midway.
    """
    try:
        first = await until_disconnect(request, anext(items))
    except StopAsyncIteration:
        first = None
    except BaseException:
        await _close(items)
        raise

    drain: Drain | None = getattr(request.app.state, "drain", None)

    async def body() -> AsyncIterator[bytes]:
        # Once streaming, a disconnect cancels this generator (Starlette watches for it)
        # or fails the next send; either way the finally below stops the generation. A
        # drain that reaches its deadline cancels it too, and then it ends with an error.
        task = asyncio.current_task()
        if drain is not None and task is not None:
            drain.track_stream(task)
        try:
            try:
                if first is not None:
                    for frame in render(first):
                        yield frame
                    async for item in items:
                        for frame in render(item):
                            yield frame
                last = trailer() if trailer is not None else b""
                if last:
                    yield last
            except OfframpError as exc:
                yield sse(exc.envelope())
            except asyncio.CancelledError as exc:
                if task is None or not (exc.args and exc.args[0] == DRAIN_CUT):
                    raise
                task.uncancel()
                yield sse(ShuttingDown("the server stopped before the answer ended").envelope())
            finally:
                await _close(items)
            yield DONE
        finally:
            if drain is not None and task is not None:
                drain.untrack_stream(task)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


async def _close(items: AsyncIterator[Any]) -> None:
    closer = getattr(items, "aclose", None)
    if closer is not None:
        await closer()
