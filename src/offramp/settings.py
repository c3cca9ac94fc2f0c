"""One typed Settings object, built once and passed down.

Precedence, lowest first: the ``settings:`` section of the YAML config file, then
``OFFRAMP_*`` environment variables, then explicit arguments (CLI flags, tests).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from offramp.errors import InvalidRequest


def _default_models_dir() -> Path:
    return Path(os.path.expanduser("~/.cache/offramp/models"))


def _default_ledger_path() -> Path:
    return Path(os.path.expanduser("~/.cache/offramp/ledger.db"))


class Settings(BaseSettings):
    """Server and engine knobs. Every field can be set as ``OFFRAMP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="OFFRAMP_", extra="forbid")

    config: Path | None = Field(
        default=None,
        description="YAML config with `models:` (the registry) and `settings:`; "
        "None uses the one shipped in the package.",
    )
    host: str = Field(default="127.0.0.1", description="Address the server binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the server binds.")
    models_dir: Path = Field(
        default_factory=_default_models_dir,
        description="Where `offramp models pull` stores hub models and where hub sources resolve.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="Server processes accepting on the one port, to use more cores for "
        "the gateway (routes to upstreams). Each worker is a whole offramp with its own "
        "copy of every local model (llama.cpp and embedding weights), so memory grows with "
        "the count: more than 1 suits gateway-only configs. Needs `redis_url` so rate "
        "limits, budgets and caches are shared by the workers, unless `per_worker_state` "
        "is set. /metrics then reports the worker that answered the scrape.",
    )
    per_worker_state: bool = Field(
        default=False,
        description="Allow `workers` > 1 without `redis_url`: each worker then keeps its "
        "own rate-limit counters, budgets and caches, so a key may make up to `workers` "
        "times its RPM / TPM and spend past its budget. Off: such a server refuses to start.",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    drain_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM: /ready turns 503, new requests get 503, and running ones "
        "have this long to finish (like Kubernetes' grace period); streams still running "
        "then end with an SSE error event and are billed for what they generated.",
    )
    keepalive_timeout_s: float = Field(
        default=5.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection that has not sent a request's headers, or a body that "
        "stops arriving, within this long is closed (408 for a body).",
    )
    max_queue: int = Field(
        default=32,
        ge=0,
        description="Requests allowed to wait per model behind the running ones; "
        "beyond that a request gets 503 with Retry-After.",
    )
    n_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for llama.cpp; None uses every core."
    )
    n_gpu_layers: int = Field(
        default=-1,
        description="Layers llama.cpp offloads to a GPU when built with one (-1: all, 0: none).",
    )
    embed_device: str | None = Field(
        default=None, description="Torch device for embeddings; None picks CUDA when present."
    )
    embed_batch_size: int = Field(
        default=64, ge=1, description="Texts encoded per forward pass of the embedding model."
    )
    embed_batch_window_ms: float = Field(
        default=2.0,
        ge=0.0,
        description="How long the embedding worker waits for more requests to encode "
        "together with the first one.",
    )
    preload: bool = Field(
        default=True, description="Load every configured local model at start-up."
    )
    default_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Cap on generated tokens when a request names none; None: up to the context.",
    )
    stream_interval_ms: float = Field(
        default=20.0,
        ge=0.0,
        description="Tokens generated within this window travel as one stream chunk; the "
        "first token and the end are never held back.",
    )
    upstream_max_connections: int = Field(
        default=256,
        ge=1,
        description="Pooled HTTP connections per upstream deployment (kept alive between "
        "requests).",
    )
    log_level: str = Field(default="info", description="Server log level.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json` writes one JSON object per log line, with the request id.",
    )
    log_prompts: bool = Field(
        default=False,
        description="Log request bodies (prompt text). Off: logs carry ids, sizes and "
        "timings only, never prompts or keys.",
    )
    ledger_path: Path = Field(
        default_factory=_default_ledger_path,
        description="SQLite file of the usage ledger (WAL mode) when `ledger_url` is unset.",
    )
    ledger_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger database, e.g. "
        "postgresql+psycopg://user@host/db; None uses the SQLite file at `ledger_path`.",
    )
    ledger_queue: int = Field(
        default=10_000,
        ge=1,
        description="Usage records waiting to be written; beyond that new records are "
        "dropped (and counted) rather than slowing requests.",
    )
    ledger_flush_ms: float = Field(
        default=250.0, ge=1.0, description="How long the ledger writer gathers a batch."
    )
    experiment_refresh_s: float = Field(
        default=2.0,
        gt=0.0,
        description="How often a server reads rollouts (`offramp rollout`) and adaptive "
        "experiments' results from the ledger database and updates its arms' weights.",
    )
    cache: bool = Field(
        default=True,
        description="Serve repeated deterministic requests (temperature 0 or a fixed seed) "
        "and already-embedded texts from the response cache.",
    )
    cache_ttl_s: float = Field(default=3600.0, gt=0.0, description="How long entries live.")
    cache_max_entries: int = Field(
        default=10_000, ge=1, description="Entries the in-process cache holds (LRU)."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by every replica for the cache, rate limits and budgets; "
        "None keeps them in this process. If Redis fails, requests go on in-process.",
    )
    redis_retry_s: float = Field(
        default=5.0, gt=0.0, description="How long to stay in-process after Redis fails."
    )
    auth: bool = Field(
        default=False,
        description="Require an API key (`offramp keys create`) on /v1 routes; off serves "
        "anyone, for single-user local use.",
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Bearer key for /admin routes; None disables them."
    )
    tasks_dir: Path | None = Field(
        default=None,
        description="A folder of user task files (*.yaml, *.yml, *.json) and their Jinja2 "
        "templates, loaded beside the built-in tasks; a user task may replace a built-in one "
        "of the same name. A malformed file fails start-up naming the file.",
    )
    structured_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Generations (first try plus repairs) a `response_format` chat request "
        "gets before its output is reported as invalid.",
    )
    task_sessions: int = Field(
        default=1024,
        ge=1,
        description="Conversation histories kept in memory for tasks with history before "
        "the ledger database is open; the least recently used one is dropped beyond this.",
    )
    task_session_ttl_s: float = Field(
        default=86400.0,
        gt=0,
        description="A task session untouched this long is forgotten. Sessions live in the "
        "ledger database (shared by replicas) and belong to the key and end user that "
        "started them.",
    )
    stored_response_ttl_s: float = Field(
        default=30 * 86400.0,
        gt=0,
        description="How long a response of `/v1/responses` made with `store: true` (the "
        "default) can be retrieved or continued with `previous_response_id` (30 days, as "
        "OpenAI). Stored responses live in the ledger database and belong to the key that "
        "made them.",
    )
    batch_concurrency: int = Field(
        default=4, ge=1, description="Requests of one `/v1/batch` call that run at once."
    )
    batch_max_requests: int = Field(
        default=64, ge=1, description="Most requests one `/v1/batch` call may hold."
    )
    console_viewer_key: SecretStr | None = Field(
        default=None,
        description="A second key that signs in to `/console` read-only (it sees every "
        "page but changes nothing); None: only the admin key signs in. The console exists "
        "only when `admin_key` is set.",
    )
    console_session_s: float = Field(
        default=12 * 3600.0,
        gt=0.0,
        description="How long a console sign-in lasts before the key is asked for again.",
    )

    capture_keys: list[str] = Field(
        default_factory=list,
        description="API key ids (`key_...`) whose every served chat, Responses, Messages "
        "and task request is captured as a sample, whatever the route says. Capture is "
        "otherwise off unless a route or task asks for it (`capture:`).",
    )
    capture_sample_rate: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of the requests of `capture_keys` that are captured (routes and "
        "tasks give their own `sample_rate`).",
    )
    capture_redact: list[str] = Field(
        default_factory=list,
        description="Extra regular expressions whose matches are replaced by `[REDACTED]` in "
        "captured samples, beside the built-in ones (e-mail addresses become `[EMAIL]`, "
        "API-key-like strings such as `sk-...` become `[API_KEY]`). A bad pattern fails "
        "start-up naming it.",
    )
    capture_retention_days: float | None = Field(
        default=30.0,
        gt=0.0,
        description="Captured samples older than this are deleted (hourly while serving, "
        "and by `offramp data prune`); None keeps them forever.",
    )
    capture_queue: int = Field(
        default=10_000,
        ge=1,
        description="Samples and automatic feedback waiting to be written; beyond that new "
        "ones are dropped (and counted) rather than slowing requests.",
    )
    shadow_concurrency: int = Field(
        default=4,
        ge=1,
        description="Teacher requests of shadow mode running at once; a request picked for "
        "shadowing while all are busy is captured without a reference (and logged).",
    )
    shadow_timeout_s: float = Field(
        default=120.0,
        gt=0.0,
        description="A teacher answer of shadow mode that takes longer is abandoned (the "
        "sample is stored without a reference); routes may set their own `timeout_s`.",
    )

    @field_validator("capture_redact")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"capture_redact: bad pattern {pattern!r}: {exc}") from exc
        return patterns


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings with file < env < explicit precedence.

    Raises InvalidRequest (param ``config``) when the file is missing or malformed.
    """
    explicit = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        explicit["config"] = config
    probe = Settings(**explicit)
    file_values = _settings_section(probe.config)
    from_env = probe.model_fields_set - explicit.keys()
    merged = {k: v for k, v in file_values.items() if k not in from_env}
    merged.update(explicit)
    return Settings(**merged)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file into a mapping; raise InvalidRequest naming the file if bad."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"cannot read config file {path}: {exc}", param="config") from exc
    except yaml.YAMLError as exc:
        raise InvalidRequest(
            f"config file {path} is not valid YAML: {exc}", param="config"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest(f"config file {path} must hold a mapping", param="config")
    return data


def _settings_section(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    section = read_config_file(path).get("settings") or {}
    if not isinstance(section, dict):
        raise InvalidRequest(f"`settings` in {path} must be a mapping", param="config")
    return section
