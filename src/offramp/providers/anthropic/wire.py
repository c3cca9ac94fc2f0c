"""Anthropic Messages API payloads as they arrive: responses, stream events, error bodies.

Unknown fields are ignored and unknown block, delta and event types are kept with only
their ``type``, because Anthropic adds new ones without a version change; the
translators decide what each known type means.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireUsage(_Wire):
    """Token counts; ``input_tokens`` excludes the cache reads and writes."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Block(_Wire):
    """A content block: ``text``, ``tool_use`` (with ``id``, ``name``, ``input``) or other."""

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class WireMessage(_Wire):
    """A whole response of ``POST /v1/messages`` (or the skeleton in ``message_start``)."""

    id: str = ""
    model: str = ""
    role: str = "assistant"
    content: list[Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage = WireUsage()


class WireError(_Wire):
    """``{"type": "overloaded_error", "message": "Overloaded"}``."""

    type: str = "api_error"
    message: str = ""


class ErrorBody(_Wire):
    """The body of a failed response, and the data of an ``error`` stream event."""

    type: str = "error"
    error: WireError = WireError()


class Delta(_Wire):
    """The ``delta`` of ``content_block_delta`` (text / input_json) or of ``message_delta``."""

    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class StreamEvent(_Wire):
    """One server-sent event's data; which fields are set depends on ``type``."""

    type: str
    index: int | None = None
    message: WireMessage | None = None
    content_block: Block | None = None
    delta: Delta | None = None
    usage: WireUsage | None = None
    error: WireError | None = None
