"""Task input: defaults filled in from the schema, then validated; 400 naming the field."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from offramp.errors import InvalidRequest


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's ``default`` of every absent object property filled in
    (recursively, through nested objects and array items); the input is not modified."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        out = dict(value)
        for name, sub in schema["properties"].items():
            if not isinstance(sub, dict):
                continue
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], v) for v in value]
    return value


def validate_input(schema: dict[str, Any], value: Any, param: str = "input") -> dict[str, Any]:
    """The input with defaults applied; InvalidRequest whose ``param`` is the dotted path of
    the offending field (``input.context.user_level``) when it breaks the schema."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be a JSON object", param=param)
    filled = with_defaults(schema, value)
    error = best_match(jsonschema.Draft202012Validator(schema).iter_errors(filled))
    if error is None:
        return dict(filled)
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        path += missing[:1]
        where = _dotted(param, path)
        raise InvalidRequest(
            f"Missing required parameter: '{where}'.",
            param=where,
            code="missing_required_parameter",
        )
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        path += sorted(set(error.instance) - known)[:1]
        where = _dotted(param, path)
        raise InvalidRequest(
            f"Unrecognized parameter: '{where}'.", param=where, code="unknown_parameter"
        )
    where = _dotted(param, path)
    raise InvalidRequest(f"Invalid value for '{where}': {error.message}", param=where)


def _dotted(param: str, path: list[str]) -> str:
    out = param
    for part in path:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out
