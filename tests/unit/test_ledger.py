"""The ledger on real SQLite and PostgreSQL: migrations, the batched writer, API keys."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from offramp.keys.store import KeyStore
from offramp.ledger.migrations import MIGRATIONS, migrate
from offramp.ledger.queries import summary
from offramp.ledger.records import UsageRecord
from offramp.ledger.schema import migrations, usage
from offramp.ledger.store import insert_usage
from offramp.ledger.writer import LedgerWriter
from tests.backing import ledger_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with ledger_engine(request.param, tmp_path) as the_engine:
        yield the_engine


def _record(model: str = "gpt-4o-mini", **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": uuid.uuid4().hex,
        "ts": time.time(),
        "endpoint": "chat",
        "model": model,
        "route": "smollm2-135m-instruct",
        "deployment": "smollm2-135m-instruct",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "latency_ms": 100.0,
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(usage)).scalar_one())


def test_migrations_are_applied_once_in_order(engine: Engine) -> None:
    with engine.connect() as conn:
        names = list(conn.execute(select(migrations.c.name).order_by(migrations.c.name)).scalars())
    assert names == [name for name, _ in MIGRATIONS]
    assert migrate(engine) == []  # a second start-up applies nothing


def test_writer_writes_every_record_by_close(engine: Engine) -> None:
    writer: LedgerWriter[UsageRecord] = LedgerWriter(
        lambda rs: insert_usage(engine, rs), max_queue=5000, flush_s=0.05
    )
    writer.start()
    records = [_record() for _ in range(1200)]
    for record in records:
        writer.submit(record)
    writer.close()
    assert writer.dropped == 0
    assert _count(engine) == 1200
    with engine.connect() as conn:
        ids = set(conn.execute(select(usage.c.request_id)).scalars())
    assert ids == {r.request_id for r in records}


def test_a_full_queue_drops_and_counts() -> None:
    written: list[UsageRecord] = []
    writer = LedgerWriter(written.extend, max_queue=3, flush_s=0.01)
    for _ in range(5):
        writer.submit(_record())
    assert writer.dropped == 2
    writer.start()
    writer.close()
    assert len(written) == 3


def test_summary_reports_spend_savings_latency_and_hits(engine: Engine) -> None:
    insert_usage(
        engine,
        [
            _record(latency_ms=float(ms), cost_usd=0.001, openai_cost_usd=0.01, cache_hit=ms > 80)
            for ms in range(1, 101)
        ]
        + [_record(status=429, error_code="rate_limit_exceeded")],
    )
    (model,) = summary(engine).models
    assert model.requests == 101 and model.errors == 1
    assert model.percentile(0.5) == 50.0 and model.percentile(0.95) == 95.0
    assert model.cost_usd == pytest.approx(0.1) and model.savings_usd == pytest.approx(0.9)
    assert model.cache_hit_rate == pytest.approx(0.2)


def test_keys_are_stored_hashed_and_revocable(engine: Engine) -> None:
    store = KeyStore(engine)
    key, secret = store.create("ci", rpm=3, budget_usd=2.5, models=("gpt-4o-mini",))
    with engine.connect() as conn:
        dumped = " ".join(
            str(v) for row in conn.exec_driver_sql("SELECT * FROM offramp_api_keys") for v in row
        )
    assert secret not in dumped and key.prefix in dumped
    found = store.find(secret)
    assert found is not None and found.id == key.id and found.rpm == 3
    assert found.allows("gpt-4o-mini") and not found.allows("gpt-4o")
    assert store.find(secret + "x") is None
    insert_usage(
        engine, [_record(key_id=key.id, cost_usd=0.75), _record(key_id=key.id, cost_usd=0.5)]
    )
    assert store.spent(key.id) == pytest.approx(1.25)
    assert store.revoke(key.id) and not store.revoke(key.id)
    revoked = store.find(secret)
    assert revoked is not None and revoked.revoked_at is not None
    assert [k.id for k in store.list()] == []
