"""Tuned models on disk, as the registry sees them.

``offramp tune`` writes each result into its own version folder::

    <models_dir>/tuned/<NAME>/v<N>/model.gguf   the merged weights
                                  card.json    what it is (base, data, metrics) and how
                                               to serve it (its ``serving`` section)
                                  card.md      the same card for people

Every complete version is a model of its own, ``NAME@vN``; the newest one also answers
to ``NAME``. A version is complete once its ``card.json`` exists: the card is written
last (atomically), so a tune still running, or one that died, is never listed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from offramp.errors import InvalidRequest, quoted
from offramp.models.registry import ModelRegistry, ModelSource, ModelSpec, load_registry

TUNED_DIR = "tuned"
MODEL_FILE = "model.gguf"
CARD_FILE = "card.json"
CARD_MARKDOWN = "card.md"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v([1-9][0-9]*)$")


def check_name(name: str) -> str:
    """``name`` if it can name a tuned model (letters, digits, ``.``, ``_``, ``-``; at
    most 64; no ``@`` or ``/``), else InvalidRequest naming it."""
    if not _NAME.match(name):
        raise InvalidRequest(
            f"a tuned model's name is 1-64 letters, digits, '.', '_' or '-' (starting with "
            f"a letter or digit), not {quoted(name)}",
            param="name",
        )
    return name


def version_name(name: str, version: int) -> str:
    """The public name of one version, e.g. ``recipes@v2``."""
    return f"{name}@v{version}"


def version_dir(models_dir: Path, name: str, version: int) -> Path:
    """The folder of one version of a tuned model."""
    return models_dir / TUNED_DIR / name / f"v{version}"


def versions(models_dir: Path, name: str, *, complete: bool = True) -> list[int]:
    """The version numbers of ``name`` on disk, ascending; with ``complete`` only those
    whose card is written."""
    root = models_dir / TUNED_DIR / name
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _VERSION.match(child.name)
        if match and child.is_dir() and (not complete or (child / CARD_FILE).is_file()):
            found.append(int(match.group(1)))
    return sorted(found)


def next_version(models_dir: Path, name: str) -> int:
    """The number a new version of ``name`` takes: one past every folder already there,
    finished or not, so a failed tune's leftovers are never overwritten."""
    return max(versions(models_dir, name, complete=False), default=0) + 1


def read_card(folder: Path) -> dict[str, Any]:
    """The ``card.json`` of a version folder; InvalidRequest naming the file if it is
    unreadable or not a JSON object."""
    path = folder / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"cannot read the model card {path}: {exc}", param="config") from exc
    if not isinstance(card, dict):
        raise InvalidRequest(f"the model card {path} is not a JSON object", param="config")
    return card


def write_card(folder: Path, card: dict[str, Any], markdown: str) -> None:
    """Write a version's cards; ``card.json`` last and atomically (it marks the version
    complete)."""
    (folder / CARD_MARKDOWN).write_text(markdown, encoding="utf-8")
    partial = folder / (CARD_FILE + ".partial")
    partial.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(folder / CARD_FILE)


def load_with_tuned(config: Path | None, models_dir: Path) -> ModelRegistry:
    """The registry of ``config``'s models plus every tuned version under ``models_dir``;
    InvalidRequest when a tuned name clashes with a configured one or a card is broken."""
    return load_registry(config, tuned_specs(models_dir))


def tuned_specs(models_dir: Path) -> list[ModelSpec]:
    """A ModelSpec for every complete tuned version under ``models_dir``, by name then
    version; the newest version of each name carries the plain name as its alias.
    InvalidRequest naming the card when one cannot say how its model is served."""
    root = models_dir / TUNED_DIR
    if not root.is_dir():
        return []
    specs: list[ModelSpec] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)):
        numbers = versions(models_dir, folder.name)
        for number in numbers:
            latest = number == numbers[-1]
            specs.append(
                _spec(folder.name, number, latest, version_dir(models_dir, folder.name, number))
            )
    return specs


def _spec(name: str, version: int, latest: bool, folder: Path) -> ModelSpec:
    serving = read_card(folder).get("serving")
    if not isinstance(serving, dict):
        raise InvalidRequest(
            f"the model card {folder / CARD_FILE} has no `serving` object", param="config"
        )
    try:
        return ModelSpec(
            name=version_name(name, version),
            backend=serving.get("backend", "llamacpp"),
            source=ModelSource(path=folder / MODEL_FILE),
            context_length=serving.get("context_length", 0),
            aliases=(name,) if latest else (),
            options=serving.get("options") or {},
        )
    except ValidationError as exc:
        raise InvalidRequest(
            f"the model card {folder / CARD_FILE}: `serving` is invalid: {exc}", param="config"
        ) from exc
