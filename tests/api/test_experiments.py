"""Experiments and rollouts through a real offramp server over scripted OpenAI-compatible
upstreams on loopback, driven with the official SDK; the ledger read back from SQLite and
PostgreSQL, rollouts driven from Python and the CLI while traffic flows."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from offramp.app import create_app
from offramp.cli.main import app as cli
from offramp.errors import InvalidRequest
from offramp.ledger.rollouts import RolloutState
from offramp.ledger.schema import usage
from offramp.ledger.store import open_engine
from offramp.routing.rollout import RolloutPlan, run_rollout, start_rollout
from offramp.settings import load_settings
from tests.backing import postgres_schema
from tests.servers import AsgiThread

BROKEN = "broken-model"  # the scripted upstream answers 500 for this model


def scripted_upstream() -> Starlette:
    """Answers ``MODEL|SYSTEM PROMPT`` for any chat request; 500 for ``BROKEN``."""

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        model = body["model"]
        if model == BROKEN:
            return JSONResponse({"error": {"message": "down", "type": "server_error"}}, 500)
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"{model}|{system}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def deployment(name: str, url: str, model: str) -> dict[str, Any]:
    return {"name": name, "provider": "openai-compatible", "base_url": url, "model": model}


def routes(url: str) -> list[dict[str, Any]]:
    quick = {"retry": {"max_attempts": 1}, "breaker": {"enabled": False}}
    two = [deployment("base", url, "base-model"), deployment("cand", url, "cand-model")]
    return [
        {
            "name": "shop",
            **quick,
            "deployments": two,
            "experiment": {
                "name": "ab",
                "arms": [
                    {"name": "A", "model": "base"},
                    {"name": "B", "model": "cand", "system": "Be brief."},
                ],
            },
        },
        {
            "name": "chat",
            **quick,
            "deployments": [deployment("base", url, "base-model")],
            "experiment": {"sticky": "session", "arms": [{"name": "x"}, {"name": "y"}]},
        },
        {"name": "plain", **quick, "deployments": two},
        {"name": "broken", **quick, "deployments": [deployment("broken", url, BROKEN)]},
    ]


class Served:
    def __init__(self, base_url: str, engine: Engine, config: Path):
        self.base_url = base_url
        self.engine = engine
        self.config = config
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0)

    def ask(self, model: str, user: str, **headers: str) -> tuple[str, Mapping[str, str]]:
        """The answer's text and headers; the text is the error's status when it fails."""
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": "hi"}],
                user=user,
                extra_headers=headers,
            )
        except openai.APIStatusError as exc:
            return str(exc.status_code), exc.response.headers
        return raw.parse().choices[0].message.content or "", raw.headers

    def rows(self, expected: int) -> list[Any]:
        """The usage records, once ``expected`` of them are written."""
        deadline = time.monotonic() + 10
        while True:
            with self.engine.connect() as conn:
                rows = list(conn.execute(select(usage).order_by(usage.c.id)))
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with (
        AsgiThread(scripted_upstream(), log_level="critical") as upstream,
        _ledger(request.param, tmp_path) as ledger,
    ):
        config = tmp_path / "offramp.yaml"
        settings = {**ledger, "experiment_refresh_s": 0.1, "ledger_flush_ms": 10, "cache": False}
        config.write_text(
            yaml.safe_dump({"settings": settings, "routes": routes(upstream.base_url + "/v1")})
        )
        the_settings = load_settings(config, preload=False)
        engine = open_engine(the_settings)
        with AsgiThread(create_app(the_settings)) as server:
            yield Served(server.base_url, engine, config)
        engine.dispose()


@contextmanager
def _ledger(kind: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {"ledger_path": str(tmp_path / "ledger.db")}
        return
    with postgres_schema() as url:
        yield {"ledger_url": url}


def test_arms_are_sticky_per_user_and_named_in_headers_and_the_ledger(served: Served) -> None:
    seen: dict[str, str] = {}
    for user in (f"user-{i}" for i in range(12)):
        arms = set()
        for _ in range(5):
            text, headers = served.ask("shop", user)
            arm = headers["x-offramp-arm"]
            assert headers["x-offramp-experiment"] == "ab"
            assert text == ("base-model|" if arm == "A" else "cand-model|Be brief.")
            arms.add(arm)
            seen[headers["x-request-id"]] = arm
        assert len(arms) == 1
    assert set(seen.values()) == {"A", "B"}
    rows = served.rows(len(seen))
    assert {r.request_id: (r.experiment, r.arm) for r in rows} == {
        rid: ("ab", arm) for rid, arm in seen.items()
    }
    report = httpx.get(served.base_url + "/admin/experiments", params={"route": "shop"}).json()
    [ab] = report["data"]
    counts = Counter(seen.values())
    assert {a["arm"]: a["requests"] for a in ab["arms"]} == dict(counts)
    assert ab["live"]["weights"] == {"A": 1.0, "B": 1.0} and ab["live"]["sticky"] == "user"


def test_a_session_keeps_its_arm_whoever_the_user(served: Served) -> None:
    for session in ("s-1", "s-2", "s-3", "s-4"):
        arms = {served.ask("chat", f"u{i}", **{"x-session-id": session})[1]["x-offramp-arm"]
                for i in range(8)}  # fmt: skip
        assert len(arms) == 1


def _traffic_until(served: Served, model: str, done: threading.Event) -> Counter[str]:
    """Requests from new users until ``done``; the arms that answered, by name."""
    arms: Counter[str] = Counter()
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        _, headers = served.ask(model, uuid.uuid4().hex)
        arms[headers.get("x-offramp-arm", "error")] += 1  # an error names no arm
    return arms


def _drive(served: Served, route: str) -> tuple[list[RolloutState], Counter[str]]:
    """Run ``route``'s rollout in a thread while traffic flows; its states and the arms."""
    states: list[RolloutState] = []
    done = threading.Event()

    def drive() -> None:
        try:
            run_rollout(served.engine, route, states.append, sleep=time.sleep)
        finally:
            done.set()

    driver = threading.Thread(target=drive)
    driver.start()
    arms = _traffic_until(served, route, done)
    driver.join(timeout=30)
    return states, arms


