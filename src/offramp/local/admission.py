"""The bounded queue in front of each model: admit, or refuse with 503 + Retry-After.

Each model serves ``concurrency`` requests at once (its slots); up to ``max_queue``
more may wait. Beyond that a request is refused at once rather than left to time out.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from offramp.errors import Overloaded

T = TypeVar("T")


@dataclass
class _Gauge:
    active: int = 0
    avg_s: float = 1.0


class Admission:
    """Per-model admission control for one app."""

    def __init__(self, max_queue: int):
        self._max_queue = max_queue
        self._gauges: dict[str, _Gauge] = {}

    def depths(self) -> dict[str, int]:
        """Requests admitted (running or waiting) per model."""
        return {model: gauge.active for model, gauge in self._gauges.items()}

    def depth(self, model: str) -> int:
        """Requests admitted for ``model`` (running or waiting)."""
        gauge = self._gauges.get(model)
        return gauge.active if gauge else 0

    @contextmanager
    def slot(self, model: str, concurrency: int) -> Iterator[None]:
        """Hold a place for one request; raises Overloaded when the queue is full."""
        gauge = self._gauges.setdefault(model, _Gauge())
        if gauge.active >= concurrency + self._max_queue:
            waiting = gauge.active - concurrency + 1
            retry = max(1, math.ceil(gauge.avg_s * waiting / max(concurrency, 1)))
            raise Overloaded(
                f"model {model!r} is busy: {gauge.active} requests are running or waiting "
                f"(limit {concurrency + self._max_queue}); retry after {retry}s",
                retry_after=retry,
            )
        gauge.active += 1
        started = time.monotonic()
        try:
            yield
        finally:
            gauge.active -= 1
            gauge.avg_s = 0.8 * gauge.avg_s + 0.2 * (time.monotonic() - started)

    async def stream(
        self, model: str, concurrency: int, items: AsyncIterator[T]
    ) -> AsyncIterator[T]:
        """Hold a place for the whole life of a stream (checked before the first item)."""
        try:
            with self.slot(model, concurrency):
                async for item in items:
                    yield item
        finally:
            closer = getattr(items, "aclose", None)
            if closer is not None:
                await closer()
