"""Routes from the YAML config: what start-up accepts and what it refuses, by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from offramp.errors import InvalidRequest
from offramp.gateway.runtime import build_runtime
from offramp.local.pool import ModelPool
from offramp.models.registry import default_config_path, load_registry
from offramp.providers.registry import builtin_registry
from offramp.settings import load_settings


def runtime_with(tmp_path: Path, routes: list[dict[str, Any]]) -> Any:
    default = yaml.safe_load(default_config_path().read_text())
    config = tmp_path / "offramp.yaml"
    config.write_text(yaml.safe_dump({"models": default["models"], "routes": routes}))
    settings = load_settings(config, preload=False)
    pool = ModelPool(settings, load_registry(config), builtin_registry())
    return build_runtime(settings, pool, builtin_registry())


def test_models_are_routes_of_their_own_and_routes_add_names(tmp_path: Path) -> None:
    runtime = runtime_with(
        tmp_path,
        [
            {
                "name": "smart",
                "aliases": ["clever"],
                "strategy": "cheapest",
                "deployments": [
                    {"model": "gpt-4o-mini"},
                    {
                        "provider": "openai-compatible",
                        "base_url": "http://127.0.0.1:9/v1",
                        "model": "x",
                    },
                ],
            }
        ],
    )
    router = runtime.router
    local = router.resolve("gpt-4o-mini", "chat")
    assert local.implicit and [d.id for d in local.deployments] == ["local/smollm2-135m-instruct"]
    smart = router.resolve("clever", "chat")
    assert smart.name == "smart" and [d.id for d in smart.deployments] == [
        "local/gpt-4o-mini",
        "openai-compatible/x",
    ]
    assert router.resolve("text-embedding-3-small", "embedding").kind == "embedding"


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ({"name": "gpt-4o-mini", "deployments": [{"model": "smollm2-135m-instruct"}]}, "twice"),
        ({"name": "r", "deployments": [{"model": "no-such-model"}]}, "no-such-model"),
        ({"name": "r", "deployments": [{"model": "all-minilm-l6-v2"}]}, "embedding model"),
        (
            {"name": "r", "deployments": [{"provider": "nope", "model": "m"}]},
            "'nope' is not registered",
        ),
        (
            {"name": "r", "deployments": [{"provider": "openai-compatible", "model": "m"}]},
            "base_url",
        ),
        (
            {
                "name": "r",
                "deployments": [
                    {
                        "provider": "openai",
                        "model": "gpt-4o",
                        "api_key_env": "OFFRAMP_TEST_UNSET_KEY",
                    }
                ],
            },
            "OFFRAMP_TEST_UNSET_KEY",
        ),
        ({"name": "r", "strategy": "random", "deployments": [{"model": "gpt-4o"}]}, "strategy"),
        ({"name": "r", "deployments": [{"model": "gpt-4o", "colour": "red"}]}, "colour"),
        ({"name": "r", "deployments": [{"model": "gpt-4o"}, {"model": "gpt-4o"}]}, "twice"),
    ],
)
def test_bad_routes_fail_at_start_up_naming_the_problem(
    tmp_path: Path, route: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        runtime_with(tmp_path, [route])
    assert info.value.param == "config" and words in info.value.message


def test_the_shipped_deploy_config_builds_its_routes() -> None:
    config = Path(__file__).parents[2] / "deploy" / "offramp.yaml"
    settings = load_settings(config, preload=False)
    pool = ModelPool(settings, load_registry(config), builtin_registry())
    router = build_runtime(settings, pool, builtin_registry()).router
    route = router.resolve("gpt-4o", "chat")
    assert [d.id for d in route.deployments] == ["vllm", "local/smollm2-135m-instruct"]
    assert route.equivalents["gpt-4o"].input == 2.5


def test_anthropic_deployments_are_built_and_priced_from_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_TEST_ANTHROPIC_KEY", "sk-test")
    deployment = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5-20250929",
        "api_key_env": "OFFRAMP_TEST_ANTHROPIC_KEY",
        "options": {"default_max_tokens": 512},
    }
    runtime = runtime_with(tmp_path, [{"name": "claude", "deployments": [deployment]}])
    [built] = runtime.router.resolve("claude", "chat").deployments
    assert built.id == "anthropic/claude-sonnet-4-5-20250929"
    assert (built.price.input, built.price.output, built.price.cache_write) == (3.0, 15.0, 3.75)
