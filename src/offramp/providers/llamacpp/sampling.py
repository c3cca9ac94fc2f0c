"""Native sampling for the engine: one llama.cpp sampler chain per job, and logprobs read
from the one logits row a step produced for that job (never a Python copy of all rows)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from offramp.errors import InvalidRequest, ProviderError
from offramp.types import Sampling, TokenLogprob, TopLogprob

_PENALTY_LAST_N = 64

LogprobRow = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar; with ``trigger`` it applies only from the first match of that regex."""

    gbnf: str
    trigger: str | None = None


class Samplers:
    """Builds sampler chains and logprobs for one loaded model."""

    def __init__(self, lib: Any, internals: Any, vocab: Any, pieces: list[bytes]):
        self._lib = lib
        self._internals = internals
        self._vocab = vocab
        self._pieces = pieces
        self._n_vocab = len(pieces)

    def chain(self, sampling: Sampling, grammar: Grammar | None) -> Any:
        """A sampler chain: logit bias, penalties, grammar, then greedy or seeded dist.

        Raises InvalidRequest for a logit_bias token outside the vocabulary and
        ProviderError when llama.cpp rejects the grammar.
        """
        s = sampling
        sampler = self._internals.LlamaSampler()
        if s.logit_bias:
            bad = [t for t in s.logit_bias if not 0 <= t < self._n_vocab]
            if bad:
                sampler.close()
                raise InvalidRequest(
                    f"logit_bias token {bad[0]} is outside the vocabulary (0..{self._n_vocab - 1})",
                    param="logit_bias",
                )
            sampler.add_logit_bias(self._n_vocab, dict(s.logit_bias))
        if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
            sampler.add_penalties(
                self._n_vocab,
                _PENALTY_LAST_N,
                s.repeat_penalty,
                s.frequency_penalty,
                s.presence_penalty,
            )
        if grammar is not None:
            native = self._grammar(grammar)
            if native is None:
                sampler.close()
                raise ProviderError("llama.cpp rejected the generated grammar")
            self._lib.llama_sampler_chain_add(sampler.sampler, native)
        if s.temperature == 0.0:
            sampler.add_greedy()
        else:
            if s.top_k > 0:
                sampler.add_top_k(s.top_k)
            if s.top_p < 1.0:
                sampler.add_top_p(s.top_p, 1)
            if s.min_p > 0.0:
                sampler.add_min_p(s.min_p, 1)
            sampler.add_temp(s.temperature)
            seed = s.seed if s.seed is not None else self._lib.LLAMA_DEFAULT_SEED
            sampler.add_dist(seed & 0xFFFFFFFF)
        return sampler

    def _grammar(self, grammar: Grammar) -> Any:
        lib = self._lib
        gbnf = grammar.gbnf.encode("utf-8")
        if grammar.trigger is None:
            return lib.llama_sampler_init_grammar(self._vocab, gbnf, b"root")
        patterns = (ctypes.c_char_p * 1)(grammar.trigger.encode("utf-8"))
        no_tokens = (lib.llama_token * 0)()
        return lib.llama_sampler_init_grammar_lazy_patterns(
            self._vocab, gbnf, b"root", patterns, 1, no_tokens, 0
        )

    def logprob_row(self, logits_ptr: Any) -> LogprobRow:
        """Log-softmax of one row of logits."""
        logits = np.ctypeslib.as_array(logits_ptr, shape=(self._n_vocab,)).astype(np.float32)
        peak = logits.max()
        return logits - (peak + np.log(np.exp(logits - peak).sum()))  # type: ignore[no-any-return]

    def token_logprob(self, token: int, row: LogprobRow, top_n: int) -> TokenLogprob:
        """The chosen token's logprob and the ``top_n`` most likely alternatives."""
        top: tuple[TopLogprob, ...] = ()
        if top_n > 0:
            idx = np.argpartition(-row, top_n)[:top_n]
            idx = idx[np.argsort(-row[idx])]
            top = tuple(self._top(int(i), float(row[i])) for i in idx)
        chosen = self._top(token, float(row[token]))
        return TokenLogprob(chosen.token, chosen.logprob, chosen.bytes, top)

    def _top(self, token: int, logprob: float) -> TopLogprob:
        raw = self._pieces[token]
        return TopLogprob(raw.decode("utf-8", errors="replace"), logprob, tuple(raw))
