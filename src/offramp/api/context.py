"""Per-request context: a request id on every request, response and log line, and one
access log line per request (method, path, status, time; never bodies or keys)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("offramp_request_id", default=None)
access_log = logging.getLogger("offramp.access")
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestContext:
    """Takes the client's ``X-Request-ID`` when it is a plain token of at most 64
    characters, else makes one; stores it in ``request.state.request_id`` and answers
    with it in ``X-Request-ID``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or {}).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.fullmatch(given) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.monotonic() - started) * 1000,
                extra={"status": status, "path": scope.get("path")},
            )
            request_id_var.reset(token)
