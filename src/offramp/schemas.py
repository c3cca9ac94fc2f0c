"""JSON schemas as clients send them: checked once at the door, then usable anywhere.

Every door that takes a schema (``response_format``, tool ``parameters``, a Responses
``text.format``) calls ``check_schema`` on it. What passes is every schema OpenAI's
structured outputs accept, as pydantic, zod and the agent frameworks write them: ``$defs``
and ``$ref`` at any depth (also zod's pointers into ``#/properties/...``), recursion,
``anyOf``/``oneOf``/``allOf``, ``enum``/``const``, ``{}`` for any JSON, tuples, numeric and
string bounds, ``pattern``, ``format``, ``discriminator``. Keywords a grammar cannot
express are still honoured: every output is validated against the whole schema and
repaired (``services.structured``).

A schema is refused (400 ``unsupported_schema`` naming the field) only where OpenAI refuses
it too: it is not a JSON object, breaks the JSON Schema meta-schema, has a ``$ref`` that
does not resolve inside the document (remote references are never fetched), or a
``pattern`` that is not a regular expression.

``embed`` lets a schema sit inside another document (a tool call's ``arguments`` inside
the call wrapper) with its references still pointing where they did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from offramp.errors import UnsupportedSchema

# Keywords whose value is one subschema, a list of them, or a map of names to them.
_ONE = (
    "items",
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def check_schema(schema: Any, param: str) -> dict[str, Any]:
    """Return ``schema`` if it is a JSON schema every part of offramp can work with.

    Raises UnsupportedSchema (400, ``param`` names the field) for a schema that is not an
    object, breaks its draft's meta-schema (2020-12 unless ``$schema`` names another), has
    a reference that does not resolve locally, or a pattern Python cannot compile.
    """
    if not isinstance(schema, dict):
        raise UnsupportedSchema("the JSON schema must be an object", param=param)
    try:
        validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        where = "".join(f"[{p!r}]" for p in exc.path)
        raise UnsupportedSchema(
            f"invalid JSON schema{' at ' + where if where else ''}: {exc.message}", param=param
        ) from exc
    for path, sub in walk(schema):
        _check_node(schema, path, sub, param)
    return schema


def validator_class(schema: dict[str, Any]) -> type[Validator]:
    """The jsonschema validator class for the draft ``schema`` declares (2020-12 by default)."""
    cls: type[Validator] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return cls


def validator_for(schema: dict[str, Any]) -> Validator:
    """A validator of values against ``schema``, checking ``format`` where jsonschema can
    (date, time, uuid, email, ipv4... without optional packages)."""
    cls = validator_class(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def walk(schema: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every subschema of ``schema`` (itself first) with its JSONPath-like location."""
    yield path, schema
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        if isinstance(schema.get(key), dict | bool):
            yield from walk(schema[key], f"{path}.{key}")
    for key in _MANY:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield from walk(sub, f"{path}.{key}[{i}]")
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from walk(sub, f"{path}.{key}.{name}")


def resolve(root: Any, ref: str) -> Any:
    """The subschema of ``root`` a local ``$ref`` (``#`` or ``#/json/pointer``) points at.

    Raises KeyError when it points at nothing, ValueError when it is not local.
    """
    if not ref.startswith("#"):
        raise ValueError(f"only local references (#...) are supported, got {ref!r}")
    target = root
    pointer = unquote(ref[1:])
    if not pointer:
        return target
    if not pointer.startswith("/"):
        raise ValueError(f"only JSON-pointer references (#/...) are supported, got {ref!r}")
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        elif isinstance(target, dict) and token in target:
            target = target[token]
        else:
            raise KeyError(ref)
    return target


def embed(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``schema`` whose local references work once it sits at ``#/$defs/<key>``
    of another document (``#/$defs/X`` becomes ``#/$defs/<key>/$defs/X``, ``#`` becomes
    ``#/$defs/<key>``)."""
    prefix = "#/$defs/" + key.replace("~", "~0").replace("/", "~1")
    out: dict[str, Any] = _rewrite_refs(schema, prefix)
    return out


def _rewrite_refs(schema: Any, prefix: str) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = prefix + ref[1:]
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = _rewrite_refs(out[key], prefix)
    for key in _MANY:
        if isinstance(out.get(key), list):
            out[key] = [_rewrite_refs(s, prefix) for s in out[key]]
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {n: _rewrite_refs(s, prefix) for n, s in out[key].items()}
    return out


def _check_node(root: dict[str, Any], path: str, node: Any, param: str) -> None:
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            resolve(root, ref)
        except ValueError as exc:
            raise UnsupportedSchema(f"`$ref` at {path}: {exc}", param=param) from exc
        except KeyError as exc:
            raise UnsupportedSchema(
                f"`$ref` at {path} points at nothing in the schema: {ref!r}", param=param
            ) from exc
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UnsupportedSchema(
                f"`pattern` at {path} is not a regular expression offramp can check: {exc}",
                param=param,
            ) from exc
