"""Redis going away mid-test fails no request: the cache moves in-process, a warning is
logged and the failure is counted in /metrics. The Redis here is this test's own."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.backing import RedisServer
from tests.servers import ServerThread

CHAT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say yes."}],
    "temperature": 0,
    "max_tokens": 3,
}


def test_killing_redis_fails_no_request(
    settings: Settings, pool: ModelPool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer(tmp_path) as own:
        mine = settings.model_copy(
            update={"ledger_path": tmp_path / "l.db", "cache": True, "redis_url": own.url}
        )
        with ServerThread(mine, pool) as server:
            client = openai.OpenAI(
                base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=120
            )
            before = client.chat.completions.create(**CHAT).choices[0].message.content
            client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
            assert redis.Redis(port=own.port).dbsize() == 3  # one answer, two vectors
            own.kill()
            with caplog.at_level(logging.WARNING, logger="offramp"):
                after = [client.chat.completions.create(**CHAT) for _ in range(2)]
                vectors = client.embeddings.create(
                    model="text-embedding-3-small", input=["two", "three"]
                )
            metrics = httpx.get(server.base_url + "/metrics").text
    assert [a.choices[0].message.content for a in after] == [before, before]
    assert len(vectors.data) == 2
    assert any("redis failed" in r.getMessage() for r in caplog.records)
    failures = next(
        line for line in metrics.splitlines() if line.startswith("offramp_redis_failures_total")
    )
    assert float(failures.split()[-1]) >= 1
    hits = next(
        line for line in metrics.splitlines()
        if line.startswith('offramp_cache_hits_total{kind="response"}')
    )  # fmt: skip
    assert float(hits.split()[-1]) == 1  # the second answer after the kill, from this process
