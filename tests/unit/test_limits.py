"""Rate limits and budgets: in-process, and shared through the real local Redis by two
limiters that stand for two replicas; a Redis that is not there falls back in-process."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from offramp.errors import BudgetExceeded, RateLimited
from offramp.keys.limits import Limiter, MemoryLimiter, RedisLimiter
from offramp.keys.store import ApiKey
from offramp.shared_redis import SharedRedis
from tests.servers import free_port

SHARED_REDIS = "redis://127.0.0.1:6379/0"


async def _nothing_spent(_: str) -> float:
    return 0.0


def _key(**limits: object) -> ApiKey:
    return ApiKey(id=f"key_{uuid.uuid4().hex[:10]}", name="t", prefix="sk", created_at=0, **limits)  # type: ignore[arg-type]


def _wait_for_fresh_minute() -> None:
    """Counters are per calendar minute: do not start a test in its last seconds."""
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.1)


async def _admitted(limiters: list[Limiter], key: ApiKey, n: int) -> tuple[int, list[Exception]]:
    ok = 0
    refused: list[Exception] = []
    for i in range(n):
        try:
            await limiters[i % len(limiters)].admit(key)
            ok += 1
        except (RateLimited, BudgetExceeded) as exc:
            refused.append(exc)
    return ok, refused


def test_memory_limiter_counts_requests_tokens_and_spend() -> None:
    _wait_for_fresh_minute()

    async def run() -> None:
        limiter = MemoryLimiter(_nothing_spent)
        ok, refused = await _admitted([limiter], _key(rpm=3), 5)
        assert ok == 3 and all(
            isinstance(e, RateLimited) and (e.retry_after or 0) >= 1 for e in refused
        )
        tokens = _key(tpm=100)
        await limiter.admit(tokens)
        await limiter.charge(tokens, 150, 0.0)
        with pytest.raises(RateLimited) as over:
            await limiter.admit(tokens)
        assert over.value.error_type == "tokens"
        budget = _key(budget_usd=1.0)
        await limiter.admit(budget)
        await limiter.charge(budget, 10, 1.5)
        with pytest.raises(BudgetExceeded):
            await limiter.admit(budget)

    asyncio.run(run())


def test_two_redis_limiters_share_one_limit_and_one_budget() -> None:
    _wait_for_fresh_minute()

    async def run() -> None:
        replicas = [SharedRedis(SHARED_REDIS, 5.0), SharedRedis(SHARED_REDIS, 5.0)]
        limiters: list[Limiter] = [
            RedisLimiter(r, _nothing_spent, MemoryLimiter(_nothing_spent)) for r in replicas
        ]
        ok, refused = await _admitted(limiters, _key(rpm=4), 10)
        assert ok == 4 and len(refused) == 6
        budget = _key(budget_usd=0.01)
        await limiters[0].admit(budget)
        await limiters[0].charge(budget, 5, 0.02)
        with pytest.raises(BudgetExceeded):
            await limiters[1].admit(budget)  # the other replica sees the spend
        tokens = _key(tpm=100)
        await limiters[0].admit(tokens)
        await limiters[0].charge(tokens, 150, 0.0)
        with pytest.raises(RateLimited) as over:
            await limiters[1].admit(tokens)
        assert over.value.error_type == "tokens"
        assert all(r.failures == 0 for r in replicas)
        for r in replicas:
            await r.aclose()

    asyncio.run(run())


def test_an_unreachable_redis_falls_back_in_process() -> None:
    async def run() -> None:
        redis = SharedRedis(f"redis://127.0.0.1:{free_port()}/0", retry_s=60)
        limiter = RedisLimiter(redis, _nothing_spent, MemoryLimiter(_nothing_spent))
        ok, refused = await _admitted([limiter], _key(rpm=2), 3)
        assert ok == 2 and len(refused) == 1  # the in-process limit still holds
        assert redis.failures == 1  # tried once, then left alone for retry_s
        await redis.aclose()

    asyncio.run(run())
