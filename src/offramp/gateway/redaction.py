"""Redaction of captured samples before they are stored: personal and secret strings in
every text of a request or answer are replaced by placeholders.

Built in: e-mail addresses (``[EMAIL]``) and API-key-like strings (``[API_KEY]``): keys
with a vendor prefix (``sk-...``, ``sk-ant-...``, ``pk_live_...``, ``ghp_...``,
``xoxb-...``, ``AKIA...``, ``AIza...``) and bearer tokens. The config's
``capture_redact`` patterns add their own, replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
API_KEY = re.compile(
    r"\b(?:"
    r"(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic (sk-ant-...), offramp's own
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r")"
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{16,}"
)


class Redactor:
    """Replaces every match of the built-in and the configured patterns."""

    def __init__(self, extra: Iterable[str] = ()):
        self._rules: list[tuple[re.Pattern[str], str]] = [
            (API_KEY, "[API_KEY]"),  # first: a key may contain an @
            (EMAIL, "[EMAIL]"),
            *((re.compile(p), "[REDACTED]") for p in extra),
        ]

    def text(self, value: str) -> str:
        for pattern, placeholder in self._rules:
            value = pattern.sub(placeholder, value)
        return value

    def value(self, value: Any) -> Any:
        """``value`` (decoded JSON) with every string in it redacted (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
