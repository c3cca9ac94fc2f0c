"""HttpPool against a raw asyncio server on loopback that answers as scripted: keep-alive
reuse, bodies by length, chunks and connection end, a stale kept connection, breaks
mid-answer, refusals, the connection limit, read timeouts, garbage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from offramp.providers.http_pool import HttpPool, TransportError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """Accepts connections and runs ``handler`` on each; counts them."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request's head and body, or None at the connection's end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
    while (body := await srv.request(reader)) is not None:
        writer.write(_ok(b"echo:" + body))
        await writer.drain()


def _run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_requests_reuse_one_kept_connection_and_carry_the_path_and_headers() -> None:
    async def main() -> None:
        async with Server(_echo) as srv:
            pool = HttpPool(srv.url, {"Authorization": "Bearer k"}, max_connections=4)
            for i in range(20):
                response = await pool.post("/chat/completions", b"%d" % i)
                assert (response.status, await response.read()) == (200, b"echo:%d" % i)
            await pool.aclose()
            assert srv.connections == 1
            head = srv.requests[0].lower()
            assert head.startswith(b"post /v1/chat/completions http/1.1\r\n")
            assert b"authorization: bearer k\r\n" in head
            assert b"host: 127.0.0.1:%d\r\n" % srv.port in head

    _run(main())


def test_a_chunked_body_arrives_piece_by_piece() -> None:
    release = asyncio.Event

    async def main() -> None:
        go = release()

        async def chunked(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
            await s.request(r)
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await w.drain()
            await go.wait()
            w.write(b"6\r\nsecond\r\n0\r\n\r\n")
            await w.drain()
            await s.request(r)  # kept for the next request
            w.write(_ok(b"again"))
            await w.drain()

        async with Server(chunked) as srv:
            pool = HttpPool(srv.url, {}, max_connections=1)
            response = await pool.post("/x", b"{}")
            pieces = response.chunks(5.0)
            assert await pieces.__anext__() == b"first"  # before the rest was sent
            go.set()
            assert [p async for p in pieces] == [b"second"]
            again = await pool.post("/x", b"{}")
            assert await again.read() == b"again"
            assert srv.connections == 1

    _run(main())


def test_a_body_that_runs_to_the_connection_end_is_whole() -> None:
    async def until_close(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        await s.request(r)
        w.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\ndata: 1\n\ndata: [DONE]\n\n")
        await w.drain()

    async def main() -> None:
        async with Server(until_close) as srv:
            pool = HttpPool(srv.url, {}, max_connections=1)
            response = await pool.post("/x", b"{}")
            assert await response.read() == b"data: 1\n\ndata: [DONE]\n\n"
            second = await pool.post("/x", b"{}")  # the closed one is not reused
            assert await second.read() == b"data: 1\n\ndata: [DONE]\n\n"
            assert srv.connections == 2

    _run(main())


def test_a_kept_connection_the_server_closed_is_replaced_without_an_error() -> None:
    async def closes(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        body = await s.request(r)
        w.write(_ok(b"answer:" + (body or b"")))  # keep-alive offered...
        await w.drain()
        if s.connections == 1:
            await s.request(r)  # ...then the next request is read and the connection closed

    async def main() -> None:
        async with Server(closes) as srv:
            pool = HttpPool(srv.url, {}, max_connections=2)
            for i in range(3):
                response = await pool.post("/x", b"%d" % i)
                assert await response.read() == b"answer:%d" % i
            # request 1 went out on the kept connection, which closed unanswered: sent again
            assert srv.requests[1].endswith(b"1") and srv.requests[2].endswith(b"1")
            assert srv.connections == 3

    _run(main())


def test_an_answer_cut_mid_body_raises_a_transport_error() -> None:
    async def cut(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        await s.request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await w.drain()

    async def main() -> None:
        async with Server(cut) as srv:
            pool = HttpPool(srv.url, {}, max_connections=1)
            response = await pool.post("/x", b"{}")
            assert response.status == 200
            with pytest.raises(TransportError, match="closed before the answer ended"):
                await response.read()
            # the slot was given back: the pool still serves
            with pytest.raises(TransportError):
                await (await pool.post("/x", b"{}")).read()

    _run(main())


def test_a_refused_connection_and_garbage_raise_transport_errors() -> None:
    async def garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        await s.request(r)
        w.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await w.drain()

    async def main() -> None:
        async with Server(garbage) as srv:
            port = srv.port
            with pytest.raises(TransportError, match="not HTTP"):
                await HttpPool(srv.url, {}, max_connections=1).post("/x", b"{}")
        with pytest.raises(TransportError, match="ConnectionRefused"):
            await HttpPool(f"http://127.0.0.1:{port}", {}, max_connections=1).post("/x", b"{}")

    _run(main())


def test_no_more_than_max_connections_are_open_and_every_request_is_answered() -> None:
    async def slow(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        while (body := await s.request(r)) is not None:
            await asyncio.sleep(0.02)
            w.write(_ok(body))
            await w.drain()

    async def main() -> None:
        async with Server(slow) as srv:
            pool = HttpPool(srv.url, {}, max_connections=2)

            async def one(i: int) -> bytes:
                return await (await pool.post("/x", b"%d" % i)).read()

            answers = await asyncio.gather(*(one(i) for i in range(12)))
            assert answers == [b"%d" % i for i in range(12)]
            assert srv.most_open == 2 and srv.connections == 2

    _run(main())


def test_a_stream_that_stalls_times_out_and_a_cancelled_waiter_frees_its_place() -> None:
    async def stall(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Server) -> None:
        await s.request(r)
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await w.drain()
        await asyncio.sleep(10)

    async def main() -> None:
        async with Server(stall) as srv:
            pool = HttpPool(srv.url, {}, max_connections=1)
            response = await pool.post("/x", b"{}")
            waiting = asyncio.ensure_future(pool.post("/x", b"{}"))  # no free connection
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(TimeoutError):
                async for _ in response.chunks(0.2):
                    pass
            # the stalled connection was closed; its slot serves a new one
            nxt = asyncio.ensure_future(pool.post("/x", b"{}"))
            await asyncio.sleep(0.1)
            assert srv.connections == 2
            nxt.cancel()

    _run(main())


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpPool("ftp://example.com", {}, max_connections=1)
