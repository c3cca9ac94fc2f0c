"""Evaluating a candidate model against a baseline on a dataset's held-out examples.

Both models answer every example's prompt through a running offramp (the parity engine's
runner, so every call passes the gateway); each answer is scored against the example's
reference answer: exact match, field match when the reference is a JSON object (the share
of its fields the answer reproduces, and whether it reproduces all of them), schema
validity, similarity by the embedding model, latency and cost. Thresholds on the
candidate (absolute, and relative to the baseline) decide whether it passes: the gate
for CI and for a rollout.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import numpy as np
from rich.progress import Progress

from offramp.finetune.dataset import ChatExample
from offramp.migrate.parity.cases import Case, Route
from offramp.migrate.parity.compare import Embedder
from offramp.migrate.parity.costs import Cost, side_cost
from offramp.migrate.parity.runner import Answer, run_route
from offramp.routing.pricing import load_price_table

METRICS = ("exact", "fields", "all_fields", "schema_valid", "similarity")


@dataclass(frozen=True)
class Score:
    """One answer scored against one reference; a metric that does not apply is None."""

    exact: bool
    fields: float | None  # share of the reference object's fields the answer reproduces
    all_fields: bool | None
    schema_valid: bool | None
    similarity: float | None
    error: str = ""


@dataclass
class SideResult:
    """One model's answers and scores over the whole evaluation set."""

    model: str
    answers: list[Answer]
    scores: list[Score]
    cost: Cost | None = None

    def mean(self, metric: str) -> float | None:
        """The metric's mean over the examples it applies to (booleans count as 0/1)."""
        values = [getattr(s, metric) for s in self.scores]
        applied = [float(v) for v in values if v is not None]
        return statistics.fmean(applied) if applied else None

    @property
    def error_rate(self) -> float:
        return sum(bool(s.error) for s in self.scores) / max(1, len(self.scores))

    def latency(self, q: float) -> float:
        values = sorted(a.latency_s for a in self.answers)
        if not values:
            return 0.0
        return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


@dataclass(frozen=True)
class Gate:
    """Pass marks for the candidate: ``minimums`` per metric (absolute), and at most
    ``max_regression`` worse than the baseline on any metric both sides have."""

    minimums: dict[str, float] = field(default_factory=dict)
    max_regression: float | None = None
    max_error_rate: float = 1.0


@dataclass
class Evaluation:
    examples: list[ChatExample]
    candidate: SideResult
    baseline: SideResult | None
    gate: Gate

    def failures(self) -> list[str]:
        """Why the candidate fails the gate; empty when it passes."""
        problems = []
        for metric, floor in self.gate.minimums.items():
            value = self.candidate.mean(metric)
            if value is None or value < floor:
                shown = "n/a" if value is None else f"{value:.3f}"
                problems.append(f"{metric} {shown} < {floor}")
        if self.candidate.error_rate > self.gate.max_error_rate:
            problems.append(
                f"error rate {self.candidate.error_rate:.3f} > {self.gate.max_error_rate}"
            )
        if self.baseline is not None and self.gate.max_regression is not None:
            for metric in METRICS:
                cand, base = self.candidate.mean(metric), self.baseline.mean(metric)
                if cand is not None and base is not None and cand < base - self.gate.max_regression:
                    problems.append(
                        f"{metric} {cand:.3f} is worse than the baseline's {base:.3f} by more "
                        f"than {self.gate.max_regression}"
                    )
        return problems

    @property
    def passed(self) -> bool:
        return not self.failures()


def cases_for(examples: Sequence[ChatExample], schema: dict[str, Any] | None) -> list[Case]:
    """Parity cases asking each example's prompt (as JSON when a schema is given)."""
    return [
        Case(
            id=f"ex-{i}",
            type="json" if schema is not None else "chat",
            messages=tuple(e.prompt),
            schema=schema,
        )
        for i, e in enumerate(examples)
    ]


def score_side(
    model: str,
    examples: Sequence[ChatExample],
    answers: list[Answer],
    embed: Embedder | None,
    schema: dict[str, Any] | None = None,
) -> SideResult:
    """Score ``answers`` (in example order) against the examples' reference answers."""
    references = [e.answer for e in examples]
    similarities = _similarities(references, [a.text for a in answers], embed)
    scores = [
        _score(ref, answer, sim, schema)
        for ref, answer, sim in zip(references, answers, similarities, strict=True)
    ]
    return SideResult(model, answers, scores)


def _score(
    reference: str, answer: Answer, similarity: float | None, schema: dict[str, Any] | None
) -> Score:
    text = answer.text
    expected = _json_object(reference)
    got = _json_object(text)
    fields: float | None = None
    all_fields: bool | None = None
    if expected:
        matched = sum(isinstance(got, dict) and got.get(k) == v for k, v in expected.items())
        fields = matched / len(expected)
        all_fields = matched == len(expected)
    schema_valid = None
    if schema is not None:
        schema_valid = got is not None and _valid(got, schema)
    exact = _normalised(text) == _normalised(reference) or (
        expected is not None and got == expected
    )
    return Score(exact, fields, all_fields, schema_valid, similarity, answer.error)


def _similarities(
    references: list[str], texts: list[str], embed: Embedder | None
) -> list[float | None]:
    if embed is None:
        return [None] * len(texts)
    pairs = [i for i, (r, t) in enumerate(zip(references, texts, strict=True)) if r and t]
    out: list[float | None] = [None] * len(texts)
    if not pairs:
        return out
    vectors = embed([references[i] for i in pairs] + [texts[i] for i in pairs])
    for n, i in enumerate(pairs):
        a = np.asarray(vectors[n], dtype=np.float64)
        b = np.asarray(vectors[len(pairs) + n], dtype=np.float64)
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        out[i] = float(a @ b / denom) if denom else None
    return out


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` (the whole text, or its first ``{...}`` span)."""
    for candidate in (text.strip(), _braced(text)):
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _braced(text: str) -> str:
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else ""


def _valid(value: object, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    return True


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


async def run_evaluation(
    base_url: str,
    examples: Sequence[ChatExample],
    candidate: str,
    baseline: str | None,
    *,
    gate: Gate,
    embed: Embedder | None = None,
    schema: dict[str, Any] | None = None,
    api_key: str = "eval",
    concurrency: int = 4,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> Evaluation:
    """Ask ``candidate`` (and ``baseline``) every example's prompt through the offramp at
    ``base_url``, greedily, and score both against the references."""
    cases = cases_for(examples, schema)
    table = load_price_table()
    sides: list[SideResult] = []
    for model in [candidate] + ([baseline] if baseline else []):
        route = Route(base_url.rstrip("/"), model, temperature=0.0, max_tokens=max_tokens)
        answers = await run_route(
            route, cases, concurrency=concurrency, label=model, progress=progress, api_key=api_key
        )
        side = score_side(model, examples, answers, embed, schema)
        side.cost = side_cost(answers, table)
        sides.append(side)
    return Evaluation(list(examples), sides[0], sides[1] if baseline else None, gate)
