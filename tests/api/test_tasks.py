"""Tasks and batches over HTTP against a real server on the bundled model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from offramp.local.pool import ModelPool
from offramp.settings import Settings
from offramp.tasks.builtin import builtin_hooks, learning, mealplan
from offramp.tasks.builtin import scaffolding as scaffold
from offramp.tasks.catalog import TaskCatalog
from offramp.tasks.inputs import validate_input
from offramp.tasks.spec import resolve_schema
from tests.servers import ServerThread

MODEL = "smollm2-135m-instruct"

VARIED: list[tuple[str, dict[str, Any]]] = [
    ("code-analysis", {"code": "def f(x:\n    return x\n", "language": "python"}),
    ("code-analysis", {"code": "function f(x: number { return x }", "language": "typescript"}),
]


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=300) as c:
        yield c


@pytest.fixture(scope="module")
def listing(http: httpx.Client) -> dict[str, dict[str, Any]]:
    r = http.get("/v1/tasks")
    assert r.status_code == 200
    return {t["name"]: t for t in r.json()["data"]}


def assert_valid(task: dict[str, Any], data: dict[str, Any], body: dict[str, Any]) -> None:
    """The result validates against the listed schema and the metadata tells the truth."""
    values = validate_input(task["input_schema"], data)
    jsonschema.validate(body["result"], resolve_schema(task["output_schema"], values))
    meta = body["metadata"]
    assert body["task"] == task["name"] and body["version"] == task["version"]
    assert meta["model"] == MODEL and meta["cost_usd"] == 0.0 and meta["latency_ms"] > 0
    assert 1 <= meta["attempts"] <= task["max_attempts"]
    assert meta["usage"]["completion_tokens"] > 0
    if meta["fallback"] is None:
        assert len(meta["repairs"]) == meta["attempts"] - 1
    else:
        assert meta["fallback"] == task["fallback"] and len(meta["repairs"]) == meta["attempts"]
    assert all(r["problems"] for r in meta["repairs"])


def assert_domain(name: str, data: dict[str, Any], task: dict[str, Any], result: Any) -> None:
    values = validate_input(task["input_schema"], data)
    if name == "quiz":
        assert learning.check_quiz(result, values, {}) == []
    if name == "meal-plan":
        assert mealplan.check_plan(result, values, {}) == []
    if name == "scaffold":
        assert scaffold.check_python_parses(result, values, {}) == []
    if name == "code-analysis" and data["code"].startswith("def f(x:"):
        assert result["syntax_errors"][0]["line"] == 1
    if name == "code-analysis" and data["language"] == "typescript":
        assert result["syntax_errors"] and result["ai_insights"]["model_used"] == MODEL


def test_tasks_are_listed_with_their_schemas(http: httpx.Client, listing: dict[str, Any]) -> None:
    assert len(listing) == 11
    for task in listing.values():
        assert task["input_schema"]["type"] == "object" and task["output_schema"]
    assert listing["meal-plan"]["fallback"] == "meal-plan-catalogue"
    assert listing["tutor"]["history"] is True
    assert http.get("/v1/tasks/quiz").json()["name"] == "quiz"
    missing = http.get("/v1/tasks/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "task_not_found"


CASES = [
    (task.spec.name, example)
    for task in TaskCatalog.load(builtin_hooks()).all()
    for example in task.spec.examples
] + VARIED


@pytest.mark.parametrize(
    ("name", "data"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_every_builtin_task_returns_schema_valid_output(
    http: httpx.Client, listing: dict[str, dict[str, Any]], name: str, data: dict[str, Any]
) -> None:
    r = http.post(f"/v1/tasks/{name}", json={"input": data})
    assert r.status_code == 200, (name, r.text)
    body = r.json()
    assert_valid(listing[name], data, body)
    assert_domain(name, data, listing[name], body["result"])


def test_every_builtin_task_has_a_case() -> None:
    assert {name for name, _ in CASES} == {
        t.spec.name for t in TaskCatalog.load(builtin_hooks()).all()
    }


def sse_events(response: httpx.Response) -> list[Any]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_tutor_session_continues_in_a_stream_that_ends_with_the_validated_result(
    http: httpx.Client, listing: dict[str, Any]
) -> None:
    first = http.post("/v1/tasks/tutor", json={"input": {"message": "What is recursion?"}}).json()
    session = first["metadata"]["session_id"]
    data = {"message": "Show me an example.", "session_id": session}
    with http.stream("POST", "/v1/tasks/tutor?stream=true", json={"input": data}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    final = events[-2]
    assert final["type"] == "result" and final["metadata"]["session_id"] == session
    assert_valid(listing["tutor"], data, final)
    deltas = [e for e in events[:-2] if e["type"] == "delta"]
    assert deltas and all(e["type"] in ("delta", "rejected") for e in events[:-2])
    last = final["metadata"]["attempts"]
    streamed = json.loads("".join(e["content"] for e in deltas if e["attempt"] == last))
    assert {**streamed, "model_used": MODEL} == final["result"]
    # the first turn and its reply were replayed into the second turn's prompt
    grown = (
        final["metadata"]["usage"]["prompt_tokens"] - first["metadata"]["usage"]["prompt_tokens"]
    )
    assert grown >= len(first["result"]["message"]) // 6


USER_TASK = """
name: tagline
version: "3"
description: A product tagline and keywords.
route: {max_tokens: 120, max_attempts: 2}
input_schema:
  type: object
  additionalProperties: false
  required: [product]
  properties: {product: {type: string, minLength: 2, maxLength: 80}}
output_schema:
  type: object
  additionalProperties: false
  required: [tagline, keywords]
  properties:
    tagline: {type: string, minLength: 5, maxLength: 60}
    keywords: {type: array, items: {type: string, minLength: 2, maxLength: 20}, minItems: 2, maxItems: 3}
