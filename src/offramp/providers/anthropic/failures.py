"""Anthropic's failures (HTTP status + error JSON, stream ``error`` events, transport
errors) mapped onto offramp's error tree, in this one place.

    400 invalid_request_error   -> InvalidRequest (ContextLengthExceeded for a prompt too long)
    413 request_too_large       -> PayloadTooLarge
    401 / 402 / 403 / 404       -> UpstreamError, not retryable (key, billing, access, model)
    429 rate_limit_error        -> UpstreamError, retryable, with Retry-After
    500 / 504 / 529 and 5xx     -> UpstreamError, retryable (529: overloaded)
    error event in a 200 stream -> UpstreamError, status from its type, retryable if 429/5xx
    timeout / refused / reset   -> UpstreamError, status None, retryable (upstream_timeout /
                                   upstream_unreachable)
    cut after the answer began  -> UpstreamError, its status, retryable (upstream_stream_cut)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from offramp.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    OfframpError,
    PayloadTooLarge,
    UpstreamError,
)
from offramp.providers.anthropic.wire import ErrorBody, WireError
from offramp.providers.upstream import retry_after


@dataclass(frozen=True)
class _Kind:
    status: int
    code: str


# Anthropic's documented error types and the HTTP status each comes with.
_KINDS: dict[str, _Kind] = {
    "invalid_request_error": _Kind(400, "upstream_invalid_request"),
    "authentication_error": _Kind(401, "upstream_authentication_failed"),
    "billing_error": _Kind(402, "upstream_billing_error"),
    "permission_error": _Kind(403, "upstream_permission_denied"),
    "not_found_error": _Kind(404, "upstream_not_found"),
    "request_too_large": _Kind(413, "upstream_request_too_large"),
    "rate_limit_error": _Kind(429, "upstream_rate_limited"),
    "api_error": _Kind(500, "upstream_error"),
    "timeout_error": _Kind(504, "upstream_timeout"),
    "overloaded_error": _Kind(529, "upstream_overloaded"),
}
_BY_STATUS = {kind.status: kind for kind in _KINDS.values()}

# How the Messages API words "the prompt does not fit the context window".
_TOO_LONG = re.compile(r"prompt is too long|exceed(s)? (the )?context (window|limit)", re.I)


def retryable_status(status: int) -> bool:
    """Statuses where the same request may succeed later (rate limits, server trouble)."""
    return status in (408, 429) or status >= 500


def from_response(status: int, body: bytes, headers: Mapping[str, str]) -> OfframpError:
    """The offramp error for a non-200 answer of the Messages API."""
    error = _error_of(body)
    message = f"anthropic answered {status} ({error.type}): {error.message}"
    if status == 400 and _TOO_LONG.search(error.message):
        return ContextLengthExceeded(message, param="messages")
    if status == 400:
        return InvalidRequest(message)
    if status == 413:
        return PayloadTooLarge(message)
    kind = _BY_STATUS.get(status) or _KINDS.get(error.type)
    return UpstreamError(
        message,
        status=status,
        retryable=retryable_status(status),
        retry_after=retry_after(headers, time.time()),
        code=kind.code if kind else "upstream_error",
    )


def from_stream_event(error: WireError) -> UpstreamError:
    """The error for an ``error`` event that arrived inside a 200 stream."""
    kind = _KINDS.get(error.type, _KINDS["api_error"])
    return UpstreamError(
        f"anthropic stream failed ({error.type}): {error.message}",
        status=kind.status,
        retryable=retryable_status(kind.status),
        code=kind.code,
    )


def from_transport(exc: httpx.HTTPError, base_url: str, status: int | None = None) -> UpstreamError:
    """The error for a request that got no (complete) answer. ``status`` is the answer's
    status when Anthropic had begun answering: the connection was then cut mid-answer."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(
            f"anthropic at {base_url} timed out ({type(exc).__name__})"
            + ("" if status is None else " in the middle of its answer"),
            status=status,
            retryable=True,
            code="upstream_timeout",
        )
    if status is not None:
        return UpstreamError(
            f"anthropic at {base_url} answered {status}, then the connection was cut "
            f"mid-answer: {type(exc).__name__}: {exc}",
            status=status,
            retryable=True,
            code="upstream_stream_cut",
        )
    return UpstreamError(
        f"anthropic at {base_url} could not be reached: {type(exc).__name__}: {exc}",
        status=None,
        retryable=True,
        code="upstream_unreachable",
    )


def malformed(what: str, exc: Exception) -> UpstreamError:
    """The error for a 200 answer that does not follow the Messages API."""
    return UpstreamError(
        f"anthropic sent a malformed {what}: {exc}",
        status=200,
        retryable=False,
        code="upstream_malformed_response",
    )


def _error_of(body: bytes) -> WireError:
    try:
        return ErrorBody.model_validate_json(body).error
    except ValidationError:
        text = body.decode("utf-8", errors="replace").strip()
        return WireError(type="unknown", message=text[:500] or "(empty body)")
