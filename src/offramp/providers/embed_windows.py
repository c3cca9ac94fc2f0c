"""Long embedding inputs: overlapping windows of the model's sequence limit, pooled back
into one vector per input.

An encoder such as all-MiniLM-L6-v2 reads at most 256 tokens, while OpenAI's embedding
models take 8,191 per input and applications chunk their documents at 500-1,000 tokens.
With ``long_inputs: pool`` (the default) an input longer than one window is cut into
windows of the model's limit that overlap by ``window_overlap`` tokens, each window is
encoded like any short input, and the input's vector is the mean of its windows' vectors
weighted by their token counts, L2-normalised again. Windows start and end on word
boundaries and are slices of the original text, so each window reads as the model would
read that passage on its own. An input of up to one window is encoded exactly as before.

With ``long_inputs: error`` an input over one window is refused (400
``context_length_exceeded`` naming the input), as is, in either mode, an input over
``max_input_tokens`` (8,191 unless configured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from offramp.errors import ContextLengthExceeded, InvalidRequest

Vectors = npt.NDArray[np.float32]
LongInputs = Literal["pool", "error"]

OPENAI_MAX_INPUT_TOKENS = 8191  # what OpenAI's embedding models take per input
DEFAULT_OVERLAP = 32
_WORD_SLACK = 16  # tokens a window may move to start on a word boundary


@dataclass(frozen=True)
class WindowOptions:
    """A model's long-input options (the ``options`` of its registry entry)."""

    long_inputs: LongInputs = "pool"
    max_input_tokens: int = OPENAI_MAX_INPUT_TOKENS
    window_overlap: int = DEFAULT_OVERLAP

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WindowOptions:
        """Read and check the options; InvalidRequest (param ``config``) names a bad one."""
        mode = options.get("long_inputs", "pool")
        if mode not in ("pool", "error"):
            raise InvalidRequest(f"long_inputs must be pool or error, got {mode!r}", param="config")
        limit = options.get("max_input_tokens", OPENAI_MAX_INPUT_TOKENS)
        overlap = options.get("window_overlap", DEFAULT_OVERLAP)
        for name, value in (("max_input_tokens", limit), ("window_overlap", overlap)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidRequest(
                    f"{name} must be a non-negative integer, got {value!r}", param="config"
                )
        return cls(mode, limit, overlap)


@dataclass(frozen=True)
class WindowPlan:
    """What to encode for one request's inputs and how the rows fold back into vectors."""

    pieces: tuple[str, ...]  # the texts to encode: every input's windows, inputs in order
    counts: tuple[int, ...]  # windows per input
    weights: tuple[int, ...]  # tokens in each piece
    tokens: int  # the inputs' tokens, as the usage reports them

    def pool(self, rows: Vectors) -> Vectors:
        """One L2-normalised vector per input from the pieces' (normalised) rows."""
        if all(c == 1 for c in self.counts):
            return rows
        out = np.empty((len(self.counts), rows.shape[1]), dtype=np.float32)
        start = 0
        for i, count in enumerate(self.counts):
            part = rows[start : start + count]
            weights = np.asarray(self.weights[start : start + count], dtype=np.float32)
            start += count
            mean = weights @ part / max(float(weights.sum()), 1.0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out


class Windower:
    """Splits inputs into the windows one model reads (a Hugging Face fast tokenizer)."""

    def __init__(self, tokenizer: Any, window: int, options: WindowOptions):
        self._tokenizer = tokenizer
        self._special = int(tokenizer.num_special_tokens_to_add(pair=False))
        self.window = window  # tokens the model reads at once, special tokens included
        self.options = options
        self._span = window - self._special
        if options.long_inputs == "pool" and not 0 <= options.window_overlap < self._span // 2:
            raise InvalidRequest(
                f"window_overlap must be below half the model's window ({self._span // 2})",
                param="config",
            )

    @property
    def max_input_tokens(self) -> int:
        """The most tokens one input may hold."""
        if self.options.long_inputs == "error":
            return self.window
        return max(self.options.max_input_tokens, self.window)

    def plan(self, texts: tuple[str, ...]) -> WindowPlan:
        """The windows of ``texts``; ContextLengthExceeded names the first input too long."""
        encoded = self._tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True
        )
        pieces: list[str] = []
        counts: list[int] = []
        weights: list[int] = []
        tokens = 0
        for i, text in enumerate(texts):
            n = len(encoded["input_ids"][i])
            self._check(i, n + self._special)
            tokens += n + self._special
            if n <= self._span:
                spans = [(text, n)]
            else:
                spans = self._split(text, encoded["offset_mapping"][i], encoded.word_ids(i))
            pieces += [s for s, _ in spans]
            weights += [w for _, w in spans]
            counts.append(len(spans))
        return WindowPlan(tuple(pieces), tuple(counts), tuple(weights), tokens)

    def _check(self, index: int, n: int) -> None:
        limit = self.max_input_tokens
        if n <= limit:
            return
        hint = (
            "Split the text."
            if self.options.long_inputs == "error"
            else "OpenAI's embedding models take at most 8191 as well; split the text."
        )
        raise ContextLengthExceeded(
            f"input[{index}] is {n} tokens long; this embedding model takes at most "
            f"{limit} tokens per input. {hint}",
            param="input",
        )

    def _split(
        self, text: str, offsets: list[tuple[int, int]], words: list[int | None]
    ) -> list[tuple[str, int]]:
        """Overlapping windows of at most ``_span`` tokens, cut between words."""
        n = len(offsets)
        stride = self._span - self.options.window_overlap
        out: list[tuple[str, int]] = []
        start = 0
        while True:
            end = min(start + self._span, n)
            while end < n and end - start > stride and _same_word(words, end):
                end -= 1  # never cut a word in two (a window may come out a little short)
            out.append((text[offsets[start][0] : offsets[end - 1][1]], end - start))
            if end >= n:
                return out
            nxt = max(end - self.options.window_overlap, start + 1)
            floor = max(start + 1, nxt - _WORD_SLACK)
            while nxt > floor and _same_word(words, nxt):
                nxt -= 1
            start = nxt


def _same_word(words: list[int | None], i: int) -> bool:
    """Whether token ``i`` continues the word of token ``i - 1``."""
    return words[i] is not None and words[i] == words[i - 1]