def test_a_rollout_whose_guards_hold_reaches_100_percent(served: Served) -> None:
    plan = RolloutPlan(
        steps=(20, 50, 100),
        guards=("error_rate<=0.05", "latency_p95<=20x", "cost<=0"),
        min_requests=8,
        interval_s=0.1,
        step_timeout_s=30,
    )
    start_rollout(served.engine, "plain", "cand", "base", plan)
    states, arms = _drive(served, "plain")
    assert [(s.status, s.weight) for s in states] == [
        ("running", 0.2),
        ("running", 0.5),
        ("running", 1.0),
        ("done", 1.0),
    ]
    assert arms["cand"] >= 24 and arms["base"] >= 16
    time.sleep(0.3)  # the server's next read of the rollout
    answers = {served.ask("plain", uuid.uuid4().hex)[0] for _ in range(20)}
    assert answers == {"cand-model|"}
    result = CliRunner().invoke(cli, ["rollout", "status", "plain", "-c", str(served.config)])
    assert result.exit_code == 0 and "plain: done" in result.output, result.output


def test_a_rollout_whose_candidate_fails_rolls_back_by_itself(served: Served) -> None:
    plan = RolloutPlan(steps=(30, 100), guards=("error_rate<=0.2",), min_requests=6, interval_s=0.1)
    start_rollout(served.engine, "plain", "broken", None, plan)  # another route as the arm
    states, arms = _drive(served, "plain")
    final = states[-1]
    assert final.status == "rolled_back" and final.weight == 0.0
    assert "error_rate<=0.2: candidate 1" in (final.reason or "")
    assert arms["error"] >= 6 and arms["baseline"] >= 6
    failed = [r for r in served.rows(0) if r.status != 200]
    assert failed and {(r.experiment, r.arm, r.status) for r in failed} == {
        ("rollout", "broken", 502)
    }
    time.sleep(0.3)
    after = [served.ask("plain", uuid.uuid4().hex) for _ in range(20)]
    assert {text for text, _ in after} <= {"base-model|", "cand-model|"}  # the route as before
    assert {h["x-offramp-arm"] for _, h in after} == {"baseline"}
    shown = CliRunner().invoke(cli, ["experiments", "show", "plain", "-c", str(served.config)])
    assert shown.exit_code == 0 and "broken" in shown.output and "rolled_back" in shown.output


def test_the_rollout_cli_drives_a_rollout_and_aborts_it(served: Served) -> None:
    config = str(served.config)
    runner = CliRunner()
    aborted = runner.invoke(cli, ["rollout", "abort", "plain", "-c", config])
    assert isinstance(aborted.exception, InvalidRequest) and "no rollout" in str(aborted.exception)
    args = ["rollout", "plain", "--candidate", "cand", "--baseline", "base", "--steps", "50,100",
            "--min-requests", "3", "--interval", "0.1", "--guard", "error_rate<=0.5", "-c", config]  # fmt: skip
    done = threading.Event()
    results: list[Any] = []

    def drive() -> None:
        results.append(runner.invoke(cli, args))
        done.set()

    driver = threading.Thread(target=drive)
    driver.start()
    _traffic_until(served, "plain", done)
    driver.join(timeout=30)
    assert results[0].exit_code == 0, results[0].output
    assert "plain: done" in results[0].output
    stopped = runner.invoke(cli, ["rollout", "abort", "plain", "-c", config])
    assert stopped.exit_code == 0 and "aborted" in stopped.output
    cleared = runner.invoke(cli, ["rollout", "clear", "plain", "-c", config])
    assert cleared.exit_code == 0 and "cleared" in cleared.output
    time.sleep(0.3)  # the server's next read: no rollout, no experiment on `plain`
    assert "x-offramp-arm" not in served.ask("plain", "anyone")[1]
