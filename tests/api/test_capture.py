"""Capture, shadow mode and feedback through a real server: the official SDK as client,
scripted OpenAI-compatible upstreams on loopback as the student and the teacher, and the
samples and feedback read back from SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from offramp.app import build_pool
from offramp.keys.store import KeyStore
from offramp.ledger.feedback import insert_feedback
from offramp.ledger.samples import FeedbackRecord, Sample, sample_from_row, write_captured
from offramp.ledger.schema import feedback, samples, usage
from offramp.ledger.store import open_engine
from offramp.models.registry import default_config_path
from offramp.settings import Settings
from tests.backing import postgres_schema
from tests.scripted_upstream import ScriptedUpstream
from tests.servers import ServerThread

ADMIN = "admin-secret"
CONFIG = """
metrics:
  - {name: correct, type: boolean, optimize: max}
  - {name: score, type: float, optimize: max}
routes:
  - name: captured
    capture: true
    deployments: [{provider: openai-compatible, model: student, base_url: STUDENT}]
  - name: plain
    deployments: [{provider: openai-compatible, model: student, base_url: STUDENT}]
  - name: teacher
    retry: {max_attempts: 1}
    breaker: {enabled: false}
    deployments: [{provider: openai-compatible, model: teacher, base_url: TEACHER}]
  - name: shadowed
    shadow: {route: teacher, share: 1.0, timeout_s: 10}
    deployments: [{provider: openai-compatible, model: student, base_url: STUDENT}]
  - name: recalled
    in_context: {k: 2, metric: correct, min_value: 1, refresh_s: 0}
    deployments: [{provider: openai-compatible, model: student, base_url: STUDENT}]
  - name: impatient
    shadow: {route: teacher, timeout_s: 0.3}
    deployments: [{provider: openai-compatible, model: student, base_url: STUDENT}]
"""
TASK = """
name: {name}
description: One word about a subject.
route: {{model: plain, max_tokens: 20, max_attempts: 1}}
{extra}
input_schema:
  type: object
  additionalProperties: false
  required: [subject]
  properties: {{subject: {{type: string}}}}
output_schema:
  type: object
  additionalProperties: false
  required: [word]
  properties: {{word: {{type: string, minLength: 1}}}}
prompt:
  system: You answer with one word.
  user: "One word about {{{{ input.subject }}}}."
