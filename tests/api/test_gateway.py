"""One gateway behind every door: key policy, limits, budget, sessions, metering and the
ledger hold whichever endpoint a request enters by. Real servers on the bundled models,
keys from the real key store, the official SDK and plain HTTP as clients, and the ledger
read back from SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic import SecretStr

from offramp.local.pool import ModelPool
from offramp.models.registry import default_config_path
from offramp.settings import Settings
from tests.backing import ledger_rows, postgres_schema
from tests.servers import ServerThread

ADMIN = "admin-secret"
# $0.01 per token in and out: one short chat costs well over $0.05
ROUTES = """
routes:
  - name: priced-chat
    deployments: [{model: smollm2-135m-instruct, price: {input: 10000, output: 10000}}]
"""
WORD_TASK = """
name: word
version: "1"
description: One word about a subject; turns with the same session_id continue.
route: {max_tokens: 40, max_attempts: 1}
history: {session: session_id, user: subject, assistant: word, turns: 2}
input_schema:
  type: object
  additionalProperties: false
  required: [subject]
  properties:
    subject: {type: string, minLength: 1, maxLength: 200}
    session_id: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,64}$"}
output_schema:
  type: object
  additionalProperties: false
  required: [word]
  properties:
    word: {type: string, minLength: 1, maxLength: 16}
prompt:
  user: "Give one word about {{ input.subject }}."
examples: [{subject: rain}]
"""
CHAT: dict[str, Any] = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2}


@contextmanager
def gateway_server(
    settings: Settings, pool: ModelPool, tmp_path: Path, **changes: Any
) -> Iterator[ServerThread]:
    config = tmp_path / "offramp.yaml"
    config.write_text(default_config_path().read_text() + ROUTES)
    tasks = tmp_path / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "word.yaml").write_text(WORD_TASK)
    mine = settings.model_copy(
        update={
            "config": config,
            "tasks_dir": tasks,
            "auth": True,
            "admin_key": SecretStr(ADMIN),
            "ledger_path": tmp_path / "ledger.db",
            **changes,
        }
    )
    with ServerThread(mine, pool) as server:
        server.settings = mine  # type: ignore[attr-defined]
        yield server


def make_key(server: ServerThread, **limits: Any) -> str:
    response = httpx.post(
        server.base_url + "/admin/keys",
        json={"name": "test", **limits},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


def post(server: ServerThread, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        server.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )


def doors(model: str = "gpt-4o-mini") -> dict[str, tuple[str, dict[str, Any]]]:
    """One request per door, each asking for a chat model."""
    task_input = {"input": {"subject": "rain"}}
    return {
        "chat": ("/v1/chat/completions", {"model": model, **CHAT}),
        "completions": ("/v1/completions", {"model": model, "prompt": "Hi", "max_tokens": 2}),
        "batch chat item": (
            "/v1/batch",
            {"requests": [{"type": "chat", "body": {"model": model, **CHAT}}]},
        ),
        "batch task item": (
            "/v1/batch",
            {"requests": [{"type": "task", "task": "word", "body": task_input}]},
        ),
        "responses": ("/v1/responses", {"model": model, "input": "Hi", "max_output_tokens": 2}),
        "messages": ("/v1/messages", {"model": model, **CHAT}),
        "messages count_tokens": (
            "/v1/messages/count_tokens",
            {"model": model, "messages": CHAT["messages"]},
        ),
        "task": ("/v1/tasks/word", task_input),
        "task with model override": ("/v1/tasks/word", {**task_input, "model": model}),
        "task stream": ("/v1/tasks/word?stream=true", task_input),
    }


def status_of(response: httpx.Response) -> tuple[int, str | None]:
    """(status, error code) of a response, or of the single item of a batch (Anthropic's
    envelope names the error type only)."""
    body = response.json()
    if body.get("type") == "error":
        return response.status_code, body["error"]["type"]
    if response.status_code == 200 and body.get("object") == "batch.result":
        [item] = body["results"]
        error = item["body"].get("error") if item["status_code"] >= 400 else None
        return item["status_code"], error["code"] if error else None
    return response.status_code, body.get("error", {}).get("code")


def wait_for_rows(settings: Settings, count: int, timeout: float = 10) -> list[Any]:
    """The ledger's rows once ``count`` are written (the writer batches off the path)."""
    deadline = time.monotonic() + timeout
    rows = ledger_rows(settings)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = ledger_rows(settings)
    return rows


