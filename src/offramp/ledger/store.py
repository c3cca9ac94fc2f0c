"""The ledger database: one SQLAlchemy engine over SQLite (WAL) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert

from offramp.errors import OfframpError
from offramp.ledger.migrations import migrate
from offramp.ledger.records import UsageRecord
from offramp.ledger.schema import usage
from offramp.settings import Settings


class LedgerError(OfframpError):
    """The ledger database cannot be opened or migrated."""

    code = "ledger_error"


def ledger_url(settings: Settings) -> str:
    """The database URL: ``ledger_url``, or the SQLite file at ``ledger_path``.

    A bare ``postgresql://`` URL is given the psycopg 3 driver.
    """
    url = settings.ledger_url
    if url is None:
        return f"sqlite:///{settings.ledger_path}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(settings: Settings) -> Engine:
    """An engine for the ledger with its migrations applied; LedgerError if that fails."""
    url = ledger_url(settings)
    try:
        if url.startswith("sqlite"):
            settings.ledger_path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        migrate(engine)
    except Exception as exc:
        raise LedgerError(f"cannot open the usage ledger at {_redacted(url)}: {exc}") from exc
    return engine


def insert_usage(engine: Engine, records: Sequence[UsageRecord]) -> None:
    """Write ``records`` in one transaction (one multi-row insert)."""
    if not records:
        return
    with engine.begin() as conn:
        # a record's own field dict (flat, not copied): asdict's deep copy cost more
        conn.execute(insert(usage), [vars(r) for r in records])


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: replicas may share the file
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _redacted(url: str) -> str:
    """The URL without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{creds.split(':', 1)[0]}@{host}"
