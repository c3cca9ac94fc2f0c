"""What the schema grammar admits and refuses, keyword by keyword, and what it leaves to
validation (every admitted text is also checked against the schema with jsonschema)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from offramp.errors import UnsupportedSchema
from offramp.providers.llamacpp.grammar import compile_schema
from offramp.providers.llamacpp.tools import call_schema
from offramp.types import ToolSpec
from tests import gbnf

TREE = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["name", "children"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/Node",
}

# (schema, texts the grammar admits, texts it refuses)
CASES: list[tuple[str, dict[str, Any], list[str], list[str]]] = [
    (
        "object",
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
            "required": ["a"],
            "additionalProperties": False,
        },
        ['{"a": "x"}', '{"a":"x","b":true}'],
        ['{"b": true}', '{"a": "x", "c": 1}', '{"b": true, "a": "x"}'],
    ),
    (
        "optional members in order",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        },
        ["{}", '{"a": 1}', '{"b": 2}', '{"a": 1, "b": 2}'],
        ['{"a": 1,}', '{, "b": 2}', '{"a": 1 "b": 2}'],
    ),
    (
        "additionalProperties schema",
        {"type": "object", "additionalProperties": {"type": "integer"}},
        ["{}", '{"x": 1, "y": 2}'],
        ['{"x": "1"}'],
    ),
    (
        "recursion",
        TREE,
        ['{"name": "a", "children": [{"name": "b", "children": []}]}'],
        ['{"name": "a"}'],
    ),
    (
        "$ref with a sibling description",
        {
            "$defs": {"C": {"enum": ["red", "blue"]}},
            "type": "object",
            "properties": {"c": {"$ref": "#/$defs/C", "description": "a colour"}},
            "required": ["c"],
        },
        ['{"c": "red"}'],
        ['{"c": "green"}'],
    ),
    (
        "zod pointer into properties",
        {
            "type": "object",
            "properties": {
                "home": {
                    "type": "object",
                    "properties": {"zip": {"type": "string"}},
                    "required": ["zip"],
                },
                "work": {"$ref": "#/properties/home"},
            },
            "required": ["home", "work"],
        },
        ['{"home": {"zip": "1"}, "work": {"zip": "2"}}'],
        ['{"home": {"zip": "1"}, "work": {}}'],
    ),
    (
        "root self-reference",
        {
            "type": "object",
            "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
            "required": ["next"],
        },
        ['{"next": {"next": null}}'],
        ['{"next": {}}'],
    ),
    (
        "anyOf",
        {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        ["3", "null"],
        ['"3"'],
    ),
    (
        "oneOf with a discriminator",
        {
            "oneOf": [
                {"type": "object", "properties": {"k": {"const": "a"}}, "required": ["k"]},
                {
                    "type": "object",
                    "properties": {"k": {"const": "b"}, "n": {"type": "integer"}},
                    "required": ["k", "n"],
                },
            ],
            "discriminator": {"propertyName": "k"},
        },
        ['{"k": "a"}', '{"k": "b", "n": 1}'],
        ['{"k": "c"}', '{"k": "b"}'],
    ),
    (
        "allOf merges objects",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]},
            ]
        },
        ['{"a": 1, "b": "x"}'],
        ['{"a": 1}'],
    ),
    ("enum", {"enum": ["a", 1, None]}, ['"a"', "1", "null"], ['"b"']),
    ("const", {"const": {"x": [1, "y"]}}, ['{"x": [1, "y"]}'], ['{"x": [2, "y"]}']),
    ("type list", {"type": ["string", "null"]}, ['"s"', "null"], ["1"]),
    ("any JSON", {}, ['{"a": [1, {"b": null}]}', '"s"', "-1.5e3"], ["{a: 1}"]),
    ("only annotations", {"title": "X"}, ["[]", "true"], ["nope"]),
    (
        "tuple",
        {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
        ['[1, "a"]'],
        ["[1]", '["a", 1]', '[1, "a", 2]'],
    ),
    (
        "tuple with more items",
        {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "boolean"}},
        ["[]", "[1]", "[1, true, false]"],
        ["[true]", "[1, 2]"],
    ),
    (
        "minItems and maxItems",
        {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3},
        ["[1, 2]", "[1, 2, 3]"],
        ["[]", "[1]", "[1, 2, 3, 4]"],
    ),
    (
        "integer range",
        {"type": "integer", "minimum": -12, "maximum": 149},
        ["-12", "-1", "0", "7", "99", "100", "149"],
        ["-13", "150", "200", "1000", "01"],
    ),
    (
        "exclusive integer range",
        {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        ["1", "9"],
        ["0", "10", "-1"],
    ),
    (
        "integer lower bound only",
        {"type": "integer", "minimum": 18},
        ["18", "99", "100", "123456"],
        ["17", "5", "-1"],
    ),
    (
        "number between whole bounds",
        {"type": "number", "minimum": 0, "maximum": 1},
        ["0", "0.25", "1", "1.0"],
        ["1.5", "-0.1", "2"],
    ),
    (
        "number with exclusive bounds",
        {"type": "number", "exclusiveMinimum": -1, "exclusiveMaximum": 2},
        ["-0.5", "0", "1.99"],
        ["-1", "2", "2.0", "-1.5"],
    ),
    (
        "string lengths",
        {"type": "string", "minLength": 2, "maxLength": 3},
        ['"ab"', '"abc"', '"a\\nb"'],
        ['"a"', '"abcd"'],
    ),
    (
        "pattern",
        {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"},
        ['"ABC-12"'],
        ['"AB-1"', '"ABC-"', '"abc-1"'],
    ),
    ("unanchored pattern", {"type": "string", "pattern": "ab"}, ['"xxaby"', '"ab"'], ['"a b"']),
    ("pattern with quote", {"type": "string", "pattern": '^a"b$'}, ['"a\\"b"'], ['"a"b"']),
    (
        "pattern alternatives",
        {"type": "string", "pattern": "^(cat|dog)s?$"},
        ['"cats"', '"dog"'],
        ['"cow"'],
    ),
    (
        "negated class",
        {"type": "string", "pattern": "^[^,]+$"},
        ['"a b"', '"x\\"y"'],
        ['"a,b"', '""'],
    ),
    (
        "date",
        {"type": "string", "format": "date"},
        ['"2024-02-29"'],
        ['"2024-13-01"', '"24-01-01"'],
    ),
    (
        "time",
        {"type": "string", "format": "time"},
        ['"12:30:00Z"', '"23:59:59.5+02:00"'],
        ['"24:00:00Z"'],
    ),
    (
        "date-time",
        {"type": "string", "format": "date-time"},
        ['"2024-01-31T08:00:00Z"'],
        ['"2024-01-31 08:00"'],
    ),
    (
        "uuid",
        {"type": "string", "format": "uuid"},
        ['"123e4567-e89b-12d3-a456-426614174000"'],
        ['"123e4567"'],
    ),
    (
        "email",
        {"type": "string", "format": "email"},
        ['"ada@example.org"'],
        ['"ada"', '"@example.org"'],
    ),
    (
        "uri",
        {"type": "string", "format": "uri"},
        ['"https://example.org/a?b=1"'],
        ['"example"', '"http://a b"'],
    ),
    (
        "duration",
        {"type": "string", "format": "duration"},
        ['"P2D"', '"PT1H30M"', '"PT0.5S"'],
        ['"PT"', '"P"', '"1h"'],
    ),
    ("ipv4", {"type": "string", "format": "ipv4"}, ['"192.168.0.255"'], ['"256.1.1.1"']),
]


@pytest.mark.parametrize(("name", "schema", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_grammar_admits_valid_and_refuses_invalid(
    name: str, schema: dict[str, Any], good: list[str], bad: list[str]
) -> None:
    grammar = gbnf.parse(compile_schema(schema).gbnf)
    for text in good:
        assert grammar.admits(text), text
        jsonschema.Draft202012Validator(schema).validate(json.loads(text))
    for text in bad:
        assert not grammar.admits(text), text


@pytest.mark.parametrize(
    ("schema", "relaxed"),
    [
        ({"type": "integer", "multipleOf": 5}, "multipleOf at $"),
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems at $"),
        ({"type": "string", "pattern": "^a+$", "maxLength": 4}, "maxLength at $"),
        ({"type": "number", "minimum": 0.5}, "minimum at $"),
        ({"not": {"type": "string"}}, "not at $"),
        ({"type": "string", "format": "ipv6"}, "format at $"),
        ({"type": "string", "pattern": "^(?=a)a$"}, "pattern at $"),
        (
            {"type": "object", "properties": {"a": {"type": "integer"}}, "minProperties": 1},
            "minProperties at $",
        ),
    ],
)
def test_what_the_grammar_cannot_say_is_reported(schema: dict[str, Any], relaxed: str) -> None:
    compiled = compile_schema(schema)
    assert relaxed in compiled.relaxed
    gbnf.parse(compiled.gbnf)  # still a grammar: the schema's other parts are enforced


def test_bounds_that_are_not_whole_numbers_are_widened_not_narrowed() -> None:
    grammar = gbnf.parse(compile_schema({"type": "number", "minimum": 0.5, "maximum": 2.5}).gbnf)
    assert grammar.admits("0.5") and grammar.admits("2.5") and grammar.admits("1")
    assert not grammar.admits("3.5") and not grammar.admits("-1")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 1}, "no integer"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]},
            "does not resolve",
        ),
        ({"enum": []}, "empty"),
        ({"type": "array", "prefixItems": [{}], "items": False, "minItems": 2}, "item counts"),
    ],
)
def test_unsatisfiable_schemas_are_a_400(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedSchema) as info:
        compile_schema(schema, param="tools")
    assert message in info.value.message
    assert info.value.status_code == 400 and info.value.param == "tools"


def test_tool_parameters_keep_their_references_inside_the_call_wrapper() -> None:
    params = {
        "$defs": {"Unit": {"enum": ["c", "f"]}},
        "type": "object",
        "properties": {"unit": {"$ref": "#/$defs/Unit"}},
        "required": ["unit"],
    }
    tools = (
        ToolSpec("temp", "", params),
        ToolSpec("noop", "", {"type": "object", "properties": {}}),
    )
    schema = call_schema(tools)
    grammar = gbnf.parse(compile_schema(schema, param="tools").gbnf)
    call = {"name": "temp", "arguments": {"unit": "c"}}
    assert grammar.admits(json.dumps(call))
    jsonschema.Draft202012Validator(schema).validate(call)
    assert not grammar.admits(json.dumps({"name": "temp", "arguments": {"unit": "k"}}))
    assert grammar.admits(json.dumps({"name": "noop", "arguments": {}}))


def test_grammar_strings_exclude_raw_control_characters() -> None:
    grammar = gbnf.parse(compile_schema({"type": "string", "maxLength": 3}).gbnf)
    assert grammar.admits('"a\\nb"') and not grammar.admits('"a\nb"')


def test_literals_keep_their_spaces() -> None:
    schema = {
        "type": "object",
        "properties": {"a  b": {"type": "string", "pattern": "^x  y$"}},
        "required": ["a  b"],
    }
    grammar = gbnf.parse(compile_schema(schema).gbnf)
    assert grammar.admits('{"a  b": "x  y"}') and not grammar.admits('{"a b": "x y"}')
