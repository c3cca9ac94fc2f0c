"""Real PostgreSQL and Redis for tests: a fresh schema per test on the local server, and
a private redis-server on a free port (never the shared one) that a test may kill."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import Engine, select

from offramp.ledger.schema import usage
from offramp.ledger.store import open_engine
from offramp.settings import Settings
from tests.servers import free_port

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A ledger URL whose tables live in a new schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in DATABASE_URL else "?"
    try:
        yield f"{DATABASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def ledger_engine(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """An open, migrated ledger engine on a new SQLite file (``sqlite``) or a new
    PostgreSQL schema (``postgresql``), disposed afterwards."""
    if kind == "sqlite":
        engine = open_engine(Settings(ledger_path=tmp_path / "ledger.db"))
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with postgres_schema() as url:
        engine = open_engine(Settings(ledger_url=url))
        try:
            yield engine
        finally:
            engine.dispose()


class RedisServer:
    """A redis-server of our own on a free loopback port, without persistence."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.kill()


def ledger_rows(settings: Settings) -> list[Any]:
    """Every usage record of the ledger ``settings`` name, oldest first."""
    engine = open_engine(settings)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(usage).order_by(usage.c.id)))
    finally:
        engine.dispose()
