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
from offramp.errors import ClientError, OfframpError

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
        return ClientError(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
            code="invalid_json",
        )
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
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
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return ClientError(
        f"Invalid value for '{param}': {first.get('msg')} (got {shown}).",
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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = OfframpError(str(exc.detail), code=None)
        error.status_code = exc.status_code
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(OfframpError(f"internal error: {type(exc).__name__}"))
