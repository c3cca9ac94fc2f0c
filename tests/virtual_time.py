"""A fake clock that an asyncio event loop runs on: whenever the loop would sleep with
nothing to do, the clock jumps to its next timer instead. Sleeps, timeouts, backoff,
circuit cooldowns and deadlines then all take no real time, and the router, its
breakers and the test read the same clock."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualClock:
    """Seconds since the start; ``run`` drives a coroutine on a loop that uses them."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=lambda: _Loop(self)) as runner:
            return runner.run(coro)


class _Selector(selectors.DefaultSelector):
    def __init__(self, clock: VirtualClock):
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)  # real waits: threads handing results back
        ready = super().select(0)
        if not ready:
            self._clock.now += timeout  # nothing to do until the next timer: jump to it
        return ready


class _Loop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock):
        self._virtual = clock
        super().__init__(_Selector(clock))

    def time(self) -> float:
        return self._virtual.now
