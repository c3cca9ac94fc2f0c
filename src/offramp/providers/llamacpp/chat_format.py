"""Turning chat messages into the prompt text a GGUF model was trained on.

The model's own Jinja chat template (from its GGUF metadata) is rendered in a sandbox;
ChatML is the fallback. Tool calls, tool results, tool listings and JSON instructions
are written into plain messages first, so any template can carry them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from offramp.errors import InvalidRequest
from offramp.providers.llamacpp import tools as tool_prompt
from offramp.types import ChatRequest, Message

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatFormatter:
    """Renders messages with one model's chat template."""

    def __init__(self, template: str | None, *, bos_token: str, eos_token: str):
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
        self._template = env.from_string(template or CHATML)
        self._bos = bos_token
        self._eos = eos_token

    def render(self, request: ChatRequest) -> list[Segment]:
        """The prompt for ``request``, ending where the assistant's reply begins.

        The text comes back in segments: what the template wrote (whose control tokens
        such as ``<|im_end|>`` are real) and what the caller wrote (where the same text
        is plain text, so a message cannot forge a turn of another role).
        """
        messages = [_as_template_dict(m) for m in request.messages]
        extra = _system_additions(request)
        if extra:
            if messages and messages[0]["role"] == "system":
                messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + extra}
            else:
                messages.insert(0, {"role": "system", "content": extra})
        marked = [
            {**m, "content": f"{_OPEN}{i}{_SEP}{_unmark(m['content'])}{_CLOSE}"}
            for i, m in enumerate(messages)
        ]
        rendered = self._render(marked)
        segments = _split(rendered, len(messages))
        if segments is None:  # the template rewrote the content: no safe split, render plainly
            return [Segment(self._render(messages), control=True)]
        return segments

    def _render(self, messages: list[dict[str, Any]]) -> str:
        try:
            return str(
                self._template.render(
                    messages=messages,
                    add_generation_prompt=True,
                    bos_token=self._bos,
                    eos_token=self._eos,
                )
            )
        except TemplateError as exc:
            raise InvalidRequest(
                f"the model's chat template rejected these messages: {exc}", param="messages"
            ) from exc


@dataclass(frozen=True)
class Segment:
    """A run of prompt text; ``control`` runs may contain the model's control tokens."""

    text: str
    control: bool


# Private-use code points mark where each message's content sits in the rendered prompt.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"
_MARKERS = re.compile(f"[{_OPEN}{_SEP}{_CLOSE}]")
_MARK = re.compile(f"{_OPEN}(\\d+){_SEP}(.*?){_CLOSE}", re.DOTALL)


def _split(rendered: str, expected: int) -> list[Segment] | None:
    segments: list[Segment] = []
    seen = 0
    pos = 0
    for match in _MARK.finditer(rendered):
        if match.start() > pos:
            segments.append(Segment(rendered[pos : match.start()], control=True))
        if match.group(2):
            segments.append(Segment(match.group(2), control=False))
        seen += 1
        pos = match.end()
    if pos < len(rendered):
        segments.append(Segment(rendered[pos:], control=True))
    if seen != expected or any(_MARKERS.search(s.text) for s in segments if s.control):
        return None
    return segments


def _unmark(content: str) -> str:
    """Content may not carry the marker code points (they would end its segment early)."""
    return _MARKERS.sub("\ufffd", content)


def _as_template_dict(message: Message) -> dict[str, Any]:
    content = message.content or ""
    if message.role == "assistant" and message.tool_calls:
        calls = "\n".join(tool_prompt.render_call(c) for c in message.tool_calls)
        content = f"{content}\n{calls}".strip()
    if message.role == "tool":
        return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
    return {"role": message.role, "content": content}


def _system_additions(request: ChatRequest) -> str:
    parts: list[str] = []
    if request.tools and request.tool_choice.mode != "none":
        tools = request.tools
        if request.tool_choice.mode == "named":
            tools = tuple(t for t in tools if t.name == request.tool_choice.name)
        parts.append(tool_prompt.system_text(tools))
    out = request.output
    if out.kind == "json_schema" and out.schema is not None:
        parts.append(
            "Reply with only a JSON value that matches this JSON schema:\n"
            + json.dumps(out.schema, ensure_ascii=False)
        )
    elif out.kind == "json_object":
        parts.append("Reply with only a JSON object.")
    return "\n\n".join(parts)
