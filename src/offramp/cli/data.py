"""``offramp data list | show | export | import | prune``: captured samples as datasets.

Samples live in the ledger database of the same settings (``--config``,
``OFFRAMP_LEDGER_URL`` or ``ledger_path``). Exports and imports are OpenAI's
fine-tuning chat JSONL, de-duplicated, with a deterministic train/eval split.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from offramp.errors import InvalidRequest, quoted
from offramp.finetune.dataset import DEFAULT_EVAL_SHARE
from offramp.finetune.samples import export_samples, import_samples
from offramp.ledger.datasets import JudgedSample, MetricCondition, SampleFilter, find_samples
from offramp.ledger.samples import get_sample, prune
from offramp.ledger.store import open_engine
from offramp.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Captured samples: list, show, export, import.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
RouteOpt = Annotated[str | None, typer.Option(help="Only samples of this route.")]
TaskOpt = Annotated[str | None, typer.Option(help="Only runs of this task.")]
ModelOpt = Annotated[
    str | None, typer.Option(help="Only samples asking for, or answered by, this model.")
]
MetricOpt = Annotated[
    str | None,
    typer.Option(help="Only samples whose latest feedback holds, e.g. correct=true, score>=0.8."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="From this date (2026-01-31, 2026-01-31T12:00, UTC) or age (7d, 12h)."),
]
UntilOpt = Annotated[str | None, typer.Option(help="Before this date or age.")]
ReferenceOpt = Annotated[
    bool, typer.Option("--has-reference", help="Only samples with a reference answer.")
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _filter(
    route: str | None,
    task: str | None,
    model: str | None,
    metric: str | None,
    since: str | None,
    until: str | None,
    has_reference: bool,
) -> SampleFilter:
    return SampleFilter(
        route=route,
        task=task,
        model=model,
        metric=MetricCondition.parse(metric) if metric is not None else None,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        has_reference=has_reference,
    )


def _engine(config: Path | None) -> tuple[Settings, Engine]:
    settings = load_settings(config)
    return settings, open_engine(settings)


@app.command("list")
def list_samples(
    route: RouteOpt = None,
    task: TaskOpt = None,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    has_reference: ReferenceOpt = False,
    limit: Annotated[int, typer.Option(min=1, help="Newest samples shown at most.")] = 50,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The captured samples the filters select (the newest ``--limit``), with their
    reference and feedback."""
    where = _filter(route, task, model, metric, since, until, has_reference)
    found = find_samples(_engine(config)[1], where)[-limit:]
    if as_json:
        for judged in found:
            print(json.dumps(_shown(judged), ensure_ascii=False))
        return
    table = Table("id", "time (UTC)", "endpoint", "route", "model", "task", "prompt", "answer",
                  "reference", "feedback", title=f"{len(found)} sample(s)")  # fmt: skip
    for judged in found:
        table.add_row(*_cells(judged))
    Console().print(table)


@app.command("show")
def show(
    sample_id: Annotated[str, typer.Argument(help="A sample id (smp_...) or request id.")],
    config: ConfigOpt = None,
) -> None:
    """One sample whole, as JSON, with the feedback on its request."""
    engine = _engine(config)[1]
    sample = get_sample(engine, sample_id)
    if sample is None:
        raise InvalidRequest(f"no sample or request {quoted(sample_id)}", param="id")
    same_request = find_samples(engine, SampleFilter(request_id=sample.request_id))
    judged = next((j for j in same_request if j.sample.id == sample.id), JudgedSample(sample))
    print(json.dumps(_shown(judged), indent=2, ensure_ascii=False))


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")],
    split: Annotated[
        Literal["train", "eval", "all"], typer.Option(help="Which side of the split.")
    ] = "all",
    eval_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of prompts in the eval split.")
    ] = DEFAULT_EVAL_SHARE,
    prefer: Annotated[
        Literal["reference", "response"],
        typer.Option(
            help="Answer with the reference (a demonstration, else a teacher's) "
            "when there is one, or always the model's own answer."
        ),
    ] = "reference",
    route: RouteOpt = None,
    task: TaskOpt = None,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    has_reference: ReferenceOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Write the selected samples as OpenAI fine-tuning chat JSONL, de-duplicated."""
    where = _filter(route, task, model, metric, since, until, has_reference)
    written = export_samples(_engine(config)[1], out, where, split, eval_share, prefer)
    print(f"wrote {written} example(s) to {out}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="OpenAI fine-tuning chat JSONL.")],
    model: Annotated[
        str | None, typer.Option(help="The model the samples are recorded under.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Store each example of ``path`` as a sample (endpoint ``import``); examples already
    imported are skipped."""
    added, skipped = import_samples(_engine(config)[1], path, model)
    print(f"imported {added} sample(s) from {path}; {skipped} already there")


@app.command("prune")
def prune_samples(
    older_than: Annotated[
        str | None,
        typer.Option(help="Age to delete from, e.g. 30d; default `capture_retention_days`."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Delete captured samples older than the retention period."""
    settings, engine = _engine(config)
    if older_than is not None:
        age = _age(older_than, "older-than")
    elif settings.capture_retention_days is not None:
        age = settings.capture_retention_days * 86400
    else:
        raise InvalidRequest(
            "capture_retention_days is unset (keep forever): give --older-than",
            param="older-than",
        )
    print(f"deleted {prune(engine, age)} sample(s)")


def _moment(text: str | None, name: str) -> float | None:
    """Unix seconds of a date (UTC unless it says otherwise) or of an age ago."""
    if text is None:
        return None
    if re.fullmatch(r"\s*\d+(?:\.\d+)?[smhd]\s*", text):
        return time.time() - _age(text, name)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(
            f"--{name} takes a date (2026-01-31, 2026-01-31T12:00) or an age (7d, 12h), "
            f"got {quoted(text)}",
            param=name,
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _age(text: str, name: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([smhd])\s*", text)
    if match is None:
        raise InvalidRequest(f"--{name} takes e.g. 30m, 24h or 7d, got {quoted(text)}", param=name)
    return float(match.group(1)) * _UNITS[match.group(2)]


def _shown(judged: JudgedSample) -> dict[str, Any]:
    return {
        **asdict(judged.sample),
        "feedback": judged.metrics,
        "demonstration": judged.demonstration,
        "comments": list(judged.comments),
    }


def _cells(judged: JudgedSample) -> list[str]:
    s = judged.sample
    when = datetime.fromtimestamp(s.ts, UTC).strftime("%Y-%m-%d %H:%M")
    reference = "-"
    if judged.demonstration is not None:
        reference = "demonstration"
    elif s.reference is not None:
        reference = s.reference_model or "yes"
    elif s.shadow not in (None, "ok"):
        reference = f"shadow {s.shadow}"
    feedback = ", ".join(f"{k}={v:g}" for k, v in sorted(judged.metrics.items())) or "-"
    model = s.model if s.deployment in (None, s.model) else f"{s.model} → {s.deployment}"
    return [s.id, when, s.endpoint, s.route or "-", model, s.task or "-",
            _short(_prompt(s.request)), _short(_answer(s.response)), reference, feedback]  # fmt: skip


def _prompt(request: Any) -> str:
    if isinstance(request, dict) and request.get("task") and "input" in request:
        return json.dumps(request["input"], ensure_ascii=False)
    messages = request.get("messages") if isinstance(request, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content"))
    return ""


def _answer(response: Any) -> str:
    if isinstance(response, dict) and "result" in response and "role" not in response:
        return json.dumps(response["result"], ensure_ascii=False)
    return str(response.get("content") or "") if isinstance(response, dict) else ""


def _short(text: str, width: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
