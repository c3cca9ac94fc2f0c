"""What a scan finds: sites of direct OpenAI/Anthropic usage, and the change each needs.

A site either needs a code change before the app can run on offramp (a hard-coded API host,
an Azure or Bedrock client, a pre-1.0 call), or it already runs there once an environment
variable is set (an SDK client that reads ``OPENAI_BASE_URL``, a chat call). ``scan`` exits
1 only while sites of the first sort remain.
"""

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
    "api-call",
    "legacy-call",
    "endpoint",
    "api-key",
    "raw-http",
    "api-key-env",
]
Sdk = Literal[
    "openai",
    "azure-openai",
    "anthropic",
    "anthropic-bedrock",
    "anthropic-vertex",
    "langchain-openai",
    "langchain-anthropic",
    "llama-index-openai",
    "llama-index-anthropic",
    "ai-sdk-openai",
    "ai-sdk-anthropic",
]

OFFRAMP_URL = "http://127.0.0.1:8000/v1"
OFFRAMP_ANTHROPIC_URL = OFFRAMP_URL.removesuffix("/v1")
SCRIPT_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")

# Hosts of the APIs; a string is a raw HTTP call site only when it is such a URL.
API_URL = re.compile(
    r"^https?://(api\.openai\.com|api\.anthropic\.com|[A-Za-z0-9-]+\.openai\.azure\.com"
    r"|[A-Za-z0-9-]+\.cognitiveservices\.azure\.com)(/|$|:)"
)
KEY_VARS = frozenset(
    {
        "OPENAI_API_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_ORGANIZATION",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    }
)
# The variable an SDK reads its endpoint from, by vendor.
BASE_URL_VARS: dict[str, str] = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}

# Method paths on an SDK client, longest first so `chat.completions.create` wins over
# `completions.create`. Chains through `beta.`, `with_raw_response.` and
# `with_streaming_response.` are matched with those segments taken out.
API_PATHS: tuple[tuple[str, Kind, bool], ...] = (
    ("chat.completions.create", "chat", False),
    ("chat.completions.parse", "chat", False),
    ("chat.completions.stream", "chat", True),
    ("chat.completions.runTools", "chat", False),
    ("chat.completions.run_tools", "chat", False),
    ("completions.create", "completion", False),
    ("embeddings.create", "embedding", False),
    ("responses.create", "responses", False),
    ("responses.parse", "responses", False),
    ("responses.stream", "responses", True),
    ("responses.retrieve", "responses", False),
    ("messages.create", "messages", False),
    ("messages.stream", "messages", True),
    ("messages.count_tokens", "messages", False),
    ("messages.countTokens", "messages", False),
    ("messages.batches.create", "api-call", False),
    ("images.generate", "api-call", False),
    ("images.edit", "api-call", False),
    ("audio.transcriptions.create", "api-call", False),
    ("audio.translations.create", "api-call", False),
    ("audio.speech.create", "api-call", False),
    ("moderations.create", "api-call", False),
    ("assistants.create", "api-call", False),
    ("threads.create", "api-call", False),
    ("threads.runs.create", "api-call", False),
    ("threads.runs.create_and_poll", "api-call", False),
    ("threads.runs.createAndPoll", "api-call", False),
    ("threads.runs.stream", "api-call", True),
    ("threads.messages.create", "api-call", False),
    ("fine_tuning.jobs.create", "api-call", False),
    ("fineTuning.jobs.create", "api-call", False),
    ("files.create", "api-call", False),
)
_PASS_THROUGH = frozenset({"beta", "with_raw_response", "with_streaming_response"})
LEGACY_CLASSES = frozenset(
    {"ChatCompletion", "Completion", "Embedding", "Edit", "Image", "Moderation", "Audio"}
)
LEGACY_METHODS = frozenset({"create", "acreate", "transcribe", "translate"})
# Node v3 SDK (`OpenAIApi`) and openai-edge method names.
V3_METHODS = frozenset(
    {
        "createChatCompletion",
        "createCompletion",
        "createEmbedding",
        "createImage",
        "createModeration",
        "createTranscription",
        "listModels",
    }
)
# Property or keyword names whose string value is shown to people, never sent anywhere.
UI_NAMES = re.compile(
    r"(?i)^(placeholder|label|title|description|desc|help|help_?text|hint|tooltip|alt"
    r"|caption|example|examples|docs?|docs?_?url|link|href|text|message|msg|note|summary)$"
)
UI_VARIABLE = re.compile(
    r"(?i)(placeholder|example|docs?_?url|help|hint|label|tooltip|caption|link)"
)
_CLOUD = {"azure-openai", "anthropic-bedrock", "anthropic-vertex"}


