"""Comparing two routes' answers, case by case, against thresholds."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jsonschema
import numpy as np

from offramp.migrate.parity.cases import Case
from offramp.migrate.parity.runner import Answer

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class Thresholds:
    """Pass marks: answer similarity, embedding similarity, and the share of passing cases."""

    min_similarity: float = 0.7
    min_embedding_similarity: float = 0.95
    min_pass_rate: float = 0.9


@dataclass(frozen=True)
class Verdict:
    case: Case
    baseline: Answer
    candidate: Answer
    similarity: float | None
    schema_valid: bool | None
    fields_match: bool | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Summary:
    verdicts: list[Verdict]
    thresholds: Thresholds

    @property
    def pass_rate(self) -> float:
        return sum(v.passed for v in self.verdicts) / len(self.verdicts)

    @property
    def passed(self) -> bool:
        return self.pass_rate >= self.thresholds.min_pass_rate

    def tokens(self, side: str) -> int:
        return sum(
            (v.baseline if side == "baseline" else v.candidate).tokens for v in self.verdicts
        )

    def latency(self, side: str) -> dict[str, float]:
        values = sorted(
            (v.baseline if side == "baseline" else v.candidate).latency_s for v in self.verdicts
        )
        return {
            "p50": _pct(values, 0.5),
            "p95": _pct(values, 0.95),
            "mean": statistics.fmean(values),
        }


def compare(
    cases: list[Case],
    baseline: list[Answer],
    candidate: list[Answer],
    embed: Embedder,
    thresholds: Thresholds,
) -> Summary:
    texts = [
        a.text
        for pair in zip(baseline, candidate, strict=True)
        for a in pair
        if pair[0].text and pair[1].text
    ]
    vectors = iter(embed(texts)) if texts else iter(())
    verdicts = []
    for case, base, cand in zip(cases, baseline, candidate, strict=True):
        similarity = None
        if case.type == "embedding":
            similarity = _cosine(base.vector, cand.vector)
        elif base.text and cand.text:
            similarity = _cosine(next(vectors), next(vectors))
        verdicts.append(_judge(case, base, cand, similarity, thresholds))
    return Summary(verdicts, thresholds)


def _judge(
    case: Case, base: Answer, cand: Answer, similarity: float | None, t: Thresholds
) -> Verdict:
    schema_valid = fields_match = None
    problems = []
    if base.error or cand.error:
        problems.append(cand.error or base.error)
    if case.type == "json" and case.schema is not None:
        b, c = _json(base.text), _json(cand.text)
        schema_valid = c is not None and _valid(c, case.schema)
        if not schema_valid:
            problems.append("candidate output does not validate against the schema")
        if case.fields:
            fields_match = all(
                isinstance(b, dict) and isinstance(c, dict) and b.get(f) == c.get(f)
                for f in case.fields
            )
            if not fields_match:
                problems.append(f"structured fields differ: {', '.join(case.fields)}")
    floor = (
        case.min_similarity
        if case.min_similarity is not None
        else (t.min_embedding_similarity if case.type == "embedding" else t.min_similarity)
    )
    if similarity is None and not problems:
        problems.append("no answer to compare")
    elif similarity is not None and similarity < floor:
        problems.append(f"similarity {similarity:.3f} < {floor}")
    return Verdict(
        case,
        base,
        cand,
        similarity,
        schema_valid,
        fields_match,
        not problems,
        "; ".join(problems) or "ok",
    )


def _cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    if not a or not b or len(a) != len(b):
        return None
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb / denom) if denom else None


def _json(text: str) -> object | None:
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value


def _valid(value: object, schema: dict[str, object]) -> bool:
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    return True


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]