"""
TASKS = {
    "kept": "capture: true",
    "unkept": "",
    "taught": "shadow: {route: teacher, share: 1.0}",
    "recalling": "in_context: {k: 1, refresh_s: 0}",
}


@dataclass
class Served:
    server: ServerThread
    engine: Engine
    student: ScriptedUpstream
    teacher: ScriptedUpstream
    key: str  # an ordinary key
    watched: str  # a key named in capture_keys
    watched_id: str

    def sdk(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.base_url + "/v1", api_key=key or self.key, max_retries=0
        )

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.post(self.server.base_url + path, json=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    with ScriptedUpstream("student") as student, ScriptedUpstream("teacher") as teacher:
        yield student, teacher


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest,
    settings: Settings,
    upstreams: tuple[ScriptedUpstream, ScriptedUpstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    student, teacher = upstreams
    tmp = tmp_path_factory.mktemp(f"capture-{request.param}")
    config = tmp / "offramp.yaml"
    routes = CONFIG.replace("STUDENT", student.url).replace("TEACHER", teacher.url)
    config.write_text(default_config_path().read_text() + routes)  # the embedded models too
    tasks = tmp / "tasks"
    tasks.mkdir()
    for name, extra in TASKS.items():
        (tasks / f"{name}.yaml").write_text(TASK.format(name=name, extra=extra))
    with _ledger(request.param, tmp) as ledger:
        base = settings.model_copy(
            update={
                **ledger,
                "config": config,
                "tasks_dir": tasks,
                "preload": False,
                "auth": True,
                "admin_key": SecretStr(ADMIN),
                "ledger_flush_ms": 20.0,
                "capture_redact": [r"ORDER-\d{6}"],
            }
        )
        engine = open_engine(base)
        expired = chat_sample("req_expired", time.time() - 31 * 86400)
        write_captured(engine, [expired, chat_sample("req_recent", time.time() - 29 * 86400)])
        store = KeyStore(engine)
        _, key = store.create("app")
        watched, watched_secret = store.create("watched")
        mine = base.model_copy(update={"capture_keys": [watched.id]})
        pool = build_pool(mine)
        with ServerThread(mine, pool) as server:
            yield Served(server, engine, student, teacher, key, watched_secret, watched.id)
        engine.dispose()


@pytest.fixture
def app(served: Served) -> Served:
    served.student.reset()
    served.teacher.reset()
    return served


class _ledger:
    """Settings naming a fresh SQLite file or PostgreSQL schema."""

    def __init__(self, kind: str, tmp: Path):
        self._kind, self._tmp = kind, tmp
        self._schema = postgres_schema()

    def __enter__(self) -> dict[str, Any]:
        if self._kind == "sqlite":
            return {"ledger_path": self._tmp / "ledger.db", "ledger_url": None}
        return {"ledger_url": self._schema.__enter__()}

    def __exit__(self, *exc: object) -> None:
        if self._kind != "sqlite":
            self._schema.__exit__(None, None, None)


def chat_sample(request_id: str, ts: float, **fields: Any) -> Sample:
    return Sample(
        **{"id": f"smp_{uuid.uuid4().hex[:12]}", "ts": ts, "request_id": request_id,
           "endpoint": "chat", "model": "m",
           "request": {"messages": [{"role": "user", "content": "Q"}]},
           "response": {"role": "assistant", "content": "A"}, **fields}
    )  # fmt: skip


def rid() -> str:
    return f"req_test_{uuid.uuid4().hex[:12]}"


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``check()``'s first truthy value, polled (samples are written off the request path)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def samples_of(engine: Engine, request_id: str) -> list[Sample]:
    with engine.connect() as conn:
        rows = conn.execute(select(samples).where(samples.c.request_id == request_id))
        return [sample_from_row(r) for r in rows]


def feedback_of(engine: Engine, request_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(feedback).where(feedback.c.request_id == request_id)))


def stored(app: Served, request_id: str) -> list[Sample]:
    """The samples of ``request_id`` once written."""
    found: list[Sample] = eventually(lambda: samples_of(app.engine, request_id))
    return found


def usage_of(engine: Engine, request_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(usage).where(usage.c.request_id == request_id)))


def chat(app: Served, model: str, text: str, request_id: str, key: str | None = None) -> str:
    answer = app.sdk(key).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        extra_headers={"x-request-id": request_id},
    )
    return answer.choices[0].message.content or ""


# -- capture ------------------------------------------------------------------------


def test_a_route_with_capture_stores_each_door_and_one_without_stores_none(app: Served) -> None:
    whole, streamed, responses, messages, plain = rid(), rid(), rid(), rid(), rid()
    chat(app, "captured", "Hello there", whole)
    stream = app.sdk().chat.completions.create(
        model="captured", messages=[{"role": "user", "content": "Stream it"}], stream=True,
        extra_headers={"x-request-id": streamed},
    )  # fmt: skip
    streamed_text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    app.sdk().responses.create(
        model="captured", input="Via responses", extra_headers={"x-request-id": responses}
    )
    sent = httpx.post(
        app.server.base_url + "/v1/messages",
        json={"model": "captured", "max_tokens": 20,
              "messages": [{"role": "user", "content": "Via messages"}]},
        headers={"x-api-key": app.key, "x-request-id": messages},
    )  # fmt: skip
    chat(app, "plain", "Not kept", plain)
    assert sent.status_code == 200
    found = {r: stored(app, r) for r in (whole, streamed, responses, messages)}
    time.sleep(0.3)  # the writer's flush interval, several times over
    assert samples_of(app.engine, plain) == []
    endpoints = {r: s[0].endpoint for r, s in found.items()}
    assert endpoints == {whole: "chat", streamed: "chat", responses: "responses",
                         messages: "messages"}  # fmt: skip
    sample = found[whole][0]
    assert sample.request["messages"] == [{"role": "user", "content": "Hello there"}]
    assert sample.response == {"role": "assistant", "content": "student says: Hello there"}
    assert (sample.route, sample.model, sample.deployment) == (
        "captured", "captured", "openai-compatible/student"
    )  # fmt: skip
    assert sample.key_id is not None and sample.reference is None and sample.shadow is None
    assert found[streamed][0].response["content"] == streamed_text == "student says: Stream it"
    assert found[responses][0].request["messages"][-1]["content"] == "Via responses"


def test_a_key_in_capture_keys_is_captured_on_any_route(app: Served) -> None:
    watched, other = rid(), rid()
    chat(app, "plain", "Watch me", watched, key=app.watched)
    chat(app, "plain", "Not me", other)
    [sample] = eventually(lambda: samples_of(app.engine, watched))
    time.sleep(0.3)
    assert sample.key_id == app.watched_id and sample.route == "plain"
    assert samples_of(app.engine, other) == []


def test_emails_keys_and_configured_patterns_are_redacted_before_storage(app: Served) -> None:
    request_id = rid()
    secret = "sk-proj-" + "A1b2C3d4" * 4
    text = f"Mail ann.lee+x@example.co.uk with key {secret} about ORDER-123456 please"
    answer = chat(app, "captured", text, request_id)
    [sample] = eventually(lambda: samples_of(app.engine, request_id))
    stored = json.dumps([sample.request, sample.response])
    assert secret in answer  # the client's answer is untouched
    assert "example.co.uk" not in stored and secret not in stored and "123456" not in stored
    assert sample.request["messages"][0]["content"] == (
        "Mail [EMAIL] with key [API_KEY] about [REDACTED] please"
    )


def run_task(app: Served, name: str, request_id: str) -> httpx.Response:
    return httpx.post(
        app.server.base_url + f"/v1/tasks/{name}",
        json={"input": {"subject": "sun"}},
        headers={"Authorization": f"Bearer {app.key}", "x-request-id": request_id},
        timeout=60,
    )


def test_task_capture_follows_the_task_and_validators_are_recorded(app: Served) -> None:
    kept, unkept, invalid = rid(), rid(), rid()
    assert run_task(app, "kept", kept).status_code == 200
    assert run_task(app, "unkept", unkept).status_code == 200
    app.student.answer = lambda body: "not JSON at all"
    failed = run_task(app, "kept", invalid)
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "output_validation_failed"
    [sample] = eventually(lambda: samples_of(app.engine, kept))
    assert sample.endpoint == "task" and sample.task == "kept"
    assert sample.request["input"] == {"subject": "sun"}
    assert sample.request["messages"] == [
        {"role": "system", "content": "You answer with one word."},
        {"role": "user", "content": "One word about sun."},
    ]
    assert sample.response == {"result": {"word": "student"}}
    judged = eventually(lambda: feedback_of(app.engine, unkept))
    assert [(f.metric, f.value, f.source) for f in judged] == [("task_valid", 1.0, "validator")]
    [bad] = eventually(lambda: feedback_of(app.engine, invalid))
    assert (bad.metric, bad.value) == ("task_valid", 0.0) and "JSON" in bad.comment
    assert samples_of(app.engine, unkept) == samples_of(app.engine, invalid) == []


def test_samples_past_retention_are_deleted_when_the_server_starts(app: Served) -> None:
    assert eventually(lambda: not samples_of(app.engine, "req_expired"))
    assert len(samples_of(app.engine, "req_recent")) == 1


# -- shadow mode --------------------------------------------------------------------


def test_shadow_stores_the_teachers_answer_without_waiting_for_it(app: Served) -> None:
    app.teacher.delay_s = 2.0
    request_id = rid()
    started = time.monotonic()
    answer = chat(app, "shadowed", "What is 2+2?", request_id)
    took = time.monotonic() - started
    assert answer == "student says: What is 2+2?"
    assert took < 1.5, f"the client waited {took:.2f}s for a 2s teacher"
    [sample] = eventually(
        lambda: [s for s in samples_of(app.engine, request_id) if s.shadow], timeout=15
    )
    assert sample.shadow == "ok" and sample.reference_model == "teacher"
    assert sample.reference == {"role": "assistant", "content": "teacher says: What is 2+2?"}
    assert sample.response["content"] == answer
    shadow_rows = eventually(lambda: usage_of(app.engine, f"{request_id}:shadow"))
    assert [(r.endpoint, r.model, r.status, r.key_id) for r in shadow_rows] == [
        ("shadow", "teacher", 200, None)
    ]
    assert app.teacher.received[-1]["messages"] == [{"role": "user", "content": "What is 2+2?"}]


def test_a_failing_or_hanging_teacher_never_fails_the_request(app: Served) -> None:
    app.teacher.fail_status = 500
    failed = rid()
    assert chat(app, "shadowed", "Fail please", failed) == "student says: Fail please"
    [sample] = eventually(lambda: samples_of(app.engine, failed))
    assert sample.shadow == "failed" and sample.reference is None
    rows = eventually(lambda: usage_of(app.engine, f"{failed}:shadow"))
    assert rows[0].endpoint == "shadow" and rows[0].status == 502
    app.teacher.fail_status = None
    app.teacher.delay_s = 3.0
    hung = rid()
    started = time.monotonic()
    assert chat(app, "impatient", "Hang please", hung) == "student says: Hang please"
    assert time.monotonic() - started < 1.5
    [late] = eventually(lambda: samples_of(app.engine, hung))
    assert late.shadow == "timeout" and late.reference is None


def test_a_task_run_with_shadow_runs_the_same_task_on_the_teacher(app: Served) -> None:
    request_id = rid()
    assert run_task(app, "taught", request_id).json()["result"] == {"word": "student"}
    [sample] = eventually(lambda: [s for s in samples_of(app.engine, request_id) if s.shadow])
    assert sample.shadow == "ok" and sample.task == "taught"
    assert sample.reference == {"result": {"word": "teacher"}}
    [row] = eventually(lambda: usage_of(app.engine, f"{request_id}:shadow"))
    assert (row.endpoint, row.task, row.model) == ("shadow", "taught", "teacher")


# -- feedback -----------------------------------------------------------------------


def test_feedback_is_stored_and_a_demonstration_becomes_the_reference(app: Served) -> None:
    request_id = rid()
    chat(app, "captured", "Capital of France?", request_id)
    rated = app.post("/v1/feedback", {"request_id": request_id, "metric": "correct",
                                      "value": False, "comment": "wrong city"})  # fmt: skip
    scored = app.post("/v1/feedback", {"request_id": request_id, "metric": "score", "value": 3})
    shown = app.post("/v1/feedback", {"request_id": request_id, "demonstration": "Paris."})
    assert [r.status_code for r in (rated, scored, shown)] == [200, 200, 200], rated.text
    assert rated.json()["id"].startswith("fb_") and rated.json()["value"] == 0.0
    stored = {(f.metric, f.value, f.comment) for f in feedback_of(app.engine, request_id)}
    assert stored == {("correct", 0.0, "wrong city"), ("score", 3.0, None), (None, None, None)}
    [sample] = eventually(
        lambda: [s for s in samples_of(app.engine, request_id) if s.reference is not None]
    )
    assert sample.reference == {"role": "assistant", "content": "Paris."}
    assert sample.reference_model == "feedback"


def test_feedback_names_a_responses_id(app: Served) -> None:
    request_id = rid()
    made = app.sdk().responses.create(
        model="plain", input="Rate me", extra_headers={"x-request-id": request_id}
    )
    given = app.post("/v1/feedback", {"response_id": made.id, "metric": "correct", "value": True})
    assert given.status_code == 200, given.text
    assert given.json()["request_id"] == request_id
    assert [(f.metric, f.value) for f in feedback_of(app.engine, request_id)] == [("correct", 1.0)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metric": "correct", "value": True}, "request_id"),
        ({"request_id": "R", "response_id": "resp_x", "comment": "both"}, "request_id"),
        ({"request_id": "R"}, "value"),
        ({"request_id": "R", "value": 1.0}, "metric"),
        ({"request_id": "R", "metric": "undeclared", "value": 1.0}, "metric"),
        ({"request_id": "R", "metric": "correct", "value": 1.0}, "value"),
        ({"request_id": "R", "metric": "score", "value": True}, "value"),
        ({"request_id": "R", "metric": "score", "value": "3"}, "value"),
        ({"request_id": "R", "metric": "correct"}, "value"),
        ({"request_id": "R", "demonstration": {"role": "user", "content": "x"}},
         "demonstration.role"),
        ({"request_id": "R", "comment": "x", "extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_bad_feedback_is_a_400_naming_the_field(
    app: Served, body: dict[str, Any], param: str
) -> None:
    request_id = rid()
    chat(app, "plain", "Judge me", request_id)
    sent = {k: (request_id if v == "R" else v) for k, v in body.items()}
    answer = app.post("/v1/feedback", sent)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_feedback_on_another_keys_request_is_404_but_the_admin_may_give_it(
    app: Served,
) -> None:
    request_id = rid()
    chat(app, "plain", "Mine", request_id, key=app.watched)
    body = {"request_id": request_id, "metric": "correct", "value": True}
    theirs = app.post("/v1/feedback", body)
    unknown = app.post("/v1/feedback", {**body, "request_id": "req_nobody"})
    admin = app.post("/v1/feedback", body, key=ADMIN)
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "request_not_found")
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "request_id"
    assert admin.status_code == 200
    [row] = feedback_of(app.engine, request_id)
    assert row.key_id is None and row.source == "api"


# -- in-context examples --------------------------------------------------------------


def test_the_nearest_good_samples_become_earlier_turns(app: Served) -> None:
    tag = uuid.uuid4().hex[:8]
    known = [
        ("How do I bake sourdough bread?", "Feed a starter, then bake.", 1.0),
        ("What is the capital of France?", "Paris.", 1.0),
        ("How to bake a chocolate cake?", "Mix, then bake at 180 C.", 1.0),
        ("How do I bake bread at home?", "No idea.", 0.0),  # rated bad: never shown
        ("Tell me about baking bread", "Flour and water.", None),  # unrated: never shown
    ]
    write_captured(
        app.engine,
        [Sample(f"smp_{tag}_{i}", time.time(), f"req_{tag}_{i}", "chat", "recalled",
                {"messages": [{"role": "user", "content": question}]},
                {"role": "assistant", "content": answer}, route="recalled")
         for i, (question, answer, _) in enumerate(known)],
    )  # fmt: skip
    for i, (_, _, value) in enumerate(known):
        if value is not None:
            insert_feedback(app.engine, FeedbackRecord(f"fb_{tag}_{i}", time.time(),
                            f"req_{tag}_{i}", "api", metric="correct", value=value))  # fmt: skip
    app.sdk().chat.completions.create(
        model="recalled",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "How can I bake bread?"}],
    )  # fmt: skip
    assert app.student.received[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How to bake a chocolate cake?"},
        {"role": "assistant", "content": "Mix, then bake at 180 C."},
        {"role": "user", "content": "How do I bake sourdough bread?"},  # the nearest, last
        {"role": "assistant", "content": "Feed a starter, then bake."},
        {"role": "user", "content": "How can I bake bread?"},
    ]
    plain = app.sdk().chat.completions.create(
        model="plain", messages=[{"role": "user", "content": "How can I bake bread?"}]
    )
    assert plain.choices[0].message.content == "student says: How can I bake bread?"
    assert len(app.student.received[-1]["messages"]) == 1  # no examples without the option


def test_a_task_with_in_context_examples_gets_its_nearest_run(app: Served) -> None:
    prompt = [{"role": "system", "content": "You answer with one word."},
              {"role": "user", "content": "One word about snow."}]  # fmt: skip
    write_captured(app.engine, [
        chat_sample(rid(), time.time(), endpoint="task", task="recalling",
                    request={"task": "recalling", "input": {"subject": "snow"},
                             "messages": prompt},
                    response={"result": {"word": "white"}}),
        chat_sample(rid(), time.time(), endpoint="task", task="recalling",
                    request={"task": "recalling", "input": {"subject": "tax law"},
                             "messages": [prompt[0], {"role": "user",
                                                      "content": "One word about tax law."}]},
                    response={"result": {"word": "dull"}}),
    ])  # fmt: skip
    run = app.post("/v1/tasks/recalling", {"input": {"subject": "snowfall"}})
    assert run.status_code == 200, run.text
    sent = app.student.received[-1]["messages"]
    assert sent[:4] == [
        *prompt,
        {"role": "assistant", "content": '{"word": "white"}'},
        {"role": "user", "content": "One word about snowfall."},
    ]
