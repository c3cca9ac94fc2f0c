"""The Python SDK surface as data: which imports bind which client, wrapper or pre-1.0
class, which keyword arguments hold a key or an endpoint, and when a URL is only prose."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from offramp.migrate.scan.sites import LEGACY_CLASSES, UI_NAMES, UI_VARIABLE, Sdk


@dataclass(frozen=True)
class Bound:
    """A class an import binds: an SDK client, a framework wrapper, or a pre-1.0 class."""

    sdk: Sdk
    name: str
    kind: Literal["client", "wrapper", "legacy"]


_SDK_CLIENTS: dict[str, Sdk] = {
    "OpenAI": "openai",
    "AsyncOpenAI": "openai",
    "AzureOpenAI": "azure-openai",
    "AsyncAzureOpenAI": "azure-openai",
    "Anthropic": "anthropic",
    "AsyncAnthropic": "anthropic",
    "AnthropicBedrock": "anthropic-bedrock",
    "AsyncAnthropicBedrock": "anthropic-bedrock",
    "AnthropicVertex": "anthropic-vertex",
    "AsyncAnthropicVertex": "anthropic-vertex",
}
# Framework classes by vendor; the framework is told by the module they come from.
_WRAPPER_VENDOR: dict[str, str] = {
    "ChatOpenAI": "openai",
    "OpenAI": "openai",
    "OpenAIChat": "openai",
    "OpenAIEmbeddings": "openai",
    "OpenAIEmbedding": "openai",
    "OpenAILike": "openai",
    "AzureChatOpenAI": "azure",
    "AzureOpenAI": "azure",
    "AzureOpenAIEmbeddings": "azure",
    "AzureOpenAIEmbedding": "azure",
    "ChatAnthropic": "anthropic",
    "ChatAnthropicMessages": "anthropic",
    "Anthropic": "anthropic",
    "AnthropicLLM": "anthropic",
}
_FRAMEWORKS: tuple[tuple[str, str], ...] = (
    ("langchain_openai", "langchain"),
    ("langchain_anthropic", "langchain"),
    ("langchain_community.chat_models", "langchain"),
    ("langchain_community.llms", "langchain"),
    ("langchain_community.embeddings", "langchain"),
    ("langchain.chat_models", "langchain"),
    ("langchain.llms", "langchain"),
    ("langchain.embeddings", "langchain"),
    ("llama_index.llms", "llama-index"),
    ("llama_index.embeddings", "llama-index"),
    ("llama_index.legacy.llms", "llama-index"),
    ("llama_index.legacy.embeddings", "llama-index"),
)
_WRAPPER_SDK: dict[tuple[str, str], Sdk] = {
    ("langchain", "openai"): "langchain-openai",
    ("langchain", "azure"): "azure-openai",
    ("langchain", "anthropic"): "langchain-anthropic",
    ("llama-index", "openai"): "llama-index-openai",
    ("llama-index", "azure"): "azure-openai",
    ("llama-index", "anthropic"): "llama-index-anthropic",
}

KEY_SLOTS = frozenset({"api_key", "openai_api_key", "anthropic_api_key", "azure_ad_token"})
ENDPOINT_SLOTS = frozenset(
    {"base_url", "api_base", "openai_api_base", "azure_endpoint", "anthropic_api_url"}
)
ENDPOINT_ATTRS = frozenset({"api_base", "base_url", "azure_endpoint"})
_PROSE_CALLS = frozenset(
    {
        "print",
        "startswith",
        "endswith",
        "parametrize",
        "debug",
        "info",
        "warning",
        "warn",
        "error",
        "exception",
        "critical",
        "echo",
        "secho",
        "markdown",
        "gettext",
        "_",
    }
)


def bind_import(module: str, names: list[str]) -> tuple[Sdk, dict[str, Bound]] | None:
    """(sdk, {name: Bound}) when ``from MODULE import NAMES`` imports an SDK or a wrapper."""
    if module in ("openai", "anthropic") or module.startswith(("openai.lib", "anthropic.lib")):
        root: Sdk = "openai" if module.startswith("openai") else "anthropic"
        bound: dict[str, Bound] = {}
        for name in names:
            if name in _SDK_CLIENTS:
                bound[name] = Bound(_SDK_CLIENTS[name], name, "client")
            elif name in ("Client", "AsyncClient"):  # the SDKs' aliases of their clients
                bound[name] = Bound(root, name, "client")
            elif name in LEGACY_CLASSES and root == "openai":
                bound[name] = Bound("openai", name, "legacy")
        if module.startswith(("openai.lib", "anthropic.lib")) and not bound:
            return None
        return root, bound
    framework = next((f for prefix, f in _FRAMEWORKS if module.startswith(prefix)), None)
    if framework is None:
        return None
    bound = {}
    for name in names:
        vendor = _WRAPPER_VENDOR.get(name)
        if vendor is not None:
            bound[name] = Bound(_WRAPPER_SDK[(framework, vendor)], name, "wrapper")
    if not bound:
        return None
    first = next(iter(bound.values()))
    return first.sdk, bound


def is_prose(
    node: ast.expr, parents: dict[int, ast.AST], env_default: Callable[[ast.Call], bool]
) -> bool:
    """Whether a URL string is shown to people or checked against, rather than called:
    a docstring, help text, a placeholder, a log line, an assertion, a comparison."""
    current: ast.AST = node
    while True:
        parent = parents.get(id(current))
        if parent is None:
            return False
        if isinstance(
            parent, ast.JoinedStr | ast.FormattedValue | ast.BinOp | ast.Tuple | ast.List | ast.Set
        ):
            current = parent
            continue
        if isinstance(parent, ast.keyword):
            if parent.arg is not None and UI_NAMES.match(parent.arg):
                return True
            current = parent
            continue
        if isinstance(parent, ast.Call):
            name = _call_name(parent.func)
            if name in _PROSE_CALLS or name.startswith("assert") or env_default(parent):
                return True
            current = parent  # an argument of a call inside an assertion is test data
            continue
        if isinstance(parent, ast.BoolOp):  # `os.getenv("X") or "https://..."`: a default
            if any(isinstance(v, ast.Call) and env_default(v) for v in parent.values):
                return True
            current = parent
            continue
        return _shown(parent, current)


def _shown(parent: ast.AST, child: ast.AST) -> bool:
    """Where the climb stops: a UI-named variable or dict key, an assertion, a comparison,
    a bare string statement."""
    if isinstance(parent, ast.Assign | ast.AnnAssign):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return any(isinstance(t, ast.Name) and UI_VARIABLE.search(t.id) for t in targets)
    if isinstance(parent, ast.Dict):
        index = next((i for i, v in enumerate(parent.values) if v is child), None)
        key = parent.keys[index] if index is not None else None
        return (
            isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and UI_NAMES.match(key.value) is not None
        )
    return isinstance(parent, ast.Assert | ast.Compare | ast.Expr)


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