def test_an_embedding_only_key_is_refused_at_every_chat_door(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path) as server:
        key = make_key(server, models=["text-embedding-3-small"])
        embedded = post(
            server, key, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}
        )
        refused = {name: status_of(post(server, key, *door)) for name, door in doors().items()}
        refused_override = status_of(post(server, key, *doors("priced-chat")["task"]))
        rows = wait_for_rows(server.settings, 1 + len(refused) + 1)  # type: ignore[attr-defined]
    assert embedded.status_code == 200
    anthropic_doors = {"messages", "messages count_tokens"}
    assert refused == {
        name: (403, "permission_error" if name in anthropic_doors else "model_not_allowed")
        for name in refused
    }
    assert refused_override == (403, "model_not_allowed")
    assert sorted(r.status for r in rows) == [200] + [403] * (len(refused) + 1)
    assert {r.endpoint for r in rows if r.status == 403} == {
        "chat", "completions", "task", "responses", "messages", "count_tokens"
    }  # fmt: skip


def test_a_3_rpm_key_gets_429_on_the_4th_request_whichever_doors_it_used(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path) as server:
        key = make_key(server, rpm=3)
        first_three = [
            status_of(post(server, key, *doors()["batch chat item"])),
            status_of(post(server, key, "/v1/embeddings", {"model": "text-embedding-3-small",
                                                            "input": "x"})),
            status_of(post(server, key, *doors()["chat"])),
        ]  # fmt: skip
        fourth = status_of(post(server, key, *doors()["task"]))
        other = make_key(server, rpm=3)
        batch_of_six = post(
            server,
            other,
            "/v1/batch",
            {"requests": [{"type": "chat", "body": {"model": "gpt-4o-mini", **CHAT}}] * 6,
             "concurrency": 1},
        ).json()  # fmt: skip
    assert first_three == [(200, None)] * 3
    assert fourth == (429, "rate_limit_exceeded")
    codes = [r["status_code"] for r in batch_of_six["results"]]
    assert codes == [200, 200, 200, 429, 429, 429]  # a batch item is one request


