"""Finding OpenAI/Anthropic usage in JavaScript and TypeScript, parsed by tree-sitter.

As for Python, a name counts only when an import or ``require`` of an SDK binds it;
comments are never strings, and a string is a raw API call only when it is an API URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from offramp.migrate.scan.sites import (
    API_URL,
    KEY_VARS,
    Kind,
    Sdk,
    Site,
    api_path,
    env_sdk,
    url_sdk,
)

_PACKAGES: dict[str, Sdk] = {
    "openai": "openai",
    "@anthropic-ai/sdk": "anthropic",
    "@langchain/openai": "langchain-openai",
    "@azure/openai": "azure-openai",
}
_CLIENT_CLASSES: dict[str, Sdk] = {
    "OpenAI": "openai",
    "AzureOpenAI": "azure-openai",
    "Anthropic": "anthropic",
    "OpenAIClient": "azure-openai",
}
_WRAPPERS = frozenset({"ChatOpenAI", "OpenAIEmbeddings", "AzureChatOpenAI"})
_SPACE = re.compile(r"\s+|\?")


@dataclass
class _State:
    bindings: dict[str, tuple[Sdk, str]] = field(default_factory=dict)  # local -> (sdk, name)
    clients: dict[str, Sdk] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)


def scan_js(path: str, source: bytes) -> tuple[list[Site], bool]:
    """Sites in one JS/TS file, and whether the parser met syntax errors (it recovers)."""
    parser = _parser(path)
    tree = parser.parse(source)
    state = _State()
    _walk(tree.root_node, path, state)
    return state.sites, bool(tree.root_node.has_error)


def _parser(path: str) -> Any:
    from tree_sitter import Language, Parser

    if path.endswith((".ts", ".mts", ".cts")):
        import tree_sitter_typescript as grammar

        return Parser(Language(grammar.language_typescript()))
    if path.endswith(".tsx"):
        import tree_sitter_typescript as grammar

        return Parser(Language(grammar.language_tsx()))
    import tree_sitter_javascript as js

    return Parser(Language(js.language()))


def _walk(node: Any, path: str, state: _State) -> None:
    # Pre-order, so imports and client assignments are known before later calls.
    handler = _HANDLERS.get(node.type)
    if handler is not None:
        handler(node, path, state)
    for child in node.children:
        _walk(child, path, state)


def _text(node: Any) -> str:
    return str(node.text.decode("utf-8", errors="replace"))


def _string_value(node: Any) -> str | None:
    if node is None or node.type not in ("string", "template_string"):
        return None
    return "".join(_text(c) for c in node.children if c.type == "string_fragment")


def _add(state: _State, path: str, node: Any, kind: Kind, sdk: Sdk, **extra: Any) -> None:
    row, col = node.start_point
    state.sites.append(Site(path, row + 1, col + 1, kind, sdk, **extra))


def _import(node: Any, path: str, state: _State) -> None:
    source = _string_value(node.child_by_field_name("source"))
    sdk = _PACKAGES.get(source or "")
    if sdk is None:
        return
    _add(state, path, node, "import", sdk, detail=source or "")
    for ident in _descendants(node, ("identifier",)):
        parent = ident.parent
        imported = ident
        if parent is not None and parent.type == "import_specifier":
            name_node = parent.child_by_field_name("name")
            alias = parent.child_by_field_name("alias")
            if alias is not None and ident.id != alias.id:
                continue
            imported = name_node if name_node is not None else ident
        name = _text(imported)
        state.bindings[_text(ident)] = (
            _CLIENT_CLASSES.get(name, sdk),
            name if name in _CLIENT_CLASSES or name in _WRAPPERS else "OpenAI",
        )


def _declarator(node: Any, path: str, state: _State) -> None:
    value = node.child_by_field_name("value")
    name = node.child_by_field_name("name")
    if value is None or name is None:
        return
    inner = value.child_by_field_name("argument") if value.type == "await_expression" else value
    if inner is not None and inner.type == "call_expression" and _is_require(inner):
        source = _string_value(_first_arg(inner))
        sdk = _PACKAGES.get(source or "")
        if sdk is not None:
            _add(state, path, node, "import", sdk, detail=source or "")
            for ident in _descendants(
                name, ("identifier", "shorthand_property_identifier_pattern")
            ):
                text = _text(ident)
                state.bindings[text] = (
                    _CLIENT_CLASSES.get(text, sdk),
                    text if text in _CLIENT_CLASSES or text in _WRAPPERS else "OpenAI",
                )
        return
    sdk = _new_client_sdk(value, state)
    if sdk is not None:
        state.clients[_SPACE.sub("", _text(name))] = sdk


def _assignment(node: Any, path: str, state: _State) -> None:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is not None and right is not None:
        sdk = _new_client_sdk(right, state)
        if sdk is not None:
            state.clients[_SPACE.sub("", _text(left))] = sdk


def _new(node: Any, path: str, state: _State) -> None:
    bound = _bound_constructor(node, state)
    if bound is None:
        return
    sdk, ctor_name = bound
    kind: Kind = "wrapper" if ctor_name in _WRAPPERS or sdk == "langchain-openai" else "client"
    options = _first_arg(node)
    keys = _object_keys(options)
    detail = "base_url" if keys & {"baseURL", "baseUrl", "configuration", "endpoint"} else ""
    model = _object_string(options, ("model", "modelName"))
    _add(state, path, node, kind, sdk, models=model, detail=detail)


def _bound_constructor(node: Any, state: _State) -> tuple[Sdk, str] | None:
    """(sdk, class name) when ``node`` is ``new X(...)`` of an SDK-bound class."""
    if node.type == "await_expression":
        node = node.child_by_field_name("argument") or node
    if node.type != "new_expression":
        return None
    ctor = node.child_by_field_name("constructor")
    if ctor is None:
        return None
    parts = _SPACE.sub("", _text(ctor)).split(".")
    bound = state.bindings.get(parts[-1]) if len(parts) == 1 else state.bindings.get(parts[0])
    if bound is None:
        return None
    return _CLIENT_CLASSES.get(parts[-1], bound[0]), parts[-1]


def _call(node: Any, path: str, state: _State) -> None:
    func = node.child_by_field_name("function")
    if func is None or not state.bindings:
        return
    if func.type != "member_expression":
        return
    chain = _SPACE.sub("", _text(func))
    found = api_path(chain)
    if found is None:
        return
    receiver, kind, streams = found
    sdk = state.clients.get(receiver)
    if sdk is None:
        sdks = {s for s, _ in state.bindings.values()}
        if not sdks & {"openai", "azure-openai", "anthropic"}:
            return
        sdk = "anthropic" if kind == "messages" and "anthropic" in sdks else "openai"
    options = _first_arg(node)
    streams = streams or _object_true(options, "stream")
    _add(state, path, node, kind, sdk, models=_object_string(options, ("model",)), streams=streams)


def _string(node: Any, path: str, state: _State) -> None:
    value = _string_value(node)
    match = API_URL.match(value) if value is not None else None
    if match is not None:
        _add(state, path, node, "raw-http", url_sdk(match.group(1)), detail=value or "")


def _member(node: Any, path: str, state: _State) -> None:
    text = _SPACE.sub("", _text(node))
    match = re.fullmatch(r"process\.env\.([A-Z_]+)", text)
    if match and match.group(1) in KEY_VARS:
        _add(state, path, node, "api-key-env", env_sdk(match.group(1)), detail=match.group(1))


def _subscript(node: Any, path: str, state: _State) -> None:
    obj = node.child_by_field_name("object")
    index = node.child_by_field_name("index")
    key = _string_value(index)
    if obj is not None and _SPACE.sub("", _text(obj)) == "process.env" and key in KEY_VARS:
        _add(state, path, node, "api-key-env", env_sdk(key or ""), detail=key or "")


_HANDLERS = {
    "import_statement": _import,
    "variable_declarator": _declarator,
    "assignment_expression": _assignment,
    "new_expression": _new,
    "call_expression": _call,
    "string": _string,
    "template_string": _string,
    "member_expression": _member,
    "subscript_expression": _subscript,
}


def _descendants(node: Any, types: tuple[str, ...]) -> list[Any]:
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            out.append(current)
        stack.extend(reversed(current.children))
    return out


def _is_require(call: Any) -> bool:
    func = call.child_by_field_name("function")
    return func is not None and _text(func) == "require"


def _first_arg(call: Any) -> Any:
    args = call.child_by_field_name("arguments")
    if args is None:
        return None
    named = [c for c in args.children if c.is_named]
    return named[0] if named else None


def _pairs(obj: Any) -> list[tuple[str, Any]]:
    if obj is None or obj.type != "object":
        return []
    out = []
    for pair in obj.children:
        if pair.type == "pair":
            key = pair.child_by_field_name("key")
            value = pair.child_by_field_name("value")
            if key is not None:
                out.append((_string_value(key) or _text(key), value))
        elif pair.type == "shorthand_property_identifier":
            out.append((_text(pair), None))
    return out


def _object_keys(obj: Any) -> set[str]:
    return {k for k, _ in _pairs(obj)}


def _object_string(obj: Any, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for k, node in _pairs(obj) if k in keys and (v := _string_value(node)))


def _object_true(obj: Any, key: str) -> bool:
    return any(k == key and node is not None and node.type == "true" for k, node in _pairs(obj))


def _new_client_sdk(value: Any, state: _State) -> Sdk | None:
    bound = _bound_constructor(value, state)
    return bound[0] if bound is not None else None
