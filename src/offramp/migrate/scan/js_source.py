"""Finding OpenAI/Anthropic usage in JavaScript and TypeScript, parsed by tree-sitter.

As for Python, a name counts only when an import or ``require`` of an SDK binds it;
comments are never strings, and a string is a raw API call only when it is an API URL that
is not shown to people (JSX text and attributes, labels, log lines, test assertions).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from offramp.migrate.scan.js_sdk import (
    DEFAULT_EXPORT,
    ENDPOINT_OPTIONS,
    KEY_OPTIONS,
    NESTED_OPTIONS,
    PROVIDER_FACTORIES,
    PROVIDER_INSTANCES,
    PROVIDER_METHODS,
    Family,
    class_of,
    package_of,
)
from offramp.migrate.scan.js_tree import (
    descendants,
    first_arg,
    is_prose,
    member_chain,
    object_string,
    object_true,
    pairs,
    string_value,
    text,
)
from offramp.migrate.scan.origins import FileScan, Origin, Ref, Slot, env_read_site, slot_site
from offramp.migrate.scan.sites import (
    API_URL,
    SCRIPT_SUFFIXES,
    V3_METHODS,
    Kind,
    Sdk,
    Site,
    api_path,
    env_sdk,
    is_key_var,
    url_sdk,
)

_SPACE = re.compile(r"\s+|\?")
_ENV_MEMBER = re.compile(r"^(?:process\.env|Bun\.env|import\.meta\.env)\.([A-Za-z_][A-Za-z0-9_]*)$")
_ENV_OBJECTS = frozenset({"process.env", "Bun.env", "import.meta.env"})


@dataclass(frozen=True)
class _Binding:
    sdk: Sdk
    family: Family
    name: str  # the exported name the local stands for


@dataclass
class _State:
    path: str
    bindings: dict[str, _Binding] = field(default_factory=dict)
    clients: dict[str, tuple[Sdk, bool]] = field(default_factory=dict)  # receiver -> (sdk, v3)
    providers: dict[str, Sdk] = field(default_factory=dict)  # AI SDK provider functions
    defs: dict[str, Any] = field(default_factory=dict)  # const name -> value node
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    env_locals: dict[str, Origin] = field(default_factory=dict)  # destructured from process.env
    result: FileScan = field(default_factory=FileScan)


def script_module(path: str) -> str:
    """``web/src/config.ts`` -> ``web/src/config``: how relative imports name a file."""
    for suffix in SCRIPT_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def scan_js(path: str, source: bytes) -> tuple[FileScan, bool]:
    """Sites in one JS/TS file, and whether the parser met syntax errors (it recovers)."""
    tree = parser_for(path).parse(source)
    state = _State(path)
    for declarator in descendants(tree.root_node, ("variable_declarator",)):
        name, value = (
            declarator.child_by_field_name("name"),
            declarator.child_by_field_name("value"),
        )
        if name is not None and value is not None and name.type == "identifier":
            state.defs.setdefault(text(name), value)
    _walk(tree.root_node, state)
    for child in tree.root_node.children:
        declaration = (
            child.child_by_field_name("declaration") if child.type == "export_statement" else child
        )
        if declaration is None or declaration.type not in (
            "lexical_declaration",
            "variable_declaration",
        ):
            continue
        for declarator in descendants(declaration, ("variable_declarator",)):
            name, value = (
                declarator.child_by_field_name("name"),
                declarator.child_by_field_name("value"),
            )
            origin = _origin(value, state, 0) if name is not None and value is not None else None
            if isinstance(origin, Origin) and name is not None:
                state.result.exports[text(name)] = origin
    return state.result, bool(tree.root_node.has_error)


def parser_for(path: str) -> Any:
    """The tree-sitter parser for a script file, by its suffix."""
    from tree_sitter import Language, Parser

    if path.endswith((".ts", ".mts", ".cts")):
        import tree_sitter_typescript as grammar

        return Parser(Language(grammar.language_typescript()))
    if path.endswith(".tsx"):
        import tree_sitter_typescript as grammar

        return Parser(Language(grammar.language_tsx()))
    import tree_sitter_javascript as js

    return Parser(Language(js.language()))


def _walk(node: Any, state: _State) -> None:
    # Pre-order, so imports and client assignments are known before later calls.
    handler = _HANDLERS.get(node.type)
    if handler is not None:
        handler(node, state)
    for child in node.children:
        _walk(child, state)


def _add(state: _State, node: Any, kind: Kind, sdk: Sdk, **extra: Any) -> None:
    row, col = node.start_point
    state.result.sites.append(Site(state.path, row + 1, col + 1, kind, sdk, **extra))


# ----- bindings -----------------------------------------------------------------------


def _import(node: Any, state: _State) -> None:
    source = string_value(node.child_by_field_name("source"))
    if source is None:
        return
    found = package_of(source)
    if found is None:
        if source.startswith("."):
            module = posixpath.normpath(posixpath.join(posixpath.dirname(state.path), source))
            for ident, name in _imported_names(node):
                state.imported[ident] = (script_module(module), name)
        return
    sdk, family = found
    _add(state, node, "import", sdk, detail=source)
    for ident, name in _imported_names(node):
        if name in ("default", "*"):
            name = DEFAULT_EXPORT.get(sdk, "OpenAI")
        state.bindings[ident] = _Binding(sdk, family, name)


def _imported_names(node: Any) -> list[tuple[str, str]]:
    """(local, exported) pairs of an import statement; ``default`` / ``*`` for those."""
    out = []
    for child in descendants(node, ("import_specifier", "namespace_import", "import_clause")):
        if child.type == "import_specifier":
            name, alias = child.child_by_field_name("name"), child.child_by_field_name("alias")
            if name is not None:
                out.append((text(alias or name), text(name)))
        elif child.type == "namespace_import":
            idents = [c for c in child.children if c.type == "identifier"]
            out += [(text(i), "*") for i in idents]
        else:
            out += [(text(c), "default") for c in child.children if c.type == "identifier"]
    return out


def _declarator(node: Any, state: _State) -> None:
    value = node.child_by_field_name("value")
    name = node.child_by_field_name("name")
    if value is None or name is None:
        return
    inner = value.child_by_field_name("argument") if value.type == "await_expression" else value
    if inner is not None and inner.type == "call_expression" and _is_require(inner):
        found = package_of(string_value(first_arg(inner)) or "")
        if found is not None:
            sdk, family = found
            _add(state, node, "import", sdk, detail=string_value(first_arg(inner)) or "")
            for ident in descendants(name, ("identifier", "shorthand_property_identifier_pattern")):
                local = text(ident)
                exported = local if name.type != "identifier" else DEFAULT_EXPORT.get(sdk, "OpenAI")
                state.bindings[local] = _Binding(sdk, family, exported)
        return
    if name.type == "object_pattern" and _SPACE.sub("", text(value)) in _ENV_OBJECTS:
        _env_pattern(name, state)  # const { OPENAI_API_KEY } = process.env
        return
    _remember(text(name), value, state)


def _env_pattern(pattern: Any, state: _State) -> None:
    for part in pattern.named_children:
        if part.type == "shorthand_property_identifier_pattern":
            var, local = text(part), text(part)
        elif part.type == "pair_pattern":
            key, value = part.child_by_field_name("key"), part.child_by_field_name("value")
            if key is None or value is None:
                continue
            var, local = string_value(key) or text(key), text(value)
        else:
            continue
        row, col = part.start_point
        origin = Origin(state.path, row + 1, col + 1, env=var)
        state.env_locals[local] = origin
        site = env_read_site(origin, env_sdk(var))
        if site is not None:
            state.result.sites.append(site)


def _assignment(node: Any, state: _State) -> None:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is not None and right is not None:
        _remember(_SPACE.sub("", text(left)), right, state)


def _remember(name: str, value: Any, state: _State) -> None:
    """Clients and AI SDK providers assigned to a name, for the calls made on them."""
    if value.type == "await_expression":
        value = value.child_by_field_name("argument") or value
    bound = _constructed(value, state)
    if bound is not None:
        state.clients[_SPACE.sub("", name)] = (bound[0], bound[1].v3)
    elif value.type == "call_expression":
        func = value.child_by_field_name("function")
        binding = state.bindings.get(text(func)) if func is not None else None
        if binding is not None and binding.name in PROVIDER_FACTORIES:
            state.providers[name] = binding.sdk


def _constructed(node: Any, state: _State) -> Any:
    if node.type != "new_expression":
        return None
    ctor = node.child_by_field_name("constructor")
    if ctor is None:
        return None
    parts = _SPACE.sub("", text(ctor)).split(".")
    binding = state.bindings.get(parts[0])
    if binding is None:
        return None
    name = parts[-1] if len(parts) > 1 else binding.name
    return class_of(binding.family, name, binding.sdk)


# ----- constructions and calls ---------------------------------------------------------


def _new(node: Any, state: _State) -> None:
    bound = _constructed(node, state)
    if bound is None:
        return
    sdk, cls = bound
    options = first_arg(node)
    keys = {k for k, _ in pairs(options)}
    detail = "v3" if cls.v3 else ("base_url" if keys & (ENDPOINT_OPTIONS | NESTED_OPTIONS) else "")
    models = object_string(options, ("model", "modelName", "deploymentName"))
    streams = object_true(options, "streaming")
    _add(state, node, cls.kind, sdk, models=models, detail=detail, streams=streams)
    if sdk == "azure-openai" and options is not None and options.type != "object":
        _slot(options, "endpoint", sdk, state)  # new OpenAIClient(endpoint, credential)
    _option_slots(options, sdk, state)


def _option_slots(options: Any, sdk: Sdk, state: _State) -> None:
    for key, value_node in pairs(options):
        if key in KEY_OPTIONS and value_node is not None:
            _slot(value_node, "key", sdk, state)
        elif key in ENDPOINT_OPTIONS and value_node is not None:
            _slot(value_node, "endpoint", sdk, state)
        elif key in NESTED_OPTIONS:
            _option_slots(value_node, sdk, state)
        elif key in KEY_OPTIONS | ENDPOINT_OPTIONS:  # shorthand `{ baseURL }`
            origin = state.defs.get(key)
            if origin is not None:
                _slot(origin, "key" if key in KEY_OPTIONS else "endpoint", sdk, state)


def _call(node: Any, state: _State) -> None:
    func = node.child_by_field_name("function")
    if func is None or not state.bindings:
        return
    if _provider_call(node, func, state) or func.type != "member_expression":
        return
    chain = member_chain(func)
    if _v3_call(node, chain, state):
        return
    found = api_path(chain)
    if found is None:
        return
    receiver, kind, streams = found
    known = state.clients.get(receiver)
    if known is not None:
        sdk = known[0]
    else:
        sdks = {b.sdk for b in state.bindings.values() if b.family in ("sdk", "azure-sdk")}
        if not sdks:
            return
        sdk = "anthropic" if kind == "messages" and "anthropic" in sdks else sorted(sdks)[0]
    options = first_arg(node)
    streams = streams or object_true(options, "stream")
    detail = chain.removeprefix(receiver + ".").rsplit(".", 1)[0] if kind == "api-call" else ""
    models = object_string(options, ("model",))
    _add(state, node, kind, sdk, models=models, streams=streams, detail=detail)


def _v3_call(node: Any, chain: str, state: _State) -> bool:
    """``openai.createChatCompletion({...})`` on a v3 ``OpenAIApi`` (or openai-edge)."""
    receiver, _, method = chain.rpartition(".")
    v3 = state.clients.get(receiver, ("openai", False))[1] or any(
        b.family == "v3" or b.name == "OpenAIApi" for b in state.bindings.values()
    )
    if method not in V3_METHODS or not v3:
        return False
    options = first_arg(node)
    models = object_string(options, ("model",))
    streams = object_true(options, "stream")
    _add(state, node, "legacy-call", "openai", models=models, streams=streams, detail=method)
    return True


def _provider_call(node: Any, func: Any, state: _State) -> bool:
    """AI SDK: ``createOpenAI({...})`` (a client) and ``openai("gpt-4o")`` (a model)."""
    parts = _SPACE.sub("", text(func)).split(".")
    binding = state.bindings.get(parts[0])
    is_ai_sdk = binding is not None and binding.family == "ai-sdk"
    if binding is not None and is_ai_sdk and len(parts) == 1 and binding.name in PROVIDER_FACTORIES:
        _add(state, node, "client", binding.sdk)
        _option_slots(first_arg(node), binding.sdk, state)
        return True
    sdk = state.providers.get(parts[0])
    if sdk is None and binding is not None and binding.family == "ai-sdk":
        sdk = binding.sdk if binding.name in PROVIDER_INSTANCES else None
    if sdk is None or len(parts) > 2 or (len(parts) == 2 and parts[1] not in PROVIDER_METHODS):
        return False
    model = string_value(first_arg(node))
    _add(state, node, "wrapper", sdk, models=(model,) if model else ())
    return True


# ----- values reaching keys and endpoints ----------------------------------------------


def _slot(value: Any, slot: Slot, sdk: Sdk, state: _State) -> None:
    origin = _origin(value, state, 0)
    if isinstance(origin, Ref):
        state.result.refs.append(Ref(origin.module, origin.name, slot, sdk))
    elif origin is not None:
        site = slot_site(origin, slot, sdk)
        if site is not None:
            state.result.sites.append(site)


def _origin(value: Any, state: _State, depth: int) -> Origin | Ref | None:
    if value is None or depth > 4:
        return None
    row, col = value.start_point
    if value.type in ("string", "template_string"):
        return Origin(state.path, row + 1, col + 1, literal=string_value(value))
    env = _env_read(value)
    if env is not None:
        return Origin(state.path, row + 1, col + 1, env=env)
    if value.type == "binary_expression":
        for side in ("left", "right"):
            found = _origin(value.child_by_field_name(side), state, depth + 1)
            if found is not None:
                return found
        return None
    if value.type in ("parenthesized_expression", "as_expression", "non_null_expression"):
        return _origin(value.named_children[0] if value.named_children else None, state, depth + 1)
    if value.type == "identifier":
        name = text(value)
        if name in state.env_locals:
            return state.env_locals[name]
        if name in state.defs and state.defs[name].id != value.id:
            return _origin(state.defs[name], state, depth + 1)
        if name in state.imported:
            return Ref(*state.imported[name], "endpoint", "openai")
        return None
    if value.type == "member_expression":
        obj, prop = value.child_by_field_name("object"), value.child_by_field_name("property")
        if obj is not None and prop is not None and text(obj) in state.imported:
            module, name = state.imported[text(obj)]
            if name == "*":
                return Ref(module, text(prop), "endpoint", "openai")
    return None


def _env_read(node: Any) -> str | None:
    """``process.env.X``, ``process.env["X"]``, ``Bun.env.X``, ``import.meta.env.X``,
    ``Deno.env.get("X")``: the variable's name."""
    if node.type == "member_expression":
        match = _ENV_MEMBER.match(_SPACE.sub("", text(node)))
        if match:
            return match.group(1)
        prop = node.child_by_field_name("property")  # env.OPENAI_API_KEY, c.env.OPENAI_API_KEY
        name = text(prop) if prop is not None else ""
        return name if is_key_var(name) else None
    if node.type == "subscript_expression":
        obj = node.child_by_field_name("object")
        if obj is not None and _SPACE.sub("", text(obj)) in _ENV_OBJECTS:
            return string_value(node.child_by_field_name("index"))
    if node.type == "call_expression":
        func = node.child_by_field_name("function")
        if func is not None and _SPACE.sub("", text(func)) == "Deno.env.get":
            return string_value(first_arg(node))
    return None


def _env(node: Any, state: _State) -> None:
    name = _env_read(node)
    if name is None:
        return
    row, col = node.start_point
    site = env_read_site(Origin(state.path, row + 1, col + 1, env=name), env_sdk(name))
    if site is not None:
        state.result.sites.append(site)


def _string(node: Any, state: _State) -> None:
    value = string_value(node)
    match = API_URL.match(value) if value is not None else None
    if match is not None and not is_prose(node):
        _add(state, node, "raw-http", url_sdk(match.group(1)), detail=value or "")


def _call_or_env(node: Any, state: _State) -> None:
    _call(node, state)
    _env(node, state)


_HANDLERS = {
    "import_statement": _import,
    "variable_declarator": _declarator,
    "assignment_expression": _assignment,
    "new_expression": _new,
    "call_expression": _call_or_env,
    "string": _string,
    "template_string": _string,
    "member_expression": _env,
    "subscript_expression": _env,
}


def _is_require(call: Any) -> bool:
    func = call.child_by_field_name("function")
    return func is not None and text(func) in ("require", "import")