prompt:
  system: "{% include 'voice.j2' %}"
  user: "Write a tagline for {{ input.product }}."
"""


def test_user_task_from_a_folder_works_end_to_end(
    tmp_path: Path, settings: Settings, pool: ModelPool
) -> None:
    (tmp_path / "tagline.yaml").write_text(USER_TASK)
    (tmp_path / "voice.j2").write_text("You write short, upbeat marketing copy.")
    own = settings.model_copy(update={"tasks_dir": tmp_path})
    with (
        ServerThread(own, pool) as running,
        httpx.Client(base_url=running.base_url, timeout=300) as c,
    ):
        listed = {t["name"]: t for t in c.get("/v1/tasks").json()["data"]}
        assert "tagline" in listed and len(listed) == 12
        data = {"product": "a solar-powered lamp"}
        r = c.post("/v1/tasks/tagline", json={"input": data})
    assert r.status_code == 200, r.text
    assert_valid(listed["tagline"], data, r.json())
    assert r.json()["version"] == "3"


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "code"),
    [
        (
            "/v1/tasks/quiz",
            {"input": {"count": 2}},
            400,
            "input.topic",
            "missing_required_parameter",
        ),
        (
            "/v1/tasks/quiz",
            {"input": {"topic": "x", "persona": {"difficulty": "guru"}}},
            400,
            "input.persona.difficulty",
            "invalid_value",
        ),
        (
            "/v1/tasks/meal-plan",
            {"input": {"constraints": {"duration_days": 30}}},
            400,
            "input.constraints.duration_days",
            "invalid_value",
        ),
        ("/v1/tasks/quiz", {}, 400, "input", "missing_required_parameter"),
        (
            "/v1/tasks/quiz",
            {"input": {"topic": "x"}, "temperature": 1},
            400,
            "temperature",
            "unknown_parameter",
        ),
        (
            "/v1/tasks/quiz",
            {"input": {"topic": "x"}, "max_attempts": 0},
            400,
            "max_attempts",
            "invalid_value",
        ),
        ("/v1/tasks/nope", {"input": {}}, 404, "name", "task_not_found"),
        (
            "/v1/tasks/quiz",
            {"input": {"topic": "x"}, "model": "no-such-model"},
            404,
            "model",
            "model_not_found",
        ),
    ],
)
def test_bad_task_requests_name_the_field(
    http: httpx.Client, path: str, body: dict[str, Any], status: int, param: str, code: str
) -> None:
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["code"] == code


def test_bad_input_on_a_stream_is_a_plain_400(http: httpx.Client) -> None:
    r = http.post("/v1/tasks/quiz?stream=true", json={"input": {"count": 9, "topic": "x"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input.count"


def test_repair_and_fallback_are_reported_with_the_real_model(http: httpx.Client) -> None:
    common = [
        "salt",
        "oil",
        "water",
        "garlic",
        "onion",
        "sugar",
        "butter",
        "cheese",
        "chicken",
        "rice",
        "egg",
        "flour",
        "lemon",
    ]
    data = {
        "user_preferences": {"dietary_restrictions": ["vegan"], "disliked_ingredients": common},
        "constraints": {"duration_days": 1, "servings_per_meal": 2},
    }
    r = http.post("/v1/tasks/meal-plan", json={"input": data, "max_attempts": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    meta = body["metadata"]
    values = validate_input(http.get("/v1/tasks/meal-plan").json()["input_schema"], data)
    assert mealplan.check_plan(body["result"], values, {}) == []
    assert meta["repairs"], "the model kept every rule at once; this input should be hard"
    assert meta["fallback"] == "meal-plan-catalogue" or meta["attempts"] == 2


def test_batch_answers_in_order_and_isolates_failures(http: httpx.Client) -> None:
    chat = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 8,
    }
    requests = [
        {"custom_id": "a", "type": "chat", "body": chat},
        {
            "custom_id": "b",
            "type": "task",
            "task": "code-analysis",
            "body": {"input": {"code": "x = (", "language": "python"}},
        },
        {"custom_id": "c", "type": "chat", "body": {**chat, "max_tokens": 0}},
        {"custom_id": "d", "type": "task", "task": "nope", "body": {"input": {}}},
        {"custom_id": "e", "type": "task", "task": "quiz", "body": {"input": {}}},
        {"custom_id": "f", "type": "chat", "body": {**chat, "stream": True}},
        {"custom_id": "g", "type": "task", "body": {"input": {}}},
    ]
    r = http.post("/v1/batch", json={"requests": requests, "concurrency": 2})
    assert r.status_code == 200, r.text
    out = r.json()
    results = out["results"]
    assert [x["custom_id"] for x in results] == list("abcdefg")
    assert [x["index"] for x in results] == list(range(7))
    assert [x["status_code"] for x in results] == [200, 200, 400, 404, 400, 400, 400]
    assert out["succeeded"] == 2 and out["failed"] == 5
    assert results[0]["body"]["object"] == "chat.completion"
    assert results[1]["body"]["result"]["syntax_errors"][0]["line"] == 1
    assert results[2]["body"]["error"]["param"] == "max_tokens"
    assert results[4]["body"]["error"]["param"] == "input.topic"
    assert results[5]["body"]["error"]["param"] == "stream"
    assert results[6]["body"]["error"]["param"] == "task"
    too_many = http.post("/v1/batch", json={"requests": [requests[0]] * 65})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "requests"


def test_response_format_reports_its_attempts(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "country": {"type": "string", "maxLength": 30},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Name a city and its country."}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert raw.headers["x-offramp-output-attempts"] == "1"  # the grammar makes it valid at once
    assert raw.headers["x-offramp-deployment"]
    completion = raw.parse()
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)
