"""What decides whether several workers may start, and the header deadline they (and a
single server) keep on every connection."""

from __future__ import annotations

import socket
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from offramp.errors import InvalidRequest
from offramp.settings import Settings
from offramp.workers import check_shared_state
from tests.servers import AsgiThread


def test_several_workers_need_redis_or_an_explicit_per_worker_state() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_shared_state(Settings(workers=2))
    assert refused.value.param == "workers"
    assert "redis_url" in refused.value.message and "per_worker_state" in refused.value.message
    check_shared_state(Settings(workers=1))
    check_shared_state(Settings(workers=2, redis_url="redis://127.0.0.1:6379/0"))
    check_shared_state(Settings(workers=2, per_worker_state=True))


def _ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _request(conn: socket.socket) -> bytes:
    """One whole response (its body is ``ok``) on the kept connection."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok"):
        piece = conn.recv(4096)
        assert piece, answer
        answer += piece
    return answer


def test_the_header_deadline_counts_from_the_last_response_on_a_kept_connection() -> None:
    settings = Settings(read_timeout_s=2.0)
    with AsgiThread(Starlette(routes=[Route("/", _ok)]), settings=settings) as served:
        conn = socket.create_connection(("127.0.0.1", served.port))
        assert _request(conn).startswith(b"HTTP/1.1 200")
        time.sleep(1.4)
        assert _request(conn).startswith(b"HTTP/1.1 200")  # the count starts again here
        conn.sendall(b"GET / HTTP/1.1\r\n")  # half a head, then nothing
        opened = time.monotonic()
        conn.settimeout(0.8)
        with pytest.raises(TimeoutError):  # past the first response's deadline: still open
            conn.recv(1024)
        conn.settimeout(10)
        assert conn.recv(1024) == b""  # closed once the second response's deadline passed
        assert 0.8 <= time.monotonic() - opened < 6
        conn.close()
