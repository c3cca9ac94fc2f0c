"""An Anthropic deployment's config, the API key, and the provider's registration."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from offramp.errors import InvalidRequest
from offramp.models.registry import ModelSpec
from offramp.providers.anthropic.config import DEFAULT_BASE_URL, AnthropicConfig
from offramp.providers.anthropic.provider import AnthropicProvider
from offramp.providers.registry import builtin_registry
from offramp.settings import Settings

KEY_ENV = "OFFRAMP_TEST_ANTHROPIC_CONFIG_KEY"


@dataclass(frozen=True)
class Deployment:
    """The fields a route's upstream deployment hands its provider."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


def test_defaults() -> None:
    config = AnthropicConfig.from_options("claude", {"model": "claude-sonnet-4-5"})
    assert config.base_url == DEFAULT_BASE_URL == "https://api.anthropic.com"
    assert config.api_key_env == "ANTHROPIC_API_KEY"
    assert config.timeout_s == 60.0
    assert config.anthropic_version == "2023-06-01"


def test_a_route_deployment_maps_onto_the_config() -> None:
    entry = Deployment(
        model="claude-haiku-4-5",
        base_url="http://127.0.0.1:9",
        timeout_s=7,
        headers={"anthropic-beta": "x"},
        options={"default_max_tokens": 512},
    )
    config = AnthropicConfig.from_upstream(entry)
    assert (config.model, config.base_url, config.timeout_s) == (
        "claude-haiku-4-5",
        "http://127.0.0.1:9",
        7,
    )
    assert config.api_key_env == "ANTHROPIC_API_KEY"  # None keeps the default
    assert config.headers == {"anthropic-beta": "x"} and config.default_max_tokens == 512


@pytest.mark.parametrize(
    ("options", "field_name"),
    [
        ({"base_url": "http://x"}, "'base_url'"),
        ({"max_tokens": 5}, "max_tokens"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_deployment_options_are_config_errors(options: dict[str, Any], field_name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        AnthropicConfig.from_upstream(Deployment(model="claude", options=options))
    assert info.value.param == "config" and field_name in info.value.message
    assert "anthropic/claude" in info.value.message


@pytest.mark.parametrize(
    ("options", "field_name"),
    [
        ({}, "model"),
        ({"model": "c", "timeout_s": 0}, "timeout_s"),
        ({"model": "c", "base_uri": "http://x"}, "base_uri"),
    ],
)
def test_bad_model_options_name_the_field(options: dict[str, object], field_name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        AnthropicConfig.from_options("model 'claude'", options)
    assert info.value.param == "config"
    assert "'claude'" in info.value.message and field_name in info.value.message


def test_a_missing_key_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    entry = Deployment(model="claude-sonnet-4-5", api_key_env=KEY_ENV)
    with pytest.raises(InvalidRequest) as info:
        AnthropicProvider.from_upstream(entry, Settings())
    message = info.value.message
    assert "\n" not in message and f"${KEY_ENV}" in message
    assert "anthropic/claude-sonnet-4-5" in message
    assert (info.value.param, info.value.code) == ("config", "missing_api_key")


def test_a_provider_declares_what_it_can_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-ant-test")
    config = AnthropicConfig(model="claude-sonnet-4-5", api_key_env=KEY_ENV, concurrency=8)
    provider = AnthropicProvider("claude", config, context_length=200_000)
    caps = provider.capabilities
    assert caps.chat and caps.tools and not caps.embeddings and not caps.logprobs
    assert (caps.context_length, caps.concurrency) == (200_000, 8)
    asyncio.run(provider.aclose())


def test_the_builtin_registry_builds_it_from_a_model_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-ant-test")
    # Built without validation: the entry's shape is what a config file gives the factory.
    spec = ModelSpec.model_construct(
        name="claude",
        backend="anthropic",
        source=None,
        context_length=200_000,
        aliases=(),
        options={"model": "claude-sonnet-4-5", "api_key_env": KEY_ENV, "timeout_s": 5},
    )
    provider = builtin_registry().create(spec, tmp_path, Settings())
    assert isinstance(provider, AnthropicProvider)
    assert provider.config.model == "claude-sonnet-4-5" and provider.config.timeout_s == 5
    assert provider.capabilities.context_length == 200_000
    asyncio.run(provider.aclose())
