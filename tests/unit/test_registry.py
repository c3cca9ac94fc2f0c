"""The model registry and model sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offramp.errors import InvalidRequest, ModelNotFound, ModelSourceError
from offramp.models import sources
from offramp.models.registry import ModelRegistry, ModelSource, ModelSpec, load_registry


def test_default_config_maps_openai_names_to_local_models() -> None:
    registry = load_registry(None)
    for alias in ("gpt-4o-mini", "gpt-3.5-turbo", "gpt-4o"):
        assert registry.resolve(alias, kind="chat").name == "smollm2-135m-instruct"
    for alias in ("text-embedding-3-small", "text-embedding-ada-002"):
        assert registry.resolve(alias, kind="embedding").name == "all-minilm-l6-v2"
    with pytest.raises(ModelNotFound):
        registry.resolve("gpt-4o-mini", kind="embedding")
    with pytest.raises(ModelNotFound):
        registry.resolve("nope")


def test_bundled_files_are_found_through_their_packages() -> None:
    registry = load_registry(None)
    for spec in registry.specs:
        path = sources.resolve(spec.source, Path("/nonexistent"))
        assert path.exists() and "site-packages" in str(path)


def test_duplicate_names_are_refused() -> None:
    src = ModelSource(path=Path("/x.gguf"))
    a = ModelSpec(name="a", backend="llamacpp", source=src, context_length=64, aliases=("b",))
    b = ModelSpec(name="b", backend="llamacpp", source=src, context_length=64)
    with pytest.raises(InvalidRequest):
        ModelRegistry([a, b])


def test_missing_sources_fail_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=re.escape("offramp models pull org/repo/m.gguf")):
        sources.resolve(ModelSource(hub="org/repo", file="m.gguf"), tmp_path)
    with pytest.raises(ModelSourceError, match="not installed"):
        sources.resolve(ModelSource(package="no_such_pkg_xyz", file="m.gguf"), tmp_path)
    with pytest.raises(ModelSourceError, match="ORG/REPO/FILE"):
        sources.split_hub_ref("just-a-name")


def test_source_needs_exactly_one_origin() -> None:
    with pytest.raises(ValueError):
        ModelSource(path=Path("/a"), hub="x/y", file="f")
    with pytest.raises(ValueError):
        ModelSource(package="p")


def test_a_gateway_config_may_have_routes_and_no_models(tmp_path: Path) -> None:
    gateway = tmp_path / "gateway.yaml"
    gateway.write_text(
        "routes:\n  - name: gpt-4o-mini\n    deployments:\n"
        "      - {provider: openai-compatible, model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
    )
    assert load_registry(gateway).specs == []
    empty = tmp_path / "empty.yaml"
    empty.write_text("models: []\n")
    with pytest.raises(InvalidRequest, match="neither a `models:` nor a `routes:`"):
        load_registry(empty)
