"""The one small provider interface every backend implements, and its capabilities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from offramp.errors import ProviderError
from offramp.types import (
    ChatRequest,
    CompletionRequest,
    CompletionResult,
    EmbedRequest,
    EmbedResult,
    StreamItem,
)


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; callers read this instead of catching NotImplementedError."""

    chat: bool = False
    completions: bool = False
    embeddings: bool = False
    grammar: bool = False  # enforces JSON schemas while decoding
    tools: bool = False
    logprobs: bool = False
    max_top_logprobs: int = 0
    context_length: int = 0
    embedding_dimensions: int = 0
    concurrency: int = 1  # requests served at once; more wait in the admission queue
    tokenizer: str = ""  # what counts this model's tokens, e.g. "gpt2 BPE, 49152 tokens"
    embedding_window: int = 0  # tokens an embedding model reads at once (longer inputs pool)
    passthrough: bool = False  # sends request fields it does not model (``extra``) upstream


class Provider:
    """A backend that serves one model; subclasses override what their Capabilities claim.

    Every method raises only offramp errors: ``ClientError`` subclasses for requests the
    model cannot take (e.g. ContextLengthExceeded), ``ProviderError`` when the backend
    fails. Streams end with exactly one ``StreamEnd`` carrying the real usage; closing a
    stream early (``aclose`` on the iterator) stops its generation. Callers check
    ``capabilities`` first; the defaults below only guard against a caller that did not.
    """

    capabilities: Capabilities = Capabilities()

    async def chat(self, request: ChatRequest) -> CompletionResult:
        """Generate every choice of ``request`` and return them whole."""
        raise self._unsupported("chat")

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Yield deltas as tokens are generated, then one StreamEnd."""
        raise self._unsupported("chat")

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Continue a raw text prompt."""
        raise self._unsupported("completions")

    def stream_complete(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """Stream a raw text continuation, then one StreamEnd."""
        raise self._unsupported("completions")

    async def count_chat_tokens(self, request: ChatRequest) -> int | None:
        """The prompt tokens ``request`` would take on this model, tools and all; None
        when the backend cannot count them without generating."""
        return None

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embed every text of ``request``; vectors are L2-normalised."""
        raise self._unsupported("embeddings")

    async def aclose(self) -> None:
        """Release the model and any threads; idempotent."""

    def _unsupported(self, what: str) -> ProviderError:
        return ProviderError(f"{type(self).__name__} does not serve {what}")