def test_a_budget_spent_through_batch_and_tasks_is_then_refused(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    priced = {"model": "priced-chat", **CHAT}
    with gateway_server(settings, pool, tmp_path) as server:
        by_task = make_key(server, budget_usd=0.05)
        task_spend = post(server, by_task, "/v1/tasks/word",
                          {"input": {"subject": "rain"}, "model": "priced-chat"})  # fmt: skip
        after_task = status_of(post(server, by_task, "/v1/batch",
                                    {"requests": [{"type": "chat", "body": priced}]}))  # fmt: skip
        by_batch = make_key(server, budget_usd=0.05)
        batch = post(server, by_batch, "/v1/batch",
                     {"requests": [{"type": "chat", "body": priced}] * 2, "concurrency": 1}).json()  # fmt: skip
        after_batch = status_of(post(server, by_batch, "/v1/tasks/word",
                                     {"input": {"subject": "sun"}, "model": "priced-chat"}))  # fmt: skip
        rows = wait_for_rows(server.settings, 6)  # type: ignore[attr-defined]
        usage_report = httpx.get(
            server.base_url + "/admin/usage", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
    assert task_spend.status_code == 200, task_spend.text
    spent = task_spend.json()["metadata"]["cost_usd"]
    assert spent > 0.05
    assert after_task == (429, "insufficient_quota")
    assert [r["status_code"] for r in batch["results"]] == [200, 429]
    assert after_batch == (429, "insufficient_quota")
    served = [r for r in rows if r.status == 200]
    assert len(served) == 2 and all(r.cost_usd > 0.05 for r in served)
    [task_row] = [r for r in served if r.endpoint == "task"]
    assert task_row.task == "word" and task_row.cost_usd == pytest.approx(spent)
    assert task_row.deployment == "local/smollm2-135m-instruct"
    assert usage_report["total"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in served))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_answered_request_is_one_ledger_row_with_its_cost(
    settings: Settings, pool: ModelPool, tmp_path: Path, database: str
) -> None:
    with (
        _ledger(database) as url,
        gateway_server(settings, pool, tmp_path, ledger_url=url) as server,
    ):
        key = make_key(server)
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)
        answered = 0
        client.chat.completions.create(model="priced-chat", **CHAT)
        answered += 1
        stream = client.chat.completions.create(model="priced-chat", stream=True, **CHAT)
        assert list(stream)
        answered += 1
        client.completions.create(model="priced-chat", prompt="Hi", max_tokens=2)
        answered += 1
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        answered += 1
        batch = post(server, key, "/v1/batch", {
            "requests": [{"type": "chat", "body": {"model": "priced-chat", **CHAT}},
                         {"type": "task", "task": "word", "body": {"input": {"subject": "sea"}}}]
        }).json()  # fmt: skip
        assert [r["status_code"] for r in batch["results"]] == [200, 200]
        answered += 2  # the batch itself is not a request of its own
        assert post(server, key, "/v1/tasks/word", {"input": {"subject": "sky"}}).status_code == 200
        answered += 1
        client.responses.create(model="priced-chat", input="Hi", max_output_tokens=2)
        answered += 1
        assert list(client.responses.create(model="priced-chat", input="Hi", max_output_tokens=2,
                                            stream=True))  # fmt: skip
        answered += 1
        claude = anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0)
        claude.messages.create(model="priced-chat", **CHAT)
        answered += 1
        with claude.messages.stream(model="priced-chat", **CHAT) as stream:
            assert list(stream)
        answered += 1
        counted = claude.messages.count_tokens(model="gpt-4o-mini", messages=CHAT["messages"])
        answered += 1
        rows = wait_for_rows(server.settings, answered)  # type: ignore[attr-defined]
        time.sleep(0.5)
        rows = ledger_rows(server.settings)  # type: ignore[attr-defined]
    assert len(rows) == answered and all(r.status == 200 for r in rows)
    assert len({r.request_id for r in rows}) == answered
    priced = [r for r in rows if r.route == "priced-chat"]
    assert len(priced) == 8
    for row in priced:
        expected = (row.prompt_tokens + row.completion_tokens) * 0.01
        assert row.cost_usd == pytest.approx(expected) and row.completion_tokens > 0
    assert sorted(r.endpoint for r in rows) == sorted(
        ["chat", "chat", "completions", "embeddings", "chat", "task", "task", "responses",
         "responses", "messages", "messages", "count_tokens"]
    )  # fmt: skip
    [count_row] = [r for r in rows if r.endpoint == "count_tokens"]
    assert counted.input_tokens > 0 and count_row.cost_usd == 0
    assert count_row.prompt_tokens == count_row.completion_tokens == 0


@contextmanager
def _ledger(database: str) -> Iterator[str | None]:
    if database == "sqlite":
        yield None
        return
    with postgres_schema() as url:
        yield url


def test_a_stream_the_client_leaves_is_billed_for_what_was_generated(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path) as server:
        key = make_key(server)
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)
        stream = client.chat.completions.create(
            model="priced-chat",
            messages=[{"role": "user", "content": "Count from one to one hundred."}],
            max_tokens=400,
            logit_bias={"0": -100, "2": -100},  # no end of text: it keeps going
            stream=True,
        )
        chunks = 0
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                chunks += 1
            if chunks == 20:
                break
        stream.close()
        [row] = wait_for_rows(server.settings, 1)  # type: ignore[attr-defined]
    assert row.status == 499 and row.error_code == "client_closed"
    assert row.completion_tokens >= 20 and row.prompt_tokens > 0
    assert row.cost_usd == pytest.approx((row.prompt_tokens + row.completion_tokens) * 0.01)


