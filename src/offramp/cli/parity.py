"""``offramp parity``: the same prompts against two routes, compared, with reports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import Progress

from offramp.errors import InvalidRequest
from offramp.migrate.parity import reports
from offramp.migrate.parity.cases import load_cases, parse_route
from offramp.migrate.parity.compare import Embedder, Thresholds, compare
from offramp.migrate.parity.costs import side_cost
from offramp.migrate.parity.runner import load_answers, run_route, save_answers
from offramp.routing.pricing import load_price_table
from offramp.settings import load_settings
from offramp.types import EmbedRequest


def parity(
    prompts: Annotated[Path, typer.Argument(help="JSONL file of prompts.")],
    candidate: Annotated[str, typer.Option(help="Route to test: BASE_URL#MODEL[?k=v].")],
    baseline: Annotated[str | None, typer.Option(help="Route to compare against.")] = None,
    baseline_file: Annotated[
        Path | None,
        typer.Option(help="Replay recorded baseline answers instead of calling a route."),
    ] = None,
    record_baseline: Annotated[
        Path | None, typer.Option(help="Save the baseline's answers here for later replays.")
    ] = None,
    report_dir: Annotated[Path, typer.Option(help="Where parity.md and parity.html go.")] = Path(
        "parity-report"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Requests at once per route.")] = 4,
    min_similarity: Annotated[float, typer.Option(help="Answer cosine similarity.")] = 0.7,
    min_embedding_similarity: Annotated[
        float, typer.Option(help="Cosine similarity of embedding outputs.")
    ] = 0.95,
    min_pass_rate: Annotated[float, typer.Option(help="Share of prompts that must pass.")] = 0.9,
) -> None:
    """Run PROMPTS against two routes and report how the candidate compares; exit 1 on FAIL."""
    if (baseline is None) == (baseline_file is None):
        raise InvalidRequest("give exactly one of --baseline and --baseline-file", param="baseline")
    cases = load_cases(prompts)
    cand_route = parse_route(candidate)
    base_route = parse_route(baseline) if baseline else None
    with Progress() as progress:
        if base_route is not None:
            base_answers = asyncio.run(
                run_route(
                    base_route, cases, concurrency=concurrency, label="baseline", progress=progress
                )
            )
        else:
            assert baseline_file is not None
            base_answers = load_answers(baseline_file, cases)
        cand_answers = asyncio.run(
            run_route(
                cand_route, cases, concurrency=concurrency, label="candidate", progress=progress
            )
        )
    if record_baseline is not None:
        save_answers(record_baseline, base_answers)
    thresholds = Thresholds(min_similarity, min_embedding_similarity, min_pass_rate)
    summary = compare(cases, base_answers, cand_answers, local_embedder(), thresholds)
    table = load_price_table()
    costs = (side_cost(base_answers, table), side_cost(cand_answers, table))
    report_dir.mkdir(parents=True, exist_ok=True)
    base_label = base_route if base_route is not None else f"replay of {baseline_file}"
    (report_dir / "parity.md").write_text(reports.markdown(summary, base_label, cand_route, costs))
    (report_dir / "parity.html").write_text(reports.html(summary, base_label, cand_route, costs))
    typer.echo(
        f"{'PASS' if summary.passed else 'FAIL'}: {summary.pass_rate:.0%} of "
        f"{len(cases)} prompts pass; reports in {report_dir}/"
    )
    raise typer.Exit(0 if summary.passed else 1)


def local_embedder() -> Embedder:
    """Answers are compared by the bundled embedding model, in this process, offline."""
    from offramp.app import build_pool
    from offramp.gateway.accounting import Accounting, Caller
    from offramp.gateway.gateway import Gateway
    from offramp.gateway.runtime import build_runtime
    from offramp.providers.registry import builtin_registry

    settings = load_settings(preload=False)

    def run(texts: list[str]) -> Sequence[Sequence[float]]:
        # Long answers are compared as the mean of their windows of at most 200 characters
        # (always under the model's 256 tokens): a comparison must not drop the rest.
        windows: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            rest = text.strip() or " "
            while rest:
                cut = len(rest) if len(rest) <= 200 else (rest.rfind(" ", 100, 200) + 1 or 200)
                windows.append(rest[:cut])
                owners.append(i)
                rest = rest[cut:].lstrip()

        async def go() -> np.ndarray[Any, Any]:
            pool = build_pool(settings)
            try:
                runtime = build_runtime(settings, pool, builtin_registry())
                result = await Gateway(runtime, Accounting()).embed(
                    Caller("parity"), EmbedRequest("text-embedding-3-small", tuple(windows))
                )
                await runtime.router.aclose()
                return result.value.vectors
            finally:
                await pool.aclose()

        vectors = asyncio.run(go())
        out = np.zeros((len(texts), vectors.shape[1]))
        np.add.at(out, owners, vectors)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return [list(map(float, row)) for row in out]

    return run
