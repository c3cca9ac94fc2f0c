"""The prompts file (JSONL) and the routes a parity run compares.

A prompt line: ``{"id", "type": "chat"|"json"|"embedding", "messages" | "input",
"schema" (json), "fields" (json: structured fields that must match exactly),
"min_similarity" (optional per-prompt threshold)}``.

A route: ``BASE_URL#MODEL`` with optional ``?temperature=..&system=..&max_tokens=..``
``&embedding_model=..`` (default ``text-embedding-3-small``) ``&priced_as=openai|anthropic``
(a route on the vendor's own host is priced as that vendor without it),
e.g. ``http://127.0.0.1:8000/v1#gpt-4o-mini?temperature=0.9``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from offramp.errors import InvalidRequest

_VENDOR_HOSTS = {"api.openai.com": "openai", "api.anthropic.com": "anthropic"}


@dataclass(frozen=True)
class Case:
    id: str
    type: Literal["chat", "json", "embedding"]
    messages: tuple[dict[str, Any], ...] = ()
    input: str = ""
    schema: dict[str, Any] | None = None
    fields: tuple[str, ...] = ()
    min_similarity: float | None = None


@dataclass(frozen=True)
class Route:
    base_url: str
    model: str
    temperature: float | None = None
    system: str | None = None
    max_tokens: int = 256
    embedding_model: str = "text-embedding-3-small"
    priced_as: str | None = None

    @property
    def provider(self) -> str | None:
        """The price table provider this route's tokens are priced as, if any."""
        if self.priced_as is not None:
            return self.priced_as
        host = urlsplit(self.base_url).hostname or ""
        return _VENDOR_HOSTS.get(host)

    @property
    def label(self) -> str:
        knobs = [f"temperature={self.temperature}"] if self.temperature is not None else []
        if self.system:
            knobs.append("system prompt")
        return f"{self.model}" + (f" ({', '.join(knobs)})" if knobs else "")


def parse_route(spec: str) -> Route:
    """``BASE#MODEL?k=v`` -> Route; InvalidRequest naming the route when malformed."""
    base, sep, rest = spec.partition("#")
    if not sep or not base.startswith(("http://", "https://")) or not rest:
        raise InvalidRequest(
            f"route {spec!r} must look like http://HOST:PORT/v1#MODEL", param="route"
        )
    model, _, query = rest.partition("?")
    params = dict(parse_qsl(query))
    try:
        temperature = float(params.pop("temperature")) if "temperature" in params else None
        max_tokens = int(params.pop("max_tokens", "256"))
    except ValueError as exc:
        raise InvalidRequest(f"route {spec!r}: {exc}", param="route") from exc
    system = params.pop("system", None)
    embedding_model = params.pop("embedding_model", "text-embedding-3-small")
    priced_as = params.pop("priced_as", None)
    if priced_as is not None and priced_as not in ("openai", "anthropic"):
        raise InvalidRequest(
            f"route {spec!r}: priced_as must be openai or anthropic, not {priced_as!r}",
            param="route",
        )
    if params:
        raise InvalidRequest(f"route {spec!r}: unknown option(s) {sorted(params)}", param="route")
    return Route(
        base.rstrip("/"), model, temperature, system, max_tokens, embedding_model, priced_as
    )


def load_cases(path: Path) -> list[Case]:
    """Read the prompts file; InvalidRequest naming the line on a bad one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}", param="prompts") from exc
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            kind = raw.get("type", "chat")
            if kind not in ("chat", "json", "embedding"):
                raise ValueError(f"type must be chat, json or embedding, not {kind!r}")
            if kind == "json" and not isinstance(raw.get("schema"), dict):
                raise ValueError("a json prompt needs a schema")
            if kind == "embedding" and not isinstance(raw.get("input"), str):
                raise ValueError("an embedding prompt needs input text")
            if kind != "embedding" and not raw.get("messages"):
                raise ValueError("a chat or json prompt needs messages")
            cases.append(
                Case(
                    id=str(raw.get("id", f"line-{number}")),
                    type=kind,
                    messages=tuple(raw.get("messages") or ()),
                    input=raw.get("input", ""),
                    schema=raw.get("schema"),
                    fields=tuple(raw.get("fields") or ()),
                    min_similarity=raw.get("min_similarity"),
                )
            )
        except (ValueError, AttributeError) as exc:
            raise InvalidRequest(f"{path}:{number}: {exc}", param="prompts") from exc
    if not cases:
        raise InvalidRequest(f"{path} holds no prompts", param="prompts")
    return cases
