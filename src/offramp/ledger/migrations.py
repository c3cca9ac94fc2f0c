"""Ordered, named migrations of the ledger, applied at start-up, the same on every database.

Each migration declares its own tables (a migration is history: it never changes once
released, while ``schema.py`` describes the tables as they are now). Applied names are
kept in ``offramp_migrations``; replicas that start together take turns (an advisory
lock on PostgreSQL, the write lock on SQLite), so each step runs once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)

from offramp.ledger.schema import migrations as migrations_table

Migration = tuple[str, Callable[[Connection], None]]
_LOCK_ID = 0x0FF_4A3F  # any constant shared by every offramp replica


def _usage_table(conn: Connection) -> None:
    meta = MetaData()
    table = Table(
        "offramp_usage",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(64), nullable=False),
        Column("ts", Float, nullable=False),
        Column("endpoint", String(32), nullable=False),
        Column("key_id", String(32)),
        Column("end_user", String(256)),
        Column("model", String(128), nullable=False),
        Column("route", String(128)),
        Column("deployment", String(128)),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        Column("cached_tokens", Integer, nullable=False),
        Column("cost_usd", Float, nullable=False),
        Column("openai_cost_usd", Float, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Column("ttft_ms", Float),
        Column("status", Integer, nullable=False),
        Column("cache_hit", Boolean, nullable=False),
        Column("stream", Boolean, nullable=False),
        Column("error_code", String(64)),
    )
    table.create(conn)
    Index("ix_offramp_usage_ts", table.c.ts).create(conn)
    Index("ix_offramp_usage_key_ts", table.c.key_id, table.c.ts).create(conn)


def _api_keys_table(conn: Connection) -> None:
    Table(
        "offramp_api_keys",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("name", String(128), nullable=False),
        Column("secret_hash", String(64), nullable=False, unique=True),
        Column("prefix", String(24), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("revoked_at", Float),
        Column("rpm", Integer),
        Column("tpm", Integer),
        Column("budget_usd", Float),
        Column("models", Text),
    ).create(conn)


def _task_runs(conn: Connection) -> None:
    """Task runs are usage records naming their task; task conversations are shared by
    replicas and owned by the key (and end user) that started them."""
    conn.execute(text("ALTER TABLE offramp_usage ADD COLUMN task VARCHAR(128)"))
    Table(
        "offramp_task_sessions",
        MetaData(),
        Column("id", String(160), primary_key=True),
        Column("owner", String(320), nullable=False),
        Column("turns", Text, nullable=False),
        Column("updated_at", Float, nullable=False),
    ).create(conn)


def _stored_responses(conn: Connection) -> None:
    """Responses of the Responses API kept for retrieval and continuation, per key."""
    table = Table(
        "offramp_responses",
        MetaData(),
        Column("id", String(64), primary_key=True),
        Column("owner", String(32), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("model", String(128), nullable=False),
        Column("previous_id", String(64)),
        Column("response", Text, nullable=False),
        Column("context", Text, nullable=False),
    )
    table.create(conn)
    Index("ix_offramp_responses_created_at", table.c.created_at).create(conn)


def _samples_feedback(conn: Connection) -> None:
    """Captured samples (request, answer, a teacher's or a person's reference) and
    feedback on requests (a metric's value, a comment, a corrected answer); stored
    responses learn the request id that made them, so feedback may name either."""
    samples = Table(
        "offramp_samples",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("ts", Float, nullable=False),
        Column("request_id", String(80), nullable=False),
        Column("endpoint", String(32), nullable=False),
        Column("route", String(128)),
        Column("model", String(128), nullable=False),
        Column("deployment", String(128)),
        Column("task", String(128)),
        Column("key_id", String(32)),
        Column("end_user", String(256)),
        Column("request", Text, nullable=False),
        Column("response", Text, nullable=False),
        Column("reference", Text),
        Column("reference_model", String(128)),
        Column("shadow", String(16)),
        Column("embedding", Text),
    )
    samples.create(conn)
    Index("ix_offramp_samples_request_id", samples.c.request_id).create(conn)
    Index("ix_offramp_samples_ts", samples.c.ts).create(conn)
    feedback = Table(
        "offramp_feedback",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("ts", Float, nullable=False),
        Column("request_id", String(80), nullable=False),
        Column("metric", String(64)),
        Column("value", Float),
        Column("comment", Text),
        Column("demonstration", Text),
        Column("key_id", String(32)),
        Column("source", String(16), nullable=False),
    )
    feedback.create(conn)
    Index("ix_offramp_feedback_request_id", feedback.c.request_id).create(conn)
    conn.execute(text("ALTER TABLE offramp_responses ADD COLUMN request_id VARCHAR(80)"))
    conn.execute(text("CREATE INDEX ix_offramp_usage_request_id ON offramp_usage (request_id)"))


MIGRATIONS: tuple[Migration, ...] = (
    ("0001_usage", _usage_table),
    ("0002_api_keys", _api_keys_table),
    ("0003_task_runs", _task_runs),
    ("0004_stored_responses", _stored_responses),
    ("0005_samples_feedback", _samples_feedback),
)


def migrate(engine: Engine, steps: tuple[Migration, ...] = MIGRATIONS) -> list[str]:
    """Apply the steps not yet applied, in order, in one transaction with their
    bookkeeping rows; return the names applied now."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        _lock(conn)
        migrations_table.create(conn, checkfirst=True)
        done = set(conn.execute(select(migrations_table.c.name)).scalars())
        for name, step in steps:
            if name in done:
                continue
            step(conn)
            conn.execute(migrations_table.insert().values(name=name, applied_at=time.time()))
            applied_now.append(name)
    return applied_now


def _lock(conn: Connection) -> None:
    """Hold the database's write lock for the transaction: replicas migrate one by one."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
