"""Per-key requests-per-minute, tokens-per-minute and spend budgets.

``admit`` runs before a request and refuses it (RateLimited with Retry-After, or
BudgetExceeded); ``charge`` runs after it with the tokens and cost it really used.
Windows are calendar minutes. Tokens and spend are known only when a request ends, so
requests already running when a limit is reached may overshoot it by their own use.

``MemoryLimiter`` holds the counters in this process. ``RedisLimiter`` holds them in
Redis, checked and counted by one Lua script so every replica shares one limit; while
Redis is unavailable it falls back to a MemoryLimiter. Spend starts, for each key, from
what the ledger says it has spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from offramp.errors import BudgetExceeded, RateLimited
from offramp.keys.store import ApiKey
from offramp.shared_redis import RedisUnavailable, SharedRedis

SpentSoFar = Callable[[str], Awaitable[float]]
_WINDOW_S = 60


class Limiter(Protocol):
    async def admit(self, key: ApiKey) -> None:
        """Count one request for ``key`` or raise RateLimited / BudgetExceeded."""
        ...

    async def charge(self, key: ApiKey, tokens: int, cost_usd: float) -> None:
        """Add a finished request's tokens and cost to ``key``'s counters."""
        ...


@dataclass
class _Window:
    minute: int
    requests: int = 0
    tokens: int = 0


def _minute() -> int:
    return int(time.time() // _WINDOW_S)


def _retry_after() -> int:
    return max(1, math.ceil(_WINDOW_S - time.time() % _WINDOW_S))


def _over_budget(key: ApiKey, spent: float) -> BudgetExceeded:
    return BudgetExceeded(
        f"API key {key.id} has spent ${spent:.4f} of its ${key.budget_usd:.4f} budget."
    )


def _over_rate(key: ApiKey, what: str, limit: int | None) -> RateLimited:
    unit = "requests" if what == "requests" else "tokens"
    return RateLimited(
        f"Rate limit reached for API key {key.id}: {limit} {unit} per minute. "
        f"Retry after {_retry_after()}s.",
        retry_after=_retry_after(),
        limit=unit,
    )


class MemoryLimiter:
    """Counters in this process (one replica)."""

    def __init__(self, spent_so_far: SpentSoFar):
        self._spent_so_far = spent_so_far
        self._windows: dict[str, _Window] = {}
        self._spent: dict[str, float] = {}

    async def admit(self, key: ApiKey) -> None:
        if key.budget_usd is not None:
            if key.id not in self._spent:
                self._spent[key.id] = await self._spent_so_far(key.id)
            if self._spent[key.id] >= key.budget_usd:
                raise _over_budget(key, self._spent[key.id])
        window = self._window(key.id)
        if key.tpm is not None and window.tokens >= key.tpm:
            raise _over_rate(key, "tokens", key.tpm)
        if key.rpm is not None and window.requests >= key.rpm:
            raise _over_rate(key, "requests", key.rpm)
        window.requests += 1

    async def charge(self, key: ApiKey, tokens: int, cost_usd: float) -> None:
        self._window(key.id).tokens += tokens
        if key.id in self._spent or key.budget_usd is not None:
            self._spent[key.id] = self._spent.get(key.id, 0.0) + cost_usd

    def _window(self, key_id: str) -> _Window:
        minute = _minute()
        window = self._windows.get(key_id)
        if window is None or window.minute != minute:
            window = self._windows[key_id] = _Window(minute)
        return window


# KEYS: requests window, tokens window, spend. ARGV: rpm, tpm, budget ('' = none), ttl ms.
_ADMIT = """
if ARGV[3] ~= '' then
  local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
  if spent >= tonumber(ARGV[3]) then return {3, tostring(spent)} end
end
if ARGV[2] ~= '' then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= tonumber(ARGV[2]) then return {2, '0'} end
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if ARGV[1] ~= '' and n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {1, '0'}
end
return {0, '0'}
"""
_TTL_MS = 2 * _WINDOW_S * 1000


class RedisLimiter:
    """Counters in Redis, shared by every replica; ``fallback`` while Redis is down."""

    def __init__(self, redis: SharedRedis, spent_so_far: SpentSoFar, fallback: MemoryLimiter):
        self._redis = redis
        self._spent_so_far = spent_so_far
        self._fallback = fallback
        self._seeded: set[str] = set()

    async def admit(self, key: ApiKey) -> None:
        try:
            await self._seed(key)
            verdict, detail = await self._redis.run(
                lambda client: client.eval(_ADMIT, 3, *self._names(key.id), *_args(key)),
                "rate limits",
            )
        except RedisUnavailable:
            await self._fallback.admit(key)
            return
        verdict = int(verdict)
        if verdict == 3:
            raise _over_budget(key, float(detail))
        if verdict == 2:
            raise _over_rate(key, "tokens", key.tpm)
        if verdict == 1:
            raise _over_rate(key, "requests", key.rpm)

    async def charge(self, key: ApiKey, tokens: int, cost_usd: float) -> None:
        _, tokens_key, spend_key = self._names(key.id)

        async def add(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incrby(tokens_key, tokens)
                pipe.pexpire(tokens_key, _TTL_MS)
                if cost_usd:
                    pipe.incrbyfloat(spend_key, cost_usd)
                await pipe.execute()

        try:
            await self._redis.run(add, "rate limits")
        except RedisUnavailable:
            await self._fallback.charge(key, tokens, cost_usd)

    async def _seed(self, key: ApiKey) -> None:
        """Start the shared spend counter from the ledger (once; replicas agree by NX)."""
        if key.budget_usd is None or key.id in self._seeded:
            return
        spent = await self._spent_so_far(key.id)
        spend_key = self._names(key.id)[2]
        await self._redis.run(lambda c: c.set(spend_key, repr(spent), nx=True), "rate limits")
        self._seeded.add(key.id)

    @staticmethod
    def _names(key_id: str) -> tuple[str, str, str]:
        minute = _minute()
        return (
            f"offramp:rpm:{key_id}:{minute}",
            f"offramp:tpm:{key_id}:{minute}",
            f"offramp:spend:{key_id}",
        )


def _args(key: ApiKey) -> tuple[str, str, str, int]:
    def text(value: float | None) -> str:
        return "" if value is None else repr(value)

    return text(key.rpm), text(key.tpm), text(key.budget_usd), _TTL_MS
