"""Carrying engine events (engine thread) to a request's event loop, in batches.

Waking an event loop costs CPU that, on a small machine, the decode threads need. The
mailbox wakes its loop at most once per ``interval``; the first event and the last event
of a request go at once, so time to first token and completion are not delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Many producers on other threads, one consumer on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float):
        self._loop = loop
        self._interval = interval
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._last_wake = 0.0
        self._ready = asyncio.Event()

    def put(self, item: T, *, urgent: bool) -> None:
        """Any thread: leave ``item``; wake the consumer now if ``urgent``, else soon."""
        with self._lock:
            self._items.append(item)
            if self._scheduled and not urgent:
                return
            self._scheduled = True
        delay = 0.0 if urgent else self._last_wake + self._interval - time.monotonic()
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is reading
            self._loop.call_soon_threadsafe(self._arm, delay)

    def _arm(self, delay: float) -> None:
        if delay <= 0:
            self._wake()
        else:
            self._loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._scheduled = False
        self._last_wake = time.monotonic()
        self._ready.set()

    async def take(self) -> list[T]:
        """Wait for, and return, everything left so far (never an empty list)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            with self._lock:
                items = list(self._items)
                self._items.clear()
            if items:
                return items
