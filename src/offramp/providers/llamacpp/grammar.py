"""JSON schema -> GBNF for grammar-constrained decoding.

The grammar enforces what a context-free grammar can express, and the rest of the schema
is left to validation (every structured output is validated against the whole schema and
repaired, ``services.structured``). ``compile_schema`` reports what it left, so nothing is
silently dropped. What the grammar enforces:

    $ref, $defs, recursion  one rule per referenced schema; a rule may use itself
    allOf, $ref + siblings  merged into one schema (conflicting keywords: the first wins)
    anyOf, oneOf            alternatives (oneOf's "exactly one" is left to validation)
    const, enum             the literal values
    type (or a list)        JSON of that type; keywords imply the type when it is missing
    properties, required    in schema order, optional ones skippable; additionalProperties
                            only when given as true or a schema ({} admits any object)
    prefixItems, items      tuples and lists, with minItems/maxItems
    minimum, maximum, ...   integer ranges exactly; fractions exactly for whole-number bounds
    pattern                 translated from the regex (see gbnf_strings)
    format                  date, time, date-time, duration, uuid, email, hostname, ipv4, uri
    minLength, maxLength    on strings without pattern or format
    {} / only annotations   any JSON value

Left to validation: multipleOf, uniqueItems, contains, not, if/then/else,
patternProperties, propertyNames, min/maxProperties, dependentRequired, other formats,
lengths beside a pattern or format, and bounds of fractions that are not whole numbers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offramp.errors import UnsupportedSchema
from offramp.providers.llamacpp import gbnf_numbers as numbers
from offramp.providers.llamacpp import gbnf_sequences as sequences
from offramp.providers.llamacpp.gbnf_sequences import Members, repeat, seq
from offramp.providers.llamacpp.gbnf_strings import (
    BUILTINS,
    FORMATS,
    json_literal,
    literal,
    pattern_rule,
)
from offramp.schemas import resolve

JSON_OBJECT_GBNF = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,4})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""

# Keywords that only describe (or that the walk reaches elsewhere): they constrain nothing.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
        "strict",
        "discriminator",
        "contentMediaType",
        "contentEncoding",
    }
)
_TYPE_KEYWORDS = {
    "object": {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
    },
    "array": {
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    },
    "string": {"pattern", "format", "minLength", "maxLength"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
}
_TYPE_KEYWORDS["integer"] = _TYPE_KEYWORDS["number"]
_ALWAYS_RELAXED = ("not", "if", "then", "else")
_VALUE_RULES = {
    "json-value": (
        'json-object | json-array | json-string | json-number | ("true" | "false" | "null") space',
        ("json-object", "json-array", "json-string", "json-number", "space"),
    ),
    "json-object": (
        '"{" space (json-string ":" space json-value ("," space json-string ":" space '
        'json-value)*)? "}" space',
        ("json-string", "json-value", "space"),
    ),
    "json-array": ('"[" space (json-value ("," space json-value)*)? "]" space', ("json-value",)),
    "json-string": ('"\\"" char* "\\"" space', ("char", "space")),
    "json-number": (numbers.NUMBER + " space", ("space",)),
}
_RESERVED = {"root", *BUILTINS, *_VALUE_RULES}
MAX_REF_CHAIN = 32


@dataclass(frozen=True)
class CompiledSchema:
    """A schema's grammar, and what it leaves to validation (``keyword at $.path``)."""

    gbnf: str
    relaxed: tuple[str, ...]


def compile_schema(
    schema: dict[str, Any], param: str = "response_format", root: str = "root"
) -> CompiledSchema:
    """The GBNF for values of ``schema``, starting at the rule named ``root``.

    Raises UnsupportedSchema (400 naming ``param``) when no value can satisfy a part the
    grammar must produce (a ``false`` schema, an empty numeric range, a dangling ``$ref``).
    A schema seen before (same keys in the same order) is not converted again.
    """
    return _compiled(json.dumps(schema), param, root)


@functools.lru_cache(maxsize=256)
def _compiled(schema_json: str, param: str, root: str) -> CompiledSchema:
    schema = json.loads(schema_json)
    converter = _Converter(schema, param, root)
    start = converter.visit(schema, "value", "$")
    return CompiledSchema(converter.render(start), tuple(converter.relaxed))


