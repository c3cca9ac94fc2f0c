"""What the console reads from the ledger (windows in buckets, the explorer's filters,
sums and CSV, each key's recent use, the alert readings), the same on SQLite and a real
PostgreSQL; and its sessions: signed, expiring, per role, ended by a key change."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from offramp.console import alerts
from offramp.console.access import ConsoleAccess
from offramp.errors import InvalidRequest
from offramp.ledger import explorer, series
from offramp.ledger.records import UsageRecord
from offramp.ledger.store import insert_usage
from offramp.routing.router import Router
from offramp.settings import Settings
from tests.backing import ledger_engine

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with ledger_engine(request.param, tmp_path) as the_engine:
        yield the_engine


def _record(ago_s: float, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": uuid.uuid4().hex,
        "ts": NOW - ago_s,
        "endpoint": "chat",
        "model": "gpt-4o-mini",
        "route": "smollm2",
        "deployment": "local/smollm2",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        "openai_cost_usd": 0.004,
        "latency_ms": 100.0,
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def filled(engine: Engine) -> Engine:
    insert_usage(
        engine,
        [
            _record(30, key_id="key_a", latency_ms=100.0, ttft_ms=20.0, stream=True),
            _record(40, key_id="key_a", latency_ms=300.0, cache_hit=True, cost_usd=0.0),
            _record(50, key_id="key_b", status=429, prompt_tokens=0, completion_tokens=0,
                    cost_usd=0.0, openai_cost_usd=0.0, deployment=None),
            _record(1800, key_id="key_b", endpoint="embeddings", model="text-embedding-3-small",
                    route="minilm", deployment="local/minilm", latency_ms=50.0),
            _record(7200, key_id="key_a", latency_ms=900.0),  # outside the hour
            _record(9000, endpoint="task", task="quiz"),
        ],
    )  # fmt: skip
    return engine


def test_a_window_adds_up_and_buckets_by_time(filled: Engine) -> None:
    found = series.window(filled, NOW - 3600, NOW, 6)[None]
    total = found.total.as_dict()
    assert (total["requests"], total["errors"], total["cache_hits"]) == (4, 1, 1)
    assert total["cost_usd"] == pytest.approx(0.002) and total["openai_cost_usd"] == pytest.approx(
        0.012
    )
    assert total["savings_usd"] == pytest.approx(0.010)
    assert total["error_rate"] == 0.25 and total["cache_hit_rate"] == pytest.approx(1 / 3)
    assert (total["p50_latency_ms"], total["p95_latency_ms"]) == (100.0, 300.0)
    assert total["p95_ttft_ms"] == 20.0
    assert [b.requests for b in found.buckets] == [0, 0, 0, 1, 0, 3]
    assert found.as_dict()["buckets"][2]["t"] == NOW - 3600 + 2 * 600


def test_a_window_groups_by_route(filled: Engine) -> None:
    by_route = series.window(filled, NOW - 3600, NOW, 2, "route")
    assert {k: v.total.requests for k, v in by_route.items()} == {"smollm2": 3, "minilm": 1}
    with pytest.raises(ValueError, match="group"):
        series.window(filled, NOW - 3600, NOW, 2, "key_id")


def test_the_explorer_filters_sums_and_exports(filled: Engine) -> None:
    b = explorer.UsageFilter(key_id="key_b")
    assert [r["status"] for r in explorer.rows(filled, b, 10)] == [429, 200]  # newest first
    sums = explorer.totals(filled, b)
    assert (sums["requests"], sums["errors"], sums["prompt_tokens"]) == (2, 1, 10)
    assert explorer.totals(filled, explorer.UsageFilter(status="2xx"))["requests"] == 5
    assert explorer.totals(filled, explorer.UsageFilter(status="error"))["requests"] == 1
    assert explorer.totals(filled, explorer.UsageFilter(status="429"))["requests"] == 1
    hour = explorer.UsageFilter(since=NOW - 3600, until=NOW, endpoint="chat")
    assert explorer.totals(filled, hour)["requests"] == 3
    assert explorer.totals(filled, explorer.UsageFilter(route="minilm"))["requests"] == 1
    assert explorer.totals(filled, explorer.UsageFilter(task="quiz"))["requests"] == 1
    assert explorer.totals(filled, explorer.UsageFilter(model="nope"))["requests"] == 0
    assert len(explorer.rows(filled, explorer.UsageFilter(), 2, offset=4)) == 2
    lines = list(csv.DictReader(io.StringIO("".join(explorer.csv_lines(filled, b)))))
    assert [r["status"] for r in lines] == ["200", "429"]  # oldest first
    assert set(lines[0]) == set(explorer.COLUMNS)
    choices = explorer.distinct_values(filled, None)
    assert choices["key_id"] == ["key_a", "key_b"] and choices["route"] == ["minilm", "smollm2"]
    assert choices["task"] == ["quiz"] and choices["endpoint"] == ["chat", "embeddings", "task"]
    with pytest.raises(InvalidRequest) as bad:
        explorer.UsageFilter(status="teapot").clauses()
    assert bad.value.param == "status"


def test_each_keys_recent_use_and_spend(filled: Engine) -> None:
    used = explorer.key_usage(filled, NOW, recent_s=60)
    assert used["key_a"] == {
        "requests": 3,
        "recent_requests": 2,
        "recent_tokens": 15,  # the cache hit charges no tokens
        "spent_usd": pytest.approx(0.002),
    }
    assert used["key_b"]["recent_requests"] == 1 and used["key_b"]["recent_tokens"] == 0


def test_alert_readings_from_the_ledger(engine: Engine) -> None:
    now = time.time()
    day = [_record(NOW - now + 5400 + 3600 * h, cost_usd=0.01) for h in range(24)]
    insert_usage(engine, day)  # $0.01 an hour for the day before the last hour
    insert_usage(engine, [_record(NOW - now + 60, cost_usd=0.03, latency_ms=6000.0)])
    insert_usage(engine, [_record(NOW - now + 120, status=500, cost_usd=0.0)])
    found = alerts.readings(engine, Router([]), now)
    assert found.cost_baseline_hourly == pytest.approx(0.01)
    assert found.cost_last_hour == pytest.approx(0.03)
    states = {a["name"]: a["state"] for a in alerts.evaluate(found)}
    assert states == {
        "OfframpHighLatency": "firing",
        "OfframpHighErrorRate": "firing",
        "OfframpBreakerOpen": "ok",
        "OfframpLowCacheHitRate": "firing",
        "OfframpCostSpike": "firing",
        "OfframpInstanceDown": "ok",
    }
    quiet = alerts.evaluate(alerts.readings(engine, Router([]), now + 10 * 86400))
    assert [a["state"] for a in quiet][:5] == ["no data", "no data", "ok", "no data", "no data"]


def _settings(admin: str = "adm", viewer: str | None = "view") -> Settings:
    return Settings(
        admin_key=SecretStr(admin),
        console_viewer_key=SecretStr(viewer) if viewer else None,
        console_session_s=60,
    )


def test_sessions_are_signed_expire_and_carry_their_role() -> None:
    access = ConsoleAccess(_settings())
    assert access.role_for("adm") == "admin" and access.role_for("view") == "viewer"
    assert access.role_for("nope") is None and access.role_for("") is None
    session = access.issue("viewer", now=NOW)
    again = access.read(session.token, now=NOW + 59)
    assert again is not None and again.role == "viewer" and again.csrf == session.csrf
    assert access.read(session.token, now=NOW + 61) is None  # expired
    role, expires, nonce, signature = session.token.split(".")
    assert access.read(f"admin.{expires}.{nonce}.{signature}", now=NOW) is None  # promoted
    assert access.read(f"{role}.{int(expires) + 999}.{nonce}.{signature}", now=NOW) is None
    assert access.read("", now=NOW) is None and access.read("garbage", now=NOW) is None
    other = access.issue("viewer", now=NOW)
    assert other.csrf != session.csrf  # one token per session
    # a changed key signs everybody out
    assert ConsoleAccess(_settings(viewer="view2")).read(session.token, now=NOW) is None
    assert ConsoleAccess(_settings(admin="adm2")).read(session.token, now=NOW) is None
    assert ConsoleAccess(_settings(viewer=None)).role_for("view") is None
