"""Reading captured samples back with their feedback: the filters of ``offramp data``.

A sample is judged by the feedback on its request: each metric's latest value, and the
latest demonstration (a corrected answer), which outranks a teacher's reference.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from offramp.errors import InvalidRequest, quoted
from offramp.ledger.samples import Json, Sample, sample_from_row
from offramp.ledger.schema import feedback
from offramp.ledger.schema import samples as table

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"\s*([A-Za-z0-9_.:-]+)\s*(>=|<=|=|>|<)\s*(\S+)\s*")
_CHUNK = 500  # request ids per IN (...) query


@dataclass(frozen=True)
class MetricCondition:
    """``NAME>=VALUE`` (or ``<=``, ``=``, ``>``, ``<``) on a metric's latest value;
    ``true``/``false`` stand for 1 and 0."""

    name: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> MetricCondition:
        match = _CONDITION.fullmatch(text)
        if match is None:
            raise InvalidRequest(
                f"--metric takes NAME>=VALUE, NAME<=VALUE or NAME=VALUE, got {quoted(text)}",
                param="metric",
            )
        name, op, raw = match.groups()
        words = {"true": 1.0, "false": 0.0}
        try:
            value = words[raw.lower()] if raw.lower() in words else float(raw)
        except ValueError as exc:
            raise InvalidRequest(
                f"--metric: {quoted(raw)} is not a number (or true/false)", param="metric"
            ) from exc
        return cls(name, op, value)

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.value)


@dataclass(frozen=True)
class SampleFilter:
    """Which samples to read; every given condition must hold."""

    route: str | None = None
    task: str | None = None
    model: str | None = None  # the name asked for, or the deployment that answered
    metric: MetricCondition | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive
    has_reference: bool = False
    request_id: str | None = None


@dataclass(frozen=True)
class JudgedSample:
    """A sample with the feedback on its request."""

    sample: Sample
    metrics: dict[str, float] = field(default_factory=dict)  # each metric's latest value
    demonstration: Json | None = None  # the latest corrected answer
    comments: tuple[str, ...] = ()

    @property
    def reference(self) -> Json | None:
        """The best answer known besides the model's own: a person's demonstration, else
        the reference stored with the sample (a teacher's)."""
        return self.demonstration if self.demonstration is not None else self.sample.reference


def find_samples(
    engine: Engine, where: SampleFilter = SampleFilter(), limit: int | None = None
) -> list[JudgedSample]:
    """The samples ``where`` selects, oldest first (at most ``limit``)."""
    query = select(table).order_by(table.c.ts, table.c.id)
    if where.request_id is not None:
        query = query.where(table.c.request_id == where.request_id)
    if where.route is not None:
        query = query.where(table.c.route == where.route)
    if where.task is not None:
        query = query.where(table.c.task == where.task)
    if where.model is not None:
        query = query.where((table.c.model == where.model) | (table.c.deployment == where.model))
    if where.since is not None:
        query = query.where(table.c.ts >= where.since)
    if where.until is not None:
        query = query.where(table.c.ts < where.until)
    with engine.connect() as conn:
        found = [sample_from_row(row) for row in conn.execute(query)]
        judged = _judged(conn, found)
    kept = [j for j in judged if _selected(j, where)]
    return kept if limit is None else kept[:limit]


def _selected(judged: JudgedSample, where: SampleFilter) -> bool:
    if where.has_reference and judged.reference is None:
        return False
    if where.metric is not None:
        return where.metric.holds(judged.metrics.get(where.metric.name))
    return True


def _judged(conn: Any, found: list[Sample]) -> list[JudgedSample]:
    by_request: dict[str, list[Any]] = {}
    ids = sorted({s.request_id for s in found})
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = conn.execute(
            select(feedback)
            .where(feedback.c.request_id.in_(chunk))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        for row in rows:
            by_request.setdefault(row.request_id, []).append(row)
    return [_with_feedback(s, by_request.get(s.request_id, ())) for s in found]


def _with_feedback(sample: Sample, rows: Iterable[Any]) -> JudgedSample:
    metrics: dict[str, float] = {}
    demonstration: Json | None = None
    comments: list[str] = []
    for row in rows:  # oldest first: later values win
        if row.metric is not None and row.value is not None:
            metrics[row.metric] = row.value
        if row.demonstration is not None:
            demonstration = json.loads(row.demonstration)
        if row.comment:
            comments.append(row.comment)
    return JudgedSample(sample, metrics, demonstration, tuple(comments))
