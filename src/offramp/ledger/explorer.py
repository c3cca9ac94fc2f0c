"""Finding ledger records: a filter by key, model, route, endpoint, task, status and time; the
matching rows (newest first), their sums, all of them as CSV; and each key's recent use.

Filters are SQL ``WHERE`` clauses (the same on SQLite and PostgreSQL); sums are computed
by the database, so the explorer's totals cover every matching row, not just a page.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, select

from offramp.errors import InvalidRequest
from offramp.ledger.schema import usage

COLUMNS = [str(c.name) for c in usage.columns if c.name != "id"]
_STATUS_CLASSES = {"2xx": (200, 300), "4xx": (400, 500), "5xx": (500, 600)}


@dataclass(frozen=True)
class UsageFilter:
    """Which records to show; every field None matches everything.

    ``status`` is an HTTP status (``429``), a class (``2xx``, ``4xx``, ``5xx``) or
    ``error`` (anything but 2xx). ``since``/``until`` are Unix seconds, ``until``
    exclusive. InvalidRequest naming the field for a status it cannot read."""

    since: float | None = None
    until: float | None = None
    key_id: str | None = None
    model: str | None = None
    route: str | None = None
    endpoint: str | None = None
    task: str | None = None
    status: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        c = usage.c
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(c.ts >= self.since)
        if self.until is not None:
            out.append(c.ts < self.until)
        for column, value in (
            (c.key_id, self.key_id),
            (c.model, self.model),
            (c.route, self.route),
            (c.endpoint, self.endpoint),
            (c.task, self.task),
        ):
            if value:
                out.append(column == value)
        if self.status:
            out.append(_status_clause(self.status))
        return out


def _status_clause(status: str) -> ColumnElement[bool]:
    if status == "error":
        return ~and_(usage.c.status >= 200, usage.c.status < 300)
    if status in _STATUS_CLASSES:
        low, high = _STATUS_CLASSES[status]
        return and_(usage.c.status >= low, usage.c.status < high)
    if re.fullmatch(r"[1-5]\d\d", status):
        return usage.c.status == int(status)
    raise InvalidRequest(
        f"status must be an HTTP status, 2xx, 4xx, 5xx or error; got {status!r}",
        param="status",
    )


def rows(engine: Engine, where: UsageFilter, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """Up to ``limit`` matching records, newest first."""
    query = (
        select(*(usage.c[name] for name in COLUMNS))
        .where(*where.clauses())
        .order_by(usage.c.ts.desc(), usage.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute(query)]


def totals(engine: Engine, where: UsageFilter) -> dict[str, Any]:
    """Sums over every matching record (errors: statuses outside 2xx)."""
    c = usage.c
    served = and_(c.status >= 200, c.status < 300)
    query = select(
        func.count().label("requests"),
        func.coalesce(func.sum(case((served, 0), else_=1)), 0).label("errors"),
        func.coalesce(func.sum(case((and_(served, c.cache_hit), 1), else_=0)), 0).label(
            "cache_hits"
        ),
        func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(c.cost_usd), 0.0).label("cost_usd"),
        func.coalesce(func.sum(c.openai_cost_usd), 0.0).label("openai_cost_usd"),
    ).where(*where.clauses())
    with engine.connect() as conn:
        row = conn.execute(query).one()
    out = {str(k): (float(v) if k.endswith("_usd") else int(v)) for k, v in row._mapping.items()}
    out["savings_usd"] = out["openai_cost_usd"] - out["cost_usd"]
    return out


def csv_lines(engine: Engine, where: UsageFilter) -> Iterator[str]:
    """Every matching record as CSV (a header line first), oldest first, read in
    batches so an export of any size holds only one batch in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield flush()
    query = (
        select(*(usage.c[name] for name in COLUMNS))
        .where(*where.clauses())
        .order_by(usage.c.ts, usage.c.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(query)
        for partition in result.partitions():
            writer.writerows(partition)
            yield flush()


def distinct_values(engine: Engine, since: float | None) -> dict[str, list[str]]:
    """The models, routes, endpoints, tasks and keys seen since ``since`` (filter choices)."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in ("model", "route", "endpoint", "task", "key_id"):
            column = usage.c[name]
            query = select(column).distinct().where(column.is_not(None)).order_by(column)
            if since is not None:
                query = query.where(usage.c.ts >= since)
            out[name] = [v for (v,) in conn.execute(query)]
    return out


def key_usage(engine: Engine, now: float, recent_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """Per key: requests and tokens (cache hits excepted) in the last ``recent_s``
    seconds, against its RPM/TPM, and everything it has spent, against its budget."""
    c = usage.c
    recent = c.ts >= now - recent_s
    billable = and_(recent, ~c.cache_hit)  # the limiter charges no tokens for a cache hit
    query = (
        select(
            c.key_id,
            func.count().label("requests"),
            func.coalesce(func.sum(case((recent, 1), else_=0)), 0).label("recent_requests"),
            func.coalesce(
                func.sum(case((billable, c.prompt_tokens + c.completion_tokens), else_=0)), 0
            ).label("recent_tokens"),
            func.coalesce(func.sum(c.cost_usd), 0.0).label("spent_usd"),
        )
        .where(c.key_id.is_not(None))
        .group_by(c.key_id)
    )
    with engine.connect() as conn:
        return {
            r.key_id: {
                "requests": int(r.requests),
                "recent_requests": int(r.recent_requests),
                "recent_tokens": int(r.recent_tokens),
                "spent_usd": float(r.spent_usd),
            }
            for r in conn.execute(query)
        }
