"""How a route orders its deployments for one request. Each strategy is a function in
``STRATEGIES``; the router tries deployments in the order it returns and falls back
along it."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from offramp.routing.deployment import Deployment


@dataclass(frozen=True)
class Hint:
    """The rough size of a request, for strategies that weigh cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


Order = Callable[[Sequence[Deployment], Hint, random.Random], list[Deployment]]


def priority(deployments: Sequence[Deployment], hint: Hint, rng: random.Random) -> list[Deployment]:
    """The configured order (list local models first to prefer them)."""
    return list(deployments)


def weighted(deployments: Sequence[Deployment], hint: Hint, rng: random.Random) -> list[Deployment]:
    """A random order where each deployment comes first with probability proportional
    to its ``weight`` (weighted sampling without replacement)."""
    keyed = [(rng.random() ** (1.0 / d.spec.weight), i) for i, d in enumerate(deployments)]
    return [deployments[i] for _, i in sorted(keyed, reverse=True)]


def least_latency(
    deployments: Sequence[Deployment], hint: Hint, rng: random.Random
) -> list[Deployment]:
    """Fastest recent answers first; a deployment with no answers yet goes first so it
    gets measured. Ties keep the configured order."""
    return sorted(deployments, key=lambda d: d.stats.ewma_ms or 0.0)


def cheapest(deployments: Sequence[Deployment], hint: Hint, rng: random.Random) -> list[Deployment]:
    """Lowest estimated cost of this request first; ties keep the configured order."""
    return sorted(
        deployments, key=lambda d: d.price.estimate(hint.prompt_tokens, hint.completion_tokens)
    )


STRATEGIES: dict[str, Order] = {
    "priority": priority,
    "weighted": weighted,
    "least-latency": least_latency,
    "cheapest": cheapest,
}
