"""``learn``: the learning loop as one resumable run.

A route's captured samples (with their teachers' and people's reference answers) become
a dataset once enough new ones arrived; a new version of a local model is tuned on it,
the servers reload their registry, an evaluation on the held-out split gates it, and a
rollout ramps it through the route's traffic, rolled back by itself when a guard fails.

    export -> tune -> reload -> eval -> rollout -> done   (or: rejected, rolled_back)

Each finished step is written to ``<state_dir>/learn.json`` before the next begins, so a
run that was interrupted (a pod evicted, a CronJob cut off) goes on from where it
stopped. A run ends with its samples consumed: the next run waits for
``min_new_samples`` newer ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from offramp.errors import InvalidRequest, OfframpError
from offramp.finetune import eval_report
from offramp.finetune.dataset import read_jsonl, split_of, write_jsonl
from offramp.finetune.evaluate import Gate, run_evaluation
from offramp.finetune.samples import collect_examples
from offramp.finetune.tuning import TuneOptions, tune
from offramp.ledger.datasets import SampleFilter, find_samples
from offramp.migrate.parity.compare import Embedder
from offramp.routing.rollout import RolloutPlan, run_rollout, start_rollout
from offramp.settings import Settings

STEPS = ("export", "tune", "reload", "eval", "rollout", "done")
ENDED = ("done", "rejected", "rolled_back")


@dataclass(frozen=True)
class LearnPlan:
    """What one learning run does; ``rollout`` None stops after the evaluation gate."""

    route: str
    base: str
    name: str
    base_url: str
    gate: Gate
    min_new_samples: int = 100
    tune: TuneOptions = field(default_factory=TuneOptions)
    rollout: RolloutPlan | None = field(default_factory=RolloutPlan)
    api_key: str = "learn"
    admin_key: str | None = None
    schema: dict[str, Any] | None = None
    max_tokens: int = 256


@dataclass
class RunState:
    """The run in progress (or the last one), as kept in ``learn.json``."""

    number: int
    until: float  # the newest sample it consumes
    step: str = "export"
    dataset: str | None = None
    examples: int = 0
    model: str | None = None
    evaluation: dict[str, Any] | None = None
    outcome: str | None = None

    @property
    def ended(self) -> bool:
        return self.step in ENDED


@dataclass
class LearnState:
    watermark: float = 0.0  # samples at or before this were consumed by an ended run
    run: RunState | None = None

    @classmethod
    def load(cls, path: Path) -> LearnState:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            run = RunState(**raw["run"]) if raw.get("run") else None
            return cls(float(raw.get("watermark", 0.0)), run)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InvalidRequest(f"cannot read the learning state {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"watermark": self.watermark, "run": asdict(self.run) if self.run else None}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body, indent=2), encoding="utf-8")
        temporary.replace(path)


def learn(
    plan: LearnPlan,
    *,
    settings: Settings,
    engine: Engine,
    state_dir: Path,
    say: Callable[[str], None] = lambda _: None,
    embed: Embedder | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LearnState:
    """Run (or resume) one learning run of ``plan``; returns the state it ended in. A run
    that finds too few new samples does nothing (its state says so: no run started)."""
    path = state_dir / "learn.json"
    state = LearnState.load(path)
    if state.run is None or state.run.ended:
        started = _start(plan, engine, state, say)
        if started is None:
            return state
        state.run = started
        state.save(path)
    run = state.run
    assert run is not None
    folder = state_dir / f"run-{run.number}"
    while not run.ended:
        say(f"run {run.number}: {run.step}")
        _STEPS[run.step](plan, run, settings, engine, folder, say, embed, sleep)
        if run.ended:
            state.watermark = max(state.watermark, run.until)
        state.save(path)
    say(f"run {run.number}: {run.step}" + (f" ({run.outcome})" if run.outcome else ""))
    return state


def _start(
    plan: LearnPlan, engine: Engine, state: LearnState, say: Callable[[str], None]
) -> RunState | None:
    where = SampleFilter(route=plan.route, since=state.watermark + 1e-6)
    new = find_samples(engine, where)
    if len(new) < plan.min_new_samples:
        say(
            f"{len(new)} new samples on route {plan.route!r} since the last run; "
            f"waiting for {plan.min_new_samples}"
        )
        return None
    number = (state.run.number + 1) if state.run else 1
    return RunState(number=number, until=max(j.sample.ts for j in new))


def _export(plan: LearnPlan, run: RunState, _s: Settings, engine: Engine, folder: Path, *_: Any) -> None:
    where = SampleFilter(route=plan.route, until=run.until + 1e-6)
    examples = collect_examples(engine, where, "reference")
    if not examples:
        raise InvalidRequest(f"route {plan.route!r} has no samples to learn from", param="route")
    folder.mkdir(parents=True, exist_ok=True)
    dataset = folder / "dataset.jsonl"
    run.examples = write_jsonl(dataset, examples)
    run.dataset = str(dataset)
    run.step = "tune"


def _tune(
    plan: LearnPlan,
    run: RunState,
    settings: Settings,
    _e: Engine,
    _f: Path,
    say: Callable[[str], None],
    *_: Any,
) -> None:
    assert run.dataset is not None
    result = tune(
        Path(run.dataset), base=plan.base, name=plan.name, settings=settings, options=plan.tune
    )
    run.model = result.model
    say(f"run {run.number}: tuned {result.model} ({result.gguf})")
    run.step = "reload"


def _reload(plan: LearnPlan, run: RunState, *_: Any) -> None:
    root = plan.base_url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {plan.admin_key}"} if plan.admin_key else {}
    try:
        reply = httpx.post(f"{root}/admin/models/reload", headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise OfframpError(f"cannot reach the server at {root} to reload: {exc}") from exc
    if reply.status_code != 200:
        raise OfframpError(f"the server refused to reload its models: {reply.status_code}")
    run.step = "eval"


def _eval(
    plan: LearnPlan,
    run: RunState,
    _s: Settings,
    _e: Engine,
    folder: Path,
    say: Callable[[str], None],
    embed: Embedder | None,
    *_: Any,
) -> None:
    assert run.dataset is not None and run.model is not None
    held_out = split_of(read_jsonl(Path(run.dataset)), "eval", plan.tune.eval_share)
    if not held_out:
        raise InvalidRequest("the dataset's eval split is empty: capture more samples")
    ev = asyncio.run(
        run_evaluation(
            plan.base_url,
            held_out,
            run.model,
            plan.base,
            gate=plan.gate,
            embed=embed,
            schema=plan.schema,
            api_key=plan.api_key,
            max_tokens=plan.max_tokens,
        )
    )
    (folder / "eval.md").write_text(eval_report.markdown(ev))
    (folder / "eval.html").write_text(eval_report.html(ev))
    run.evaluation = {
        "passed": ev.passed,
        "failures": ev.failures(),
        "candidate": {m: ev.candidate.mean(m) for m in ("exact", "fields", "all_fields")},
        "baseline": {m: ev.baseline.mean(m) for m in ("exact", "fields", "all_fields")}
        if ev.baseline
        else None,
    }
    say(f"run {run.number}: {eval_report.verdict_line(ev)}")
    if not ev.passed:
        run.step, run.outcome = "rejected", "; ".join(ev.failures())
    elif plan.rollout is None:
        run.step, run.outcome = "done", "passed the evaluation (no rollout asked)"
    else:
        run.step = "rollout"


def _rollout(
    plan: LearnPlan,
    run: RunState,
    _s: Settings,
    engine: Engine,
    _f: Path,
    say: Callable[[str], None],
    _embed: Embedder | None,
    sleep: Callable[[float], None],
) -> None:
    assert run.model is not None and plan.rollout is not None
    start_rollout(engine, plan.route, run.model, None, plan.rollout)
    final = run_rollout(
        engine,
        plan.route,
        on_change=lambda s: say(f"rollout of {s.candidate}: {s.status} at {s.weight:.0%}"),
        sleep=sleep,
    )
    if final.status == "done":
        run.step, run.outcome = "done", f"{run.model} serves {final.weight:.0%} of {plan.route}"
    else:
        run.step, run.outcome = "rolled_back", final.reason or final.status


_STEPS: dict[str, Callable[..., None]] = {
    "export": _export,
    "tune": _tune,
    "reload": _reload,
    "eval": _eval,
    "rollout": _rollout,
}
