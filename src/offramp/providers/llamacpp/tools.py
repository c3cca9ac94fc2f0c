"""Tool calling for models without native support: prompt text, grammar, and parsing.

The model is told about the functions in its system prompt and answers a call as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. A grammar built from the
functions' JSON schemas makes every call well-formed: from the first token when a call
is required (``required`` or a named function), and lazily, from the moment the model
writes ``<tool_call>``, when it may choose (``auto``).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from offramp.providers.llamacpp.grammar import schema_to_gbnf
from offramp.providers.llamacpp.sampling import Grammar
from offramp.schemas import embed
from offramp.types import ToolCall, ToolChoice, ToolSpec

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
# Lazy grammars are fed the output from the first capture group of this pattern onwards.
_TRIGGER = r"[\s\S]*?(<tool_call>)[\s\S]*"


def system_text(tools: tuple[ToolSpec, ...]) -> str:
    """Instructions listing the callable functions, for the system prompt."""
    listing = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters})
        for t in tools
    )
    return (
        "You can call functions. To call one, reply with exactly\n"
        f'{OPEN}\n{{"name": "<function name>", "arguments": {{...}}}}\n{CLOSE}\n'
        "and nothing else. Otherwise answer normally. The functions:\n" + listing
    )


def render_call(call: ToolCall) -> str:
    """How an earlier call appears in the conversation the model reads."""
    return f'{OPEN}\n{{"name": {json.dumps(call.name)}, "arguments": {call.arguments}}}\n{CLOSE}'


def call_schema(tools: tuple[ToolSpec, ...]) -> dict[str, Any]:
    """JSON schema of one call to any of ``tools``.

    Each function's parameters move to ``$defs`` under the function's name, their own
    references rewritten to match, so ``#/$defs/...`` inside them still finds its target
    although the parameters now sit below ``arguments``."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": {"$ref": f"#/$defs/{t.name}"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    schema: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    schema["$defs"] = {t.name: embed(t.parameters or {"type": "object"}, t.name) for t in tools}
    return schema


def grammar_for(tools: tuple[ToolSpec, ...], choice: ToolChoice) -> Grammar | None:
    """The grammar that keeps calls well-formed for this tool choice; None for ``none``."""
    if choice.mode == "none" or not tools:
        return None
    if choice.mode == "named":
        chosen = tuple(t for t in tools if t.name == choice.name)
        return Grammar(schema_to_gbnf(call_schema(chosen), "tools"))
    if choice.mode == "required":
        return Grammar(schema_to_gbnf(call_schema(tools), "tools"))
    call = schema_to_gbnf(call_schema(tools), "tools", root="call")
    wrapped = f'root ::= "{OPEN}" space call space "{CLOSE}"\n{call}'
    return Grammar(wrapped, trigger=_TRIGGER)


def parse(text: str, choice: ToolChoice) -> tuple[str | None, tuple[ToolCall, ...]]:
    """Split generated text into (content, tool calls); text that is not a whole,
    valid call stays content."""
    if choice.mode in ("required", "named"):
        call = _parse_call(text)
        return (None, (call,)) if call else (text, ())
    start = text.find(OPEN)
    if choice.mode == "none" or start < 0:
        return text, ()
    end = text.find(CLOSE, start)
    body = text[start + len(OPEN) : end if end >= 0 else len(text)]
    call = _parse_call(body)
    if call is None:
        return text, ()
    content = text[:start].strip() or None
    return content, (call,)


def parse_cut(
    text: str, choice: ToolChoice, names: tuple[str, ...]
) -> tuple[str | None, tuple[ToolCall, ...]]:
    """Split the text of a generation cut off by the token limit into (content, calls), as
    OpenAI returns it: a call that was started comes back with its arguments as far as
    they got (not valid JSON), and none of the wrapper around it is content."""
    if choice.mode in ("required", "named"):
        content, body = None, text
    else:
        start = text.find(OPEN) if choice.mode == "auto" else -1
        if start < 0:
            held = _partial(text, OPEN) if choice.mode == "auto" else 0
            return text[: len(text) - held], ()
        content, body = text[:start].strip() or None, text[start + len(OPEN) :]
    match = _CALL_HEAD.match(body)
    partial_name = ""
    arguments = ""
    if match:
        partial_name = _unescape(match.group("name"))
        if match.group("closed") is not None:
            arguments = body[match.end() :].lstrip()
    arguments = _complete_prefix(arguments)
    allowed = (choice.name,) if choice.mode == "named" and choice.name else names
    name = next((n for n in allowed if n.startswith(partial_name)), allowed[0] if allowed else "")
    call = ToolCall(id=f"call_{secrets.token_hex(12)}", name=name, arguments=arguments)
    return content, (call,)


# The start of ``{"name": "...", "arguments": `` as far as it got.
_CALL_HEAD = re.compile(
    r'\s*\{\s*(?:"name"\s*:\s*"(?P<name>(?:[^"\\]|\\.)*)(?P<closed>"\s*,\s*"arguments"\s*:)?)?'
)


def _unescape(partial: str) -> str:
    try:
        return str(json.loads(f'"{partial}"'))
    except ValueError:
        return partial


def _complete_prefix(arguments: str) -> str:
    """The arguments JSON alone when it is whole (the wrapper's brace may follow)."""
    try:
        _, end = json.JSONDecoder().raw_decode(arguments)
    except ValueError:
        return arguments
    return arguments[:end]


def _parse_call(body: str) -> ToolCall | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    return ToolCall(
        id=f"call_{secrets.token_hex(12)}",
        name=data["name"],
        arguments=json.dumps(arguments, ensure_ascii=False),
    )


class ContentGate:
    """Decides, while streaming, which text is plain content and which may be a call.

    In ``auto`` mode text streams until it could be the start of ``<tool_call>``; from
    there it is held until the end, when ``parse`` decides. In ``required``/``named``
    mode everything is held.
    """

    def __init__(self, choice: ToolChoice, active: bool):
        self._hold_all = active and choice.mode in ("required", "named")
        self._watch = active and choice.mode == "auto"
        self._text = ""
        self._released = 0
        self._calling = False

    def feed(self, text: str) -> str:
        """Append ``text``; returns the part that is safe to stream as content now."""
        self._text += text
        if self._hold_all or self._calling:
            return ""
        if not self._watch:
            out = self._text[self._released :]
            self._released = len(self._text)
            return out
        start = self._text.find(OPEN, self._released)
        if start >= 0:
            self._calling = True
            safe = start
        else:
            safe = len(self._text) - _partial(self._text, OPEN)
        out = self._text[self._released : safe]
        self._released = max(self._released, safe)
        return out

    @property
    def text(self) -> str:
        """All text generated so far."""
        return self._text

    @property
    def released(self) -> int:
        """How many characters were streamed as content."""
        return self._released


def _partial(text: str, marker: str) -> int:
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0
