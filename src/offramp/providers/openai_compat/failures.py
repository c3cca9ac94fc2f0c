"""An OpenAI-compatible upstream's failures mapped onto offramp's error tree, in one place.

400 / 422 context too long  -> ContextLengthExceeded (the router falls back)
400 / 422 otherwise         -> InvalidRequest with the upstream's message, param, code
413                         -> PayloadTooLarge
401 / 402 / 403 / 404 / ... -> UpstreamError, not retryable (key, billing, model name)
408 / 409 / 429 / 5xx       -> UpstreamError, retryable, with Retry-After when sent
error event in a 200 stream -> UpstreamError, retryable unless it names a 4xx
timeout / refused / reset   -> UpstreamError, status None, retryable (upstream_timeout /
                               upstream_unreachable)
cut after the answer began  -> UpstreamError, its status, retryable (upstream_stream_cut)
200 with a malformed body   -> UpstreamError, not retryable
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from offramp.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    OfframpError,
    PayloadTooLarge,
    UpstreamError,
)
from offramp.providers.upstream import retry_after

# How OpenAI, vLLM, llama.cpp, llama-cpp-python and Ollama word "the prompt does not fit".
_TOO_LONG = re.compile(
    r"context[ _](length|window|size)|maximum context|too many tokens|exceeds? .*context", re.I
)


def retryable_status(status: int) -> bool:
    """Statuses where the same request may succeed later."""
    return status in (408, 409, 429) or status >= 500


def from_response(status: int, body: bytes, headers: Mapping[str, str], where: str) -> OfframpError:
    """The offramp error for a non-200 answer."""
    error = _error_of(body)
    text = str(error.get("message") or body[:200].decode("utf-8", "replace") or "no message")
    code = error.get("code")
    message = f"{where} answered {status}: {text}"
    if status in (400, 422):
        if code == "context_length_exceeded" or _TOO_LONG.search(text):
            return ContextLengthExceeded(message, param=_param(error) or "messages")
        return InvalidRequest(message, param=_param(error), code=_code(code))
    if status == 413:
        return PayloadTooLarge(message)
    return UpstreamError(
        message,
        status=status,
        retryable=retryable_status(status),
        retry_after=retry_after(headers, time.time()),
        code=_code(code) or "upstream_error",
    )


def from_stream_error(error: Any, where: str) -> UpstreamError:
    """The error for an ``{"error": ...}`` event that arrived inside a 200 stream."""
    fields: Mapping[str, Any] = error if isinstance(error, Mapping) else {"message": str(error)}
    raw_status = fields.get("status") or fields.get("code")
    status = raw_status if isinstance(raw_status, int) else 500
    return UpstreamError(
        f"{where} failed mid-stream: {fields.get('message') or 'error event'}",
        status=status,
        retryable=retryable_status(status),
        code="upstream_stream_error",
    )


def from_transport(exc: Exception, where: str, status: int | None = None) -> UpstreamError:
    """The error for a request that got no (complete) answer (http_pool's TransportError,
    httpx's errors and asyncio timeouts). ``status`` is the answer's status when the upstream had
    begun answering: the connection was then cut mid-answer, not unreachable."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return UpstreamError(
            f"{where} timed out ({type(exc).__name__})"
            + ("" if status is None else " in the middle of its answer"),
            status=status,
            retryable=True,
            code="upstream_timeout",
        )
    if status is not None:
        return UpstreamError(
            f"{where} answered {status}, then the connection was cut mid-answer: "
            f"{type(exc).__name__}: {exc}",
            status=status,
            retryable=True,
            code="upstream_stream_cut",
        )
    return UpstreamError(
        f"{where} could not be reached: {type(exc).__name__}: {exc}",
        status=None,
        retryable=True,
        code="upstream_unreachable",
    )


def malformed(where: str, what: str, exc: Exception) -> UpstreamError:
    """The error for a 200 answer that does not follow OpenAI's format."""
    return UpstreamError(
        f"{where} sent a malformed {what}: {type(exc).__name__}: {exc}",
        status=200,
        retryable=False,
        code="upstream_malformed_response",
    )


def truncated(where: str) -> UpstreamError:
    """The error for a stream that ended cleanly but without ``data: [DONE]``."""
    return UpstreamError(
        f"{where} ended its stream before [DONE]",
        status=200,
        retryable=True,
        code="upstream_stream_truncated",
    )


def _error_of(body: bytes) -> Mapping[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(payload, dict):
        return {}
    error = payload.get("error", payload)
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else {}


def _param(error: Mapping[str, Any]) -> str | None:
    param = error.get("param")
    return param if isinstance(param, str) else None


def _code(code: object) -> str | None:
    return code if isinstance(code, str) else None
