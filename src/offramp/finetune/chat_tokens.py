"""Chat examples as the token ids a model is trained on, tokenised exactly as offramp's
llama.cpp engine tokenises a chat request for the same GGUF.

The prompt is the example's conversation, translated as ``/v1/chat/completions``
translates it and rendered by the provider's own ``ChatFormatter`` with the model's chat
template (so a template's default system prompt, tool listings and JSON instructions are
all there), then tokenised by llama.cpp's tokenizer for that file (loaded vocabulary
only). The target is the answer's text followed by the model's end-of-turn token: what
the engine generates, and where it stops. Only the target is trained on (the prompt's
labels are masked).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from offramp.api.openai.protocol import ChatCompletionRequest
from offramp.api.openai.translate import chat_request
from offramp.errors import InvalidRequest, ModelSourceError, OfframpError
from offramp.finetune.dataset import ChatExample
from offramp.providers.llamacpp import tools as tool_prompt
from offramp.providers.llamacpp.chat_format import ChatFormatter
from offramp.types import ChatRequest, Message

IGNORE = -100  # the label of a token that is not trained on (torch's cross-entropy default)


@dataclass(frozen=True)
class Encoded:
    """One example's tokens: ``labels`` is ``IGNORE`` over the prompt, the token ids over
    the answer and its end-of-turn."""

    input_ids: list[int]
    labels: list[int]

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


class ChatTokenizer:
    """Tokenises chat examples for one GGUF model, as the engine would."""

    def __init__(self, gguf_path: Path):
        import llama_cpp
        from llama_cpp import _internals as internals
        from llama_cpp import _logger

        _logger.set_verbose(False)
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        try:
            self._model = internals.LlamaModel(
                path_model=str(gguf_path), params=params, verbose=False
            )
        except ValueError as exc:
            raise ModelSourceError(f"cannot read the tokenizer of {gguf_path}: {exc}") from exc
        meta = dict(self._model.metadata())
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        arch = meta.get("general.architecture", "")
        self.context_length = int(meta.get(f"{arch}.context_length", "2048"))
        self.end_of_turn = int(
            meta.get("tokenizer.ggml.eot_token_id", meta.get("tokenizer.ggml.eos_token_id", -1))
        )
        if self.end_of_turn < 0:
            raise ModelSourceError(f"{gguf_path.name} names no end-of-turn or end token")
        self._formatter = ChatFormatter(
            meta.get("tokenizer.chat_template"),
            bos_token=self._token_text(meta, "bos"),
            eos_token=self._token_text(meta, "eos"),
        )

    def _token_text(self, meta: dict[str, str], which: str) -> str:
        token_id = meta.get(f"tokenizer.ggml.{which}_token_id")
        if token_id is None:
            return ""
        return self._model.detokenize([int(token_id)], special=True).decode(
            "utf-8", errors="replace"
        )

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        return list(self._model.tokenize(text.encode("utf-8"), add_special, parse_special))

    def encode(self, example: ChatExample, where: str = "example") -> Encoded:
        """The example's prompt and answer tokens; InvalidRequest naming ``where`` when
        the conversation is one ``/v1/chat/completions`` would refuse."""
        request, answer_text = _request(example, where)
        prompt: list[int] = []
        for segment in self._formatter.render(request):
            prompt += self.tokenize(
                segment.text,
                add_special=self._add_bos and not prompt,
                parse_special=segment.control,
            )
        answer = self.tokenize(answer_text, add_special=False, parse_special=False)
        answer.append(self.end_of_turn)
        return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)

    def decode(self, tokens: list[int]) -> str:
        """The text of ``tokens``, control tokens included (for reading, not for prompts)."""
        return self._model.detokenize(tokens, special=True).decode("utf-8", errors="replace")


def _request(example: ChatExample, where: str) -> tuple[ChatRequest, str]:
    """The prompt as a domain ChatRequest, and the answer as the text the model writes."""
    body: dict[str, Any] = {"model": "tune", "messages": list(example.messages)}
    if example.tools:
        body["tools"] = list(example.tools)
    try:
        whole = chat_request(ChatCompletionRequest.model_validate(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {field}: {first['msg']}", param=field) from exc
    except OfframpError as exc:
        raise InvalidRequest(f"{where}: {exc.message}", param=exc.param) from exc
    prompt = whole.messages[:-1]
    if not prompt:
        raise InvalidRequest(f"{where}: an example needs a prompt before its answer")
    return replace(whole, messages=prompt), _answer_text(whole.messages[-1])


def _answer_text(message: Message) -> str:
    """The answer as the model writes it: its text, then any tool calls as the engine's
    tool prompt renders them."""
    calls = "\n".join(tool_prompt.render_call(c) for c in message.tool_calls)
    return f"{message.content or ''}\n{calls}".strip() if calls else message.content or ""