def test_a_task_session_belongs_to_the_key_that_started_it(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path) as server:
        owner, other = make_key(server), make_key(server)
        body = {"input": {"subject": "my secret is 4711", "session_id": "s-private"}}
        first = post(server, owner, "/v1/tasks/word", body)
        stolen = post(server, other, "/v1/tasks/word", body)
        stolen_stream = post(server, other, "/v1/tasks/word?stream=true", body)
        again = post(server, owner, "/v1/tasks/word", {"input": {"subject": "more",
                                                                  "session_id": "s-private"}})  # fmt: skip
    assert first.status_code == 200 and first.json()["metadata"]["session_id"] == "s-private"
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "session_not_found"
    assert "4711" not in stolen.text
    assert stolen_stream.status_code == 404
    assert again.status_code == 200


def test_a_stored_response_belongs_to_the_key_that_made_it(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path) as server:
        owner, other = make_key(server), make_key(server)
        made = post(server, owner, "/v1/responses",
                    {"model": "gpt-4o-mini", "input": "my secret is 4711",
                     "max_output_tokens": 2}).json()  # fmt: skip
        mine = openai.OpenAI(base_url=server.base_url + "/v1", api_key=owner, max_retries=0)
        theirs = openai.OpenAI(base_url=server.base_url + "/v1", api_key=other, max_retries=0)
        refused = []
        for attempt in (
            lambda: theirs.responses.retrieve(made["id"]),
            lambda: theirs.responses.input_items.list(made["id"]),
            lambda: theirs.responses.delete(made["id"]),
            lambda: theirs.responses.create(model="gpt-4o-mini", input="and?",
                                            previous_response_id=made["id"], max_output_tokens=2),
        ):  # fmt: skip
            with pytest.raises(openai.NotFoundError) as caught:
                attempt()
            refused.append(caught.value)
        still_mine = mine.responses.retrieve(made["id"])
    assert still_mine.id == made["id"]
    assert all("4711" not in str(e.body) for e in refused)


def test_the_cache_and_metrics_hold_at_the_responses_and_messages_doors(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with gateway_server(settings, pool, tmp_path, cache=True) as server:
        key = make_key(server)
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)
        ask = {"model": "gpt-4o-mini", "input": "Say hi.", "max_output_tokens": 3,
               "temperature": 0, "store": False}  # fmt: skip
        first = client.responses.create(**ask)
        again = client.responses.create(**ask)
        claude = anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0)
        said = claude.messages.create(model="claude-3-5-haiku-latest", **CHAT,
                                      extra_body={"temperature": 0})  # fmt: skip
        replayed = claude.messages.with_raw_response.create(
            model="claude-3-5-haiku-latest", **CHAT, extra_body={"temperature": 0}
        )
        rows = wait_for_rows(server.settings, 4)  # type: ignore[attr-defined]
        metrics = httpx.get(server.base_url + "/metrics").text
    assert again.output_text == first.output_text
    assert replayed.parse().content[0].text == said.content[0].text
    assert replayed.headers["x-offramp-deployment"] == "cache"
    assert [(r.endpoint, r.cache_hit) for r in rows] == [
        ("responses", False), ("responses", True), ("messages", False), ("messages", True)
    ]  # fmt: skip
    for endpoint, model in (("responses", "gpt-4o-mini"), ("messages", "claude-3-5-haiku-latest")):
        line = f'offramp_requests_total{{endpoint="{endpoint}",model="{model}",status="200"}} 2.0'
        assert line in metrics


def test_unknown_model_names_do_not_grow_the_metrics(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    with (
        gateway_server(settings, pool, tmp_path, auth=False) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        http.post("/v1/chat/completions", json={"model": "made-up-0", **CHAT})
        before = http.get("/metrics").text
        for i in range(1, 301):
            answer = http.post("/v1/chat/completions", json={"model": f"made-up-{i}", **CHAT})
            assert answer.status_code == 404
        after = http.get("/metrics").text

    def series(text: str) -> set[str]:
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}

    assert series(after) == series(before)
    assert "made-up" not in after
    assert re.search(
        r'offramp_requests_total\{endpoint="chat",model="unknown",status="404"\} 301', after
    )
    assert abs(len(after) - len(before)) < 64
