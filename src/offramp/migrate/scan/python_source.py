"""Finding OpenAI/Anthropic usage in Python source, by its syntax tree (never by grep).

A name counts only when it is bound by an import of an SDK, so a variable that happens to
be called ``openai``, a comment, or a docstring that mentions the API is not a site.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from offramp.migrate.scan.sites import (
    API_URL,
    KEY_VARS,
    LEGACY_PATHS,
    Kind,
    Sdk,
    Site,
    api_path,
    env_sdk,
    url_sdk,
)

_MODULES: dict[str, Sdk] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "langchain_openai": "langchain-openai",
    "llama_index.llms.openai": "llama-index-openai",
    "llama_index.embeddings.openai": "llama-index-openai",
}
_CLIENTS: dict[str, Sdk] = {
    "OpenAI": "openai",
    "AsyncOpenAI": "openai",
    "AzureOpenAI": "azure-openai",
    "AsyncAzureOpenAI": "azure-openai",
    "Anthropic": "anthropic",
    "AsyncAnthropic": "anthropic",
}
_WRAPPERS = frozenset(
    {
        "ChatOpenAI",
        "AzureChatOpenAI",
        "OpenAIEmbeddings",
        "AzureOpenAIEmbeddings",
        "OpenAI",
        "OpenAIEmbedding",
    }
)
_LANGCHAIN_LEGACY = (
    "langchain.chat_models",
    "langchain.embeddings",
    "langchain.llms",
    "langchain_community.chat_models",
    "langchain_community.embeddings",
)


@dataclass
class _Bindings:
    modules: dict[str, Sdk] = field(default_factory=dict)  # local name -> SDK module
    classes: dict[str, tuple[Sdk, str]] = field(default_factory=dict)  # local -> (sdk, class)
    clients: dict[str, Sdk] = field(default_factory=dict)  # receiver chain -> sdk


def scan_python(path: str, source: str) -> list[Site]:
    """Sites in one Python file; raises SyntaxError when it does not parse."""
    tree = ast.parse(source, filename=path)
    visitor = _Visitor(path)
    visitor.visit(tree)
    return visitor.sites


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.sites: list[Site] = []
        self.b = _Bindings()
        self._docstrings: set[int] = set()

    # ----- bindings -------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            sdk = _MODULES.get(alias.name)
            if sdk is not None:
                self.b.modules[alias.asname or alias.name.split(".")[0]] = sdk
                self._add(node, "import", sdk, detail=alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        sdk = _MODULES.get(module)
        if sdk is None and module.startswith(_LANGCHAIN_LEGACY):
            sdk = "langchain-openai"
        if sdk is None:
            return
        found = False
        for alias in node.names:
            local = alias.asname or alias.name
            if alias.name in _CLIENTS and sdk in ("openai", "anthropic"):
                self.b.classes[local] = (_CLIENTS[alias.name], alias.name)
                found = True
            elif alias.name in _WRAPPERS and sdk in ("langchain-openai", "llama-index-openai"):
                self.b.classes[local] = (sdk, alias.name)
                found = True
            elif sdk in ("openai", "anthropic"):
                found = True
        if found:
            self._add(node, "import", sdk, detail=module)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        sdk = self._client_sdk(node.value)
        if sdk is not None:
            for target in node.targets:
                chain = _chain(target)
                if chain:
                    self.b.clients[chain] = sdk

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        sdk = self._client_sdk(node.value) if node.value is not None else None
        chain = _chain(node.target)
        if sdk is not None and chain:
            self.b.clients[chain] = sdk

    # ----- calls ----------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if not self._constructor(node) and not self._api_call(node):
            self._env_call(node)

    def _constructor(self, node: ast.Call) -> bool:
        resolved = self._class_of(node.func)
        if resolved is None:
            return False
        sdk, name = resolved
        kind: Kind = (
            "client"
            if name in _CLIENTS and sdk in ("openai", "azure-openai", "anthropic")
            else "wrapper"
        )
        kwargs = {k.arg for k in node.keywords if k.arg}
        detail = "base_url" if kwargs & {"base_url", "api_base", "openai_api_base"} else ""
        models = _string_kwargs(node, ("model", "model_name"))
        self._add(
            node, kind, sdk, models=models, streams=_true_kwarg(node, "streaming"), detail=detail
        )
        return True

    def _api_call(self, node: ast.Call) -> bool:
        chain = _chain(node.func)
        if not chain:
            return False
        root = chain.split(".")[0]
        rest = chain[len(root) + 1 :]
        if root in self.b.modules and rest in LEGACY_PATHS:
            self._add(
                node,
                "legacy-call",
                self.b.modules[root],
                models=_string_kwargs(node, ("model", "engine")),
                streams=_true_kwarg(node, "stream"),
            )
            return True
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
        )
        return True

    def _env_call(self, node: ast.Call) -> bool:
        chain = _chain(node.func)
        if chain not in ("os.getenv", "os.environ.get", "getenv", "environ.get"):
            return False
        name = _first_string(node)
        if name in KEY_VARS:
            self._add(node, "api-key-env", env_sdk(name), detail=name)
            return True
        return False

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.generic_visit(node)
        if _chain(node.value) in ("os.environ", "environ"):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in KEY_VARS:
                self._add(node, "api-key-env", env_sdk(str(key.value)), detail=str(key.value))

    # ----- raw HTTP -------------------------------------------------------------------

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            self._docstrings.add(id(node.value))  # a bare string statement is prose
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self._docstrings:
            match = API_URL.match(node.value)
            if match:
                self._add(node, "raw-http", url_sdk(match.group(1)), detail=node.value)

    # ----- helpers --------------------------------------------------------------------

    def _class_of(self, func: ast.expr) -> tuple[Sdk, str] | None:
        if isinstance(func, ast.Name):
            return self.b.classes.get(func.id)
        chain = _chain(func)
        if chain and "." in chain:
            module, name = chain.rsplit(".", 1)
            sdk = self.b.modules.get(module)
            if sdk in ("openai", "anthropic") and name in _CLIENTS:
                return _CLIENTS[name], name
        return None

    def _client_sdk(self, value: ast.expr) -> Sdk | None:
        if isinstance(value, ast.Call):
            resolved = self._class_of(value.func)
            if resolved is not None:
                return resolved[0]
        return None

    def _file_uses_sdk(self) -> bool:
        return any(s in ("openai", "anthropic") for s in self.b.modules.values()) or any(
            sdk in ("openai", "azure-openai", "anthropic") for sdk, _ in self.b.classes.values()
        )

    def _default_sdk(self, kind: Kind) -> Sdk:
        sdks = set(self.b.modules.values()) | {sdk for sdk, _ in self.b.classes.values()}
        if kind == "messages" and "anthropic" in sdks:
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
        self.sites.append(
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
