"""ASGI middleware that refuses request bodies over the configured size with 413, and
bodies that stop arriving with 408."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offramp.api.errors import response_in
from offramp.errors import PayloadTooLarge, RequestTimeout
from offramp.timeouts import cancel_after


class BodySizeLimit:
    """Reads the body up front, counting bytes as they arrive (Content-Length may be
    absent or wrong), and answers 413 before the app sees an oversized request. After
    the body is handed over, ``receive`` passes through so disconnects still arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                with cancel_after(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                # a body that stops arriving would hold the connection forever
                error = RequestTimeout(f"the body did not arrive within {self.read_timeout_s:g}s")
                await response_in(scope, error)(scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replaying(whole, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        error = PayloadTooLarge(
            f"The request body is {size} bytes or more; the limit is {self.max_bytes} bytes."
        )
        await response_in(scope, error)(scope, receive, send)


def replaying(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that gives ``first`` (a message already read), then passes through."""
    pending = [first]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
