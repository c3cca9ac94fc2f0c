"""Admin input is strict: limits of the wrong type or out of the ledger's range are a 400
naming the field (never a 500, never coerced, never stored as infinity), and the CLI
says so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.servers import ServerThread

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def admin(
    settings: Settings, pool: ModelPool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    ledger = tmp_path_factory.mktemp("admin") / "ledger.db"
    mine = settings.model_copy(
        update={"admin_key": SecretStr("admin-secret"), "auth": True, "ledger_path": ledger}
    )
    with ServerThread(mine, pool) as server:
        yield server


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"rpm": 9223372036854775808}, "rpm"),
        ({"rpm": 2**31}, "rpm"),
        ({"rpm": True}, "rpm"),
        ({"rpm": "5"}, "rpm"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": 1.5}, "tpm"),
        ({"budget_usd": 1e400}, "budget_usd"),  # JSON's 1e400 parses as infinity
        ({"budget_usd": -1}, "budget_usd"),
        ({"budget_usd": False}, "budget_usd"),
        ({"name": "n" * 129}, "name"),
        ({"models": ["m" * 129]}, "models[0]"),
    ],
)
def test_bad_key_limits_are_400_naming_the_field(
    admin: ServerThread, fields: dict[str, Any], param: str
) -> None:
    body = json.dumps({"name": "k", **fields}).replace("Infinity", "1e400")
    headers = {**ADMIN, "Content-Type": "application/json"}
    raw = httpx.post(admin.base_url + "/admin/keys", content=body, headers=headers)
    assert raw.status_code == 400, raw.text
    assert raw.json()["error"]["param"] == param


def test_good_limits_are_stored_exactly(admin: ServerThread) -> None:
    body = {"name": "k", "rpm": 2**31 - 1, "tpm": 5, "budget_usd": 12.5, "models": ["gpt-4o-mini"]}
    made = httpx.post(admin.base_url + "/admin/keys", json=body, headers=ADMIN)
    assert made.status_code == 201
    listed = httpx.get(admin.base_url + "/admin/keys", headers=ADMIN).json()["data"]
    [stored] = [k for k in listed if k["id"] == made.json()["id"]]
    assert (stored["rpm"], stored["tpm"], stored["budget_usd"]) == (2**31 - 1, 5, 12.5)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--rpm", "9223372036854775808"], "rpm"),
        (["--budget", "inf"], "budget_usd"),
        (["--tpm", "-3"], "tpm"),
    ],
)
def test_the_cli_refuses_bad_limits_in_one_line(tmp_path: Path, args: list[str], word: str) -> None:
    env = {**os.environ, "OFFRAMP_LEDGER_PATH": str(tmp_path / "l.db"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "offramp", "keys", "create", "x", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("offramp: error:") and word in line
