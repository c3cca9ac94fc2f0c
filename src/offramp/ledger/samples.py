"""Captured samples in the ledger database: what a served request asked and answered,
and the reference answer (a teacher's, in shadow mode, or a person's demonstration).

Samples (and the automatic feedback of task validators) are written off the request
path by a ``LedgerWriter`` whose sink is ``write_captured``; everything else here is a
short transaction run by the feedback endpoint or the ``offramp data`` commands.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from offramp.ledger.schema import feedback as feedback_table
from offramp.ledger.schema import samples as table

Json = Any  # a decoded JSON value


def new_sample_id() -> str:
    return "smp_" + uuid.uuid4().hex[:24]


@dataclass(frozen=True)
class Sample:
    """One captured request. ``request`` is ``{"messages", "tools"?, "response_format"?}``
    for chat-like doors (OpenAI's wire shapes) and ``{"task", "input", "messages"}`` for a
    task run; ``response`` the assistant message (``{"role": "assistant", ...}``) or
    ``{"result": ...}`` for a task; ``reference`` has the same shape as ``response``."""

    id: str
    ts: float
    request_id: str
    endpoint: str
    model: str
    request: Json
    response: Json
    route: str | None = None
    deployment: str | None = None
    task: str | None = None
    key_id: str | None = None
    end_user: str | None = None
    reference: Json | None = None
    reference_model: str | None = None
    shadow: str | None = None  # None: not shadowed; ok, failed, timeout or busy

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["request"] = json.dumps(self.request, ensure_ascii=False)
        out["response"] = json.dumps(self.response, ensure_ascii=False)
        out["reference"] = (
            None if self.reference is None else json.dumps(self.reference, ensure_ascii=False)
        )
        return out


@dataclass(frozen=True)
class FeedbackRecord:
    """One judgement of a request: a metric's value, a comment, a corrected answer."""

    id: str
    ts: float
    request_id: str
    source: str  # api or validator
    metric: str | None = None
    value: float | None = None
    comment: str | None = None
    demonstration: Json | None = None
    key_id: str | None = None

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["demonstration"] = (
            None
            if self.demonstration is None
            else json.dumps(self.demonstration, ensure_ascii=False)
        )
        return out


Captured = Sample | FeedbackRecord  # what the capture writer writes


def write_captured(engine: Engine, items: Sequence[Captured]) -> None:
    """Write a batch of samples and automatic feedback in one transaction."""
    samples = [i.row() for i in items if isinstance(i, Sample)]
    judged = [i.row() for i in items if isinstance(i, FeedbackRecord)]
    with engine.begin() as conn:
        if samples:
            conn.execute(insert(table), samples)
        if judged:
            conn.execute(insert(feedback_table), judged)


def insert_samples(engine: Engine, samples: Sequence[Sample]) -> None:
    """Write ``samples`` now (``offramp data import``)."""
    write_captured(engine, samples)


def set_reference(engine: Engine, request_id: str, reference: Json, model: str) -> int:
    """Make ``reference`` the reference answer of the samples of ``request_id``; returns
    how many samples it reached (0 when the request was not captured)."""
    with engine.begin() as conn:
        done = conn.execute(
            update(table)
            .where(table.c.request_id == request_id)
            .values(reference=json.dumps(reference, ensure_ascii=False), reference_model=model)
        )
    return int(done.rowcount or 0)


def prune(engine: Engine, older_than_s: float, now: float | None = None) -> int:
    """Delete samples older than ``older_than_s`` seconds; returns how many."""
    cutoff = (time.time() if now is None else now) - older_than_s
    with engine.begin() as conn:
        gone = conn.execute(delete(table).where(table.c.ts < cutoff))
    return int(gone.rowcount or 0)


def sample_from_row(row: Any) -> Sample:
    return Sample(
        id=row.id,
        ts=row.ts,
        request_id=row.request_id,
        endpoint=row.endpoint,
        model=row.model,
        request=json.loads(row.request),
        response=json.loads(row.response),
        route=row.route,
        deployment=row.deployment,
        task=row.task,
        key_id=row.key_id,
        end_user=row.end_user,
        reference=None if row.reference is None else json.loads(row.reference),
        reference_model=row.reference_model,
        shadow=row.shadow,
    )


def get_sample(engine: Engine, sample_id: str) -> Sample | None:
    """The sample ``sample_id`` (or, failing that, the first of request ``sample_id``)."""
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == sample_id)).first()
        if row is None:
            row = conn.execute(
                select(table).where(table.c.request_id == sample_id).order_by(table.c.ts)
            ).first()
    return None if row is None else sample_from_row(row)


def existing_request_ids(engine: Engine, request_ids: Sequence[str]) -> set[str]:
    """Which of ``request_ids`` already have a sample."""
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(request_ids), 500):
            chunk = list(request_ids[start : start + 500])
            rows = conn.execute(select(table.c.request_id).where(table.c.request_id.in_(chunk)))
            found.update(r.request_id for r in rows)
    return found


def last_user_text(messages: Any) -> str | None:
    """The text of the last user message of a list of wire messages (parts joined)."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if isinstance(p, dict)]
                return "".join(texts) or None
            return content if isinstance(content, str) else None
    return None


def answer_text(answer: Any) -> str | None:
    """The text of a sample's answer: an assistant message's content, or a task's result
    as JSON."""
    if not isinstance(answer, dict):
        return None
    if "role" not in answer and "result" in answer:
        return json.dumps(answer["result"], ensure_ascii=False)
    content = answer.get("content")
    return content if isinstance(content, str) else None
