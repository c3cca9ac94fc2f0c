"""Log configuration for the server: plain text, or one JSON object per line.

JSON lines carry the time, level, logger, message and the request id of the request
being served (``request_id_var``, set by the API's request context), plus the access log's method, path, status and
latency. Prompts appear only with ``log_prompts`` on; API keys never do.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

import orjson

from offramp.settings import Settings

request_id_var: ContextVar[str | None] = ContextVar("offramp_request_id", default=None)

_EXTRA_FIELDS = ("method", "path", "status", "latency_ms", "body")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping (also what uvicorn takes as log_config).

    Records skip the process and thread names, which no format here shows: looking them
    up (the multiprocessing module's current process among them) is part of every
    record's cost, and the server makes one per request."""
    logging.logMultiprocessing = False
    logging.logProcesses = False
    logging.logThreads = False
    level = settings.log_level.upper()
    if settings.log_format == "json":
        formatter: dict[str, Any] = {"()": JsonFormatter}
    else:
        formatter = {"format": "%(levelname)s:     %(name)s: %(message)s"}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
        },
    }
