"""JSON schema -> GBNF for grammar-constrained decoding, refusing what it cannot enforce.

llama.cpp's schema converter silently ignores keywords it does not understand (numeric
bounds, ``not``, ``uniqueItems``...). A silently ignored constraint is a broken promise,
so every schema is walked first and any keyword outside the enforceable set is a 400
naming the keyword and where it sits.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from offramp.errors import UnsupportedSchema

# Keywords that only describe; they constrain nothing, so they are always accepted.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$schema",
        "$id",
        "$comment",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
        "strict",
    }
)
_STRUCTURAL = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "pattern",
        "format",
        "minLength",
        "maxLength",
    }
)
_FORMATS = frozenset(
    {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})

JSON_OBJECT_GBNF = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,4})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""

# The converter's string character rule, and the one JSON allows (control characters escaped).
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def check_enforceable(schema: Any, path: str = "$", param: str = "response_format") -> None:
    """Raise UnsupportedSchema naming the first keyword decoding cannot enforce."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"schema at {path} must be an object", param=param)
    for key in schema:
        if key not in _ANNOTATIONS and key not in _STRUCTURAL:
            raise UnsupportedSchema(
                f"JSON schema keyword `{key}` at {path} cannot be enforced while decoding; "
                "remove it or validate it in the application",
                param=param,
                code="unsupported_schema_keyword",
            )
    _check_combinations(schema, path, param)
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            check_enforceable(sub, f"{path}.{key}.{name}", param)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key) or []):
            check_enforceable(sub, f"{path}.{key}[{i}]", param)
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            check_enforceable(sub, f"{path}.{key}", param)
        elif isinstance(sub, list):
            raise UnsupportedSchema(f"`{key}` at {path} must be a schema, not a list", param=param)


def _check_combinations(schema: dict[str, Any], path: str, param: str) -> None:
    """Refuse the keyword combinations the converter would drop one half of."""
    types = schema.get("type")
    for t in types if isinstance(types, list) else [types] if types else []:
        if t not in _TYPES:
            raise UnsupportedSchema(f"unknown type {t!r} at {path}", param=param)
    fmt = schema.get("format")
    if fmt is not None and fmt not in _FORMATS:
        raise UnsupportedSchema(
            f"JSON schema keyword `format` with value {fmt!r} at {path} cannot be enforced "
            f"while decoding (supported: {', '.join(sorted(_FORMATS))})",
            param=param,
            code="unsupported_schema_keyword",
        )
    lengths = [k for k in ("minLength", "maxLength") if k in schema]
    if lengths and ("pattern" in schema or fmt is not None or types != "string"):
        raise UnsupportedSchema(
            f"JSON schema keyword `{lengths[0]}` at {path} can only be enforced on a plain "
            '`"type": "string"` without `pattern` or `format`',
            param=param,
            code="unsupported_schema_keyword",
        )
    if "prefixItems" in schema and (
        "items" in schema or "minItems" in schema or "maxItems" in schema
    ):
        raise UnsupportedSchema(
            f"JSON schema keyword `prefixItems` at {path} cannot be combined with "
            "`items`, `minItems` or `maxItems` while decoding",
            param=param,
            code="unsupported_schema_keyword",
        )
    if "allOf" in schema:
        for i, sub in enumerate(schema["allOf"]):
            if not isinstance(sub, dict) or not ({"properties", "$ref", "anyOf"} & sub.keys()):
                raise UnsupportedSchema(
                    f"`allOf[{i}]` at {path}: only object schemas with `properties` can be "
                    "merged while decoding",
                    param=param,
                    code="unsupported_schema_keyword",
                )
    union = [k for k in ("anyOf", "oneOf", "$ref", "const", "enum") if k in schema]
    constraining = _STRUCTURAL - {"type", *union}
    if union and (constraining & schema.keys()):
        extra = sorted(constraining & schema.keys())[0]
        raise UnsupportedSchema(
            f"JSON schema keyword `{extra}` at {path} cannot be enforced beside `{union[0]}`",
            param=param,
            code="unsupported_schema_keyword",
        )


def schema_to_gbnf(schema: dict[str, Any], param: str = "response_format") -> str:
    """GBNF for ``schema`` (call check_enforceable first); a schema seen before (same
    keys in the same order) gets its grammar from a cache instead of converting again."""
    return _gbnf_for(json.dumps(schema), param)


@functools.lru_cache(maxsize=256)
def _gbnf_for(schema_json: str, param: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = str(json_schema_to_gbnf(schema_json))
    except Exception as exc:  # the converter raises assertion/key errors on odd schemas
        raise UnsupportedSchema(
            f"the JSON schema cannot be turned into a grammar: {exc}", param=param
        ) from exc
    # The converter lets raw control characters (a newline) into strings, which no JSON
    # parser accepts; JSON wants them escaped.
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)
