"""Anthropic's error envelope for the ``/v1/messages`` paths.

``{"type": "error", "error": {"type", "message"}}`` with Anthropic's status codes: the
error tree's status picks the type; a full queue or a draining server (503) is
Anthropic's ``overloaded_error`` with its 529, which its clients retry. The envelope has
no ``param``, so the field at fault leads the message, as in Anthropic's own
(``messages[0].content[1]: ...``).
"""

from __future__ import annotations

from typing import Any

from offramp.errors import OfframpError

PREFIX = "/v1/messages"  # the paths whose errors take this envelope
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def status_of(error: OfframpError) -> int:
    return 529 if error.status_code == 503 else error.status_code


def error_type(error: OfframpError) -> str:
    status = status_of(error)
    default = "invalid_request_error" if status < 500 else "api_error"
    return _TYPES.get(status, default)


def envelope(error: OfframpError) -> tuple[int, dict[str, Any]]:
    """The status and body of ``error`` as Anthropic's API would answer it."""
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"
    body = {"type": "error", "error": {"type": error_type(error), "message": message}}
    return status_of(error), body
