"""Turning chat messages into the prompt text a GGUF model was trained on.

The model's own Jinja chat template (from its GGUF metadata) is rendered in a sandbox;
ChatML is the fallback. Tool calls, tool results, tool listings and JSON instructions
are written into plain messages first, so any template can carry them.
"""

from __future__ import annotations

import json
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

    def render(self, request: ChatRequest) -> str:
        """The prompt for ``request``, ending where the assistant's reply begins."""
        messages = [_as_template_dict(m) for m in request.messages]
        extra = _system_additions(request)
        if extra:
            if messages and messages[0]["role"] == "system":
                messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + extra}
            else:
                messages.insert(0, {"role": "system", "content": extra})
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
