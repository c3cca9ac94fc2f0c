"""The Redis that replicas share, and what happens when it goes away.

Callers run each operation through ``SharedRedis.run``. When Redis fails (refused,
timed out, reset), the failure is logged as a warning and counted, ``RedisUnavailable``
is raised so the caller falls back to its in-process path, and Redis is not tried again
for ``retry_s`` seconds (requests do not each wait for a dead server).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis cannot be used right now; take the in-process path."""


class SharedRedis:
    """One asyncio Redis client with failure tracking (``failures`` counts them)."""

    def __init__(self, url: str, retry_s: float):
        import redis.asyncio as aioredis

        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self.failures = 0
        self._retry_s = retry_s
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        """False for ``retry_s`` after a failure."""
        return time.monotonic() >= self._down_until

    async def run(self, op: Callable[[Any], Awaitable[T]], what: str) -> T:
        """``op(client)``, or RedisUnavailable (logged and counted) if Redis fails."""
        from redis.exceptions import RedisError

        if not self.available:
            raise RedisUnavailable(what)
        try:
            return await op(self.client)
        except (RedisError, OSError) as exc:
            self.failures += 1
            self._down_until = time.monotonic() + self._retry_s
            log.warning(
                "redis failed during %s (%s: %s); using in-process %s for %.0fs",
                what,
                type(exc).__name__,
                exc,
                what,
                self._retry_s,
            )
            raise RedisUnavailable(what) from exc

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        except Exception as exc:  # closing a dead connection must not fail shutdown
            log.debug("closing redis: %s", exc)
