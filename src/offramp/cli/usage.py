"""``offramp usage``: spend, savings against OpenAI list prices, latency, cache hits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from offramp.errors import InvalidRequest
from offramp.ledger.queries import ModelUsage, summary
from offramp.ledger.store import open_engine
from offramp.settings import load_settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def usage(
    since: Annotated[
        str | None, typer.Option(help="Only the last period, e.g. 30m, 24h, 7d.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per model: requests, tokens, spend, OpenAI-equivalent cost and the savings,
    p50/p95 latency and cache hit rate, from the usage ledger."""
    report = summary(open_engine(load_settings(config)), _seconds(since))
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    table = Table(
        "model", "requests", "errors", "tokens in", "tokens out", "spend $", "OpenAI $",
        "saved $", "p50 ms", "p95 ms", "cache hits",
    )  # fmt: skip
    for row in [*report.models, report.total()]:
        table.add_row(*_cells(row))
    Console().print(table)


def _cells(m: ModelUsage) -> list[str]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    return [
        m.model,
        str(m.requests),
        str(m.errors),
        str(m.prompt_tokens),
        str(m.completion_tokens),
        f"{m.cost_usd:.4f}",
        f"{m.openai_cost_usd:.4f}",
        f"{m.savings_usd:.4f}",
        ms(m.percentile(0.5)),
        ms(m.percentile(0.95)),
        f"{m.cache_hit_rate:.0%}",
    ]


def _seconds(since: str | None) -> float | None:
    if since is None:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", since.strip())
    if match is None:
        raise InvalidRequest(f"--since takes e.g. 30m, 24h or 7d, got {since!r}", param="since")
    return float(match.group(1)) * _UNITS[match.group(2)]
