"""Scoring answers against references, and the gate that decides an evaluation."""

from __future__ import annotations

import json

from offramp.finetune import eval_report
from offramp.finetune.dataset import ChatExample, example_from_json
from offramp.finetune.evaluate import Evaluation, Gate, score_side
from offramp.migrate.parity.runner import Answer

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
    "required": ["name", "price"],
}


def _example(code: str, name: str, price: float) -> ChatExample:
    return example_from_json(
        {
            "messages": [
                {"role": "user", "content": f"Product {code}?"},
                {"role": "assistant", "content": json.dumps({"name": name, "price": price})},
            ]
        }
    )


EXAMPLES = [_example("A1", "lamp", 9.5), _example("B2", "desk", 120.0)]


def test_fields_scored_against_the_reference_object() -> None:
    answers = [
        Answer("ex-0", text='Sure: {"name": "lamp", "price": 9.5}'),
        Answer("ex-1", text='{"name": "desk", "price": 99}'),
    ]
    side = score_side("m", EXAMPLES, answers, embed=None, schema=SCHEMA)
    assert [s.all_fields for s in side.scores] == [True, False]
    assert [s.fields for s in side.scores] == [1.0, 0.5]
    assert [s.exact for s in side.scores] == [True, False]  # equal objects count as exact
    assert side.mean("fields") == 0.75
    assert side.mean("schema_valid") == 1.0
    assert side.mean("similarity") is None  # not asked for


def test_plain_text_answers_have_no_field_scores() -> None:
    example = example_from_json(
        {
            "messages": [
                {"role": "user", "content": "Say hi"},
                {"role": "assistant", "content": "Hi there"},
            ]
        }
    )
    side = score_side("m", [example], [Answer("ex-0", text="  hi   THERE ")], embed=None)
    assert side.scores[0].exact is True
    assert side.scores[0].fields is None and side.mean("fields") is None


def test_similarity_uses_the_embedder_pairwise() -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if "lamp" in t else [0.0, 1.0] for t in texts]

    answers = [Answer("ex-0", text="a lamp"), Answer("ex-1", text="a lamp")]
    side = score_side("m", EXAMPLES, answers, embed=embed)
    assert [s.similarity for s in side.scores] == [1.0, 0.0]


def test_gate_minimums_and_regression() -> None:
    good = [Answer("ex-0", text=e.answer) for e in EXAMPLES]
    bad = [Answer("ex-0", text="no idea"), Answer("ex-1", error="APIError: boom")]
    tuned = score_side("tuned", EXAMPLES, good, embed=None)
    base = score_side("base", EXAMPLES, bad, embed=None)
    passing = Evaluation(EXAMPLES, tuned, base, Gate({"all_fields": 0.6}, 0.0, 0.0))
    assert passing.failures() == []
    failing = Evaluation(EXAMPLES, base, tuned, Gate({"all_fields": 0.6}, 0.05, 0.0))
    problems = failing.failures()
    assert any(p.startswith("all_fields 0.000 < 0.6") for p in problems)
    assert any("worse than the baseline" in p for p in problems)
    assert any(p.startswith("error rate 0.500") for p in problems)
    assert eval_report.verdict_line(failing).startswith("FAIL: base")
    assert "| all fields match | 0.000 | 1.000 |" in eval_report.markdown(failing)
    assert "<table>" in eval_report.html(passing)
