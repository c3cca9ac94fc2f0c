"""``offramp experiments show [ROUTE]``: each experiment arm's traffic, errors, latency,
cost and feedback metrics with 95% intervals, from the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from offramp.ledger.experiments import experiment_report
from offramp.ledger.feedback import load_metrics
from offramp.ledger.store import open_engine
from offramp.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="A/B experiments and rollouts of routes.")


@app.command("show")
def show(
    route: Annotated[str | None, typer.Argument(help="Only this route.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per route and experiment, each arm's requests, errors, p50/p95 latency, cost and
    every feedback metric's mean with its 95% confidence interval."""
    settings = load_settings(config)
    boolean = {m.name: m.type == "boolean" for m in load_metrics(settings.config).values()}
    engine = open_engine(settings)
    try:
        report = experiment_report(engine, route, boolean)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(report))
        return
    console = Console()
    if not report:
        console.print("no experiments have served requests yet")
    for item in report:
        console.print(_table(item))


def _table(item: dict[str, Any]) -> Table:
    title = f"{item['route']} · {item['experiment']}"
    rollout = item["rollout"]
    if rollout is not None:
        title += f" · {rollout['candidate']} at {rollout['weight']:.0%}, {rollout['status']}" + (
            f" ({rollout['reason']})" if rollout["reason"] else ""
        )
    table = Table(
        "arm", "requests", "errors", "error rate", "p50 ms", "p95 ms", "cost $", "metrics",
        title=title,
    )  # fmt: skip
    for arm in item["arms"]:
        table.add_row(
            arm["arm"],
            str(arm["requests"]),
            str(arm["errors"]),
            f"{arm['error_rate']:.1%}",
            _ms(arm["latency_p50_ms"]),
            _ms(arm["latency_p95_ms"]),
            f"{arm['cost_usd']:.4f}",
            _metrics(arm["metrics"]),
        )
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _metrics(metrics: dict[str, dict[str, Any]]) -> str:
    return (
        "\n".join(
            f"{name}: {m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] n={m['n']}"
            for name, m in metrics.items()
        )
        or "-"
    )
