"""What a scan finds: sites of direct OpenAI/Anthropic usage, and the change each needs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "import",
    "client",
    "wrapper",
    "chat",
    "completion",
    "embedding",
    "responses",
    "messages",
    "legacy-call",
    "raw-http",
    "api-key-env",
]
Sdk = Literal["openai", "azure-openai", "anthropic", "langchain-openai", "llama-index-openai"]

OFFRAMP_URL = "http://127.0.0.1:8000/v1"
SCRIPT_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")

# Hosts of the APIs; a string is a raw HTTP call site only when it is such a URL.
API_URL = re.compile(
    r"^https?://(api\.openai\.com|api\.anthropic\.com|[A-Za-z0-9-]+\.openai\.azure\.com)(/|$)"
)
KEY_VARS = frozenset(
    {
        "OPENAI_API_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_ORGANIZATION",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "ANTHROPIC_API_KEY",
    }
)
# Method paths on an SDK client, longest first so `chat.completions.create` wins over
# `completions.create`.
API_PATHS: tuple[tuple[str, Kind, bool], ...] = (
    ("beta.chat.completions.parse", "chat", False),
    ("beta.chat.completions.stream", "chat", True),
    ("chat.completions.create", "chat", False),
    ("chat.completions.parse", "chat", False),
    ("chat.completions.stream", "chat", True),
    ("completions.create", "completion", False),
    ("embeddings.create", "embedding", False),
    ("responses.create", "responses", False),
    ("responses.stream", "responses", True),
    ("messages.create", "messages", False),
    ("messages.stream", "messages", True),
)
LEGACY_PATHS = frozenset(
    {
        "ChatCompletion.create",
        "ChatCompletion.acreate",
        "Completion.create",
        "Completion.acreate",
        "Embedding.create",
        "Embedding.acreate",
    }
)


@dataclass(frozen=True)
class Site:
    """One place in the code that talks to, or configures, a hosted LLM API."""

    file: str
    line: int
    column: int
    kind: Kind
    sdk: Sdk
    models: tuple[str, ...] = ()
    streams: bool = False
    detail: str = ""

    @property
    def change(self) -> str:
        """The concrete change that moves this site onto offramp."""
        return _change(self)


@dataclass
class ScanResult:
    """Every site found, and the files that could not be parsed (scanned as far as possible)."""

    root: str
    sites: list[Site] = field(default_factory=list)
    unparsed: list[tuple[str, str]] = field(default_factory=list)
    files_scanned: int = 0


def api_path(chain: str) -> tuple[str, Kind, bool] | None:
    """(receiver, kind, streams) if ``chain`` (``client.chat.completions.create``) ends in
    an API path; the receiver is what the path hangs off (``client``)."""
    for path, kind, streams in API_PATHS:
        if chain == path or chain.endswith("." + path):
            return chain[: -len(path)].rstrip("."), kind, streams
    return None


def env_sdk(name: str) -> Sdk:
    """Which vendor a key variable belongs to."""
    if name.startswith("ANTHROPIC"):
        return "anthropic"
    return "azure-openai" if name.startswith("AZURE") else "openai"


def url_sdk(host: str) -> Sdk:
    """Which vendor an API host belongs to."""
    if "anthropic" in host:
        return "anthropic"
    return "azure-openai" if "azure" in host else "openai"


def _change(site: Site) -> str:
    base = f"OPENAI_BASE_URL={OFFRAMP_URL}"
    match site.kind:
        case "import":
            return "keep the import; point the client it builds at offramp"
        case "client" if site.sdk == "azure-openai":
            return f'use OpenAI(base_url="{OFFRAMP_URL}", api_key="unused") instead of Azure'
        case "client" if site.sdk == "anthropic":
            return (
                "set base_url to offramp once it serves /v1/messages, or call "
                f"offramp through the OpenAI SDK ({base})"
            )
        case "client":
            option = "baseURL" if site.file.endswith(SCRIPT_SUFFIXES) else "base_url"
            if "base_url" in site.detail:
                return f'change {option} to "{OFFRAMP_URL}"'
            return f'pass {option}="{OFFRAMP_URL}", or set {base} in the environment'
        case "wrapper" if site.sdk == "llama-index-openai":
            return f'pass api_base="{OFFRAMP_URL}"'
        case "wrapper":
            return f'pass base_url="{OFFRAMP_URL}" (openai_api_base in older versions)'
        case "legacy-call":
            return f'set openai.api_base = "{OFFRAMP_URL}" (SDK < 1.0), or move to OpenAI()'
        case "raw-http":
            return f"send it to {OFFRAMP_URL.removesuffix('/v1')} instead (same paths)"
        case "api-key-env":
            return "offramp needs no key: any value works, or drop it once migrated"
        case _:
            models = ", ".join(site.models) or "the model"
            return f"no code change: offramp serves this call; check that {models} is a configured name or alias"
