"""The chat JSONL dataset format: validation, round trip, de-duplication, split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offramp.errors import InvalidRequest
from offramp.finetune.dataset import (
    ChatExample,
    deduplicated,
    example_from_json,
    read_jsonl,
    split_of,
    write_jsonl,
)


def _example(question: str, answer: str) -> ChatExample:
    return example_from_json(
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    )


def test_round_trip_keeps_every_example(tmp_path: Path) -> None:
    examples = [_example(f"q{i}", f"a{i}") for i in range(20)]
    path = tmp_path / "d.jsonl"
    assert write_jsonl(path, examples) == 20
    assert read_jsonl(path) == examples
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"messages": list(examples[0].messages)}


def test_bad_line_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = json.dumps(_example("q", "a").to_json())
    bad = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "robot"}]})
    path.write_text(good + "\n" + bad + "\n")
    with pytest.raises(InvalidRequest) as err:
        read_jsonl(path)
    assert "d.jsonl:2" in err.value.message
    assert err.value.param == "messages[1].role"


def test_answer_must_come_last() -> None:
    with pytest.raises(InvalidRequest) as err:
        example_from_json({"messages": [{"role": "user", "content": "q"}]})
    assert err.value.param == "messages[0].role"


def test_duplicates_removed_first_kept() -> None:
    a, b = _example("q1", "a1"), _example("q2", "a2")
    assert list(deduplicated([a, b, _example("q1", "a1"), b])) == [a, b]


def test_split_is_deterministic_by_prompt() -> None:
    examples = [_example(f"question {i}", "x") for i in range(400)]
    evals = split_of(examples, "eval", 0.2)
    assert 50 < len(evals) < 110  # about a fifth
    assert split_of(examples, "eval", 0.2) == evals
    # the same prompt with another answer falls on the same side
    assert all(_example(e.messages[1]["content"], "other").split(0.2) == "eval" for e in evals)
    assert len(split_of(examples, "train", 0.2)) == 400 - len(evals)
