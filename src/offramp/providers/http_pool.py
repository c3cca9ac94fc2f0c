"""A lean HTTP/1.1 client for upstream APIs: a pool of keep-alive connections to one
origin, responses parsed by httptools (the parser uvicorn serves with), one write per
request, no timers unless a wait has a limit.

Why not aiohttp: in a gateway process proxying to a fixed-response upstream, aiohttp's
request machinery (its session, connector, request and response objects, payload
registry, timers) was ~15% of the process's CPU per request on top of the socket writes
themselves (bench/README.md, gateway throughput). What an API client needs of HTTP is
small: POST a JSON body, read the status, headers and a body that is whole
(Content-Length), chunked or delimited by the connection's end, and keep the connection
for the next request. Redirects are not followed (an API answering 3xx is an error),
proxies from the environment are not used, nothing is compressed.

A request that finds its reused connection closed by the server before any byte of the
answer arrived is sent once more on a new connection (the server closed an idle
keep-alive connection as the request went out); any other failure raises
``TransportError`` (a timeout raises ``TimeoutError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from offramp.timeouts import cancel_after

_PAUSE_AT = 1 << 20  # buffered body bytes at which reading pauses until the reader catches up


class TransportError(Exception):
    """No (complete) answer: refused, reset, closed early, or not HTTP."""


class _Connection(asyncio.Protocol):
    """One connection; answers one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self.complete = False
        self.got_data = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._wake: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    # ----- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"the upstream's answer is not HTTP/1.1: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self._head.done() and not self._delimited():
            self._on_complete()  # a body that runs to the connection's end has ended
            return
        why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        self._fail(TransportError(f"the connection was closed before the answer ended{why}"))

    # ----- httptools callbacks --------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._notify()

    def on_message_complete(self) -> None:
        self._on_complete()

    # ----- the request's side ---------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[None]:
        """Write one request; the future resolves when its answer's head has arrived."""
        self._reset()
        assert self.transport is not None
        self.transport.write(data)
        return self._head

    async def next_chunk(self, limit_s: float | None) -> bytes | None:
        """The next piece of the body, or None at its end; TimeoutError after ``limit_s``
        without data, TransportError when the connection breaks first."""
        while not self._chunks:
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            self._wake = self._loop.create_future()
            with cancel_after(limit_s):
                await self._wake
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _PAUSE_AT // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def discard(self) -> None:
        """Close a connection that may belong to another (perhaps closed) event loop."""
        with contextlib.suppress(RuntimeError):  # its loop is closed: the socket with it
            self.close()

    def _delimited(self) -> bool:
        return (
            "content-length" in self.headers
            or "chunked" in self.headers.get("transfer-encoding", "").lower()
        )

    def _on_complete(self) -> None:
        self.complete = True
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: a request that gave up is not an error
        self._notify()


class Response:
    """An answer whose head has arrived; read its body once (``read``, ``next_chunk``
    or ``chunks``), or ``close`` it. Its connection goes back to the pool when the body has ended."""

    def __init__(self, pool: HttpPool, conn: _Connection):
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers: Mapping[str, str] = conn.headers

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.next_chunk(None)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def next_chunk(self, limit_s: float | None) -> bytes | None:
        """The body's next piece, or None at its end (the connection then goes back);
        ``limit_s``: the longest wait for it."""
        conn = self._conn
        if conn is None:
            return None
        try:
            chunk = await conn.next_chunk(limit_s)
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self.close()
        return chunk

    async def chunks(self, limit_s: float | None) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive (``limit_s``: the longest wait for one); a
        reader that stops early gives the connection back (closed)."""
        try:
            while (chunk := await self.next_chunk(limit_s)) is not None:
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Give the connection back (closed unless its answer was read to the end)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)


class HttpPool:
    """Keep-alive connections to the origin of ``base_url``, at most ``max_connections``
    at once (further requests wait for one); ``headers`` go with every request."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        max_connections: int,
        connect_timeout_s: float | None = None,
        keepalive_s: float = 15.0,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None
        default_port = self._port == (443 if self._tls else 80)
        host = parts.hostname if default_port else f"{parts.hostname}:{self._port}"
        fixed = {
            "host": host,
            "user-agent": "offramp",
            "accept": "*/*",
            "accept-encoding": "identity",
            **{k.lower(): v for k, v in headers.items()},
        }
        self._head_lines = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._max = max(1, max_connections)
        self._connect_timeout = connect_timeout_s
        self._keepalive = keepalive_s
        self._idle: list[_Connection] = []
        self._count = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    async def post(self, path: str, body: bytes) -> Response:
        """POST ``body`` to ``path`` (under the base URL's path); the answer once its head
        has arrived."""
        data = (
            f"POST {self._prefix}{path} HTTP/1.1\r\ncontent-length: {len(body)}\r\n".encode()
            + self._head_lines
            + b"\r\n"
            + body
        )
        conn = await self._acquire()
        try:
            await conn.send(data)
        except TransportError:
            if not (conn.reused and not conn.got_data):
                self.release(conn)
                raise
            self.release(conn)  # closed as the request went out: once more, on a new one
            conn = await self._acquire(fresh=True)
            try:
                await conn.send(data)
            except BaseException:
                self.release(conn)
                raise
        except BaseException:
            self.release(conn)
            raise
        return Response(self, conn)

    def release(self, conn: _Connection) -> None:
        """A connection's request has ended: keep it for the next one, or close it."""
        if conn.reusable and not self._closed:
            conn.idle_since = time.monotonic()
            conn.reused = True
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            self._idle.append(conn)
            return
        conn.close()
        self._free_slot()

    def _free_slot(self) -> None:
        """A connection's slot is free: the next waiter opens one in it, else it is gone."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._count -= 1

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._count -= 1

    async def _acquire(self, fresh: bool = False) -> _Connection:
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.loop is loop and not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn.discard()
            self._count -= 1
        if self._count < self._max:
            self._count += 1  # a new slot
        else:
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    given = waiter.result()
                    if given is not None:
                        self.release(given)
                    else:
                        self._free_slot()
                raise
            if handed is not None and not fresh:
                return handed
            if handed is not None:
                handed.close()  # a new connection was asked for: it takes this one's slot
        try:
            return await self._connect()  # in the slot taken above
        except BaseException:
            self._free_slot()
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            with cancel_after(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                )
        except OSError as exc:  # refused, unreachable, TLS failures (ssl.SSLError)
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return conn
