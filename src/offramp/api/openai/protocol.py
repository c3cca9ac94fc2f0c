"""OpenAI wire models for requests. Unknown fields are refused, never ignored.

Unknown fields nested inside a request (a message, a tool) are refused here. Unknown
top-level fields are kept (``model_extra``) and travel as the domain request's ``extra``:
a route to an upstream API passes them on, a local model refuses them with a 400 naming
the field (see ``offramp.types.ChatRequest``).

Parameters of OpenAI's chat API that change nothing for a local model (``metadata``,
``prompt_cache_key``, ``prompt_cache_retention``, ``prompt_cache_options``,
``safety_identifier``, ``reasoning_effort``, ``verbosity``, ``prediction``,
``service_tier``, ``store: false``) are checked for shape and then travel as the domain request's ``hints``: an upstream
OpenAI-style API gets them, a local model ignores them. The legacy ``functions`` /
``function_call`` are accepted and become tools.

Extensions beyond OpenAI's API (llama.cpp-style sampling knobs) are accepted where an
application would pass them through the SDK's ``extra_body``: ``top_k``, ``min_p``,
``repeat_penalty``, and offramp's own options under ``offramp`` (``OfframpOptions``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from offramp.api.fields import EndUser, ModelName


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class OtherPart(BaseModel):
    """Any non-text content part; refused with a clear message by the translator."""

    model_config = ConfigDict(extra="allow")
    type: Literal["image_url", "input_audio", "file", "refusal"]


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCallWire(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart | OtherPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallWire] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    function_call: FunctionCall | None = None  # legacy form of one tool call


class JsonSchemaSpec(_Wire):
    name: str = Field(max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class FunctionSpec(_Wire):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpecWire(_Wire):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class Prediction(_Wire):
    """Predicted output: it only speeds up OpenAI's models; the answer is the same."""

    type: Literal["content"]
    content: str | list[TextPart]


class PromptCacheOptions(_Wire):
    mode: Literal["implicit", "explicit"] | None = None
    ttl: Literal["30m"] | None = None


# key <= 64 characters, value <= 512, at most 16 pairs (OpenAI's limits)
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=16),
]


class _Request(BaseModel):
    """A top-level request body: unknown fields are collected, not refused, here."""

    model_config = ConfigDict(extra="allow")


class StreamOptions(_Wire):
    include_usage: bool | None = None


class OfframpOptions(_Wire):
    """``"offramp": {...}``: offramp's own per-request options (unknown keys refused)."""

    repetition_guard: bool | None = None  # false: never end an answer for repeating itself


Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
Stop = str | Annotated[list[str], Field(max_length=4)] | None


class SamplingFields(_Request):
    model: ModelName
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: Stop = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    seed: int | None = None
    user: EndUser | None = None
    # extensions
    top_k: Annotated[int, Field(ge=0)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    repeat_penalty: Annotated[float, Field(gt=0.0)] | None = None
    offramp: OfframpOptions | None = None


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ToolSpecWire] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[FunctionSpec], Field(min_length=1, max_length=128)] | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    store: bool | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    modalities: list[Literal["text"]] | None = None
    # accepted, change nothing for a local model (see the module docstring)
    metadata: Metadata | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )
    verbosity: Literal["low", "medium", "high"] | None = None
    prediction: Prediction | None = None

    HINTS: ClassVar[tuple[str, ...]] = (
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "safety_identifier",
        "reasoning_effort",
        "verbosity",
        "prediction",
        "service_tier",
    )


class CompletionRequestWire(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: Annotated[int, Field(ge=1)] | None = 16
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool | None = None
    best_of: Annotated[int, Field(ge=1, le=16)] | None = None
    suffix: str | None = None


class EmbeddingRequestWire(_Request):
    model: ModelName
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: EndUser | None = None
