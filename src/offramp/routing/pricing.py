"""What an answer cost: a versioned price table shipped with the package, per-deployment
rates from the config, and the OpenAI list-price equivalent of the same tokens.

The table (``offramp/data/prices.yaml``) lists providers' list prices per million
tokens. A deployment of a provider in the table must name a model the table knows, or
give its own ``price:``; anything else fails at start-up, never with a silent zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from offramp.errors import InvalidRequest
from offramp.settings import read_config_file
from offramp.types import Usage

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``cached_input`` / ``cache_write`` default to ``input``."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        """USD for ``usage``: cached and cache-written prompt tokens at their own rates."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
        plain = usage.prompt_tokens - cached - written
        read_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write is None else self.cache_write
        total = (
            plain * self.input
            + cached * read_rate
            + written * write_rate
            + usage.completion_tokens * self.output
        )
        return total / 1_000_000

    def estimate(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for a request of about this size (for cheapest-first ordering)."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


FREE = Price()


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(ge=0)
    output: float = Field(default=0.0, ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    currency: str
    openai_equivalent: dict[str, str]
    providers: dict[str, dict[str, _PriceEntry]]


class PriceTable:
    """List prices by provider and model, with the version they were taken from."""

    def __init__(
        self,
        version: str,
        providers: Mapping[str, Mapping[str, Price]],
        openai_equivalent: Mapping[str, str],
    ):
        self.version = version
        self._providers = {p: dict(models) for p, models in providers.items()}
        self._equivalent = dict(openai_equivalent)
        for kind, model in self._equivalent.items():
            self.require("openai", model, what=f"the default {kind} equivalent")

    def prices(self, provider: str) -> bool:
        """Whether the table holds list prices for ``provider``."""
        return provider in self._providers

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price of ``model`` (tried again without a date or -latest suffix)."""
        models = self._providers.get(provider, {})
        found = models.get(model)
        if found is None:
            found = models.get(_SNAPSHOT.sub("", model))
        return found

    def require(self, provider: str, model: str, *, what: str = "") -> Price:
        """Like ``lookup``, but InvalidRequest (param ``config``) for an unknown model."""
        found = self.lookup(provider, model)
        if found is None:
            known = ", ".join(sorted(self._providers.get(provider, {})))
            raise InvalidRequest(
                f"price table {self.version} has no {provider} model {model!r}"
                + (f" ({what})" if what else "")
                + f"; give the deployment a `price:` or use one of: {known}",
                param="config",
            )
        return found

    def openai_equivalent(self, kind: str, asked: str, configured: str | None) -> Price:
        """The OpenAI price to compare against: the configured model, else the name the
        client asked for when OpenAI prices it, else the table's default for ``kind``."""
        if configured is not None:
            return self.require("openai", configured, what="openai_equivalent")
        return self.lookup("openai", asked) or self.require("openai", self._equivalent[kind])


def default_price_table_path() -> Path:
    return Path(str(resources.files("offramp").joinpath("data/prices.yaml")))


def load_price_table(path: Path | None = None) -> PriceTable:
    """Read the shipped table (or ``path``); InvalidRequest naming the file if malformed."""
    where = path or default_price_table_path()
    try:
        parsed = _TableFile.model_validate(read_config_file(where))
    except ValidationError as exc:
        raise InvalidRequest(f"price table {where}: {exc}", param="config") from exc
    providers = {
        provider: {name: Price(**entry.model_dump()) for name, entry in models.items()}
        for provider, models in parsed.providers.items()
    }
    return PriceTable(parsed.version, providers, parsed.openai_equivalent)
