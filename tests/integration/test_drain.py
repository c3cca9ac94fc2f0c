"""A real `offramp serve` process: SIGTERM drains it (every stream completes or ends with
an error event, new requests get 503, the ledger holds every request), and connections
that never send a whole request are closed."""

from __future__ import annotations

import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from offramp.api.drain import REFUSAL
from tests.servers import ProcessServer

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ProcessServer, Path]]:
    ledger = tmp_path / "ledger.db"
    env = {
        "OFFRAMP_LEDGER_PATH": str(ledger),
        "OFFRAMP_MODELS_DIR": str(tmp_path / "models"),
        "OFFRAMP_DRAIN_TIMEOUT_S": "6",
        "OFFRAMP_READ_TIMEOUT_S": "1",
        "OFFRAMP_N_THREADS": "2",
    }
    server = ProcessServer(
        lambda port: [sys.executable, "-m", "offramp", "serve", "--port", str(port)], "/ready"
    )
    server.start(env).wait()  # settings by environment, as in production
    try:
        yield server, ledger
    finally:
        server.stop()


def _stream(base_url: str, body: dict[str, Any], lines: list[str]) -> None:
    """Read one stream into ``lines`` as it arrives (status first)."""
    try:
        with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=300) as r:
            lines.append(str(r.status_code))
            lines.extend(line for line in r.iter_lines() if line)
    except httpx.HTTPError as exc:  # a stream cut without an ending is a failure
        lines.append(f"broken: {exc!r}")


def _started(lines: list[str]) -> bool:
    return len(lines) > 1 and lines[0] == "200"


def _ended_properly(lines: list[str]) -> str:
    """'completed', 'error event', '503' (stopped before its answer began) or 'refused' (a
    request that reached the server only after the drain began, refused at the door);
    anything else is a stream cut silently."""
    status = lines[0]
    if status == "503":
        error = orjson.loads(lines[1])["error"]
        assert error["code"] == "shutting_down"
        return "refused" if error["message"] == REFUSAL else "503"
    assert status == "200" and lines[-1] == "data: [DONE]", lines[-3:]
    events = [line for line in lines[1:-1] if line.startswith("data: ")]  # not ': cost' comments
    last = orjson.loads(events[-1].removeprefix("data: "))
    if "error" in last:
        assert last["error"]["code"] == "shutting_down"
        return "error event"
    assert any('"finish_reason":"' in line for line in lines), lines[-3:]
    return "completed"


def test_sigterm_drains_streams_and_the_ledger_holds_every_request(
    served: tuple[ProcessServer, Path],
) -> None:
    server, ledger = served
    short = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}],
             "max_tokens": 3, "stream": True}  # fmt: skip
    endless = {**short, "max_tokens": 3000, "logit_bias": {"0": -100, "2": -100},
               "messages": [{"role": "user", "content": "Tell a very long story."}]}  # fmt: skip
    results: list[list[str]] = [[] for _ in range(20)]
    threads = []
    for i in range(20):  # the short ones first: they take the slots first and finish
        body = short if i < 10 else endless
        threads.append(threading.Thread(target=_stream, args=(server.base_url, body, results[i])))
        threads[-1].start()
        time.sleep(0.05)
    deadline = time.monotonic() + 120  # however busy the machine, until endless ones run
    while not any(_started(r) for r in results[10:]) and time.monotonic() < deadline:
        time.sleep(0.1)
    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    ready = httpx.get(server.base_url + "/ready")
    refused = httpx.post(server.base_url + "/v1/chat/completions", json={**short, "stream": False})
    for t in threads:
        t.join(timeout=120)
    exit_code = server.wait_exit(timeout=60)
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    assert refused.headers["retry-after"]
    outcomes = [_ended_properly(lines) for lines in results]
    assert len(outcomes) == 20
    assert "completed" in outcomes  # the short ones had time to finish
    assert "error event" in outcomes  # the endless ones were cut at the deadline, visibly
    assert exit_code in (0, -signal.SIGTERM)
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT status, error_code, completion_tokens FROM offramp_usage"
            " WHERE endpoint = 'chat'"
        ).fetchall()
    # every request that reached the gateway has its row; the late and the refused one
    # did not reach it (a thread of this test may be slow to send under load)
    assert len(rows) == 20 - outcomes.count("refused"), (outcomes, rows)
    cut = [r for r in rows if r[1] == "shutting_down" and r[2] > 0]
    assert len(cut) == outcomes.count("error event")  # cut streams are billed


def test_idle_and_half_sent_connections_are_closed(served: tuple[ProcessServer, Path]) -> None:
    server, _ = served
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    for s in half:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    body = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    for s in body:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model":'
        )
    time.sleep(3)
    closed = 0
    for s in idle + half:
        s.settimeout(2)
        if s.recv(1024) == b"":
            closed += 1
        s.close()
    timed_out = 0
    for s in body:
        s.settimeout(2)
        if s.recv(4096).startswith(b"HTTP/1.1 408"):
            timed_out += 1
        s.close()
    assert closed == 40
    assert timed_out == 5
    assert httpx.get(server.base_url + "/health").status_code == 200  # still serving
