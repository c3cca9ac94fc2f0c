"""``offramp rollout``: ramp a candidate through a route's traffic while guards hold.

    offramp rollout ROUTE --candidate MODEL [--baseline MODEL] --steps 5,25,50,100 \\
        --min-requests 50 --interval 10 --guard error_rate<=0.05 --guard latency_p95<=1.5x
    offramp rollout status ROUTE
    offramp rollout abort ROUTE
    offramp rollout clear ROUTE     # forget a finished rollout: the route as configured

The first form starts the rollout (or goes on with the same one where it stopped) and
drives it to its end in the foreground; every running server reads its weights from the
ledger database. It exits 0 when the candidate reached its last step, 1 when it was
rolled back or aborted. See ``offramp.routing.rollout`` for the guards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from offramp.errors import InvalidRequest
from offramp.ledger.experiments import ArmStats
from offramp.ledger.rollouts import RolloutState
from offramp.ledger.store import open_engine
from offramp.routing.rollout import (
    RolloutPlan,
    abort_rollout,
    clear_rollout,
    rollout_arms,
    rollout_status,
    run_rollout,
    start_rollout,
)
from offramp.settings import load_settings

_ACTIONS = ("status", "abort", "clear")


def rollout(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[status|abort|clear] ROUTE",
            help="ROUTE to start or resume; or `status|abort|clear ROUTE`.",
        ),
    ],
    candidate: Annotated[
        str | None, typer.Option(help="The new arm: a deployment of the route or a model.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The arm it replaces; default: the route as configured.")
    ] = None,
    steps: Annotated[str, typer.Option(help="The candidate's shares, percent.")] = "5,25,50,100",
    min_requests: Annotated[int, typer.Option(help="Requests per arm before a check.")] = 50,
    min_feedback: Annotated[int, typer.Option(help="Values per arm per metric guard.")] = 1,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 10.0,
    step_timeout: Annotated[
        float, typer.Option(help="Roll back a step without enough traffic after this (s).")
    ] = 3600.0,
    guard: Annotated[
        list[str] | None, typer.Option(help="e.g. error_rate<=0.05, thumbs>=baseline-0.05.")
    ] = None,
    sticky: Annotated[str, typer.Option(help="key | user | session.")] = "user",
    restart: Annotated[bool, typer.Option(help="Start over even if one is running.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print states as JSON.")] = False,
) -> None:
    """Roll a candidate out on a route step by step; roll it back when a guard fails."""
    action, route = _parse(args)
    engine = open_engine(load_settings(config))
    console = Console()

    def show(state: RolloutState) -> None:
        if as_json:
            print(json.dumps(state.as_dict()), flush=True)
        else:
            console.print(_line(state))

    try:
        if action == "status":
            show(rollout_status(engine, route))
            for arm in rollout_arms(engine, route):
                if arm is not None and not as_json:
                    console.print(f"  {arm.arm}: {_arm_line(arm)}")
            return
        if action == "abort":
            show(abort_rollout(engine, route))
            return
        if action == "clear":
            clear_rollout(engine, route)
            console.print(f"{route}: rollout cleared; the route serves as configured")
            return
        if candidate is None:
            raise InvalidRequest("--candidate names the model to roll out", param="candidate")
        plan = RolloutPlan(
            steps=parse_steps(steps),
            guards=tuple(guard or ()),
            min_requests=min_requests,
            min_feedback=min_feedback,
            interval_s=interval,
            step_timeout_s=step_timeout,
            sticky=sticky,
        )
        start_rollout(engine, route, candidate, baseline, plan, restart=restart)
        final = run_rollout(engine, route, show)
    finally:
        engine.dispose()
    if final.status != "done":
        raise typer.Exit(1)


def _parse(args: list[str]) -> tuple[str, str]:
    if args and args[0] in _ACTIONS:
        if len(args) != 2:
            raise InvalidRequest(f"usage: offramp rollout {args[0]} ROUTE", param="route")
        return args[0], args[1]
    if len(args) != 1:
        raise InvalidRequest("usage: offramp rollout ROUTE --candidate MODEL ...", param="route")
    return "run", args[0]


def parse_steps(text: str) -> tuple[float, ...]:
    """Rollout steps from `5,25,50,100`; InvalidRequest (`steps`) if malformed."""
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidRequest(
            f"--steps takes e.g. 5,25,50,100, got {text!r}", param="steps"
        ) from None


def _line(state: RolloutState) -> str:
    where = f"step {state.step + 1}/{len(state.steps)}: {state.candidate} at {state.weight:.0%}"
    reason = f" - {state.reason}" if state.reason else ""
    return f"{state.route}: {state.status}, {where}{reason}"


def _arm_line(arm: ArmStats) -> str:
    p95 = arm.latency(0.95)
    metrics = ", ".join(f"{name} {e.mean:.3f} (n={e.n})" for name, e in arm.metrics.items())
    return (
        f"{arm.requests} requests this step, {arm.error_rate:.1%} errors, "
        f"p95 {'-' if p95 is None else f'{p95:.0f} ms'}" + (f", {metrics}" if metrics else "")
    )
