"""Per-request context: a request id on every request, response and log line, and one
access log line per request (method, path, status, time; never keys, and the body only
when ``log_bodies`` is on)."""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offramp.observability.logs import request_id_var

access_log = logging.getLogger("offramp.access")
_LINE = "%s %s %d %.1fms"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestContext:
    """Takes the client's ``X-Request-ID`` when it is a plain token of at most 64
    characters, else makes one; stores it in ``request.state.request_id`` and answers
    with it in ``X-Request-ID``. With ``worker`` (one of several processes serving the
    port), every response also says which one answered in ``X-Offramp-Worker``."""

    _MAX_LOGGED = 64 * 1024

    def __init__(self, app: ASGIApp, log_bodies: bool = False, worker: int | None = None):
        self.app = app
        self.log_bodies = log_bodies
        self._extra = [(b"x-offramp-worker", str(worker).encode())] if worker is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = given if _VALID_ID.fullmatch(given) else f"req_{os.urandom(16).hex()}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        status = 500
        body = bytearray()

        async def receive_logged() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < self._MAX_LOGGED:
                body.extend(message.get("body", b"")[: self._MAX_LOGGED - len(body)])
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(self._extra)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive_logged if self.log_bodies else receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                latency_ms = round((time.monotonic() - started) * 1000, 1)
                method, path = scope.get("method"), scope.get("path")
                fields = {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "latency_ms": latency_ms,
                    "body": body.decode("utf-8", "replace") if body else None,
                }
                # the record made directly: Logger.info would also walk the stack to find
                # its caller, which the access log never shows
                args = (method, path, status, latency_ms)
                access_log.handle(
                    access_log.makeRecord(
                        access_log.name, logging.INFO, __file__, 0, _LINE, args, None, extra=fields
                    )
                )
            request_id_var.reset(token)
