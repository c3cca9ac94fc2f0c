"""``offramp eval``: a candidate model against a baseline on a dataset's held-out split."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from offramp.cli.parity import local_embedder
from offramp.errors import InvalidRequest, quoted
from offramp.finetune import eval_report
from offramp.finetune.dataset import DEFAULT_EVAL_SHARE, read_jsonl, split_of
from offramp.finetune.evaluate import METRICS, Gate, run_evaluation
from offramp.settings import load_settings


def evaluate(
    candidate: Annotated[str, typer.Option(help="The model to judge (e.g. a tuned version).")],
    dataset: Annotated[Path, typer.Option(help="OpenAI fine-tuning chat JSONL.")],
    baseline: Annotated[str | None, typer.Option(help="The model it must beat or match.")] = None,
    split: Annotated[
        str, typer.Option(help="eval: the held-out split (as `offramp tune` holds out); all.")
    ] = "eval",
    eval_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = DEFAULT_EVAL_SHARE,
    base_url: Annotated[
        str | None, typer.Option(help="The offramp to ask; default: this config's host:port.")
    ] = None,
    api_key: Annotated[str, typer.Option(envvar="OFFRAMP_API_KEY")] = "eval",
    schema: Annotated[
        Path | None, typer.Option(help="A JSON schema the answers must satisfy (asked as JSON).")
    ] = None,
    minimum: Annotated[
        list[str] | None,
        typer.Option(
            "--min", help=f"METRIC=VALUE the candidate must reach; METRIC in {', '.join(METRICS)}."
        ),
    ] = None,
    max_regression: Annotated[
        float | None, typer.Option(help="Worst allowed drop below the baseline on any metric.")
    ] = None,
    max_error_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.05,
    similarity: Annotated[
        bool, typer.Option(help="Score similarity with the bundled embedding model.")
    ] = True,
    report_dir: Annotated[Path, typer.Option(help="Where eval.md and eval.html go.")] = Path(
        "eval-report"
    ),
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    max_tokens: Annotated[int, typer.Option(min=1)] = 256,
) -> None:
    """Score CANDIDATE (and BASELINE) against DATASET's references; exit 1 when the gate fails."""
    if split not in ("eval", "all"):
        raise InvalidRequest(f"--split must be eval or all, not {quoted(split)}", param="split")
    examples = read_jsonl(dataset)
    if split == "eval":
        examples = split_of(examples, "eval", eval_share)
    if not examples:
        raise InvalidRequest(f"{dataset} has no examples in its {split} split", param="dataset")
    gate = Gate(minimums(minimum or []), max_regression, max_error_rate)
    settings = load_settings(preload=False)
    url = base_url or f"http://{settings.host}:{settings.port}/v1"
    with Progress() as progress:
        ev = asyncio.run(
            run_evaluation(
                url,
                examples,
                candidate,
                baseline,
                gate=gate,
                embed=local_embedder() if similarity else None,
                schema=_schema(schema),
                api_key=api_key,
                concurrency=concurrency,
                max_tokens=max_tokens,
                progress=progress,
            )
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "eval.md").write_text(eval_report.markdown(ev))
    (report_dir / "eval.html").write_text(eval_report.html(ev))
    typer.echo(eval_report.markdown(ev).split("\n## ")[0].strip())
    typer.echo(f"{eval_report.verdict_line(ev)}; reports in {report_dir}/")
    raise typer.Exit(0 if ev.passed else 1)


def minimums(specs: list[str]) -> dict[str, float]:
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or name not in METRICS:
            raise InvalidRequest(
                f"--min takes METRIC=VALUE with METRIC in {', '.join(METRICS)}, not {quoted(spec)}",
                param="min",
            )
        try:
            out[name] = float(value)
        except ValueError as exc:
            raise InvalidRequest(f"--min {quoted(spec)}: not a number", param="min") from exc
    return out


def _schema(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"cannot read the schema {path}: {exc}", param="schema") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path} is not a JSON schema object", param="schema")
    return value
