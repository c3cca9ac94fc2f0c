"""What the router tells its caller besides the answer: who answered, after how many
attempts, how long the upstream side took, and what the tokens cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from offramp.routing.pricing import Price
from offramp.types import Usage

T = TypeVar("T")


@dataclass(frozen=True)
class ArmChoice:
    """The experiment arm a request was assigned: its experiment's and arm's names, and
    the system prompt the arm puts in place of the request's own (None: unchanged)."""

    experiment: str
    arm: str
    system: str | None = None


@dataclass
class Outcome:
    """One routed request. ``upstream_s`` is time spent waiting on deployments (every
    attempt, failed ones included) and ``waited_s`` time spent in backoff, so the rest
    of a request's time is offramp's own. ``usage`` is set once a stream has ended."""

    deployment: str
    attempts: int
    upstream_s: float
    waited_s: float
    price: Price
    equivalent: Price
    usage: Usage | None = None
    arm: ArmChoice | None = None  # the experiment arm that served it

    def cost(self, usage: Usage) -> float:
        """USD at the answering deployment's price."""
        return self.price.cost(usage)

    def equivalent_cost(self, usage: Usage) -> float:
        """USD the same tokens would cost at the OpenAI list price."""
        return self.equivalent.cost(usage)


@dataclass(frozen=True)
class Routed(Generic[T]):
    """An answer (or a stream of one) and how it was obtained."""

    value: T
    outcome: Outcome
