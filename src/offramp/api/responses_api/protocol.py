"""Wire models of OpenAI's Responses API (``POST /v1/responses``).

As in the chat API, unknown fields nested in the request (an item, a tool) are refused
here, and unknown top-level fields travel as the domain request's ``extra`` (a local
model refuses them with a 400 naming the field). Item and tool types the translator
cannot serve (images, files, hosted tools, reasoning items) are parsed loosely so that
the 400 it gives names the exact item.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from offramp.api.fields import EndUser, ModelName
from offramp.api.openai.protocol import Temperature


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Loose(BaseModel):
    """Something the translator refuses by its ``type``, naming where it is."""

    model_config = ConfigDict(extra="allow")
    type: str


class TextContent(_Wire):
    """``input_text`` (user turns) or ``output_text`` (an earlier answer)."""

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class RefusalContent(_Wire):
    type: Literal["refusal"]
    refusal: str


def _content_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("input_text", "output_text", "refusal") else "other"


Content = Annotated[
    Annotated[TextContent, Tag("input_text")]
    | Annotated[TextContent, Tag("output_text")]
    | Annotated[RefusalContent, Tag("refusal")]
    | Annotated[_Loose, Tag("other")],
    Discriminator(_content_tag),
]


class MessageItem(_Wire):
    """A turn: ``{"role", "content"}`` with or without ``"type": "message"``."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Content]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Wire):
    """A function call the model made earlier."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Wire):
    """The application's result of a function call, fed back."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[Content]
    id: str | None = None
    status: str | None = None


def _item_tag(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else value.type
    return kind if kind in ("message", "function_call", "function_call_output") else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[_Loose, Tag("other")],
    Discriminator(_item_tag),
]


class FunctionTool(_Wire):
    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "function" if kind == "function" else "other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[_Loose, Tag("other")],
    Discriminator(_tool_tag),
]


class FunctionChoice(_Wire):
    type: Literal["function"]
    name: str


class TextFormat(_Wire):
    """``text.format``: ``text``, ``json_object`` or a named ``json_schema``."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Wire):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Wire):
    effort: None = None
    summary: None = None


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``; unknown top-level fields are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, max_length=64)
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    store: bool | None = None
    stream: bool | None = None
    metadata: (
        Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None
    ) = None
    user: EndUser | None = None
    include: list[str] | None = None
    truncation: Literal["disabled"] | None = None
    reasoning: Reasoning | None = None
    # accepted and ignored: they change nothing for a model served here
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