@dataclass(frozen=True)
class Site:
    """One place in the code that talks to, or configures, a hosted LLM API.

    ``env`` names the environment variable that already configures the site, when it does.
    """

    file: str
    line: int
    column: int
    kind: Kind
    sdk: Sdk
    models: tuple[str, ...] = ()
    streams: bool = False
    detail: str = ""
    env: str = ""

    @property
    def needs_change(self) -> bool:
        """Whether code must change (True) or configuration is enough (False)."""
        return _needs_change(self)

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

    @property
    def blocking(self) -> list[Site]:
        """The sites that still need a code change."""
        return [s for s in self.sites if s.needs_change]


def api_path(chain: str) -> tuple[str, Kind, bool] | None:
    """(receiver, kind, streams) if ``chain`` (``client.chat.completions.create``) ends in
    an API path; the receiver is what the path hangs off (``client``)."""
    parts = chain.split(".")
    streaming = "with_streaming_response" in parts
    kept = [p for p in parts if p not in _PASS_THROUGH]
    normal = ".".join(kept)
    for path, kind, streams in API_PATHS:
        if normal == path or normal.endswith("." + path):
            receiver = ".".join(kept[: len(kept) - path.count(".") - 1])
            return receiver, kind, streams or streaming
    return None


def is_key_var(name: str) -> bool:
    """An API key or endpoint variable, also with a framework prefix (``VITE_OPENAI_API_KEY``)."""
    return name in KEY_VARS or any(name.endswith("_" + var) for var in KEY_VARS)


def env_sdk(name: str) -> Sdk:
    """Which vendor a key variable belongs to."""
    if "ANTHROPIC" in name or "CLAUDE" in name:
        return "anthropic"
    return "azure-openai" if "AZURE" in name else "openai"


def url_sdk(host: str) -> Sdk:
    """Which vendor an API host belongs to."""
    if "anthropic" in host:
        return "anthropic"
    return "azure-openai" if "azure" in host else "openai"


def base_url_var(sdk: Sdk) -> str:
    """The variable the migrated endpoint is read from."""
    return BASE_URL_VARS["anthropic" if "anthropic" in sdk else "openai"]


def _needs_change(site: Site) -> bool:
    match site.kind:
        case "raw-http" | "legacy-call":
            return True
        case "endpoint":
            return not site.env
        case "client" | "wrapper":
            return site.sdk in _CLOUD or site.detail == "v3"
        case "api-call":
            return True
        case _:
            return False


def _change(site: Site) -> str:
    base = f"{base_url_var(site.sdk)}={_offramp_url(site.sdk)}"
    match site.kind:
        case "import":
            return "keep the import; point the client it builds at offramp"
        case "client" if site.sdk == "azure-openai":
            return f"build an OpenAI client on the endpoint read from {base}"
        case "client" if site.sdk in ("anthropic-bedrock", "anthropic-vertex"):
            return f"build an Anthropic client on the endpoint read from {base}"
        case "client" if site.detail == "v3":
            return f"move to the v4 SDK: new OpenAI() reads {base}"
        case "client" | "wrapper" if site.sdk in _CLOUD or "azure" in site.detail:
            return f"use the non-Azure class on the endpoint read from {base}"
        case "client" | "wrapper":
            return f"already configurable: set {base} in the environment"
        case "endpoint" if site.env:
            return f"already configurable: set {site.env}={_offramp_url(site.sdk)}"
        case "endpoint":
            return f"read the endpoint from the environment: {base}"
        case "legacy-call" if site.file.endswith(SCRIPT_SUFFIXES):
            return f"move to the v4 SDK (new OpenAI(), chat.completions.create); it reads {base}"
        case "legacy-call":
            return "move to the 1.x client call; it reads " + base
        case "raw-http":
            return f"send it to the endpoint read from {base} (same paths)"
        case "api-key-env" | "api-key":
            return "offramp needs no key: any value works, or drop it once migrated"
        case "api-call":
            return f"offramp does not serve {site.detail or 'this API'}: keep it on the vendor"
        case _:
            models = ", ".join(site.models) or "the model"
            return f"no code change: offramp serves this call; check that {models} is a configured name or alias"


def _offramp_url(sdk: Sdk) -> str:
    return OFFRAMP_ANTHROPIC_URL if base_url_var(sdk) == "ANTHROPIC_BASE_URL" else OFFRAMP_URL
