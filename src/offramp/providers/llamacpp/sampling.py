"""Native sampling for the engine: one llama.cpp sampler chain per job, and logprobs read
from the one logits row a step produced for that job (never a Python copy of all rows).

A grammar is checked against the one token the chain picks, not applied to the whole
vocabulary at every step (as llama.cpp's own common sampler does by default): the chain
samples freely, the grammar is asked about that single candidate, and only when it
rejects it is the row sampled again with the grammar applied first. Checking a single
token costs microseconds; applying a grammar to a 49k-token vocabulary costs
milliseconds, as much as decoding the token. Greedy decoding picks exactly the token it
would with the grammar applied first (the highest-logit allowed token): after a
rejection it checks the next-best tokens one by one, and only if none of the first
``_GREEDY_TRIES`` fits does the grammar go over the whole row.

Parsed grammars are kept per grammar text (``GrammarCache``): a repeated schema clones
the parsed grammar instead of parsing its GBNF again.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from offramp.errors import InvalidRequest, ProviderError
from offramp.types import Sampling, TokenLogprob, TopLogprob

_PENALTY_LAST_N = 64
_GRAMMARS_KEPT = 64
_GREEDY_TRIES = 32  # a greedy job's next-best tokens checked one by one after a rejection

LogprobRow = np.ndarray[Any, np.dtype[np.float32]]

# llama_token_data: {llama_token id; float logit; float p;}
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar; with ``trigger`` it applies only from the first match of that regex."""

    gbnf: str
    trigger: str | None = None


class GrammarCache:
    """Parsed native grammars by text, least recently used dropped beyond ``size``.

    ``fresh`` hands out a clone in the grammar's initial state, owned by the caller
    (free it with ``llama_sampler_free``); None when llama.cpp rejects the grammar.
    """

    def __init__(self, lib: Any, vocab: Any, size: int = _GRAMMARS_KEPT):
        self._lib = lib
        self._vocab = vocab
        self._size = size
        self._parsed: OrderedDict[Grammar, Any] = OrderedDict()
        self.parsed = 0  # grammars parsed from text (the rest were clones)

    def fresh(self, grammar: Grammar) -> Any:
        template = self._parsed.get(grammar)
        if template is None:
            template = self._parse(grammar)
            if template is None:
                return None
            self.parsed += 1
            self._parsed[grammar] = template
            while len(self._parsed) > self._size:
                self._lib.llama_sampler_free(self._parsed.popitem(last=False)[1])
        else:
            self._parsed.move_to_end(grammar)
        return self._lib.llama_sampler_clone(template)

    def close(self) -> None:
        for template in self._parsed.values():
            self._lib.llama_sampler_free(template)
        self._parsed.clear()

    def _parse(self, grammar: Grammar) -> Any:
        lib = self._lib
        gbnf = grammar.gbnf.encode("utf-8")
        if grammar.trigger is None:
            return lib.llama_sampler_init_grammar(self._vocab, gbnf, b"root")
        patterns = (ctypes.c_char_p * 1)(grammar.trigger.encode("utf-8"))
        no_tokens = (lib.llama_token * 0)()
        return lib.llama_sampler_init_grammar_lazy_patterns(
            self._vocab, gbnf, b"root", patterns, 1, no_tokens, 0
        )


@dataclass
class GrammarStats:
    """Tokens sampled under a grammar (engine thread writes, anyone reads)."""

    checked: int = 0  # tokens picked freely, then checked against the grammar
    rejected: int = 0  # of those, refused by the grammar and sampled again under it
    whole_row: int = 0  # of those, sampled with the grammar applied to the whole row


class _Candidates:
    """One reusable llama_token_data_array over the whole vocabulary (engine thread only)."""

    def __init__(self, lib: Any, n_vocab: int):
        self._lib = lib
        self._n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self.array = lib.llama_token_data_array(
            data=self._data.ctypes.data_as(lib.llama_token_data_p),
            size=n_vocab,
            selected=-1,
            sorted=False,
        )
        self.pointer = ctypes.pointer(self.array)
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self._one_array = lib.llama_token_data_array(
            data=self._one.ctypes.data_as(lib.llama_token_data_p),
            size=1,
            selected=-1,
            sorted=False,
        )
        self._one_pointer = ctypes.pointer(self._one_array)

    def fill(self, logits_ptr: Any) -> Any:
        """The whole row as candidates; returns the array's pointer."""
        logits = np.ctypeslib.as_array(logits_ptr, shape=(self._n_vocab,))
        self._data["id"] = self._ids
        self._data["logit"] = logits
        self._data["p"] = 0.0
        self.array.size = self._n_vocab
        self.array.selected = -1
        self.array.sorted = False
        return self.pointer

    def selected(self) -> int:
        """The token the last sampler applied picked (samplers may reorder the array)."""
        return int(self.array.data[self.array.selected].id)

    def best_allowed(self, grammar: Any, tries: int) -> int | None:
        """After a greedy chain ran: the highest-logit token ``grammar`` accepts among the
        ``tries`` highest (ties to the lower id, as greedy picks), else None."""
        logits = self._data["logit"]
        top = np.argpartition(-logits, tries)[:tries]
        for token in top[np.lexsort((top, -logits[top]))]:
            if self.allows(grammar, int(token)):
                return int(token)
        return None

    def allows(self, grammar: Any, token: int) -> bool:
        """Whether ``grammar`` accepts ``token`` next (applied to it alone)."""
        self._one[0] = (token, 1.0, 0.0)
        self._one_array.size = 1
        self._one_array.selected = -1
        self._one_array.sorted = False
        self._lib.llama_sampler_apply(grammar, self._one_pointer)
        return bool(np.isfinite(self._one["logit"][0]))