def schema_to_gbnf(
    schema: dict[str, Any], param: str = "response_format", root: str = "root"
) -> str:
    """GBNF for ``schema`` (see compile_schema)."""
    return compile_schema(schema, param, root).gbnf


class _Converter:
    """Walks one schema, collecting named rules."""

    def __init__(self, root: dict[str, Any], param: str, start: str):
        self._root = root
        self._param = param
        self._start = start
        self._rules: dict[str, str] = {}
        self._names_by_body: dict[str, str] = {}
        self._refs: dict[str, str] = {}
        self.relaxed: list[str] = []

    # ----- rules ----------------------------------------------------------------------

    def render(self, start: str) -> str:
        lines = [f"{self._start} ::= {start}"]
        lines += [f"{name} ::= {body}" for name, body in self._rules.items()]
        return "\n".join(lines) + "\n"

    def rule(self, hint: str, body: str) -> str:
        """The name of a rule with ``body`` (an existing one when the body is the same)."""
        if body in self._names_by_body:
            return self._names_by_body[body]
        name = self._fresh(hint)
        self._rules[name] = body
        self._names_by_body[body] = name
        return name

    def builtin(self, name: str) -> str:
        if name not in self._rules:
            body, deps = _VALUE_RULES.get(name) or BUILTINS[name]
            self._rules[name] = body
            for dep in deps:
                self.builtin(dep)
        return name

    def _fresh(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower()[:40] or "r"
        name, i = base, 1
        while name in self._rules or name in _RESERVED or name == self._start:
            name, i = f"{base}-{i}", i + 1
        return name

    def fail(self, message: str) -> UnsupportedSchema:
        return UnsupportedSchema(message, param=self._param)

    # ----- the walk -------------------------------------------------------------------

    def visit(self, schema: Any, hint: str, path: str) -> str:
        """A GBNF expression for one JSON value of ``schema`` (trailing space included)."""
        if schema is True:
            return self.builtin("json-value")
        if schema is False:
            raise self.fail(f"the schema at {path} is `false`: no value can satisfy it")
        if not isinstance(schema, dict):
            raise self.fail(f"the schema at {path} must be an object")
        for keyword, handler in _DISPATCH:
            if keyword in schema:
                return handler(self, schema, hint, path)
        return self._typed(schema, hint, path)

    def _ref(self, schema: dict[str, Any], hint: str, path: str) -> str:
        ref = schema["$ref"]
        if self._constraining(schema, "$ref"):
            return self.visit(self.merged([schema], path), hint, path)
        if ref in self._refs:
            return self._refs[ref]
        name = self._fresh(ref.rsplit("/", 1)[-1] or "self")
        self._refs[ref] = name
        self._rules[name] = ""  # reserved while its body (which may use it) is built
        self._rules[name] = self.visit(self._target(ref, path), name, ref)
        return name

    def _all_of(self, schema: dict[str, Any], hint: str, path: str) -> str:
        return self.visit(self.merged([schema], path), hint, path)

    def _union(self, schema: dict[str, Any], hint: str, path: str) -> str:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        if keyword == "anyOf" and "oneOf" in schema:
            self.relaxed.append(f"oneOf at {path}")
        siblings = self._constraining(schema, keyword, "oneOf")
        options = []
        for i, branch in enumerate(schema[keyword]):
            if branch is False:
                continue
            if siblings and isinstance(branch, dict):
                branch = self.merged([branch, siblings], path)
            options.append(self.visit(branch, f"{hint}-{i}", f"{path}.{keyword}[{i}]"))
        if not options:
            raise self.fail(f"`{keyword}` at {path} has no branch a value could take")
        return self.rule(hint, " | ".join(dict.fromkeys(options)))

    def _const(self, schema: dict[str, Any], hint: str, path: str) -> str:
        return f"{json_literal(schema['const'])} {self.builtin('space')}"

    def _enum(self, schema: dict[str, Any], hint: str, path: str) -> str:
        values = " | ".join(json_literal(v) for v in schema["enum"])
        if not values:
            raise self.fail(f"`enum` at {path} is empty: no value can satisfy it")
        return self.rule(hint, f"({values}) {self.builtin('space')}")

    def _typed(self, schema: dict[str, Any], hint: str, path: str) -> str:
        types = schema.get("type") or _implied_type(schema)
        if isinstance(types, list):
            if len(types) == 1:
                types = types[0]
            else:
                options = [self._typed({**schema, "type": t}, f"{hint}-{t}", path) for t in types]
                return self.rule(hint, " | ".join(options))
        if types is None:
            self._note_relaxed(schema, set(), path, set())
            return self.builtin("json-value")
        expr, handled = _TYPE_HANDLERS[types](self, schema, hint, path)
        self._note_relaxed(schema, _TYPE_KEYWORDS.get(types, set()), path, handled)
        return expr

    def _note_relaxed(
        self, schema: dict[str, Any], relevant: set[str], path: str, handled: set[str]
    ) -> None:
        for key in schema:
            if (key in relevant or key in _ALWAYS_RELAXED) and key not in handled:
                self.relaxed.append(f"{key} at {path}")

    # ----- merging --------------------------------------------------------------------

    def merged(self, parts: list[Any], path: str, depth: int = 0) -> dict[str, Any]:
        """One schema that means (as far as the grammar goes) all of ``parts``."""
        if depth > MAX_REF_CHAIN:
            raise self.fail(f"the references at {path} never reach a schema")
        out: dict[str, Any] = {}
        for part in parts:
            if not isinstance(part, dict):
                if part is False:
                    raise self.fail(f"`allOf` at {path} holds `false`: no value can satisfy it")
                continue
            part = dict(part)
            if "$ref" in part:
                ref = part.pop("$ref")
                part = self.merged([self._target(ref, path), part], path, depth + 1)
            if "allOf" in part:
                subs = part.pop("allOf")
                part = self.merged([*subs, part], path, depth + 1)
            for key, value in part.items():
                if key not in ANNOTATIONS:
                    self._merge_key(out, key, value, path)
        return out

    def _merge_key(self, out: dict[str, Any], key: str, value: Any, path: str) -> None:
        if key not in out:
            out[key] = value
        elif key == "properties":
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[key] = props
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            ours = set(out[key] if isinstance(out[key], list) else [out[key]])
            theirs = value if isinstance(value, list) else [value]
            both = [t for t in theirs if t in ours or (t == "integer" and "number" in ours)]
            if not both:
                raise self.fail(f"`allOf` at {path} asks for types that exclude each other")
            out[key] = both
        elif out[key] != value:
            self.relaxed.append(f"{key} at {path}")

    def _constraining(self, schema: dict[str, Any], *besides: str) -> dict[str, Any]:
        return {k: v for k, v in schema.items() if k not in ANNOTATIONS and k not in besides}

    def _target(self, ref: str, path: str) -> Any:
        try:
            return resolve(self._root, ref)
        except (KeyError, ValueError) as exc:
            raise self.fail(f"`$ref` {ref!r} at {path} does not resolve: {exc}") from exc

    # ----- types ----------------------------------------------------------------------

    def _object(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        handled = {"properties", "required", "additionalProperties"}
        props = dict(schema.get("properties") or {})
        required = set(schema.get("required") or [])
        for name in schema.get("required") or []:
            props.setdefault(name, True)
        extra_schema = schema.get("additionalProperties")
        if not props and extra_schema in (None, True, {}):
            return self.builtin("json-object"), handled
        entries = []
        for name, sub in props.items():
            if sub is False:
                continue
            value = self.visit(sub, f"{hint}-{name}", f"{path}.properties.{name}")
            key = literal(json.dumps(name, ensure_ascii=False))
            entries.append((f'{key} space ":" space {value}', name in required))
        extra = None
        if extra_schema is True or isinstance(extra_schema, dict):
            value = self.visit(extra_schema, f"{hint}-additional", f"{path}.additionalProperties")
            extra = f'{self.builtin("json-string")} ":" space {value}'
        members = Members(self.rule, hint, entries, extra).build()
        self.builtin("space")
        return self.rule(hint, seq('"{" space', members, '"}" space')), handled

    def _array(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        handled = {"items", "prefixItems", "additionalItems", "minItems", "maxItems"}
        prefix_schemas, items = schema.get("prefixItems") or [], schema.get("items")
        if isinstance(items, list):  # draft 7 tuples
            prefix_schemas, items = items, schema.get("additionalItems")
        prefix = [
            self.visit(s, f"{hint}-{i}", f"{path}.prefixItems[{i}]")
            for i, s in enumerate(prefix_schemas)
        ]
        extra: str | None
        if items is False or (items is None and prefix):
            extra = None
        else:
            extra = self.visit(True if items is None else items, f"{hint}-item", f"{path}.items")
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        if extra is None:
            high = len(prefix) if high is None else min(int(high), len(prefix))
        if high is not None and low > high:
            raise self.fail(f"no array satisfies the item counts at {path}")
        elements = sequences.elements(prefix, extra, low, None if high is None else int(high))
        self.builtin("space")
        return self.rule(hint, seq('"[" space', elements, '"]" space')), handled

    def _string(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        handled = {"pattern", "format", "minLength", "maxLength"}
        contents = None
        lengths = {"minLength", "maxLength"} & schema.keys()
        if "pattern" in schema:
            translated = pattern_rule(schema["pattern"])
            if translated is None:
                handled.discard("pattern")
            else:
                contents, used = translated
                for name in used:
                    self.builtin(name)
                handled -= lengths | {"format"}
        if contents is None and schema.get("format") in FORMATS:
            contents = self.builtin(FORMATS[schema["format"]])
            handled -= lengths
        elif contents is None:
            if "format" in schema:
                handled.discard("format")
            char = self.builtin("char")
            low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
            contents = repeat(char, low, None if high is None else int(high))
        self.builtin("space")
        return self.rule(hint, seq('"\\""', contents, '"\\"" space')), handled

    def _integer(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        low, low_ex, high, high_ex = _bounds(schema)
        if low is not None and low_ex:
            low = float(int(low) + 1 if float(low).is_integer() else low)
        if high is not None and high_ex:
            high = float(int(high) - 1 if float(high).is_integer() else high)
        try:
            expr = numbers.integer_rule(low, high)
        except numbers.EmptyRange as exc:
            raise self.fail(f"at {path}: {exc}") from exc
        self.builtin("space")
        return self.rule(hint, f"{expr} space"), _TYPE_KEYWORDS["number"] - {"multipleOf"}

    def _number(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        try:
            expr, exact = numbers.number_rule(*_bounds(schema))
        except numbers.EmptyRange as exc:
            raise self.fail(f"at {path}: {exc}") from exc
        handled = _TYPE_KEYWORDS["number"] - {"multipleOf"}
        if not exact:
            handled -= {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
        self.builtin("space")
        return self.rule(hint, f"{expr} space"), handled

    def _boolean(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        return f'("true" | "false") {self.builtin("space")}', set()

    def _null(self, schema: dict[str, Any], hint: str, path: str) -> tuple[str, set[str]]:
        return f'"null" {self.builtin("space")}', set()


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low exclusive, high, high exclusive), the tighter of each pair of keywords
    (draft 4's boolean exclusiveMinimum/Maximum included)."""
    low, low_ex = schema.get("minimum"), False
    high, high_ex = schema.get("maximum"), False
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):
        low_ex = ex_low
    elif ex_low is not None and (low is None or ex_low >= low):
        low, low_ex = ex_low, True
    if isinstance(ex_high, bool):
        high_ex = ex_high
    elif ex_high is not None and (high is None or ex_high <= high):
        high, high_ex = ex_high, True
    return low, low_ex, high, high_ex


def _implied_type(schema: dict[str, Any]) -> str | None:
    for name, keywords in _TYPE_KEYWORDS.items():
        if keywords & schema.keys():
            return name
    return None


_Handler = Callable[[_Converter, dict[str, Any], str, str], str]
_DISPATCH: list[tuple[str, _Handler]] = [
    ("$ref", _Converter._ref),
    ("allOf", _Converter._all_of),
    ("anyOf", _Converter._union),
    ("oneOf", _Converter._union),
    ("const", _Converter._const),
    ("enum", _Converter._enum),
]
_TypeHandler = Callable[[_Converter, dict[str, Any], str, str], tuple[str, set[str]]]
_TYPE_HANDLERS: dict[str, _TypeHandler] = {
    "object": _Converter._object,
    "array": _Converter._array,
    "string": _Converter._string,
    "integer": _Converter._integer,
    "number": _Converter._number,
    "boolean": _Converter._boolean,
    "null": _Converter._null,
}
