"""The HTTP server around the app: uvicorn, with a graceful drain and connection hygiene.

* SIGTERM (or SIGINT) starts the app's drain (``api.drain``): ``/ready`` turns 503, new
  requests get 503, running ones finish. The server stops as soon as none is left, or at
  the drain deadline, when running streams are cut with an SSE error event. A second
  signal stops at once.
* A connection must send its request headers within ``read_timeout_s`` of opening (or of
  its previous response), and is closed otherwise: idle or half-sent connections cannot
  be held open. Idle keep-alive connections close after ``keepalive_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from offramp.api.drain import Drain
from offramp.settings import Settings

log = logging.getLogger(__name__)
_GRACE_AFTER_CUT_S = 2.0  # for cut streams to send their error event before the exit


class _HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol (before it): closes a connection that has not
    sent a whole request head in ``read_timeout`` seconds, counted from when it opened
    or finished its previous response.

    One timer per connection, not per request: finishing a response only moves the start
    of the count, and a timer that fires early for that reason sets itself again for the
    rest of the time."""

    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, read_timeout: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # when the wait for the next request head began

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head() and self._head_timer is None:
            self._arm()
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm(self) -> None:
        self._since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.read_timeout, self._expire)

    def _expire(self) -> None:
        self._head_timer = None
        if not self._waiting_for_head() or self.transport.is_closing():
            return
        left = self._since + self.read_timeout - self.loop.time()
        if left > 0.001:  # a response finished since the timer was set: count on
            self._head_timer = self.loop.call_later(left, self._expire)
        else:
            self.transport.close()

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


class TimedHttpTools(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on request heads."""


class TimedH11(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a deadline on request heads."""


def _protocol(read_timeout: float) -> type[asyncio.Protocol]:
    """The HTTP protocol class: httptools when installed (uvicorn's own choice), else h11."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        base: type[Any] = TimedH11
    else:
        base = TimedHttpTools

    class Timed(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, read_timeout=read_timeout, **kwargs)

    return Timed


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first exit signal drains the app before stopping."""

    def __init__(self, config: uvicorn.Config, drain: Drain):
        super().__init__(config)
        self._drain = drain
        self._waiter: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs as a signal handler: only hand the work to the event loop from here.
        if self._waiter is not None or self._loop is None:
            super().handle_exit(sig, frame)  # a second signal (or no loop yet): stop now
            return
        self._captured_signals.append(sig)
        self._loop.call_soon_threadsafe(self._begin_drain)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def _begin_drain(self) -> None:
        if self._waiter is not None:
            return
        log.info("draining: up to %.0fs for running requests", self._drain.timeout_s)
        self._drain.begin()
        self._waiter = asyncio.get_running_loop().create_task(self._stop_when_drained())

    async def _stop_when_drained(self) -> None:
        if not await self._drain.wait_idle(self._drain.remaining_s()):
            # the deadline cut the streams: give them a moment to send their error event
            await self._drain.wait_idle(_GRACE_AFTER_CUT_S)
        self.should_exit = True


def config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration offramp serves with."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": _protocol(settings.read_timeout_s),
        "timeout_keep_alive": max(1, round(settings.keepalive_timeout_s)),
        "timeout_graceful_shutdown": max(1, round(_GRACE_AFTER_CUT_S)),
        **overrides,
    }
    return uvicorn.Config(app, **options)


def serve(
    app: Any, settings: Settings, sockets: list[socket.socket] | None = None, **overrides: Any
) -> None:
    """Serve ``app`` (built by ``create_app``) until a signal drains and stops it."""
    server = DrainingServer(config(app, settings, **overrides), app.state.drain)
    server.run(sockets=sockets)
