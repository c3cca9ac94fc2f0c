"""The JavaScript/TypeScript SDK surface as data: packages (npm names, ``npm:``/``jsr:``
and URL specifiers of Deno and Bun), the classes and provider functions they export, and
the option names that hold a key or an endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from offramp.migrate.scan.sites import Sdk

Family = Literal["sdk", "v3", "langchain", "llama-index", "ai-sdk", "azure-sdk"]

PACKAGES: dict[str, tuple[Sdk, Family]] = {
    "openai": ("openai", "sdk"),
    "@openai/openai": ("openai", "sdk"),
    "openai-edge": ("openai", "v3"),
    "@anthropic-ai/sdk": ("anthropic", "sdk"),
    "@anthropic-ai/bedrock-sdk": ("anthropic-bedrock", "sdk"),
    "@anthropic-ai/vertex-sdk": ("anthropic-vertex", "sdk"),
    "@azure/openai": ("azure-openai", "azure-sdk"),
    "@ai-sdk/openai": ("ai-sdk-openai", "ai-sdk"),
    "@ai-sdk/anthropic": ("ai-sdk-anthropic", "ai-sdk"),
    "@ai-sdk/azure": ("azure-openai", "ai-sdk"),
    "@langchain/openai": ("langchain-openai", "langchain"),
    "@langchain/anthropic": ("langchain-anthropic", "langchain"),
    "langchain/chat_models/openai": ("langchain-openai", "langchain"),
    "langchain/llms/openai": ("langchain-openai", "langchain"),
    "langchain/embeddings/openai": ("langchain-openai", "langchain"),
    "langchain/chat_models/anthropic": ("langchain-anthropic", "langchain"),
    "@langchain/community/chat_models/openai": ("langchain-openai", "langchain"),
    "llamaindex": ("llama-index-openai", "llama-index"),
    "@llamaindex/openai": ("llama-index-openai", "llama-index"),
    "@llamaindex/anthropic": ("llama-index-anthropic", "llama-index"),
}


@dataclass(frozen=True)
class JsClass:
    """What ``new NAME(...)`` builds, by the family of the package it came from."""

    sdk: Sdk | None  # None: the package's own
    kind: Literal["client", "wrapper"]
    v3: bool = False


_CLASSES: dict[tuple[Family, str], JsClass] = {
    ("sdk", "OpenAI"): JsClass(None, "client"),
    ("sdk", "AzureOpenAI"): JsClass("azure-openai", "client"),
    ("sdk", "Anthropic"): JsClass(None, "client"),
    ("sdk", "AnthropicBedrock"): JsClass("anthropic-bedrock", "client"),
    ("sdk", "AnthropicVertex"): JsClass("anthropic-vertex", "client"),
    ("sdk", "Configuration"): JsClass(None, "client", v3=True),
    ("sdk", "OpenAIApi"): JsClass(None, "client", v3=True),
    ("v3", "Configuration"): JsClass(None, "client", v3=True),
    ("v3", "OpenAIApi"): JsClass(None, "client", v3=True),
    ("azure-sdk", "OpenAIClient"): JsClass(None, "client"),
    ("langchain", "ChatOpenAI"): JsClass("langchain-openai", "wrapper"),
    ("langchain", "OpenAI"): JsClass("langchain-openai", "wrapper"),
    ("langchain", "OpenAIEmbeddings"): JsClass("langchain-openai", "wrapper"),
    ("langchain", "AzureChatOpenAI"): JsClass("azure-openai", "wrapper"),
    ("langchain", "AzureOpenAIEmbeddings"): JsClass("azure-openai", "wrapper"),
    ("langchain", "ChatAnthropic"): JsClass("langchain-anthropic", "wrapper"),
    ("llama-index", "OpenAI"): JsClass("llama-index-openai", "wrapper"),
    ("llama-index", "OpenAIEmbedding"): JsClass("llama-index-openai", "wrapper"),
    ("llama-index", "Anthropic"): JsClass("llama-index-anthropic", "wrapper"),
}
# The name a default import stands for.
DEFAULT_EXPORT: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "anthropic-bedrock": "AnthropicBedrock",
    "anthropic-vertex": "AnthropicVertex",
}
# AI SDK: `createOpenAI({...})` builds a provider; `openai("gpt-4o")` names a model.
PROVIDER_FACTORIES = frozenset({"createOpenAI", "createAnthropic", "createAzure"})
PROVIDER_INSTANCES = frozenset({"openai", "anthropic", "azure"})
PROVIDER_METHODS = frozenset(
    {
        "chat",
        "completion",
        "responses",
        "embedding",
        "textEmbedding",
        "textEmbeddingModel",
        "languageModel",
        "messages",
    }
)

KEY_OPTIONS = frozenset({"apiKey", "openAIApiKey", "anthropicApiKey", "azureOpenAIApiKey"})
ENDPOINT_OPTIONS = frozenset(
    {"baseURL", "baseUrl", "basePath", "endpoint", "azureOpenAIEndpoint", "azureOpenAIBasePath"}
)
NESTED_OPTIONS = frozenset({"configuration", "clientOptions"})


def class_of(family: Family, name: str, package_sdk: Sdk) -> tuple[Sdk, JsClass] | None:
    """(sdk, class) for ``new NAME`` bound by an import from a package of ``family``."""
    found = _CLASSES.get((family, name))
    if found is None:
        return None
    return (found.sdk or package_sdk), found


def package_of(specifier: str) -> tuple[Sdk, Family] | None:
    """The SDK a module specifier imports: ``openai``, ``npm:openai@4``, ``jsr:@openai/openai``,
    ``https://esm.sh/openai@4.20.0``, ``https://deno.land/x/openai@v4.20.0/mod.ts``."""
    spec = specifier.removeprefix("npm:").removeprefix("jsr:")
    if spec.startswith(("http://", "https://")):
        segments = [s for s in urlparse(spec).path.split("/") if s]
        for i, segment in enumerate(segments):
            name = segment if not segment.startswith("@") else "/".join(segments[i : i + 2])
            found = PACKAGES.get(_bare(name))
            if found is not None:
                return found
        return None
    found = PACKAGES.get(spec)
    if found is not None:
        return found
    bare = _bare(spec)
    found = PACKAGES.get(bare)
    if found is None and not spec.startswith((".", "/")):
        head = bare.split("/")
        found = PACKAGES.get("/".join(head[:2]) if bare.startswith("@") else head[0])
    return found


def _bare(name: str) -> str:
    """``openai@4.2.0`` -> ``openai``; ``@anthropic-ai/sdk@0.20/x`` -> ``@anthropic-ai/sdk/x``."""
    if name.startswith("@"):
        scope, _, rest = name.partition("/")
        package, _, tail = rest.partition("/")
        package = package.split("@")[0]
        return "/".join(p for p in (scope, package, tail) if p)
    package, _, tail = name.partition("/")
    return "/".join(p for p in (package.split("@")[0], tail) if p)
