"""Wire models of Anthropic's Messages API as it arrives (``POST /v1/messages`` and
``POST /v1/messages/count_tokens``).

Unknown fields nested in the request (a block, a tool) are refused here; unknown
top-level fields travel as the domain request's ``extra`` (a local model refuses them
with a 400 naming the field). ``cache_control`` is accepted wherever Anthropic takes it
and changes nothing (a local model reuses a shared prompt prefix by itself). Block and
tool types the translator cannot serve (images, documents, thinking, server tools) are
parsed loosely so that its 400 names the exact block.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from offramp.api.fields import EndUser, ModelName


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Loose(BaseModel):
    """A block or tool the translator refuses by its ``type``, naming where it is."""

    model_config = ConfigDict(extra="allow")
    type: str


class TextBlock(_Wire):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None


class ToolUseBlock(_Wire):
    """A call the model made earlier (in an assistant turn)."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None
    caller: dict[str, Any] | None = None  # echoed back from a response; changes nothing
    toolset_name: str | None = None


def _text_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "text" if kind == "text" else "other"


ResultContent = Annotated[
    Annotated[TextBlock, Tag("text")] | Annotated[_Loose, Tag("other")],
    Discriminator(_text_tag),
]


class ToolResultBlock(_Wire):
    """The application's result of a call (in a user turn)."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ResultContent] | None = None
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


def _block_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("text", "tool_use", "tool_result") else "other"


Block = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[_Loose, Tag("other")],
    Discriminator(_block_tag),
]


class MessageParam(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolParam(_Wire):
    """A client tool: its name, description and the JSON schema of its input."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: dict[str, Any] | None = None


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "custom" if kind in (None, "custom") else "other"


Tool = Annotated[
    Annotated[ToolParam, Tag("custom")] | Annotated[_Loose, Tag("other")],
    Discriminator(_tool_tag),
]


class ToolChoiceParam(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Wire):
    user_id: EndUser | None = None


class JsonOutputFormat(_Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Wire):
    """Structured output (``format``); ``effort`` is accepted and changes nothing here."""

    format: JsonOutputFormat | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None


class CountTokensRequest(BaseModel):
    """``POST /v1/messages/count_tokens``: the conversation and tools, no sampling."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    messages: Annotated[list[MessageParam], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoiceParam | None = None
    output_config: OutputConfig | None = None
    cache_control: dict[str, Any] | None = None  # accepted, changes nothing


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages``; ``max_tokens`` is required, as Anthropic requires it."""

    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stream: bool | None = None
    metadata: Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None  # accepted, changes nothing
