"""Reading tree-sitter JavaScript/TypeScript nodes: text, strings, object options, and
whether a string sits where people read it rather than where a program sends it."""

from __future__ import annotations

import re
from typing import Any

from offramp.migrate.scan.sites import UI_NAMES, UI_VARIABLE

_SPACE = re.compile(r"\s+")
# Calls whose string arguments are logged, translated, asserted on or compared.
_PROSE_CALLS = frozenset(
    {
        "log",
        "info",
        "warn",
        "error",
        "debug",
        "t",
        "i18n",
        "expect",
        "describe",
        "it",
        "test",
        "toBe",
        "toEqual",
        "toContain",
        "toMatch",
        "includes",
        "startsWith",
        "endsWith",
        "alert",
        "confirm",
    }
)
_CLIMB = frozenset(
    {
        "template_substitution",
        "parenthesized_expression",
        "array",
        "jsx_expression",
        "as_expression",
        "satisfies_expression",
    }
)


def text(node: Any) -> str:
    return str(node.text.decode("utf-8", errors="replace"))


def string_value(node: Any) -> str | None:
    """The characters of a string or the literal parts of a template string."""
    if node is None or node.type not in ("string", "template_string"):
        return None
    return "".join(text(c) for c in node.children if c.type == "string_fragment")


def descendants(node: Any, types: tuple[str, ...]) -> list[Any]:
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            out.append(current)
        stack.extend(reversed(current.children))
    return out


def first_arg(call: Any) -> Any:
    args = call.child_by_field_name("arguments")
    if args is None:
        return None
    named = [c for c in args.children if c.is_named and c.type != "comment"]
    return named[0] if named else None


def pairs(obj: Any) -> list[tuple[str, Any]]:
    """(key, value node) of an object literal; ``None`` as the value of a shorthand key."""
    if obj is None or obj.type != "object":
        return []
    out = []
    for pair in obj.children:
        if pair.type == "pair":
            key = pair.child_by_field_name("key")
            value = pair.child_by_field_name("value")
            if key is not None:
                out.append((string_value(key) or text(key), value))
        elif pair.type == "shorthand_property_identifier":
            out.append((text(pair), None))
    return out


def object_string(obj: Any, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for k, node in pairs(obj) if k in keys and (v := string_value(node)))


def object_true(obj: Any, key: str) -> bool:
    return any(k == key and node is not None and node.type == "true" for k, node in pairs(obj))


def is_prose(node: Any) -> bool:
    """Whether a URL string is shown or checked rather than requested: JSX, a label or
    placeholder, a log line, a translation, a test assertion, a comparison or a type."""
    current = node
    while True:
        parent = current.parent
        if parent is None:
            return False
        kind = parent.type
        if kind in _CLIMB or (kind == "binary_expression" and _operator(parent) == "+"):
            current = parent
            continue
        if kind.startswith("jsx") or kind in ("literal_type", "switch_case", "type_annotation"):
            return True
        if kind == "binary_expression":
            return True  # ===, !==, ==: compared against, not requested
        if kind == "member_expression":  # ["https://…"].includes(url): checked against
            prop = parent.child_by_field_name("property")
            return prop is not None and text(prop) in _PROSE_CALLS
        if kind == "pair":
            key = parent.child_by_field_name("key")
            return key is not None and UI_NAMES.match(string_value(key) or text(key)) is not None
        if kind == "arguments":
            call = parent.parent
            func = call.child_by_field_name("function") if call is not None else None
            name = _SPACE.sub("", text(func)).rsplit(".", 1)[-1] if func is not None else ""
            if name in _PROSE_CALLS or call is None:
                return True
            current = call  # an argument of a call inside `expect(...)` is test data
            continue
        if kind == "variable_declarator":
            name = parent.child_by_field_name("name")
            return name is not None and UI_VARIABLE.search(text(name)) is not None
        return False


def _operator(node: Any) -> str:
    op = node.child_by_field_name("operator")
    return text(op) if op is not None else ""


def member_chain(node: Any) -> str:
    """``a.b.c`` for a member expression (comments and ``?.`` left out); calls inside the
    chain read ``f()``; anything else is ``""``."""
    if node is None:
        return ""
    if node.type in ("identifier", "this", "property_identifier", "private_property_identifier"):
        return text(node)
    if node.type == "member_expression":
        obj = member_chain(node.child_by_field_name("object"))
        prop = node.child_by_field_name("property")
        return f"{obj}.{text(prop)}" if obj and prop is not None else ""
    if node.type == "call_expression":
        inner = member_chain(node.child_by_field_name("function"))
        return inner + "()" if inner else ""
    if node.type == "new_expression":  # `new OpenAI().chat...`
        inner = member_chain(node.child_by_field_name("constructor"))
        return f"new {inner}()" if inner else ""
    if node.type in ("parenthesized_expression", "non_null_expression", "await_expression"):
        return member_chain(node.named_children[0]) if node.named_children else ""
    return ""
