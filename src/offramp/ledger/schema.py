"""The ledger's tables as they are after every migration (queries use these)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

usage = Table(
    "offramp_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("key_id", String(32)),
    Column("end_user", String(256)),
    Column("model", String(128), nullable=False),
    Column("route", String(128)),
    Column("deployment", String(128)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("openai_cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("status", Integer, nullable=False),
    Column("cache_hit", Boolean, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("error_code", String(64)),
    Column("task", String(128)),
)

task_sessions = Table(
    "offramp_task_sessions",
    metadata,
    Column("id", String(160), primary_key=True),  # task name and session id
    Column("owner", String(320), nullable=False),  # key id and end user
    Column("turns", Text, nullable=False),  # JSON list of [user, assistant]
    Column("updated_at", Float, nullable=False),
)

stored_responses = Table(
    "offramp_responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(32), nullable=False),  # key id ("" with auth off)
    Column("created_at", Float, nullable=False),
    Column("model", String(128), nullable=False),
    Column("previous_id", String(64)),
    Column("response", Text, nullable=False),  # JSON: the response object
    Column("context", Text, nullable=False),  # JSON: every input item it saw, oldest first
    Column("request_id", String(80)),  # the x-request-id that made it
)

samples = Table(
    "offramp_samples",
    metadata,
    Column("id", String(32), primary_key=True),  # smp_...
    Column("ts", Float, nullable=False),
    Column("request_id", String(80), nullable=False),  # the x-request-id it answered
    Column("endpoint", String(32), nullable=False),  # chat, responses, messages, task, import
    Column("route", String(128)),
    Column("model", String(128), nullable=False),  # the name asked for
    Column("deployment", String(128)),  # the deployment that answered
    Column("task", String(128)),
    Column("key_id", String(32)),
    Column("end_user", String(256)),
    Column("request", Text, nullable=False),  # JSON: messages/tools/response_format, or a task's
    Column("response", Text, nullable=False),  # JSON: the assistant message, or {"result": ...}
    Column("reference", Text),  # JSON: the teacher's answer or a demonstration, same shape
    Column("reference_model", String(128)),  # the teacher, or "feedback"
    Column("shadow", String(16)),  # None (not shadowed), ok, failed, timeout, busy
    Column("embedding", Text),  # JSON list of floats: the last user message's, once embedded
)

feedback = Table(
    "offramp_feedback",
    metadata,
    Column("id", String(32), primary_key=True),  # fb_...
    Column("ts", Float, nullable=False),
    Column("request_id", String(80), nullable=False),  # the x-request-id of the request judged
    Column("metric", String(64)),  # a metric of the config's `metrics:`, or None
    Column("value", Float),  # booleans as 1.0 / 0.0
    Column("comment", Text),
    Column("demonstration", Text),  # JSON: a corrected answer
    Column("key_id", String(32)),  # who gave it (None: the admin or auth off)
    Column("source", String(16), nullable=False),  # api or validator
)

api_keys = Table(
    "offramp_api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(24), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_usd", Float),
    Column("models", Text),
)

migrations = Table(
    "offramp_migrations",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("applied_at", Float, nullable=False),
)
