"""Anthropic error responses and transport failures -> offramp's error tree."""

from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from offramp.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    OfframpError,
    PayloadTooLarge,
    UpstreamError,
)
from offramp.providers import upstream
from offramp.providers.anthropic import failures

FIXTURES = Path(__file__).parents[1] / "fixtures" / "anthropic"
RECORDED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "errors.json").read_text())


def _mapped(name: str) -> OfframpError:
    case = RECORDED[name]
    body = json.dumps(case["body"]).encode()
    return failures.from_response(case["status"], body, case.get("headers", {}))


@pytest.mark.parametrize(
    ("name", "cls", "status_code"),
    [
        ("invalid_request", InvalidRequest, 400),
        ("prompt_too_long", ContextLengthExceeded, 400),
        ("context_limit", ContextLengthExceeded, 400),
        ("request_too_large", PayloadTooLarge, 413),
    ],
)
def test_request_faults_are_client_errors(
    name: str, cls: type[OfframpError], status_code: int
) -> None:
    error = _mapped(name)
    assert type(error) is cls
    assert error.status_code == status_code
    assert RECORDED[name]["body"]["error"]["message"] in error.message


@pytest.mark.parametrize(
    ("name", "status", "retryable", "code"),
    [
        ("authentication", 401, False, "upstream_authentication_failed"),
        ("permission", 403, False, "upstream_permission_denied"),
        ("not_found", 404, False, "upstream_not_found"),
        ("rate_limit", 429, True, "upstream_rate_limited"),
        ("api_error", 500, True, "upstream_error"),
        ("overloaded", 529, True, "upstream_overloaded"),
    ],
)
def test_upstream_faults_are_upstream_errors(
    name: str, status: int, retryable: bool, code: str
) -> None:
    error = _mapped(name)
    assert isinstance(error, UpstreamError)
    assert (error.status, error.retryable, error.code) == (status, retryable, code)
    assert error.status_code == 502


def test_rate_limit_carries_retry_after() -> None:
    error = _mapped("rate_limit")
    assert isinstance(error, UpstreamError) and error.retry_after == 17.0
    overloaded = _mapped("overloaded")
    assert isinstance(overloaded, UpstreamError) and overloaded.retry_after is None


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    header = {"retry-after": formatdate(now + 30, usegmt=True)}
    assert upstream.retry_after(header, now) == 30.0
    assert failures.retry_after({"retry-after": "soon"}, now) is None


def test_a_body_that_is_not_anthropic_json_still_maps_by_status() -> None:
    error = failures.from_response(502, b"<html>Bad gateway</html>", {})
    assert isinstance(error, UpstreamError) and error.retryable and error.status == 502
    assert "Bad gateway" in error.message


def test_transport_failures_are_retryable_with_no_status() -> None:
    timeout = failures.from_transport(httpx.ReadTimeout("slow"), "http://x")
    refused = failures.from_transport(httpx.ConnectError("refused"), "http://x")
    assert (timeout.status, timeout.retryable, timeout.code) == (None, True, "upstream_timeout")
    assert (refused.status, refused.retryable, refused.code) == (None, True, "upstream_unreachable")


def test_a_connection_cut_mid_answer_is_not_unreachable() -> None:
    refused = failures.from_transport(httpx.ConnectError("refused"), "https://api")
    cut = failures.from_transport(httpx.RemoteProtocolError("incomplete body"), "https://api", 200)
    assert (refused.code, refused.status) == ("upstream_unreachable", None)
    assert (cut.code, cut.status, cut.retryable) == ("upstream_stream_cut", 200, True)
