"""The llama.cpp decode loop: one thread owns the context and serves every slot.

Requests become jobs in a FIFO queue. The engine thread admits them into free slots
(sequences of the shared KV cache, reusing the longest cached prompt prefix), decodes
every active slot in one batch per step, samples each slot with its own native sampler
chain (penalties, logit bias, grammar, top-k/top-p/min-p, temperature, seeded dist),
and hands text back through the job's sink. A cancelled job leaves its slot before the
next step. Nothing here touches asyncio: the sink decides how events cross threads.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from offramp.errors import InvalidRequest, OfframpError, ProviderError
from offramp.providers.llamacpp.stops import Piece, StopScanner
from offramp.types import Sampling, TokenLogprob, TopLogprob

log = logging.getLogger(__name__)

_PENALTY_LAST_N = 64
_KV_TYPES = {"f16": 1, "q8_0": 8}  # ggml type ids


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar; with ``trigger`` it applies only from the first match of that regex."""

    gbnf: str
    trigger: str | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of a job."""

    reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    """The job could not run; the error says why."""

    error: OfframpError


Event = Piece | Finished | Failed


@dataclass
class Job:
    """One generation: a tokenised prompt and how to sample from it."""

    prompt: list[int]
    sampling: Sampling
    max_tokens: int
    sink: Callable[[Event], None]
    grammar: Grammar | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Running:
    job: Job
    sampler: Any
    scanner: StopScanner
    decoder: codecs.IncrementalDecoder
    next_prompt: int
    generated: int = 0
    last_token: int = -1


@dataclass
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)
    running: _Running | None = None


class Engine:
    """Owns one llama.cpp model and context; thread-safe ``submit``."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_slots: int,
        n_threads: int,
        n_gpu_layers: int,
        n_batch: int = 512,
        n_ubatch: int = 512,
        kv_type: str = "f16",
        flash_attn: bool = False,
    ):
        import llama_cpp
        from llama_cpp import _internals as internals
        from llama_cpp import _logger

        _logger.set_verbose(False)

        self._lib = llama_cpp
        self._internals = internals
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        try:
            self._model = internals.LlamaModel(path_model=model_path, params=mparams, verbose=False)
        except ValueError as exc:
            raise ProviderError(f"cannot load {model_path}: {exc}") from exc
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx * n_slots
        cparams.n_batch = n_batch
        cparams.n_ubatch = min(n_ubatch, n_batch)
        cparams.type_k = cparams.type_v = _KV_TYPES[kv_type]
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn or kv_type != "f16"  # a quantised V cache needs flash attention
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        cparams.n_seq_max = n_slots
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        self._ctx = internals.LlamaContext(model=self._model, params=cparams, verbose=False)
        self._batch = internals.LlamaBatch(
            n_tokens=n_batch, embd=0, n_seq_max=n_slots, verbose=False
        )
        self.vocab = self._model.vocab
        self.n_vocab = self._model.n_vocab()
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.pieces = [self._piece(t) for t in range(self.n_vocab)]
        self._slots = [_Slot(seq_id=i) for i in range(n_slots)]
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="llama-engine", daemon=True)
        self._thread.start()

    # ----- public, any thread -------------------------------------------------------

    def metadata(self) -> dict[str, str]:
        """GGUF metadata (chat template, architecture, ...)."""
        return dict(self._model.metadata())

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        """Tokenise ``text``; ``parse_special`` turns control-token text into tokens."""
        return list(self._model.tokenize(text.encode("utf-8"), add_special, parse_special))

    @property
    def waiting(self) -> int:
        """Jobs queued behind the running ones."""
        return len(self._waiting)

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def busy_slots(self) -> int:
        return sum(1 for s in self._slots if s.running is not None)

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed or not self._thread.is_alive():
                raise ProviderError("the engine is shut down")
            self._waiting.append(job)
            self._cond.notify()

    def wake(self) -> None:
        """Make the loop look at cancellations now."""
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)
        for job in self._waiting:
            _emit(job, Failed(ProviderError("the server is shutting down")))
        self._waiting.clear()
        self._batch.close()
        self._ctx.close()
        self._model.close()

    # ----- engine thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._active():
                    self._cond.wait()
                if self._closed:
                    break
            try:
                with self._cond:
                    self._admit()
                if self._active():
                    self._step()
            except Exception as exc:  # nothing may kill the loop: every job would hang
                log.exception("decode step failed")
                self._fail_all(ProviderError(f"generation failed: {exc}"))
        for slot in self._slots:
            if slot.running is not None:
                _emit(slot.running.job, Failed(ProviderError("the server is shutting down")))
                slot.running = None

    def _active(self) -> list[_Slot]:
        return [s for s in self._slots if s.running is not None]

    def _admit(self) -> None:
        free = [s for s in self._slots if s.running is None]
        while free and self._waiting:
            job = self._waiting.popleft()
            if job.cancelled.is_set():
                continue
            slot = max(free, key=lambda s: _common_prefix(s.cached, job.prompt))
            free.remove(slot)
            try:
                sampler = self._make_sampler(job)
            except OfframpError as exc:
                _emit(job, Failed(exc))
                continue
            # Reuse only whole n_batch-aligned chunks: a prompt is always decoded in the
            # same chunks, so its logits (and a seeded sample) do not depend on what the
            # slot held before.
            common = min(_common_prefix(slot.cached, job.prompt), len(job.prompt) - 1)
            reuse = common - common % self.n_batch
            self._ctx.kv_cache_seq_rm(slot.seq_id, reuse, -1)
            del slot.cached[reuse:]
            slot.running = _Running(
                job=job,
                sampler=sampler,
                scanner=StopScanner(job.sampling.stop),
                decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
                next_prompt=reuse,
            )

    def _step(self) -> None:
        batch = self._batch.batch
        batch.n_tokens = 0
        targets: list[tuple[_Slot, int]] = []
        budget = self.n_batch
        for slot in self._active():
            run = slot.running
            assert run is not None
            if run.job.cancelled.is_set():
                self._release(slot)
            elif run.next_prompt >= len(run.job.prompt):
                targets.append((slot, self._add(slot, [run.last_token], logits_last=True)))
                budget -= 1
        for slot in self._active():
            run = slot.running
            assert run is not None
            remaining = len(run.job.prompt) - run.next_prompt
            if remaining <= 0 or budget <= 0:
                continue
            take = min(remaining, budget, self.n_batch - run.next_prompt % self.n_batch)
            chunk = run.job.prompt[run.next_prompt : run.next_prompt + take]
            done = take == remaining
            index = self._add(slot, chunk, logits_last=done)
            run.next_prompt += take
            budget -= take
            if done:
                targets.append((slot, index))
        if batch.n_tokens == 0:
            return
        self._ctx.decode(self._batch)
        for slot, index in targets:
            self._sample(slot, index)

    def _add(self, slot: _Slot, tokens: list[int], *, logits_last: bool) -> int:
        batch = self._batch.batch
        start = int(batch.n_tokens)
        pos = len(slot.cached)
        for i, token in enumerate(tokens):
            j = start + i
            batch.token[j] = token
            batch.pos[j] = pos + i
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = slot.seq_id
            batch.logits[j] = False
        last = start + len(tokens) - 1
        batch.logits[last] = logits_last
        batch.n_tokens = start + len(tokens)
        slot.cached.extend(tokens)
        return last

    def _sample(self, slot: _Slot, index: int) -> None:
        run = slot.running
        assert run is not None
        job = run.job
        if job.cancelled.is_set():
            self._release(slot)
            return
        lp = self._logprob(index, job.sampling) if job.sampling.logprobs else None
        token = int(self._lib.llama_sampler_sample(run.sampler.sampler, self._ctx.ctx, index))
        run.generated += 1
        run.last_token = token
        if self._lib.llama_vocab_is_eog(self.vocab, token):
            run.generated -= 1  # the end-of-turn token is not part of the completion
            self._finish(slot, "stop", flush=True)
            return
        raw = self.pieces[token]
        text = run.decoder.decode(raw)
        token_lp = None
        if lp is not None:
            token_lp = self._token_logprob(token, lp, job.sampling.top_logprobs)
        pieces, stopped = run.scanner.feed(Piece(text, token_lp))
        for piece in pieces:
            _emit(job, piece)
        if stopped:
            self._finish(slot, "stop", flush=False)
        elif run.generated >= job.max_tokens:
            self._finish(slot, "length", flush=True)

    def _finish(self, slot: _Slot, reason: Literal["stop", "length"], *, flush: bool) -> None:
        """End the slot's job; ``flush`` emits text held back for a possible stop string."""
        run = slot.running
        assert run is not None
        if flush:
            for piece in run.scanner.flush():
                _emit(run.job, piece)
            tail = run.decoder.decode(b"", final=True)
            if tail:
                _emit(run.job, Piece(tail))
        _emit(run.job, Finished(reason, len(run.job.prompt), run.generated))
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        if slot.running is not None:
            slot.running.sampler.close()
        slot.running = None

    def _fail_all(self, error: OfframpError) -> None:
        for slot in self._active():
            assert slot.running is not None
            _emit(slot.running.job, Failed(error))
            self._release(slot)
            self._ctx.kv_cache_seq_rm(slot.seq_id, 0, -1)
            slot.cached.clear()

    # ----- sampling ---------------------------------------------------------------------

    def _make_sampler(self, job: Job) -> Any:
        lib = self._lib
        s = job.sampling
        sampler = self._internals.LlamaSampler()
        if s.logit_bias:
            bad = [t for t in s.logit_bias if not 0 <= t < self.n_vocab]
            if bad:
                sampler.close()
                raise InvalidRequest(
                    f"logit_bias token {bad[0]} is outside the vocabulary (0..{self.n_vocab - 1})",
                    param="logit_bias",
                )
            sampler.add_logit_bias(self.n_vocab, dict(s.logit_bias))
        if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
            sampler.add_penalties(
                self.n_vocab,
                _PENALTY_LAST_N,
                s.repeat_penalty,
                s.frequency_penalty,
                s.presence_penalty,
            )
        if job.grammar is not None:
            grammar = self._grammar_sampler(job.grammar)
            if grammar is None:
                sampler.close()
                raise ProviderError("llama.cpp rejected the generated grammar")
            lib.llama_sampler_chain_add(sampler.sampler, grammar)
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
            seed = s.seed if s.seed is not None else lib.LLAMA_DEFAULT_SEED
            sampler.add_dist(seed & 0xFFFFFFFF)
        return sampler

    def _grammar_sampler(self, grammar: Grammar) -> Any:
        lib = self._lib
        gbnf = grammar.gbnf.encode("utf-8")
        if grammar.trigger is None:
            return lib.llama_sampler_init_grammar(self.vocab, gbnf, b"root")
        patterns = (ctypes.c_char_p * 1)(grammar.trigger.encode("utf-8"))
        no_tokens = (lib.llama_token * 0)()
        return lib.llama_sampler_init_grammar_lazy_patterns(
            self.vocab, gbnf, b"root", patterns, 1, no_tokens, 0
        )

    def _logprob(self, index: int, sampling: Sampling) -> np.ndarray[Any, np.dtype[np.float32]]:
        ptr = self._ctx.get_logits_ith(index)
        logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float32)
        peak = logits.max()
        return logits - (peak + np.log(np.exp(logits - peak).sum()))  # type: ignore[no-any-return]

    def _token_logprob(
        self, token: int, lp: np.ndarray[Any, np.dtype[np.float32]], top_n: int
    ) -> TokenLogprob:
        top: tuple[TopLogprob, ...] = ()
        if top_n > 0:
            idx = np.argpartition(-lp, top_n)[:top_n]
            idx = idx[np.argsort(-lp[idx])]
            top = tuple(self._top(int(i), float(lp[i])) for i in idx)
        chosen = self._top(token, float(lp[token]))
        return TokenLogprob(chosen.token, chosen.logprob, chosen.bytes, top)

    def _top(self, token: int, logprob: float) -> TopLogprob:
        raw = self.pieces[token]
        return TopLogprob(raw.decode("utf-8", errors="replace"), logprob, tuple(raw))

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _emit(job: Job, event: Event) -> None:
    """Hand an event to a job's sink; a sink that fails marks its job cancelled."""
    try:
        job.sink(event)
    except Exception:
        log.exception("a job's sink failed; cancelling the job")
        job.cancelled.set()
