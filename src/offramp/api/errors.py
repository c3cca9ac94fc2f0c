"""One place that turns every failure into OpenAI's error envelope with the right status."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from offramp.api.responses import JSONResponse
from offramp.errors import (
    QUOTE_LIMIT,
    ClientError,
    InvalidJson,
    MethodNotAllowed,
    OfframpError,
    RouteNotFound,
    quoted,
)

log = logging.getLogger(__name__)


def error_response(error: OfframpError) -> JSONResponse:
    """The HTTP response for ``error`` (Retry-After where the error names a wait)."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse(error.envelope(), status_code=error.status_code, headers=headers)


def validation_error(exc: RequestValidationError) -> ClientError:
    """Map pydantic's first complaint to a 400 that names the field."""
    errors: list[dict[str, Any]] = list(exc.errors())
    if not errors:
        return ClientError("invalid request")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidJson(
            "We could not parse the JSON body of your request. The body must be valid JSON."
        )
    loc = [str(p)[:QUOTE_LIMIT] for p in first.get("loc", ()) if p != "body"]
    # Union types add the member's type name to the path; drop those segments.
    loc = [p for p in loc if not _is_union_tag(p)]
    param = _dotted(loc) or None
    if first.get("type") == "extra_forbidden":
        return ClientError(
            f"Unrecognized request argument supplied: {param}",
            param=param,
            code="unknown_parameter",
        )
    if first.get("type") == "missing":
        return ClientError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    got = first.get("input")
    shown = quoted(got) if not isinstance(got, dict | list) else type(got).__name__
    message = str(first.get("msg"))[: QUOTE_LIMIT * 4]
    return ClientError(
        f"Invalid value for '{param}': {message} (got {shown}).",
        param=param,
        code="invalid_value",
    )


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _is_union_tag(part: str) -> bool:
    """True for the type-name segments pydantic adds inside unions (``str``, ``TextPart``)."""
    if part.isdigit():
        return False
    return part in _TYPE_TAGS or re.fullmatch(r"[a-z_][a-z0-9_]*", part) is None


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def http_error(request: Request, exc: StarletteHTTPException) -> OfframpError:
    """The error tree's member for an HTTP error the framework raised itself."""
    path = quoted(request.url.path)
    if exc.status_code == 404:
        return RouteNotFound(f"no endpoint at {path}")
    if exc.status_code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {path}")
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        # a body the JSON parser gave up on: malformed, or nested deeper than it recurses
        return InvalidJson("the body is not valid JSON, or is nested too deeply")
    if exc.status_code < 500:
        error: OfframpError = ClientError(
            str(exc.detail)[: QUOTE_LIMIT * 4], code="invalid_request"
        )
    else:
        error = OfframpError(str(exc.detail)[: QUOTE_LIMIT * 4])
    error.status_code = exc.status_code
    return error


def install(app: FastAPI) -> None:
    """Register the handlers that render every error as the OpenAI envelope."""

    @app.exception_handler(OfframpError)
    async def _offramp(_: Request, exc: OfframpError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("request failed: %s", exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(http_error(request, exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(OfframpError(f"internal error: {type(exc).__name__}"))
