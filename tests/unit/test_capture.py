"""Capture's decisions, redaction, the config it reads and the shape of its examples."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from offramp.errors import InvalidRequest
from offramp.finetune.samples import assistant_message, example_of, sample_of
from offramp.gateway.capture import Capture, Plan, redacted
from offramp.gateway.redaction import Redactor
from offramp.ledger.datasets import JudgedSample, MetricCondition
from offramp.ledger.feedback import load_metrics
from offramp.ledger.records import UsageRecord
from offramp.ledger.samples import Captured, FeedbackRecord, Sample
from offramp.ledger.writer import LedgerWriter
from offramp.routing.config import CaptureSpec, RouteSpec, ShadowSpec
from offramp.settings import Settings


def test_redaction_replaces_emails_api_keys_and_configured_patterns() -> None:
    redactor = Redactor([r"\b\d{3}-\d{2}-\d{4}\b"])
    text = (
        "write to Jo.Doe+tag@mail.example.org, key sk-ant-api03-abcdefghijklmnopqrstuv, "
        "gh token ghp_abcdefghijklmnopqrstuvwxyz012345, AKIAABCDEFGHIJKLMNOP, "
        "Authorization: Bearer abc.def.ghijklmnopqrstu, ssn 123-45-6789; "
        "but keep sk-short, a@b and 2026-01-31"
    )
    assert redactor.text(text) == (
        "write to [EMAIL], key [API_KEY], gh token [API_KEY], [API_KEY], "
        "Authorization: Bearer [API_KEY], ssn [REDACTED]; but keep sk-short, a@b and 2026-01-31"
    )
    nested = {"messages": [{"role": "user", "content": "me@x.io"}], "n": 3, "k": None}
    assert redactor.value(nested) == {
        "messages": [{"role": "user", "content": "[EMAIL]"}],
        "n": 3,
        "k": None,
    }


def test_redacted_covers_samples_and_feedback() -> None:
    sample = Sample("smp_1", 1.0, "r", "chat", "m", {"messages": [{"content": "a@b.com"}]},
                    {"content": "sk-" + "x" * 20}, reference={"content": "c@d.org"},
                    end_user="e@f.net")  # fmt: skip
    judged = FeedbackRecord("fb_1", 1.0, "r", "api", comment="g@h.io", demonstration="i@j.io")
    out = redacted(Redactor(), [sample, judged])
    assert out[0] == Sample("smp_1", 1.0, "r", "chat", "m", {"messages": [{"content": "[EMAIL]"}]},
                            {"content": "[API_KEY]"}, reference={"content": "[EMAIL]"},
                            end_user="[EMAIL]")  # fmt: skip
    assert isinstance(out[1], FeedbackRecord)
    assert (out[1].comment, out[1].demonstration) == ("[EMAIL]", "[EMAIL]")


def test_a_bad_redaction_pattern_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"capture_redact: bad pattern '\(unclosed'"):
        Settings(capture_redact=["(unclosed"])


def _record(status: int = 200, endpoint: str = "chat", key: str | None = None) -> UsageRecord:
    return UsageRecord("req_1", 1.0, endpoint, "m", "m", "d", status, key_id=key)


def _capture(**settings: Any) -> tuple[Capture, LedgerWriter[Captured], list[Captured]]:
    written: list[Captured] = []
    writer: LedgerWriter[Captured] = LedgerWriter(written.extend, max_queue=10, flush_s=0.01)
    writer.start()
    return Capture(Settings(**settings), writer, random.Random(7)), writer, written


def test_capture_is_off_unless_a_route_task_or_key_asks() -> None:
    capture, _, _ = _capture(capture_keys=["key_a"])
    on, off = CaptureSpec(), CaptureSpec(enabled=False)
    shadow = ShadowSpec(route="teacher")
    assert capture.plan(_record(), None, None) is None
    assert capture.plan(_record(), off, None) is None
    assert capture.plan(_record(), on, None) == Plan()
    assert capture.plan(_record(key="key_a"), None, None) == Plan()
    assert capture.plan(_record(key="key_b"), None, None) is None
    assert capture.plan(_record(), None, shadow) == Plan(shadow)
    assert capture.plan(_record(status=429), on, shadow) is None
    assert capture.plan(_record(endpoint="shadow"), on, shadow) is None  # a teacher's own
    assert capture.plan(None, on, None) is None


def test_sample_rate_and_shadow_share_are_shares() -> None:
    capture, _, _ = _capture()
    rate = CaptureSpec(sample_rate=0.3)
    kept = sum(capture.plan(_record(), rate, None) is not None for _ in range(2000))
    shadow = ShadowSpec(route="t", share=0.25)
    shadowed = sum(capture.plan(_record(), None, shadow) is not None for _ in range(2000))
    assert 520 <= kept <= 680  # 600 expected; 0.3 ± 4 sigma
    assert 420 <= shadowed <= 580
    none = CaptureSpec(sample_rate=0.0)
    assert all(capture.plan(_record(), none, None) is None for _ in range(100))


def test_route_config_reads_capture_and_shadow() -> None:
    route = RouteSpec.model_validate(
        {
            "name": "r",
            "capture": True,
            "shadow": {"route": "t", "share": 0.3},
            "deployments": [{"model": "m"}],
        }
    )
    assert route.capture == CaptureSpec(enabled=True, sample_rate=1.0)
    assert route.shadow == ShadowSpec(route="t", share=0.3)
    with pytest.raises(ValidationError, match="cannot shadow itself"):
        RouteSpec.model_validate(
            {"name": "r", "shadow": {"route": "r"}, "deployments": [{"model": "m"}]}
        )
    with pytest.raises(ValidationError, match="share"):
        ShadowSpec.model_validate({"route": "t", "share": 1.5})


def test_metrics_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("metrics:\n  - {name: correct, type: boolean}\n"
                      "  - {name: cost, type: float, optimize: min}\n")  # fmt: skip
    metrics = load_metrics(config)
    assert sorted(metrics) == ["correct", "cost", "task_valid"]
    assert (metrics["correct"].optimize, metrics["cost"].optimize) == ("max", "min")
    config.write_text("metrics:\n  - {name: correct, type: integer}\n")
    with pytest.raises(InvalidRequest, match="metrics") as bad:
        load_metrics(config)
    assert bad.value.param == "config"
    config.write_text("metrics:\n  - {name: task_valid, type: boolean}\n")
    with pytest.raises(InvalidRequest, match="declared twice"):
        load_metrics(config)


@pytest.mark.parametrize(
    ("text", "holds", "fails"),
    [("correct=true", 1.0, 0.0), ("score>=0.8", 0.8, 0.79), ("latency<=100", 100, 101),
     ("x>1", 2, 1), ("x<1", 0, 1)],
)  # fmt: skip
def test_metric_conditions(text: str, holds: float, fails: float) -> None:
    condition = MetricCondition.parse(text)
    assert condition.holds(holds) and not condition.holds(fails)
    assert not condition.holds(None)


@pytest.mark.parametrize("text", ["correct", "=1", "score>=high", "a b=1"])
def test_bad_metric_conditions_name_the_option(text: str) -> None:
    with pytest.raises(InvalidRequest) as bad:
        MetricCondition.parse(text)
    assert bad.value.param == "metric"


def test_examples_prefer_the_reference_and_a_demonstration_over_it() -> None:
    ask = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "2+2?"}],
           "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}  # fmt: skip
    own = {"role": "assistant", "content": "5", "refusal": None}
    sample = Sample("smp_1", 1.0, "r", "chat", "m", ask, own,
                    reference={"role": "assistant", "content": "4"})  # fmt: skip
    by_teacher = example_of(JudgedSample(sample))
    by_person = example_of(JudgedSample(sample, demonstration={"role": "assistant",
                                                               "content": "four"}))  # fmt: skip
    by_model = example_of(JudgedSample(sample), prefer="response")
    assert by_teacher is not None and by_person is not None and by_model is not None
    assert by_teacher.messages[-1] == {"role": "assistant", "content": "4"}
    assert by_person.messages[-1]["content"] == "four"
    assert by_model.messages[-1] == {"role": "assistant", "content": "5"}  # refusal dropped
    assert by_model.prompt == tuple(ask["messages"]) and by_model.tools == tuple(ask["tools"])
    assert by_teacher.metadata["answer"] == "reference"
    task = Sample("smp_2", 1.0, "r", "task", "m", {"task": "t", "input": {}, "messages":
                  ask["messages"]}, {"result": {"word": "é"}})  # fmt: skip
    made = example_of(JudgedSample(task))
    assert made is not None and made.answer == '{"word": "é"}'
    assert example_of(JudgedSample(Sample("s", 1.0, "r", "task", "m", {"task": "t"}, {}))) is None
    assert assistant_message({"role": "assistant", "content": None}) is None


def test_an_imported_example_becomes_an_import_sample() -> None:
    sample = Sample("s", 1.0, "r", "chat", "m", {"messages": [{"role": "user", "content": "q"}]},
                    {"role": "assistant", "content": "a"})  # fmt: skip
    example = example_of(JudgedSample(sample))
    assert example is not None
    back = sample_of(example)
    assert (back.endpoint, back.model) == ("import", "import")
    assert back.request == sample.request and back.response == sample.response
    assert back.request_id == sample_of(example).request_id  # the same example, the same id


def test_teachers_are_bounded_by_slots_and_time_and_never_raise() -> None:
    capture, writer, written = _capture(shadow_concurrency=1)

    async def slow(route: str) -> Any:
        await asyncio.sleep(5)

    async def broken(route: str) -> Any:
        raise RuntimeError("the teacher is down")

    async def good(route: str) -> Any:
        return {"role": "assistant", "content": f"{route} knows"}

    async def scenario() -> None:
        shadow = Plan(ShadowSpec(route="teacher", timeout_s=0.2))
        capture.keep(_record(), shadow, {"messages": []}, {"content": "a"}, slow)
        capture.keep(_record(), shadow, {"messages": []}, {"content": "b"}, good)  # busy
        await asyncio.sleep(0.4)  # the slow one times out
        capture.keep(_record(), shadow, {"messages": []}, {"content": "c"}, broken)
        await asyncio.sleep(0.05)
        capture.keep(_record(), shadow, {"messages": []}, {"content": "d"}, good)
        await asyncio.sleep(0.05)
        capture.keep(_record(), shadow, {"messages": []}, {"content": "e"}, slow)
        await capture.aclose()  # a teacher still running is stopped, its sample kept

    asyncio.run(scenario())
    writer.close()  # everything queued is written
    outcomes = [(s.response["content"], s.shadow, s.reference) for s in written
                if isinstance(s, Sample)]  # fmt: skip
    assert outcomes == [
        ("b", "busy", None),
        ("a", "timeout", None),
        ("c", "failed", None),
        ("d", "ok", {"role": "assistant", "content": "teacher knows"}),
        ("e", "cancelled", None),
    ]
    assert capture.shadows_busy == 1


def test_a_teacher_stopped_mid_answer_keeps_its_sample_once() -> None:
    capture, writer, written = _capture()

    async def slow(route: str) -> Any:
        await asyncio.sleep(5)

    async def scenario() -> None:
        capture.keep(_record(), Plan(ShadowSpec(route="t")), {}, {"content": "a"}, slow)
        await asyncio.sleep(0.05)  # the teacher is asked
        await capture.aclose()

    asyncio.run(scenario())
    writer.close()
    assert [(s.response, s.shadow) for s in written if isinstance(s, Sample)] == [
        ({"content": "a"}, "cancelled")
    ]
