"""Feedback on requests: the metrics a config declares, and the rows of ``offramp_feedback``.

metrics:
  - {name: correct, type: boolean, optimize: max}
  - {name: edit_distance, type: float, optimize: min}

``task_valid`` (boolean, max) is always declared: every task run records whether the
model's output passed the task's schemas and validators (source ``validator``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, insert, select

from offramp.errors import InvalidRequest
from offramp.ledger.samples import FeedbackRecord
from offramp.ledger.schema import feedback as table
from offramp.ledger.schema import stored_responses, usage
from offramp.settings import read_config_file

TASK_VALID = "task_valid"  # the automatic metric of task validators


class MetricSpec(BaseModel):
    """A metric feedback may name: boolean (true/false, stored 1/0) or float."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    type: Literal["boolean", "float"]
    optimize: Literal["max", "min"] = "max"


BUILTIN_METRICS = (MetricSpec(name=TASK_VALID, type="boolean", optimize="max"),)


def load_metrics(config: Path | None) -> dict[str, MetricSpec]:
    """The ``metrics:`` of ``config`` and the built-in ones, by name; InvalidRequest
    (param ``config``) for a malformed entry or a name given twice."""
    found = {m.name: m for m in BUILTIN_METRICS}
    if config is None:
        return found
    raw = read_config_file(config).get("metrics") or []
    if not isinstance(raw, list):
        raise InvalidRequest(f"`metrics` in {config} must be a list", param="config")
    try:
        declared = [MetricSpec.model_validate(item) for item in raw]
    except ValidationError as exc:
        raise InvalidRequest(f"config file {config}: metrics: {exc}", param="config") from exc
    for metric in declared:
        if metric.name in found:
            raise InvalidRequest(
                f"config file {config}: metric {metric.name!r} is declared twice (or is built in)",
                param="config",
            )
        found[metric.name] = metric
    return found


def new_feedback_id() -> str:
    return "fb_" + uuid.uuid4().hex[:24]


def insert_feedback(engine: Engine, record: FeedbackRecord) -> None:
    with engine.begin() as conn:
        conn.execute(insert(table).values(**record.row()))


@dataclass(frozen=True)
class RequestOwner:
    """Who made a request: its API key id (None with auth off)."""

    request_id: str
    key_id: str | None


def request_owner(engine: Engine, request_id: str) -> RequestOwner | None:
    """The owner of request ``request_id`` from the usage ledger; None if unknown."""
    with engine.connect() as conn:
        row = conn.execute(
            select(usage.c.key_id).where(usage.c.request_id == request_id).limit(1)
        ).first()
    return None if row is None else RequestOwner(request_id, row.key_id)


def response_owner(engine: Engine, response_id: str) -> RequestOwner | None:
    """The request (and its key) that made the stored response ``response_id``; None if
    it is unknown or was stored before responses kept their request id."""
    with engine.connect() as conn:
        row = conn.execute(
            select(stored_responses.c.request_id, stored_responses.c.owner).where(
                stored_responses.c.id == response_id
            )
        ).first()
    if row is None or row.request_id is None:
        return None
    return RequestOwner(row.request_id, row.owner or None)
