"""What a request cost, and what OpenAI would have charged for it.

``Pricing`` is the small interface the accounting reads; any price table (for example
one that also knows upstream providers' prices) can satisfy it. ``ListPricing`` is the
default: served models cost what ``settings.prices`` says (nothing, for local models),
and OpenAI's equivalent comes from its published list prices for the name asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from offramp.settings import ModelPrice
from offramp.types import Usage

# OpenAI list prices, USD per million tokens (input, output), standard tier.
OPENAI_LIST_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4": (30.00, 60.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-3.5-turbo-instruct": (1.50, 2.00),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
}


class Pricing(Protocol):
    """Prices requests in USD; unknown names cost 0 (never an error on the request path)."""

    def cost(self, deployment: str, usage: Usage) -> float:
        """What serving ``usage`` on ``deployment`` cost."""
        ...

    def openai_cost(self, model: str, usage: Usage) -> float:
        """What OpenAI would have charged for ``usage`` on the model name ``model``."""
        ...


class ListPricing:
    """Configured prices for served models, OpenAI's list prices for the equivalent."""

    def __init__(
        self,
        prices: Mapping[str, ModelPrice],
        openai: Mapping[str, tuple[float, float]] = OPENAI_LIST_PRICES,
    ):
        self._prices = prices
        self._openai = openai

    def cost(self, deployment: str, usage: Usage) -> float:
        price = self._prices.get(deployment)
        if price is None:
            return 0.0
        return _usd(usage, price.input, price.output)

    def openai_cost(self, model: str, usage: Usage) -> float:
        per_million = self._openai.get(model)
        if per_million is None:
            return 0.0
        return _usd(usage, *per_million)


def _usd(usage: Usage, input_per_m: float, output_per_m: float) -> float:
    return (usage.prompt_tokens * input_per_m + usage.completion_tokens * output_per_m) / 1e6
