"""The shipped price table and cost arithmetic."""

from __future__ import annotations

import random

import pytest

from offramp.errors import InvalidRequest
from offramp.providers.base import Provider
from offramp.routing.config import RouteSpec
from offramp.routing.pricing import Price, load_price_table
from offramp.routing.route import LocalModel, RouteBuilder
from offramp.types import Usage
from tests.fakes import FakeProvider


def test_table_is_versioned_and_knows_snapshots() -> None:
    table = load_price_table()
    assert table.version >= "2025-01-01"
    mini = table.require("openai", "gpt-4o-mini")
    assert (mini.input, mini.output, mini.cached_input) == (0.15, 0.60, 0.075)
    assert table.lookup("openai", "gpt-4o-2024-08-06") == table.lookup("openai", "gpt-4o")
    assert table.lookup("openai", "gpt-4o-2024-05-13") != table.lookup("openai", "gpt-4o")
    haiku = table.require("anthropic", "claude-3-5-haiku-20241022")
    assert haiku.output == 4.0 and haiku.cache_write == 1.0


def test_cost_prices_cached_and_written_tokens_apart() -> None:
    price = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, cached_tokens=400_000)
    assert price.cost(usage) == pytest.approx(0.6 * 3.0 + 0.4 * 0.3 + 0.1 * 15.0)
    usage.cache_write_tokens = 100_000
    assert price.cost(usage) == pytest.approx(0.5 * 3.0 + 0.4 * 0.3 + 0.1 * 3.75 + 1.5)
    assert Price(input=1.0).cost(Usage(500_000, 0, cached_tokens=500_000)) == 0.5


def test_openai_equivalent_follows_the_name_asked_for() -> None:
    table = load_price_table()
    assert table.openai_equivalent("chat", "gpt-4o", None) == table.require("openai", "gpt-4o")
    default = table.require("openai", "gpt-4o-mini")
    assert table.openai_equivalent("chat", "my-route", None) == default
    embedding = table.openai_equivalent("embedding", "my-embedder", None)
    assert embedding == table.require("openai", "text-embedding-3-small")
    assert table.openai_equivalent("chat", "x", "gpt-4.1") == table.require("openai", "gpt-4.1")


def _build(deployment: dict[str, object]) -> Price:
    fake = FakeProvider()

    async def target() -> Provider:
        return fake

    builder = RouteBuilder(
        local=lambda name: LocalModel(target, "chat", "llamacpp", name),
        upstream=lambda spec: fake,
        prices=load_price_table(),
        rng=random.Random(0),
    )
    route, _ = builder.build(RouteSpec.model_validate({"name": "r", "deployments": [deployment]}))
    return route.deployments[0].price


def test_an_unknown_priced_model_fails_loudly_at_build_time() -> None:
    with pytest.raises(InvalidRequest) as info:
        _build({"provider": "openai", "model": "gpt-9-ultra"})
    assert "gpt-9-ultra" in info.value.message and info.value.param == "config"
    assert _build({"provider": "openai", "model": "gpt-9-ultra", "price": {"input": 1}}).input == 1
    assert _build({"provider": "anthropic", "model": "claude-sonnet-4-5"}).output == 15.0


def test_local_and_self_hosted_deployments_cost_their_configured_rate() -> None:
    assert _build({"model": "smollm2"}) == Price()
    assert _build({"provider": "openai-compatible", "model": "llama"}) == Price()
    rate = _build({"model": "smollm2", "price": {"input": 0.02, "output": 0.05}})
    assert rate.cost(Usage(1_000_000, 1_000_000)) == pytest.approx(0.07)
