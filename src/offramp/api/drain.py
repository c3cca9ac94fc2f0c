"""Graceful drain: what a replica does between SIGTERM and exit.

``Drain.begin`` turns ``/ready`` to 503 (the load balancer stops sending), refuses new
requests with 503 ``shutting_down`` (Retry-After: another replica can take them), and
lets running requests finish. At the drain deadline every stream still running is cut:
it ends with an SSE error event and ``[DONE]`` (never silently), and its usage record
bills the tokens generated so far. ``idle`` reports when no request is left, so the
server can stop before the deadline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from offramp.api.errors import response_in
from offramp.errors import DRAIN_CUT, ShuttingDown

_ALWAYS_OPEN = frozenset({"/health", "/ready", "/metrics"})
REFUSAL = "the server is shutting down; retry"  # a new request's answer while draining


class Drain:
    """The drain state of one app: in-flight requests, running streams, the deadline."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.draining = False
        self.deadline: float | None = None
        self.in_flight = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._cut: set[asyncio.Future[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        """Start draining (idempotent); streams still running at the deadline are cut."""
        if self.draining:
            return
        self.draining = True
        self.deadline = time.monotonic() + self.timeout_s
        asyncio.get_running_loop().call_later(self.timeout_s, self.cut)

    def cut(self) -> None:
        """Stop every tracked piece of work now: streams end with an error event, whole
        answers still being generated get 503 ``shutting_down``."""
        for task in list(self._tasks):
            self._cut.add(task)
            task.cancel(DRAIN_CUT)

    def track(self, task: asyncio.Future[Any]) -> None:
        """Work the deadline may cut (a stream's pump, a whole answer being made)."""
        self._tasks.add(task)

    def untrack(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)

    def was_cut(self, task: asyncio.Future[Any]) -> bool:
        return task in self._cut

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        self._update()

    @property
    def idle(self) -> bool:
        return self.in_flight == 0

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for no request to be left; True if none is."""
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._idle.wait()
        except TimeoutError:
            pass
        return self.idle

    def remaining_s(self) -> float:
        """Seconds to the drain deadline (the whole timeout before draining starts)."""
        if self.deadline is None:
            return self.timeout_s
        return max(0.0, self.deadline - time.monotonic())

    def _update(self) -> None:
        if self.idle:
            self._idle.set()


class DrainGate:
    """ASGI middleware: counts requests in flight and, while draining, refuses new ones
    (503 ``shutting_down`` with Retry-After); health, readiness and metrics stay open."""

    def __init__(self, app: ASGIApp, drain: Drain):
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _ALWAYS_OPEN:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            response = response_in(scope, ShuttingDown(REFUSAL))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        self.drain.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.leave()
