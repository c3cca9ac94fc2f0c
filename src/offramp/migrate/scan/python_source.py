"""Finding OpenAI/Anthropic usage in Python source, by its syntax tree (never by grep).

A name counts only when it is bound by an import of an SDK, so a variable that happens to
be called ``openai``, a comment, or a docstring that mentions the API is not a site. A value
that reaches an SDK key or endpoint is traced to where it is written (``origins``), across
modules of the tree; an API URL shown to people (help text, a placeholder, a log line, an
assertion in a test) is prose, not a call.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from offramp.migrate.scan.origins import FileScan, Origin, Ref, Slot, env_read_site, slot_site
from offramp.migrate.scan.python_sdk import (
    ENDPOINT_ATTRS,
    ENDPOINT_SLOTS,
    KEY_SLOTS,
    Bound,
    bind_import,
    is_prose,
)
from offramp.migrate.scan.sites import (
    API_URL,
    LEGACY_CLASSES,
    LEGACY_METHODS,
    Kind,
    Sdk,
    Site,
    api_path,
    is_key_var,
    url_sdk,
)

_ENV_FUNCS = frozenset(
    {
        "os.getenv",
        "os.environ.get",
        "os.environ.setdefault",
        "getenv",
        "environ.get",
        "environ.setdefault",
        "env.str",
        "env",  # django-environ's Env()
        "config",  # python-decouple
    }
)
_ENV_MAPS = frozenset({"os.environ", "environ"})


@dataclass
class _Bindings:
    modules: dict[str, Sdk] = field(default_factory=dict)  # local name -> SDK module
    classes: dict[str, Bound] = field(default_factory=dict)  # local -> class bound by import
    clients: dict[str, Sdk] = field(default_factory=dict)  # receiver chain -> sdk
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    aliases: dict[str, str] = field(default_factory=dict)  # local -> project module
    namespaces: dict[str, str] = field(default_factory=dict)  # `chat = client.chat.completions`


def module_name(path: str) -> str:
    """``pkg/config.py`` -> ``pkg.config``; ``pkg/__init__.py`` -> ``pkg``."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def scan_python(path: str, source: str) -> FileScan:
    """Sites in one Python file; raises SyntaxError when it does not parse."""
    tree = ast.parse(source, filename=path)
    visitor = _Visitor(path, tree)
    visitor.visit(tree)
    return visitor.result


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, tree: ast.Module):
        self.path = path
        self.result = FileScan()
        self.b = _Bindings()
        self.parents: dict[int, ast.AST] = {
            id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
        }
        self.defs: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name):
                self.defs.setdefault(target.id, value)
        self.module_level = [n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)]
        package = module_name(path).split(".")
        self.package = package if path.endswith("__init__.py") else package[:-1]

    def visit_Module(self, node: ast.Module) -> None:
        self.generic_visit(node)
        for stmt in self.module_level:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            value = stmt.value
            if isinstance(target, ast.Name) and value is not None:
                origin = self._origin(value, 0)
                if isinstance(origin, Origin):
                    self.result.exports[target.id] = origin

    # ----- bindings -------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in ("openai", "anthropic"):
                sdk: Sdk = "openai" if alias.name == "openai" else "anthropic"
                self.b.modules[alias.asname or alias.name] = sdk
                self._add(node, "import", sdk, detail=alias.name)
            elif alias.asname:
                self.b.aliases[alias.asname] = alias.name
            else:
                self.b.aliases[alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self._absolute(node)
        bound = bind_import(module, [a.name for a in node.names])
        if bound is not None:
            sdk, classes = bound
            for alias in node.names:
                if alias.name in classes:
                    self.b.classes[alias.asname or alias.name] = classes[alias.name]
            self._add(node, "import", sdk, detail=module)
            return
        for alias in node.names:
            local = alias.asname or alias.name
            self.b.names[local] = (module, alias.name)
            self.b.aliases[local] = f"{module}.{alias.name}" if module else alias.name

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = (
            self.package[: len(self.package) - node.level + 1] if node.level > 1 else self.package
        )
        return ".".join([*base, *([node.module] if node.module else [])])

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        sdk = self._client_sdk(node.value)
        value_chain = _chain(node.value)
        for target in node.targets:
            chain = _chain(target)
            if sdk is not None and chain:
                self.b.clients[chain] = sdk
            elif chain and api_path(value_chain + ".create") is not None:
                self.b.namespaces[chain] = value_chain
            self._module_setting(node, target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        sdk = self._client_sdk(node.value) if node.value is not None else None
        chain = _chain(node.target)
        if sdk is not None and chain:
            self.b.clients[chain] = sdk

    def _module_setting(self, node: ast.Assign, target: ast.expr, value: ast.expr) -> None:
        """``openai.api_key = ...`` / ``openai.api_base = ...`` (module-level SDK config)."""
        if not isinstance(target, ast.Attribute) or not isinstance(target.value, ast.Name):
            return
        sdk = self.b.modules.get(target.value.id)
        if sdk is None:
            return
        if target.attr == "api_key":
            self._add(node, "api-key", sdk, detail=f"{target.value.id}.api_key")
            self._slot(value, "key", sdk)
        elif target.attr in ENDPOINT_ATTRS:
            self._slot(value, "endpoint", sdk)

    # ----- calls ----------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if self._constructor(node) or self._api_call(node) or self._referenced(node):
            return
        origin = self._env_read(node)
        site = env_read_site(origin, self._default_sdk("chat")) if origin else None
        if site is not None:
            self.result.sites.append(site)

    def _referenced(self, node: ast.Call) -> bool:
        """A client class or an API method passed to be called later:
        ``field(default_factory=OpenAI)``, ``asyncio.to_thread(client.chat.completions.create,
        ...)``, ``functools.partial(client.embeddings.create, ...)``."""
        for keyword in node.keywords:
            bound = self._class_of(keyword.value) if keyword.arg == "default_factory" else None
            if bound is not None and bound.kind == "client":
                self._add(keyword.value, "client", bound.sdk, detail=bound.name)
                return True
        for arg in node.args:
            chain = _chain(arg) if isinstance(arg, ast.Attribute) else ""
            found = api_path(chain) if chain and self._file_uses_sdk() else None
            if found is not None:
                receiver, kind, streams = found
                sdk = self.b.clients.get(receiver) or self._default_sdk(kind)
                models = _string_kwargs(node, ("model",))
                self._add(node, kind, sdk, models=models, streams=streams)
                return True
        return False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        origin = self._env_read(node)  # settings.OPENAI_API_KEY
        site = env_read_site(origin, self._default_sdk("chat")) if origin else None
        if site is not None:
            self.result.sites.append(site)

    def _constructor(self, node: ast.Call) -> bool:
        bound = self._class_of(node.func)
        if bound is None or bound.kind == "legacy":
            return False
        kwargs = {k.arg for k in node.keywords if k.arg}
        detail = bound.name + (" base_url" if kwargs & ENDPOINT_SLOTS else "")
        models = _string_kwargs(node, ("model", "model_name", "deployment_name", "engine"))
        streams = _true_kwarg(node, "streaming")
        self._add(node, bound.kind, bound.sdk, models=models, streams=streams, detail=detail)
        for keyword in node.keywords:
            if keyword.arg in KEY_SLOTS:
                self._slot(keyword.value, "key", bound.sdk)
            elif keyword.arg in ENDPOINT_SLOTS:
                self._slot(keyword.value, "endpoint", bound.sdk)
        return True

    def _api_call(self, node: ast.Call) -> bool:
        chain = _chain(node.func)
        if not chain:
            return False
        root, _, rest = chain.partition(".")
        legacy = self.b.classes.get(root)
        cls, _, method = rest.partition(".")
        is_module_call = root in self.b.modules and cls in LEGACY_CLASSES
        if (is_module_call and method in LEGACY_METHODS) or (
            legacy is not None and legacy.kind == "legacy" and rest in LEGACY_METHODS
        ):
            sdk = self.b.modules.get(root) or "openai"
            models = _string_kwargs(node, ("model", "engine", "deployment_id"))
            self._add(
                node,
                "legacy-call",
                sdk,
                models=models,
                streams=_true_kwarg(node, "stream"),
                detail=rest if is_module_call else chain,
            )
            return True
        if root in self.b.namespaces:
            chain = f"{self.b.namespaces[root]}.{rest}"
        found = api_path(chain)
        if found is None or not self._file_uses_sdk():
            return False
        receiver, kind, streams = found
        sdk = self.b.clients.get(receiver) or self._default_sdk(kind)
        self._add(
            node,
            kind,
            sdk,
            models=_string_kwargs(node, ("model",)),
            streams=streams or _true_kwarg(node, "stream"),
            detail=chain.rsplit(".", 1)[0].removeprefix(receiver + ".")
            if kind == "api-call"
            else "",
        )
        return True

    # ----- values reaching keys and endpoints -----------------------------------------

    def _slot(self, value: ast.expr, slot: Slot, sdk: Sdk) -> None:
        origin = self._origin(value, 0)
        if isinstance(origin, Ref):
            self.result.refs.append(Ref(origin.module, origin.name, slot, sdk))
        elif origin is not None:
            site = slot_site(origin, slot, sdk)
            if site is not None:
                self.result.sites.append(site)

    def _origin(self, value: ast.expr, depth: int) -> Origin | Ref | None:
        if depth > 4:
            return None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return Origin(self.path, value.lineno, value.col_offset + 1, literal=value.value)
        if isinstance(value, ast.JoinedStr):
            head = value.values[0] if value.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                return Origin(self.path, value.lineno, value.col_offset + 1, literal=head.value)
            return None
        if isinstance(value, ast.BoolOp):
            for operand in value.values:
                found = self._origin(operand, depth + 1)
                if found is not None:
                    return found
            return None
        env = self._env_read(value)
        if env is not None:
            return env
        if isinstance(value, ast.Name):
            if value.id in self.defs and self.defs[value.id] is not value:
                return self._origin(self.defs[value.id], depth + 1)
            if value.id in self.b.names:
                return Ref(*self.b.names[value.id], "endpoint", "openai")
            return None
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            module = self.b.aliases.get(value.value.id)
            if module is not None:
                return Ref(module, value.attr, "endpoint", "openai")
        return None

    def _env_read(self, node: ast.expr) -> Origin | None:
        """``os.getenv("X")``, ``os.environ.get("X", default)``, ``os.environ["X"]``."""
        if isinstance(node, ast.Call) and _chain(node.func) in _ENV_FUNCS:
            name = _first_string(node)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and is_key_var(node.attr)
            and _chain(node.value) not in ("", "self")
        ):
            name = node.attr  # a settings object's copy of the variable
        elif isinstance(node, ast.Subscript) and _chain(node.value) in _ENV_MAPS:
            key = node.slice
            name = (
                key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
            )
        else:
            return None
        if name is None:
            return None
        return Origin(self.path, node.lineno, node.col_offset + 1, env=name)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.generic_visit(node)
        origin = self._env_read(node)
        site = env_read_site(origin, self._default_sdk("chat")) if origin else None
        if site is not None:
            self.result.sites.append(site)

    # ----- raw HTTP -------------------------------------------------------------------

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        head = node.values[0] if node.values else None
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            self._url(node, head.value)
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                self.visit(part)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self._url(node, node.value)

    def _url(self, node: ast.expr, value: str) -> None:
        match = API_URL.match(value)
        if match and not is_prose(node, self.parents, self._is_env_default):
            self._add(node, "raw-http", url_sdk(match.group(1)), detail=value)

    def _is_env_default(self, call: ast.Call) -> bool:
        return _chain(call.func) in _ENV_FUNCS

    # ----- helpers --------------------------------------------------------------------

    def _class_of(self, func: ast.expr) -> Bound | None:
        if isinstance(func, ast.Name):
            return self.b.classes.get(func.id)
        chain = _chain(func)
        if chain and "." in chain:
            module, name = chain.rsplit(".", 1)
            sdk = self.b.modules.get(module)
            if sdk is not None:
                bound = bind_import(sdk, [name])
                if bound is not None and name in bound[1]:
                    return bound[1][name]
        return None

    def _client_sdk(self, value: ast.expr | None) -> Sdk | None:
        if isinstance(value, ast.Call):
            resolved = self._class_of(value.func)
            if resolved is not None:
                return resolved.sdk
        return None

    def _file_uses_sdk(self) -> bool:
        return bool(self.b.modules) or any(
            b.sdk
            in ("openai", "azure-openai", "anthropic", "anthropic-bedrock", "anthropic-vertex")
            for b in self.b.classes.values()
        )

    def _default_sdk(self, kind: Kind) -> Sdk:
        sdks = set(self.b.modules.values()) | {b.sdk for b in self.b.classes.values()}
        if kind == "messages" and "anthropic" in sdks:
            return "anthropic"
        if sdks and all("anthropic" in s for s in sdks):
            return "anthropic"
        return "azure-openai" if sdks == {"azure-openai"} else "openai"

    def _add(
        self,
        node: ast.AST,
        kind: Kind,
        sdk: Sdk,
        *,
        models: tuple[str, ...] = (),
        streams: bool = False,
        detail: str = "",
    ) -> None:
        self.result.sites.append(
            Site(
                self.path,
                getattr(node, "lineno", 0),
                getattr(node, "col_offset", 0) + 1,
                kind,
                sdk,
                models,
                streams,
                detail,
            )
        )


def _chain(node: ast.expr) -> str:
    """``a.b.c`` for a Name/Attribute chain (``self.client.chat``), else ""."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):  # OpenAI().chat.completions.create(...)
        inner = _chain(node.func)
        return ".".join([inner + "()", *reversed(parts)]) if inner else ""
    return ""


def _string_kwargs(node: ast.Call, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        k.value.value
        for k in node.keywords
        if k.arg in names and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
    )


def _true_kwarg(node: ast.Call, name: str) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None
