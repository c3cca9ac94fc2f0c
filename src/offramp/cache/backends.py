"""Where cache entries live: in this process (LRU + TTL), or in Redis with a fallback."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from offramp.shared_redis import RedisUnavailable, SharedRedis


class CacheBackend(Protocol):
    """Bytes by key with a time to live. Never raises for a missing or failed store:
    a miss is ``None``, a failed write is dropped."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None: ...


class MemoryCache:
    """At most ``max_entries`` entries, least recently used evicted first; expired
    entries are misses (and dropped when seen)."""

    def __init__(self, max_entries: int):
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    del self._entries[key]
                out.append(None)
                continue
            self._entries.move_to_end(key)
            out.append(entry[1])
        return out

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        expires = time.monotonic() + ttl_s
        for key, value in items.items():
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class RedisCache:
    """Entries in the shared Redis; while Redis is unavailable, in ``fallback``."""

    def __init__(self, redis: SharedRedis, fallback: MemoryCache):
        self._redis = redis
        self._fallback = fallback

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []

        async def mget(client: Any) -> list[bytes | None]:
            return list(await client.mget(list(keys)))

        try:
            return await self._redis.run(mget, "cache")
        except RedisUnavailable:
            return await self._fallback.get_many(keys)

    async def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        if not items:
            return
        ttl_ms = max(int(ttl_s * 1000), 1)

        async def mset(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=ttl_ms)
                await pipe.execute()

        try:
            await self._redis.run(mset, "cache")
        except RedisUnavailable:
            await self._fallback.set_many(items, ttl_s)
