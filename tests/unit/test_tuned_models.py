"""Tuned versions on disk as registry models, and a reload that serves what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from offramp.errors import InvalidRequest
from offramp.gateway.runtime import Runtime, build_runtime
from offramp.local.pool import ModelPool
from offramp.models import tuned
from offramp.models.registry import default_config_path
from offramp.providers.registry import builtin_registry
from offramp.settings import load_settings

SERVING = {"backend": "llamacpp", "context_length": 2048, "options": {"kv_type": "q8_0"}}


def write_version(models_dir: Path, name: str, version: int, *, card: bool = True) -> Path:
    folder = tuned.version_dir(models_dir, name, version)
    folder.mkdir(parents=True)
    (folder / tuned.MODEL_FILE).write_bytes(b"GGUF")
    if card:
        tuned.write_card(folder, {"name": name, "serving": SERVING}, "# card\n")
    return folder


def test_each_complete_version_is_a_model_and_the_newest_takes_the_plain_name(
    tmp_path: Path,
) -> None:
    write_version(tmp_path, "recipes", 1)
    write_version(tmp_path, "recipes", 2)
    write_version(tmp_path, "recipes", 3, card=False)  # still being written: not listed
    specs = {s.name: s for s in tuned.tuned_specs(tmp_path)}
    assert sorted(specs) == ["recipes@v1", "recipes@v2"]
    assert specs["recipes@v2"].aliases == ("recipes",) and specs["recipes@v1"].aliases == ()
    v2 = specs["recipes@v2"]
    assert (v2.backend, v2.context_length, v2.options) == ("llamacpp", 2048, {"kv_type": "q8_0"})
    assert v2.source.path == tuned.version_dir(tmp_path, "recipes", 2) / tuned.MODEL_FILE
    # a new version never reuses a number, not even an unfinished one's
    assert tuned.next_version(tmp_path, "recipes") == 4
    assert tuned.next_version(tmp_path, "other") == 1
    registry = tuned.load_with_tuned(None, tmp_path)
    assert registry.resolve("recipes").name == "recipes@v2"
    assert registry.resolve("smollm2-135m-instruct").name == "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("{not json", "cannot read the model card"),
        (json.dumps({"name": "x"}), "has no `serving` object"),
        (json.dumps({"serving": {"context_length": 4}}), "`serving` is invalid"),
    ],
)
def test_a_broken_card_is_an_error_naming_it(tmp_path: Path, card: str, message: str) -> None:
    folder = write_version(tmp_path, "broken", 1, card=False)
    (folder / tuned.CARD_FILE).write_text(card)
    with pytest.raises(InvalidRequest, match=message) as caught:
        tuned.tuned_specs(tmp_path)
    assert str(folder / tuned.CARD_FILE) in caught.value.message


@pytest.mark.parametrize("name", ["", "a/b", "x@v1", "-lead", "é", "n" * 65])
def test_names_that_cannot_name_a_tuned_model(name: str) -> None:
    with pytest.raises(InvalidRequest, match="tuned model's name") as caught:
        tuned.check_name(name)
    assert caught.value.param == "name"


def test_a_tuned_name_that_clashes_with_a_configured_one_is_refused(tmp_path: Path) -> None:
    write_version(tmp_path, "gpt-4o", 1)  # an alias of the bundled model
    with pytest.raises(InvalidRequest, match="'gpt-4o' is configured twice"):
        tuned.load_with_tuned(None, tmp_path)


def runtime_over(
    models_dir: Path, routes: list[dict[str, object]] | None = None
) -> tuple[Runtime, Path]:
    default = yaml.safe_load(default_config_path().read_text())
    config = models_dir.parent / "offramp.yaml"
    config.write_text(yaml.safe_dump({"models": default["models"], "routes": routes or []}))
    settings = load_settings(config, preload=False, models_dir=models_dir)
    pool = ModelPool(settings, tuned.load_with_tuned(config, models_dir), builtin_registry())
    return build_runtime(settings, pool, builtin_registry()), config


def test_reload_adds_new_versions_and_moves_the_plain_name(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    write_version(models_dir, "recipes", 1)
    runtime, config = runtime_over(models_dir)
    assert runtime.router.resolve("recipes", "chat").name == "recipes@v1"
    kept = runtime.router.resolve("smollm2-135m-instruct", "chat")
    write_version(models_dir, "recipes", 2)
    write_version(models_dir, "summaries", 1)
    changes = runtime.reload_models(tuned.load_with_tuned(config, models_dir))
    assert changes.as_json() == {
        "added": ["recipes@v2", "summaries@v1"],
        "removed": [],
        "realiased": ["recipes@v1"],
        "restart_required": [],
    }
    router, pool = runtime.router, runtime.pool
    assert router.resolve("recipes", "chat").name == "recipes@v2"
    assert router.resolve("recipes@v1", "chat").names() == ("recipes@v1",)
    assert router.resolve("summaries", "chat").name == "summaries@v1"
    assert pool.models.resolve("recipes").name == "recipes@v2"
    assert router.resolve("smollm2-135m-instruct", "chat") is kept  # unchanged routes stay


def test_a_reload_whose_names_clash_changes_nothing(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    route = {"name": "smart", "deployments": [{"model": "smollm2-135m-instruct"}]}
    runtime, config = runtime_over(models_dir, [route])
    write_version(models_dir, "smart", 1)  # its plain name is the route's
    with pytest.raises(InvalidRequest, match="'smart' is configured twice"):
        runtime.reload_models(tuned.load_with_tuned(config, models_dir))
    assert runtime.router.resolve("smart", "chat").implicit is False
    assert [s.name for s in runtime.pool.models.specs] == [
        "smollm2-135m-instruct",
        "all-minilm-l6-v2",
    ]
