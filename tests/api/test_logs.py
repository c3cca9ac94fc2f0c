"""Structured logs: every access line carries the request id it answered with; no
prompt text or API key appears unless prompt logging is on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from offramp.local.pool import ModelPool
from offramp.observability.logs import JsonFormatter
from offramp.settings import Settings
from tests.servers import ServerThread

SECRET_TEXT = "purple-elephant-4711"
API_KEY = "sk-should-never-be-logged"


def _lines(records: list[logging.LogRecord]) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in records]


@pytest.mark.parametrize("log_prompts", [False, True])
def test_logs_carry_request_ids_and_no_prompts_by_default(
    settings: Settings,
    pool: ModelPool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    log_prompts: bool,
) -> None:
    mine = settings.model_copy(
        update={"ledger_path": tmp_path / "l.db", "log_prompts": log_prompts}
    )
    with ServerThread(mine, pool) as server, caplog.at_level(logging.INFO, logger="offramp"):
        reply = httpx.post(
            server.base_url + "/v1/embeddings",
            json={"model": "text-embedding-3-small", "input": SECRET_TEXT},
            headers={"Authorization": f"Bearer {API_KEY}", "X-Request-ID": "trace-42"},
            timeout=60,
        )
    assert reply.status_code == 200 and reply.headers["x-request-id"] == "trace-42"
    lines = _lines(caplog.records)
    (access,) = [line for line in lines if line["logger"] == "offramp.access"]
    assert access["request_id"] == "trace-42" and access["status"] == 200
    assert access["path"] == "/v1/embeddings"
    everything = json.dumps(lines)
    assert API_KEY not in everything
    assert (SECRET_TEXT in everything) is log_prompts
