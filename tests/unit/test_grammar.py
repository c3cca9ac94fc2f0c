"""Which JSON-schema keywords grammar decoding can enforce, and which it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from offramp.errors import UnsupportedSchema
from offramp.providers.llamacpp.grammar import check_enforceable, schema_to_gbnf


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
            "title": "T",
            "description": "d",
        },
        {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[a-z]+$"},
        {"type": "string", "minLength": 2, "maxLength": 5},
        {
            "$defs": {"x": {"type": "integer"}},
            "type": "object",
            "properties": {"x": {"$ref": "#/$defs/x"}},
        },
        {"enum": ["a", "b"]},
        {"type": ["string", "integer"]},
    ],
)
def test_enforceable_schemas_pass_and_compile(schema: dict[str, Any]) -> None:
    check_enforceable(schema)
    assert "root ::=" in schema_to_gbnf(schema)


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "integer", "minimum": 1}, "minimum"),
        ({"type": "number", "exclusiveMaximum": 1}, "exclusiveMaximum"),
        ({"type": "number", "multipleOf": 2}, "multipleOf"),
        (
            {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
            "uniqueItems",
        ),
        ({"type": "object", "patternProperties": {"^a": {}}}, "patternProperties"),
        ({"if": {"type": "string"}}, "if"),
        ({"type": "string", "format": "email"}, "format"),
        ({"type": "string", "pattern": "a", "minLength": 1}, "minLength"),
        ({"anyOf": [{"type": "string"}], "required": ["x"]}, "required"),
        ({"type": "object", "properties": {"a": {"type": "strnig"}}}, "strnig"),
    ],
)
def test_unenforceable_keywords_are_named(schema: dict[str, Any], keyword: str) -> None:
    with pytest.raises(UnsupportedSchema) as info:
        check_enforceable(schema)
    assert keyword in info.value.message
    assert info.value.status_code == 400
    assert info.value.param == "response_format"


def test_nested_path_is_reported() -> None:
    with pytest.raises(UnsupportedSchema) as info:
        check_enforceable(
            {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}},
            param="tools",
        )
    assert "$.properties.n" in info.value.message and info.value.param == "tools"


def test_grammar_strings_exclude_raw_control_characters() -> None:
    gbnf = schema_to_gbnf(
        {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}
    )
    char = next(line for line in gbnf.splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char  # a newline inside a JSON string must be written as \n
