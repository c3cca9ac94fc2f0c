"""``offramp learn``: capture -> dataset -> tune -> reload -> eval gate -> rollout, as one
resumable command (run it on a schedule: deploy/k8s/learn-cronjob.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from offramp.cli.evaluate import minimums
from offramp.cli.parity import local_embedder
from offramp.cli.rollout import parse_steps
from offramp.finetune.evaluate import Gate
from offramp.finetune.learn import LearnPlan, learn
from offramp.finetune.tuning import TuneOptions
from offramp.ledger.store import open_engine
from offramp.routing.rollout import RolloutPlan
from offramp.settings import load_settings


def learn_command(
    route: Annotated[str, typer.Option(help="The route whose captured samples teach.")],
    base: Annotated[str, typer.Option(help="The local model to tune (a registry name).")],
    name: Annotated[str, typer.Option(help="The tuned model's name (versions NAME@vN).")],
    min_new_samples: Annotated[
        int, typer.Option(min=1, help="New samples since the last run before a run starts.")
    ] = 100,
    base_url: Annotated[
        str | None, typer.Option(help="The offramp serving the route; default: host:port.")
    ] = None,
    api_key: Annotated[str, typer.Option(envvar="OFFRAMP_API_KEY")] = "learn",
    admin_key: Annotated[str | None, typer.Option(envvar="OFFRAMP_ADMIN_KEY")] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where runs keep their state; default: MODELS_DIR/learn.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    max_steps: Annotated[int | None, typer.Option(min=1)] = None,
    lr: Annotated[float, typer.Option()] = 2e-4,
    rank: Annotated[int, typer.Option(min=1)] = 8,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="Gate: METRIC=VALUE the candidate reaches.")
    ] = None,
    max_regression: Annotated[float | None, typer.Option(help="Gate vs the base.")] = 0.0,
    steps: Annotated[str, typer.Option(help="Rollout shares, percent.")] = "5,25,50,100",
    guard: Annotated[list[str] | None, typer.Option(help="Rollout guards.")] = None,
    min_requests: Annotated[int, typer.Option(min=1)] = 50,
    interval: Annotated[float, typer.Option(min=0.0)] = 30.0,
    rollout: Annotated[
        bool, typer.Option(help="Roll a version that passes the gate out (else stop there).")
    ] = True,
    similarity: Annotated[bool, typer.Option(help="Score similarity in the evaluation.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
) -> None:
    """One learning run (or the rest of an interrupted one); exit 1 when the new version
    is rejected by the gate or rolled back."""
    settings = load_settings(config, preload=False)
    plan = LearnPlan(
        route=route,
        base=base,
        name=name,
        base_url=base_url or f"http://{settings.host}:{settings.port}/v1",
        gate=Gate(minimums(minimum or []), max_regression),
        min_new_samples=min_new_samples,
        tune=TuneOptions(epochs=epochs, max_steps=max_steps, lr=lr, rank=rank, batch_size=batch_size),
        rollout=RolloutPlan(
            steps=parse_steps(steps),
            guards=tuple(guard or ()),
            min_requests=min_requests,
            interval_s=interval,
        )
        if rollout
        else None,
        api_key=api_key,
        admin_key=admin_key,
    )
    console = Console()
    engine = open_engine(settings)
    try:
        state = learn(
            plan,
            settings=settings,
            engine=engine,
            state_dir=state_dir or settings.models_dir / "learn",
            say=console.print,
            embed=local_embedder() if similarity else None,
        )
    finally:
        engine.dispose()
    if state.run is not None and state.run.step in ("rejected", "rolled_back"):
        raise typer.Exit(1)
