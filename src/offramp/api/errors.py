"""One place that turns every failure into its error envelope with the right status:
OpenAI's, or that of another API (a ``Dialect``) on the paths it serves."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

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


@dataclass(frozen=True)
class Dialect:
    """An API with an error envelope of its own: the path prefix it serves, and the status
    and body it gives an error."""

    prefix: str
    render: Callable[[OfframpError], tuple[int, dict[str, Any]]]


def _openai(error: OfframpError) -> tuple[int, dict[str, Any]]:
    return error.status_code, error.envelope()


def error_response(error: OfframpError, dialect: Dialect | None = None) -> JSONResponse:
    """The HTTP response for ``error`` (Retry-After where the error names a wait), in
    ``dialect``'s envelope or OpenAI's."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    status, body = (dialect.render if dialect is not None else _openai)(error)
    return JSONResponse(body, status_code=status, headers=headers)


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


def response_in(scope: Scope, error: OfframpError) -> JSONResponse:
    """The response for ``error`` in the envelope of the request at ``scope`` (the
    dialect ``install`` registered for its path, else OpenAI's); middleware uses this."""
    app = scope.get("app")
    dialects: Sequence[Dialect] = getattr(getattr(app, "state", None), "error_dialects", ())
    path = str(scope.get("path", ""))
    return error_response(error, next((d for d in dialects if path.startswith(d.prefix)), None))


def render(scope: Scope, exc: Exception) -> JSONResponse:
    """The response for an exception a route raised, as the app's handlers give it: an
    OfframpError in its envelope (5xx logged), anything else a logged 500."""
    if isinstance(exc, OfframpError):
        if exc.status_code >= 500:
            log.error("request failed: %s", exc.message)
        return response_in(scope, exc)
    log.exception("unexpected error", exc_info=exc)
    return response_in(scope, OfframpError(f"internal error: {type(exc).__name__}"))


def install(app: FastAPI, dialects: Sequence[Dialect] = ()) -> None:
    """Register the handlers that render every error as the OpenAI envelope, or as the
    envelope of the dialect whose prefix the request's path starts with."""
    app.state.error_dialects = tuple(dialects)

    def respond(request: Request, error: OfframpError) -> JSONResponse:
        return response_in(request.scope, error)

    @app.exception_handler(OfframpError)
    async def _offramp(request: Request, exc: OfframpError) -> JSONResponse:
        return render(request.scope, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return respond(request, http_error(request, exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return render(request.scope, exc)
