"""The ``x-offramp-*`` headers every answer carries: which deployment answered, after how
many attempts, what it cost, what OpenAI's list price for the same tokens would have
been, and the time offramp itself spent (everything but waiting on deployments and
backing off), measured from the route handler's start to the response being built;
the experiment arm that served it (``x-offramp-experiment``, ``x-offramp-arm``) when its
route runs an experiment or rollout; and the answer's notices (``x-offramp-degenerate``, ``x-offramp-context-overflow``, ...).

Streams send their headers before the tokens exist, so their cost and notices travel in
SSE comment lines just before ``data: [DONE]`` (clients skip comments), in the same format.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from offramp.routing.outcome import Outcome
from offramp.types import Notices, Usage


def routing_headers(
    outcomes: Sequence[Outcome], started: float, usage: Sequence[Usage] | None = None
) -> dict[str, str]:
    """Headers for one answer (``outcomes`` has one entry per routed call it took, e.g. per
    prompt of a batched completion; ``usage`` the matching token counts, None for streams)."""
    upstream = sum(o.upstream_s + o.waited_s for o in outcomes)
    overhead = max(0.0, time.perf_counter() - started - upstream)
    headers = {
        "x-offramp-deployment": ",".join(dict.fromkeys(o.deployment for o in outcomes)),
        "x-offramp-attempts": str(sum(o.attempts for o in outcomes)),
        "x-offramp-overhead-ms": f"{overhead * 1000:.3f}",
    }
    arm = next((o.arm for o in outcomes if o.arm is not None), None)
    if arm is not None:
        headers["x-offramp-experiment"] = arm.experiment
        headers["x-offramp-arm"] = arm.arm
    if usage is not None:
        headers.update(_costs(outcomes, usage))
    return headers


def cost_comment(outcome: Outcome) -> bytes:
    """The SSE comment with a finished stream's costs (empty if it reported no usage)."""
    if outcome.usage is None:
        return b""
    costs = _costs([outcome], [outcome.usage])
    return (": " + " ".join(f"{k}={v}" for k, v in costs.items()) + "\n\n").encode()


def notice_headers(notices: Notices) -> dict[str, str]:
    """``x-offramp-<name>`` for each notice of an answer (see ``types.Notices``)."""
    return {f"x-offramp-{name}": value for name, value in notices.items()}


def notice_comment(notices: Notices) -> bytes:
    """The SSE comment with a finished stream's notices (empty if none)."""
    if not notices:
        return b""
    pairs = " ".join(f"{k}={v}" for k, v in notice_headers(notices).items())
    return f": {pairs}\n\n".encode()


def _costs(outcomes: Sequence[Outcome], usage: Sequence[Usage]) -> dict[str, str]:
    cost = sum(o.cost(u) for o, u in zip(outcomes, usage, strict=True))
    equivalent = sum(o.equivalent_cost(u) for o, u in zip(outcomes, usage, strict=True))
    return {
        "x-offramp-cost-usd": f"{cost:.8f}",
        "x-offramp-openai-equivalent-usd": f"{equivalent:.8f}",
    }
