"""Domain types shared by the API, services and providers (no wire or HTTP concerns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
Role = Literal["system", "user", "assistant", "tool"]
Kind = Literal["chat", "embedding"]  # what a model or route serves


@dataclass(frozen=True)
class ToolCall:
    """A function call the model made; ``arguments`` is a JSON text, as in OpenAI's API."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    """One chat message, normalised: content parts are already joined into text."""

    role: Role
    content: str | None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is its JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolChoice:
    """``mode`` none/auto/required, or ``named`` with the function to call."""

    mode: Literal["none", "auto", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class OutputFormat:
    """What shape the output must have: free text, any JSON object, or a JSON schema."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters for one generation."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    logprobs: bool = False
    top_logprobs: int = 0
    repetition_guard: bool = True  # local models end an answer that loops (see notices)


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request after validation; ``model`` is the public name asked for.

    ``extra`` holds the top-level request fields offramp does not model itself (in the
    order the client sent them). Deployments whose capabilities say ``passthrough``
    (upstream APIs) send them on verbatim; the router refuses a request with extras for
    every other deployment (400 ``unknown_parameter`` naming the first one), so nothing
    is ever silently dropped. The same holds for the other request types.

    ``hints`` holds known fields that change nothing for a local model (``metadata``,
    ``prompt_cache_key``, ``reasoning_effort``...): local models ignore them, upstream
    APIs of the same dialect get them verbatim.
    """

    model: str
    messages: tuple[Message, ...]
    sampling: Sampling = Sampling()
    n: int = 1
    output: OutputFormat = OutputFormat()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    user: str | None = None
    parallel_tool_calls: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    hints: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletionRequest:
    """A legacy text completion request for one prompt."""

    model: str
    prompt: str
    sampling: Sampling = Sampling()
    n: int = 1
    echo: bool = False
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopLogprob:
    """One alternative token at a position."""

    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True)
class TokenLogprob:
    """The chosen token at a position, its log-probability and the top alternatives."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TopLogprob, ...] = ()


@dataclass
class Usage:
    """Real token counts of one request.

    ``cached_tokens`` (read from an upstream's prompt cache) and ``cache_write_tokens``
    (written to it) are parts of ``prompt_tokens``, kept apart because they are priced apart.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Choice:
    """One finished choice of a chat or text completion."""

    index: int
    text: str | None
    finish_reason: FinishReason
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None


Notices = Mapping[str, str]
"""What a model did to fit or end a request, for the caller to see, by name: e.g.
``degenerate: stopped`` (an answer ended for repeating itself) or ``context-overflow``
(old turns dropped to fit the context). The API sends each as ``x-offramp-<name>``."""


@dataclass(frozen=True)
class CompletionResult:
    """The whole answer to a chat or text completion request."""

    model: str
    choices: tuple[Choice, ...]
    usage: Usage
    notices: Notices = field(default_factory=dict)


@dataclass(frozen=True)
class ChoiceDelta:
    """A piece of a streamed choice; the last piece of a choice carries ``finish_reason``.

    ``tokens`` counts the generated tokens the piece stands for, where the provider knows
    it (0: unknown, counted as one per piece of content), and ``prompt_tokens`` the
    request's prompt where known; both let a stream the client leaves be billed for what
    was generated before its final usage arrives."""

    index: int
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None
    finish_reason: FinishReason | None = None
    tokens: int = 0
    prompt_tokens: int = 0


@dataclass(frozen=True)
class StreamEnd:
    """Closes a stream, carrying the real usage of the whole request and its notices."""

    usage: Usage
    notices: Notices = field(default_factory=dict)


@dataclass(frozen=True)
class EmbedRequest:
    """Texts to embed; ``dimensions`` shortens (and renormalises) each vector."""

    model: str
    texts: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbedResult:
    """Vectors, one per input text, and the real token count. Local models L2-normalise
    them; an upstream's vectors are passed on as it sent them.

    ``windows`` says, per input, how many windows of the model's sequence limit were
    encoded and pooled into its vector (1 for an input that fits one window); empty when
    the provider does not say (an upstream API).
    """

    model: str
    vectors: npt.NDArray[np.float32]
    prompt_tokens: int
    windows: tuple[int, ...] = ()


StreamItem = ChoiceDelta | StreamEnd  # what a streamed answer is made of
