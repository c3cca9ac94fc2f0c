"""Chat examples in OpenAI's fine-tuning JSONL format, both ways.

One example per line: ``{"messages": [{"role": ..., "content": ...}, ...]}`` (optionally
``"tools"``), ending with the assistant answer a model should learn to give. Examples
are de-duplicated by content and split into train and eval deterministically by a hash
of their prompt (every message but the final answer), so the same prompt never lands on
both sides and a re-export gives the same split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offramp.errors import InvalidRequest, quoted

Split = Literal["train", "eval"]
ROLES = ("system", "developer", "user", "assistant", "tool")
DEFAULT_EVAL_SHARE = 0.2


@dataclass(frozen=True)
class ChatExample:
    """One training example: the conversation up to and including the target answer."""

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def prompt(self) -> tuple[dict[str, Any], ...]:
        """Every message before the final answer."""
        return self.messages[:-1]

    @property
    def answer(self) -> str:
        """The final assistant message's text."""
        content = self.messages[-1].get("content")
        return content if isinstance(content, str) else ""

    def digest(self) -> str:
        """A hash of the whole example (messages and tools): equal examples, equal hash."""
        return _digest({"messages": self.messages, "tools": self.tools})

    def prompt_digest(self) -> str:
        """A hash of the prompt alone: what the train/eval split is decided by."""
        return _digest({"messages": self.prompt, "tools": self.tools})

    def split(self, eval_share: float = DEFAULT_EVAL_SHARE) -> Split:
        """``eval`` for about ``eval_share`` of prompts, always the same ones."""
        bucket = int(self.prompt_digest()[:8], 16) / 0x1_0000_0000
        return "eval" if bucket < eval_share else "train"

    def to_json(self) -> dict[str, Any]:
        """The example as one line of OpenAI's fine-tuning format."""
        line: dict[str, Any] = {"messages": list(self.messages)}
        if self.tools:
            line["tools"] = list(self.tools)
        return line


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def example_from_json(value: Any, where: str = "example") -> ChatExample:
    """Validate one decoded line; InvalidRequest names the line and field at fault."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: expected a JSON object", param=where)
    unknown = set(value) - {"messages", "tools", "parallel_tool_calls", "metadata"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"{where}: unknown field {quoted(name)}", param=f"{where}.{name}")
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(f"{where}: `messages` must be a non-empty list", param="messages")
    for i, message in enumerate(messages):
        _check_message(message, f"{where}: messages[{i}]")
    if messages[-1].get("role") != "assistant":
        raise InvalidRequest(
            f"{where}: the last message must be the assistant's answer",
            param=f"messages[{len(messages) - 1}].role",
        )
    tools = value.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise InvalidRequest(f"{where}: `tools` must be a list of objects", param="tools")
    metadata = value.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidRequest(f"{where}: `metadata` must be an object", param="metadata")
    return ChatExample(tuple(messages), tuple(tools), metadata)


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be an object", param=where.split(": ")[-1])
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(
            f"{where}.role must be one of {', '.join(ROLES)}, not {quoted(role)}",
            param=where.split(": ")[-1] + ".role",
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise InvalidRequest(
            f"{where}.content must be a string or a list of parts",
            param=where.split(": ")[-1] + ".content",
        )
    if content is None and not message.get("tool_calls"):
        raise InvalidRequest(
            f"{where} has neither content nor tool_calls", param=where.split(": ")[-1]
        )


def read_jsonl(path: Path) -> list[ChatExample]:
    """Every example in the file at ``path``; InvalidRequest names the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequest(f"cannot read dataset {path}: {exc.strerror}") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{path}:{number}: not JSON ({exc.msg})") from exc
        examples.append(example_from_json(value, f"{path.name}:{number}"))
    return examples


def write_jsonl(path: Path, examples: Iterable[ChatExample]) -> int:
    """Write ``examples`` one per line; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def deduplicated(examples: Iterable[ChatExample]) -> Iterator[ChatExample]:
    """Each distinct example once, the first of equal ones, in order."""
    seen: set[str] = set()
    for example in examples:
        digest = example.digest()
        if digest not in seen:
            seen.add(digest)
            yield example


def split_of(
    examples: Iterable[ChatExample], split: Split, eval_share: float = DEFAULT_EVAL_SHARE
) -> list[ChatExample]:
    """The examples on one side of the deterministic train/eval split."""
    return [e for e in examples if e.split(eval_share) == split]
