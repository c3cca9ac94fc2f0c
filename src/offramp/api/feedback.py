"""``POST /v1/feedback``: judge a served request by its ``x-request-id`` (or a Responses
id): a declared metric's value, a comment, a corrected answer (a demonstration).

The request must be the caller's key's (another key's, or an unknown one, is 404); the
admin key may judge any. A demonstration becomes the reference answer of the request's
captured sample. Bad input is a 400 naming the field: a metric not declared in the
config's ``metrics:``, a value of the wrong type for its metric, nothing to record.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import Engine

from offramp.api.caller import caller_of
from offramp.api.responses import JSONResponse
from offramp.errors import InvalidRequest, RequestNotFound, ResponseNotFound, quoted
from offramp.gateway.backing import Backing
from offramp.ledger.feedback import (
    MetricSpec,
    RequestOwner,
    insert_feedback,
    new_feedback_id,
    request_owner,
    response_owner,
)
from offramp.ledger.samples import FeedbackRecord, set_reference

router = APIRouter()
ID_MAX = 80
COMMENT_MAX = 10_000


class FeedbackRequest(BaseModel):
    """The body of ``POST /v1/feedback``."""

    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[str, Field(min_length=1, max_length=ID_MAX)] | None = Field(
        default=None, description="The x-request-id of the request judged."
    )
    response_id: Annotated[str, Field(min_length=1, max_length=ID_MAX)] | None = Field(
        default=None, description="Or the id of a stored response of /v1/responses."
    )
    metric: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    value: StrictBool | StrictInt | StrictFloat | None = Field(
        default=None, description="true/false for a boolean metric, a number for a float one."
    )
    comment: Annotated[str, Field(max_length=COMMENT_MAX)] | None = None
    demonstration: Any = Field(
        default=None,
        description="A corrected answer: its text, an assistant message, or a task's "
        "corrected result.",
    )


@router.post("/v1/feedback")
async def create_feedback(body: FeedbackRequest, request: Request) -> JSONResponse:
    metrics: dict[str, MetricSpec] = request.app.state.feedback_metrics
    value = _checked(body, metrics)
    backing: Backing = request.app.state.backing
    assert backing.engine is not None, "the app opens its ledger before serving"
    admin = _is_admin(request)
    key_id = None
    if not admin:
        caller = await caller_of(request)
        key_id = caller.key.id if caller.key is not None else None
    request_id = await _judged_request(request, backing.engine, body, admin, key_id)
    demonstration = _demonstration(backing, body.demonstration)
    record = FeedbackRecord(
        id=new_feedback_id(),
        ts=time.time(),
        request_id=request_id,
        source="api",
        metric=body.metric,
        value=value,
        comment=None if body.comment is None else backing.redactor.text(body.comment),
        demonstration=demonstration,
        key_id=key_id,
    )
    await asyncio.to_thread(insert_feedback, backing.engine, record)
    if demonstration is not None:
        await asyncio.to_thread(
            set_reference, backing.engine, request_id, demonstration, "feedback"
        )
    return JSONResponse(
        {
            "id": record.id,
            "object": "feedback",
            "created": int(record.ts),
            "request_id": request_id,
            "metric": record.metric,
            "value": record.value,
        }
    )


def _checked(body: FeedbackRequest, metrics: dict[str, MetricSpec]) -> float | None:
    """The value to store (booleans as 1/0); InvalidRequest naming the field at fault."""
    if (body.request_id is None) == (body.response_id is None):
        raise InvalidRequest(
            "give exactly one of `request_id` (a response's x-request-id) or `response_id`",
            param="request_id",
        )
    if body.value is None and body.comment is None and body.demonstration is None:
        raise InvalidRequest(
            "feedback needs at least one of `value`, `comment` or `demonstration`",
            param="value",
        )
    if body.value is not None and body.metric is None:
        raise InvalidRequest("a `value` needs the `metric` it measures", param="metric")
    if body.metric is None:
        return None
    spec = metrics.get(body.metric)
    if spec is None:
        declared = ", ".join(sorted(metrics))
        raise InvalidRequest(
            f"metric {quoted(body.metric)} is not declared in the config's `metrics:` "
            f"(declared: {declared})",
            param="metric",
        )
    if body.value is None:
        raise InvalidRequest(f"metric {quoted(body.metric)} needs a `value`", param="value")
    if spec.type == "boolean":
        if not isinstance(body.value, bool):
            raise InvalidRequest(
                f"metric {quoted(spec.name)} is boolean: `value` must be true or false",
                param="value",
            )
        return 1.0 if body.value else 0.0
    if isinstance(body.value, bool):
        raise InvalidRequest(
            f"metric {quoted(spec.name)} is a float: `value` must be a number", param="value"
        )
    return float(body.value)


def _is_admin(request: Request) -> bool:
    admin = request.app.state.settings.admin_key
    if admin is None or not admin.get_secret_value():
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    secret = admin.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), secret)


async def _judged_request(
    request: Request, engine: Engine, body: FeedbackRequest, admin: bool, key_id: str | None
) -> str:
    """The request id judged, once it is known to be the caller's (or the admin's)."""
    if body.response_id is not None:
        owner = await asyncio.to_thread(response_owner, engine, body.response_id)
        if owner is None or not (admin or owner.key_id == key_id):
            raise ResponseNotFound(
                f"Response with id {quoted(body.response_id)} not found.", param="response_id"
            )
        return owner.request_id
    assert body.request_id is not None
    known, recent_key = request.app.state.backing.accounting.recent.owner(body.request_id)
    found: RequestOwner | None = RequestOwner(body.request_id, recent_key) if known else None
    if found is None:
        found = await asyncio.to_thread(request_owner, engine, body.request_id)
    if found is None or not (admin or found.key_id == key_id):
        raise RequestNotFound(
            f"No request with id {quoted(body.request_id)} was served to this key.",
            param="request_id",
        )
    return found.request_id


def _demonstration(backing: Backing, given: Any) -> Any:
    """A demonstration in the shape of a sample's answer: text or an assistant message
    become an assistant message; anything else is a task's corrected result."""
    if given is None:
        return None
    if isinstance(given, str):
        shaped: Any = {"role": "assistant", "content": given}
    elif isinstance(given, dict) and given.get("role") == "assistant":
        shaped = given
    elif isinstance(given, dict) and "role" in given:
        raise InvalidRequest(
            "a demonstration message must have role `assistant`", param="demonstration.role"
        )
    else:
        shaped = {"result": given}
    return backing.redactor.value(shaped)