class JobSampler:
    """One job's sampling: its native chain, and its grammar if it has one.

    ``sample`` picks the next token from one row of logits and advances both; ``close``
    frees the native state.
    """

    def __init__(
        self,
        lib: Any,
        chain: Any,
        grammar: Any,
        candidates: _Candidates,
        stats: GrammarStats,
        *,
        greedy: bool,
    ):
        self._lib = lib
        self._chain = chain
        self._grammar = grammar
        self._candidates = candidates
        self._stats = stats
        self._greedy = greedy

    def sample(self, ctx: Any, index: int) -> int:
        lib = self._lib
        if self._grammar is None:
            return int(lib.llama_sampler_sample(self._chain.sampler, ctx, index))
        cands = self._candidates
        logits = lib.llama_get_logits_ith(ctx, index)
        lib.llama_sampler_apply(self._chain.sampler, cands.fill(logits))
        token = cands.selected()
        self._stats.checked += 1
        if not cands.allows(self._grammar, token):
            self._stats.rejected += 1
            # greedy: the best allowed token is usually among the next few, checked one
            # by one; otherwise (or when sampling) the grammar goes over the whole row
            found = cands.best_allowed(self._grammar, _GREEDY_TRIES) if self._greedy else None
            if found is not None:
                token = found
            else:
                self._stats.whole_row += 1
                pointer = cands.fill(logits)
                lib.llama_sampler_apply(self._grammar, pointer)
                lib.llama_sampler_apply(self._chain.sampler, pointer)
                token = cands.selected()
        lib.llama_sampler_accept(self._grammar, token)
        lib.llama_sampler_accept(self._chain.sampler, token)
        return token

    def close(self) -> None:
        if self._grammar is not None:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None
        self._chain.close()


class Samplers:
    """Builds sampler chains and logprobs for one loaded model (engine thread only)."""

    def __init__(self, lib: Any, internals: Any, vocab: Any, pieces: list[bytes]):
        self._lib = lib
        self._internals = internals
        self._pieces = pieces
        self._n_vocab = len(pieces)
        self.grammars = GrammarCache(lib, vocab)
        self.grammar_stats = GrammarStats()
        self._candidates = _Candidates(lib, self._n_vocab)

    def chain(self, sampling: Sampling, grammar: Grammar | None) -> JobSampler:
        """A job's sampler: logit bias, penalties, then greedy or seeded dist; a grammar
        checked against each token picked (see the module docstring).

        Raises InvalidRequest for a logit_bias token outside the vocabulary and
        ProviderError when llama.cpp rejects the grammar.
        """
        s = sampling
        if s.logit_bias:
            bad = [t for t in s.logit_bias if not 0 <= t < self._n_vocab]
            if bad:
                raise InvalidRequest(
                    f"logit_bias token {bad[0]} is outside the vocabulary (0..{self._n_vocab - 1})",
                    param="logit_bias",
                )
        native = None
        if grammar is not None:
            native = self.grammars.fresh(grammar)
            if native is None:
                raise ProviderError("llama.cpp rejected the generated grammar")
        sampler = self._internals.LlamaSampler()
        if s.logit_bias:
            sampler.add_logit_bias(self._n_vocab, dict(s.logit_bias))
        if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
            sampler.add_penalties(
                self._n_vocab,
                _PENALTY_LAST_N,
                s.repeat_penalty,
                s.frequency_penalty,
                s.presence_penalty,
            )
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
        return JobSampler(
            self._lib,
            sampler,
            native,
            self._candidates,
            self.grammar_stats,
            greedy=s.temperature == 0.0,
        )

    def close(self) -> None:
        self.grammars.close()

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
