"""What each side of a parity run cost, from the price table: the tokens each route
reported, priced at the list price of the model it ran, when the table knows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from offramp.migrate.parity.runner import Answer
from offramp.routing.pricing import PriceTable
from offramp.types import Usage


@dataclass(frozen=True)
class Cost:
    """``usd`` is None when no answer could be priced; ``basis`` says how it was priced."""

    usd: float | None
    basis: str
    prompts: int

    def per_thousand(self) -> float | None:
        """The cost of 1,000 prompts like these."""
        return None if self.usd is None or not self.prompts else self.usd * 1000 / self.prompts


def side_cost(answers: Sequence[Answer], table: PriceTable) -> Cost:
    """The cost of one side's answers; an answer of an unpriced route costs nothing known."""
    total = 0.0
    priced: set[str] = set()
    unpriced: set[str] = set()
    for answer in answers:
        price = table.lookup(answer.priced_as, answer.model) if answer.priced_as else None
        if price is None:
            unpriced.add(answer.model or "?")
            continue
        usage = Usage(answer.prompt_tokens, answer.completion_tokens, answer.cached_tokens)
        total += price.cost(usage)
        priced.add(f"{answer.priced_as} {answer.model}")
    if not priced:
        return Cost(
            None, "not priced (a self-hosted route, or a model the table lacks)", len(answers)
        )
    basis = f"list prices of {', '.join(sorted(priced))} (price table {table.version})"
    if unpriced:
        basis += f"; not priced: {', '.join(sorted(unpriced))}"
    return Cost(total, basis, len(answers))
