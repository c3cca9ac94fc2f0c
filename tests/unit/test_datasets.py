"""Samples and feedback in the ledger (SQLite and PostgreSQL): filters, retention, and
datasets exported and imported in OpenAI's fine-tuning format; the ``offramp data``
command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from offramp.finetune.dataset import read_jsonl
from offramp.finetune.samples import export_samples, import_samples
from offramp.ledger.datasets import MetricCondition, SampleFilter, find_samples
from offramp.ledger.feedback import insert_feedback
from offramp.ledger.migrations import MIGRATIONS
from offramp.ledger.samples import (
    FeedbackRecord,
    Sample,
    get_sample,
    prune,
    set_reference,
    write_captured,
)
from offramp.ledger.store import open_engine
from offramp.settings import Settings
from tests.backing import postgres_schema

DAY = 86400.0
NOW = time.time()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = open_engine(Settings(ledger_path=tmp_path / "ledger.db"))
        yield made
        made.dispose()
        return
    with postgres_schema() as url:
        made = open_engine(Settings(ledger_url=url))
        yield made
        made.dispose()


def chat_sample(n: int, **fields: Any) -> Sample:
    values: dict[str, Any] = {
        "id": f"smp_{n}",
        "ts": NOW - n * DAY,
        "request_id": f"req_{n}",
        "endpoint": "chat",
        "model": "gpt-4o-mini",
        "route": "gpt-4o-mini",
        "deployment": "local/smollm2",
        "request": {"messages": [{"role": "user", "content": f"question {n}"}]},
        "response": {"role": "assistant", "content": f"answer {n}"},
        **fields,
    }
    return Sample(**values)


def rate(engine: Engine, n: int, metric: str, value: float, at: float = NOW) -> None:
    insert_feedback(engine, FeedbackRecord(f"fb_{n}_{metric}_{at}", at, f"req_{n}", "api",
                                           metric=metric, value=value))  # fmt: skip


def test_the_migration_is_named_as_agreed() -> None:
    assert [name for name, _ in MIGRATIONS][4] == "0005_samples_feedback"


def test_filters_by_route_task_model_metric_date_and_reference(engine: Engine) -> None:
    write_captured(
        engine,
        [
            chat_sample(0),
            chat_sample(1, route="other", model="other", deployment="openai/gpt-4o"),
            chat_sample(2, endpoint="task", task="word",
                        reference={"result": {"word": "x"}}, reference_model="teacher"),
            chat_sample(10),
        ],
    )  # fmt: skip
    rate(engine, 0, "correct", 1.0)
    rate(engine, 1, "correct", 1.0, at=NOW - 10)
    rate(engine, 1, "correct", 0.0, at=NOW)  # the later value wins
    rate(engine, 2, "score", 0.9)

    def ids(**where: Any) -> list[str]:
        return [j.sample.id for j in find_samples(engine, SampleFilter(**where))]

    assert ids() == ["smp_10", "smp_2", "smp_1", "smp_0"]  # oldest first
    assert ids(route="other") == ["smp_1"]
    assert ids(task="word") == ["smp_2"]
    assert ids(model="openai/gpt-4o") == ["smp_1"]  # by deployment, or the name asked
    assert ids(model="other") == ["smp_1"]
    assert ids(metric=MetricCondition.parse("correct=true")) == ["smp_0"]
    assert ids(metric=MetricCondition.parse("correct<1")) == ["smp_1"]
    assert ids(metric=MetricCondition.parse("score>=0.9")) == ["smp_2"]
    assert ids(since=NOW - 1.5 * DAY) == ["smp_1", "smp_0"]
    assert ids(until=NOW - 1.5 * DAY) == ["smp_10", "smp_2"]
    assert ids(has_reference=True) == ["smp_2"]
    assert ids(request_id="req_1") == ["smp_1"]
    insert_feedback(engine, FeedbackRecord("fb_d", NOW, "req_0", "api",
                                           demonstration={"role": "assistant", "content": "D"}))  # fmt: skip
    assert ids(has_reference=True) == ["smp_2", "smp_0"]
    [zero] = [j for j in find_samples(engine) if j.sample.id == "smp_0"]
    assert zero.reference == {"role": "assistant", "content": "D"}
    assert zero.metrics == {"correct": 1.0}


def test_retention_deletes_only_expired_samples(engine: Engine) -> None:
    write_captured(engine, [chat_sample(n) for n in (0, 5, 29, 31, 90)])
    assert prune(engine, 30 * DAY) == 2
    assert [j.sample.id for j in find_samples(engine)] == ["smp_29", "smp_5", "smp_0"]
    assert prune(engine, 30 * DAY) == 0


def test_a_reference_reaches_every_sample_of_its_request(engine: Engine) -> None:
    write_captured(engine, [chat_sample(0)])
    assert set_reference(engine, "req_0", {"role": "assistant", "content": "R"}, "feedback") == 1
    assert set_reference(engine, "req_none", {"content": "R"}, "feedback") == 0
    stored = get_sample(engine, "smp_0")
    assert stored is not None and stored.reference == {"role": "assistant", "content": "R"}
    assert get_sample(engine, "req_0") == stored  # by request id too
    assert get_sample(engine, "smp_missing") is None


def test_export_prefers_references_deduplicates_and_round_trips(
    engine: Engine, tmp_path: Path
) -> None:
    samples = [chat_sample(n) for n in range(40)]
    samples.append(chat_sample(40, request=samples[3].request, response=samples[3].response))
    samples[7] = chat_sample(7, reference={"role": "assistant", "content": "teacher 7"},
                             reference_model="teacher")  # fmt: skip
    write_captured(engine, samples)
    out = tmp_path / "all.jsonl"
    assert export_samples(engine, out) == 40  # the duplicate of 3 once
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    by_question = {line["messages"][0]["content"]: line for line in lines}
    assert by_question["question 7"]["messages"][-1] == {"role": "assistant",
                                                         "content": "teacher 7"}  # fmt: skip
    assert by_question["question 8"]["messages"][-1]["content"] == "answer 8"
    own = tmp_path / "own.jsonl"
    export_samples(engine, own, prefer="response")
    assert "teacher 7" not in own.read_text()

    train, evals = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    n_train = export_samples(engine, train, split="train", eval_share=0.25)
    n_eval = export_samples(engine, evals, split="eval", eval_share=0.25)
    assert n_train + n_eval == 40 and 0 < n_eval < 20
    again = tmp_path / "again.jsonl"
    export_samples(engine, again, split="eval", eval_share=0.25)
    assert again.read_text() == evals.read_text()  # the same split every time
    train_prompts = {e.prompt_digest() for e in read_jsonl(train)}
    assert not train_prompts & {e.prompt_digest() for e in read_jsonl(evals)}

    assert import_samples(engine, out, model="imported") == (0 + 40, 0)
    assert import_samples(engine, out) == (0, 40)  # already there
    imported = find_samples(engine, SampleFilter(model="imported"))
    assert len(imported) == 40 and {j.sample.endpoint for j in imported} == {"import"}
    back = tmp_path / "back.jsonl"
    export_samples(engine, back, SampleFilter(model="imported"))
    assert sorted(back.read_text().splitlines()) == sorted(out.read_text().splitlines())


def _offramp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "250",
           "OFFRAMP_LEDGER_PATH": str(tmp_path / "l.db")}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "offramp", "data", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.slow  # eight real processes of the command
def test_the_data_command(tmp_path: Path) -> None:
    engine = open_engine(Settings(ledger_path=tmp_path / "l.db"))
    write_captured(engine, [chat_sample(n) for n in (0, 1, 45)])
    rate(engine, 1, "correct", 1.0)
    engine.dispose()
    listed = _offramp(tmp_path, "list", "--metric", "correct=true")
    assert listed.returncode == 0, listed.stderr
    assert "1 sample(s)" in listed.stdout and "question 1" in listed.stdout
    assert "question 0" not in listed.stdout
    since = datetime.fromtimestamp(NOW - 0.5 * DAY, UTC).strftime("%Y-%m-%dT%H:%M")
    as_json = _offramp(tmp_path, "list", "--since", since, "--json")
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == ["smp_0"]
    shown = _offramp(tmp_path, "show", "smp_1")
    assert json.loads(shown.stdout)["feedback"] == {"correct": 1.0}
    exported = _offramp(tmp_path, "export", "--out", str(tmp_path / "d.jsonl"))
    assert exported.stdout.strip() == f"wrote 3 example(s) to {tmp_path / 'd.jsonl'}"
    pruned = _offramp(tmp_path, "prune")  # the default retention: 30 days
    assert pruned.stdout.strip() == "deleted 1 sample(s)"
    imported = _offramp(tmp_path, "import", str(tmp_path / "d.jsonl"))
    assert imported.stdout.strip().startswith("imported 3 sample(s)")
    bad = _offramp(tmp_path, "list", "--since", "last tuesday")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "offramp: error: --since takes a date (2026-01-31, 2026-01-31T12:00) or an age "
        "(7d, 12h), got 'last tuesday'"
    ]
    missing = _offramp(tmp_path, "import", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stderr.startswith("offramp: error: cannot read")
