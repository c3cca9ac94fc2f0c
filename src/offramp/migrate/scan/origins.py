"""Where a value that reaches an SDK key or endpoint comes from, in either language.

A key or endpoint is a *slot* (``api_key=``, ``base_url=``, ``baseURL:``); what fills it
is traced to an :class:`Origin` (a hard-coded string, or an environment read with its
default) in the same file, or to a :class:`Ref`: a name imported from another module of
the scanned tree, resolved once every file has been read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from offramp.migrate.scan.sites import API_URL, Sdk, Site, is_key_var

Slot = Literal["key", "endpoint"]


@dataclass(frozen=True)
class Origin:
    """A hard-coded string (``literal``) or an environment read (``env``, ``default``)."""

    file: str
    line: int
    column: int
    literal: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class Ref:
    """``name`` imported from ``module`` (a dotted Python module or a script path) into a slot."""

    module: str
    name: str
    slot: Slot
    sdk: Sdk


@dataclass
class FileScan:
    """One file's sites, the names it defines at module level, and its unresolved imports."""

    sites: list[Site] = field(default_factory=list)
    exports: dict[str, Origin] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)


def slot_site(origin: Origin, slot: Slot, sdk: Sdk) -> Site | None:
    """The site a value in a slot makes: an endpoint (hard-coded or configured by an
    environment variable) or a key read from the environment."""
    if slot == "endpoint":
        if origin.env is not None:
            return Site(origin.file, origin.line, origin.column, "endpoint", sdk, env=origin.env)
        if origin.literal is not None and origin.literal.startswith(("http://", "https://")):
            return Site(
                origin.file, origin.line, origin.column, "endpoint", sdk, detail=origin.literal
            )
        return None
    if origin.env is not None:
        return Site(origin.file, origin.line, origin.column, "api-key-env", sdk, detail=origin.env)
    return None


def env_read_site(origin: Origin, sdk: Sdk) -> Site | None:
    """An environment read of a well-known key or endpoint variable, wherever it goes."""
    if origin.env is None or not is_key_var(origin.env):
        return None
    return Site(origin.file, origin.line, origin.column, "api-key-env", sdk, detail=origin.env)


def is_api_url(value: str | None) -> bool:
    return value is not None and API_URL.match(value) is not None
