"""The llama.cpp decode loop: one thread owns the context and serves every slot.

Requests become jobs in a FIFO queue. Between steps the engine admits waiting jobs into
free slots, and every step decodes all active slots together in one batch (new prompts
in n_batch-aligned chunks beside the running sequences' next tokens), then samples each
slot with its own native sampler chain (see ``sampling``) and hands text back through
the job's sink. Nothing here touches asyncio: the sink decides how events cross threads.

By default (``kv_unified``) the slots share one pool of KV cells, sized by
``default_kv_size``: one sequence may fill its whole ``n_ctx`` while every other slot
has room for ``SLOT_CELLS`` tokens, so memory grows by ``SLOT_CELLS`` cells per added
slot rather than by a full context. A new job starts from the longest prefix of its
prompt already computed in *any* slot (the cells are shared, not copied), so a common
system prompt is computed once. When the pool is full, idle slots' cached prefixes are
dropped first; if that is not enough the most recently admitted job is preempted: its
cells are freed and it waits, sampler state intact, to be recomputed once another job
finishes. Attention skips other sequences' cells exactly, so a sequence's tokens do not
depend on what runs beside it, except in the last bits when its cells end up out of
position order in the pool (a freed cell reused for a later token).

Without ``kv_unified`` every slot has its own buffer of ``n_ctx`` cells (a prefix is
copied between buffers): a sequence's cells always sit in position order, at the cost
of a full context of memory per slot. A cancelled job leaves its slot before the next
step.

Slots share the engine's time fairly (see ``fairness``): a generating slot that has cost
more time than the others (a slow grammar) sits out steps until they catch up, and while
any slot is generating, a new prompt is computed in chunks that cost about one ordinary
step (at most ``prefill_chunk`` tokens), so a long prompt does not stall the others.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from offramp.errors import InvalidRequest, OfframpError, ProviderError
from offramp.providers.llamacpp.fairness import DEFAULT_SLACK_S, FairShare, PrefillPacer
from offramp.providers.llamacpp.jobs import EngineStats, Failed, Finished, Job, emit
from offramp.providers.llamacpp.repetition import RepetitionGuard
from offramp.providers.llamacpp.rope import RopeScaling
from offramp.providers.llamacpp.sampling import JobSampler, Samplers
from offramp.providers.llamacpp.stops import Piece, StopScanner

log = logging.getLogger(__name__)

_KV_TYPES = {"f16": 1, "q8_0": 8}  # ggml type ids
_MIN_SHARED_PREFIX = 32  # tokens worth waiting a step for, rather than computing twice
_NO_KV_SLOT = 1  # llama_decode's return code when the KV cache has no room for the batch
SLOT_CELLS = 1024  # KV cells the shared pool holds for each slot beyond the first


def default_kv_size(n_ctx: int, n_slots: int) -> int:
    """The shared pool's cells when none are configured: one full context, plus
    ``SLOT_CELLS`` (at most a full context) for each further slot."""
    return n_ctx + (n_slots - 1) * min(n_ctx, SLOT_CELLS)


@dataclass
class _Running:
    job: Job
    sampler: JobSampler
    scanner: StopScanner
    decoder: codecs.IncrementalDecoder
    context: list[int]  # the prompt: decoded in n_batch-aligned chunks
    next_prompt: int = 0  # how many of ``context`` the slot holds
    replay: list[int] = field(default_factory=list)  # completion to recompute after preemption
    generated: int = 0
    last_token: int = -1  # sampled, not yet decoded
    admitted: int = 0
    guard: RepetitionGuard | None = None  # ends an answer stuck repeating itself


@dataclass
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    running: _Running | None = None


@dataclass
class _Entry:
    """A slot's part of one batch."""

    slot: _Slot
    tokens: list[int]
    pos: int
    sample: bool  # sample from this entry's last row after the decode
    prompt: bool  # advances the slot's prompt rather than its generation


class Engine:
    """Owns one llama.cpp model and context; thread-safe ``submit``.

    ``n_ctx`` is the most one sequence may hold (prompt + completion); with
    ``kv_unified`` (the default) ``kv_size`` is the KV pool shared by all ``n_slots``
    sequences (at least ``n_ctx``; None: ``default_kv_size``).
    """

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_slots: int,
        n_threads: int,
        n_gpu_layers: int,
        kv_size: int | None = None,
        n_batch: int = 512,
        n_ubatch: int = 512,
        kv_type: str = "f16",
        kv_unified: bool = True,
        flash_attn: bool = False,
        prefill_chunk: int = 128,
        fair_slack_s: float = DEFAULT_SLACK_S,
        rope: RopeScaling | None = None,
    ):
        import llama_cpp
        from llama_cpp import _internals as internals
        from llama_cpp import _logger

        _logger.set_verbose(False)
        if not kv_unified:
            kv_size = n_ctx * n_slots
        elif kv_size is None:
            kv_size = default_kv_size(n_ctx, n_slots)
        if kv_size < n_ctx:
            raise InvalidRequest(
                f"kv_size ({kv_size}) must hold at least one full context ({n_ctx})",
                param="config",
            )
        if not 1 <= n_slots <= n_batch:
            raise InvalidRequest(
                f"parallel must be between 1 and n_batch ({n_batch})", param="config"
            )
        self._lib = llama_cpp
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        try:
            self._model = internals.LlamaModel(path_model=model_path, params=mparams, verbose=False)
        except ValueError as exc:
            raise ProviderError(f"cannot load {model_path}: {exc}") from exc
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = kv_size
        cparams.n_batch = n_batch
        cparams.n_ubatch = min(n_ubatch, n_batch)
        cparams.type_k = cparams.type_v = _KV_TYPES[kv_type]
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn or kv_type != "f16"  # a quantised V cache needs flash attention
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        cparams.n_seq_max = n_slots
        cparams.kv_unified = kv_unified
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        if rope is not None:
            rope.apply(cparams)
        self._ctx = internals.LlamaContext(model=self._model, params=cparams, verbose=False)
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = internals.LlamaBatch(
            n_tokens=n_batch, embd=0, n_seq_max=n_slots, verbose=False
        )
        self.vocab = self._model.vocab
        self.n_vocab = self._model.n_vocab()
        self.n_ctx = n_ctx
        self.kv_size = kv_size
        self.kv_unified = kv_unified
        self.n_batch = n_batch
        self.pieces = [self._piece(t) for t in range(self.n_vocab)]
        self._samplers = Samplers(llama_cpp, internals, self.vocab, self.pieces)
        self.stats = EngineStats()
        self._slots = [_Slot(seq_id=i) for i in range(n_slots)]
        self._waiting: deque[Job] = deque()
        self._preempted: deque[_Running] = deque()
        self._kv_full = False  # set by a preemption, cleared when a job leaves
        self._admissions = 0
        self._fair = FairShare(fair_slack_s)
        self._pacer = PrefillPacer(max(1, prefill_chunk))
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
        """Jobs queued behind the running ones (preempted ones included)."""
        return len(self._waiting) + len(self._preempted)

    @property
    def samplers(self) -> Samplers:
        """The model's sampler factory: its parsed-grammar cache and grammar counters."""
        return self._samplers

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def busy_slots(self) -> int:
        return sum(1 for s in self._slots if s.running is not None)

    def submit(self, *jobs: Job) -> None:
        """Queue ``jobs``; jobs submitted together are admitted in the same step, so one
        computes their common prompt prefix and the others share its cells."""
        with self._cond:
            if self._closed or not self._thread.is_alive():
                raise ProviderError("the engine is shut down")
            self._waiting.extend(jobs)
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
        gone = ProviderError("the server is shutting down")
        for job in self._waiting:
            emit(job, Failed(gone))
        for run in self._preempted:
            emit(run.job, Failed(gone))
            run.sampler.close()
        self._waiting.clear()
        self._preempted.clear()
        self._samplers.close()
        self._batch.close()
        self._ctx.close()
        self._model.close()

    # ----- engine thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._has_work():
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
                emit(slot.running.job, Failed(ProviderError("the server is shutting down")))
                self._release(slot)

    def _has_work(self) -> bool:
        return bool(self._active() or self._preempted or self._waiting)

    def _active(self) -> list[_Slot]:
        return [s for s in self._slots if s.running is not None]

    def _admit(self) -> None:
        free = [s for s in self._slots if s.running is None]
        if not self._active():
            self._kv_full = False  # nothing left to wait for
        deferred: list[Job] = []
        while free and not self._kv_full and (self._preempted or self._waiting):
            if not self._preempted and self._prefix_pending(self._waiting[0].prompt):
                deferred.append(self._waiting.popleft())
                continue
            run = self._next_run()
            if run is None:
                continue
            slot = max(free, key=lambda s: _common_prefix(s.cached, run.context))
            free.remove(slot)
            run.next_prompt = self._attach(slot, run.context)
            self._admissions += 1
            run.admitted = self._admissions
            slot.running = run
            self._fair.start(slot.seq_id)
        self._waiting.extendleft(reversed(deferred))

    def _prefix_pending(self, prompt: list[int]) -> bool:
        """Whether a running slot is computing a long prefix of ``prompt`` right now: the
        job then waits a step or two and shares those cells instead of computing them too."""
        ready = max(_common_prefix(s.cached, prompt) for s in self._slots)
        for slot in self._active():
            run = slot.running
            assert run is not None
            computing = run.next_prompt < len(run.context)
            if computing and _common_prefix(run.context, prompt) - ready >= _MIN_SHARED_PREFIX:
                return True
        return False

    def _next_run(self) -> _Running | None:
        """The next preempted job, else a new one with its sampler; None if it cannot run."""
        if self._preempted:
            run = self._preempted.popleft()
            if run.job.cancelled.is_set():
                run.sampler.close()
                return None
            return run
        job = self._waiting.popleft()
        if job.cancelled.is_set():
            return None
        try:
            sampler = self._samplers.chain(job.sampling, job.grammar)
        except OfframpError as exc:
            emit(job, Failed(exc))
            return None
        return _Running(
            job=job,
            sampler=sampler,
            scanner=StopScanner(job.sampling.stop),
            decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
            context=job.prompt,
            guard=RepetitionGuard() if job.sampling.repetition_guard else None,
        )

    def _attach(self, slot: _Slot, context: list[int]) -> int:
        """Give ``slot`` the longest computed prefix of ``context`` found in any slot;
        return its length (always leaving at least one token to decode for logits)."""
        limit = len(context) - 1
        own = min(_common_prefix(slot.cached, context), limit)
        source, best = slot, own
        for other in self._slots:
            if other is not slot:
                n = min(_common_prefix(other.cached, context), limit)
                if n > best:
                    source, best = other, n
        if source is slot:
            self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, own, -1)
            del slot.cached[own:]
        else:
            self._share(source, slot, best)
            slot.cached = context[:best]
            self.stats.prompt_tokens_shared += best
        self.stats.prompt_tokens += len(context)
        self.stats.prompt_tokens_reused += best
        return best

    def _share(self, source: _Slot, slot: _Slot, n: int) -> None:
        """Make ``slot`` hold ``source``'s first ``n`` cells."""
        lib, memory = self._lib, self._memory
        lib.llama_memory_seq_rm(memory, slot.seq_id, 0, -1)
        if self.kv_unified:  # the cells are shared, nothing is copied
            lib.llama_memory_seq_cp(memory, source.seq_id, slot.seq_id, 0, n)
        else:  # sequences live in separate buffers: copy the whole one, keep the prefix
            lib.llama_memory_seq_cp(memory, source.seq_id, slot.seq_id, -1, -1)
            lib.llama_memory_seq_rm(memory, slot.seq_id, n, -1)

    def _step(self) -> None:
        while True:
            entries = self._plan_batch()
            if not entries:
                return
            started = time.perf_counter()
            code = self._decode(entries)
            if code == 0:
                break
            if code != _NO_KV_SLOT:
                raise ProviderError(f"llama_decode returned {code}")
            self._make_room()
        self._charge_decode(entries, time.perf_counter() - started)
        self.stats.steps += 1
        for entry in entries:
            entry.slot.cached.extend(entry.tokens)
            run = entry.slot.running
            assert run is not None
            if entry.prompt:
                run.next_prompt += len(entry.tokens)
            elif not entry.sample:
                run.replay.pop(0)
        index = 0
        for entry in entries:
            index += len(entry.tokens)
            if entry.sample:
                started = time.thread_time()  # CPU time: a busy machine does not skew it
                self._sample(entry.slot, index - 1)
                self._fair.charge(entry.slot.seq_id, time.thread_time() - started)

    def _charge_decode(self, entries: list[_Entry], seconds: float) -> None:
        """Share a decode's time equally between the generating slots in it; prompts
        computed beside them are paced instead (see ``PrefillPacer``)."""
        generating = [e for e in entries if not e.prompt]
        prompt_tokens = sum(len(e.tokens) for e in entries if e.prompt)
        self._pacer.observe(seconds, prompt_tokens, len(generating))
        for entry in entries:
            if entry.prompt:
                self._fair.level(entry.slot.seq_id)
            else:
                self._fair.charge(entry.slot.seq_id, seconds / len(generating))

    def _plan_batch(self) -> list[_Entry]:
        """This step's work: one token per generating slot, then prompt chunks that fit."""
        entries: list[_Entry] = []
        for slot in self._active():
            run = slot.running
            assert run is not None
            if run.job.cancelled.is_set():
                self._release(slot)
            elif not self._fair.may_run(slot.seq_id):
                continue  # it has had more than its share of time: the others go first
            elif run.next_prompt >= len(run.context):
                # a preempted job recomputes its completion one token per step, exactly as
                # it first ran, so its results do not depend on having been preempted
                replaying = bool(run.replay)
                token = run.replay[0] if replaying else run.last_token
                entries.append(
                    _Entry(slot, [token], len(slot.cached), sample=not replaying, prompt=False)
                )
        budget = self.n_batch - len(entries)
        if entries:  # others are generating: their next tokens must not wait on a long prompt
            budget = min(budget, self._pacer.chunk())
        for slot in sorted(self._active(), key=lambda s: s.running.admitted if s.running else 0):
            run = slot.running
            assert run is not None
            remaining = len(run.context) - run.next_prompt
            if remaining <= 0 or budget <= 0 or not self._fair.may_run(slot.seq_id):
                continue
            take = min(remaining, budget, self.n_batch - run.next_prompt % self.n_batch)
            chunk = run.context[run.next_prompt : run.next_prompt + take]
            done = take == remaining
            # a resumed job already sampled its next token: it decodes that one next step
            sample = done and run.generated == 0
            entries.append(_Entry(slot, chunk, len(slot.cached), sample=sample, prompt=True))
            budget -= take
        return entries

    def _decode(self, entries: list[_Entry]) -> int:
        batch = self._batch.batch
        j = 0
        for entry in entries:
            for i, token in enumerate(entry.tokens):
                batch.token[j] = token
                batch.pos[j] = entry.pos + i
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = entry.slot.seq_id
                batch.logits[j] = entry.sample and i == len(entry.tokens) - 1
                j += 1
        batch.n_tokens = j
        return int(self._lib.llama_decode(self._ctx.ctx, batch))

    def _make_room(self) -> None:
        """The batch did not fit the KV pool: free idle prefixes, else preempt the newest job."""
        idle = [s for s in self._slots if s.running is None and s.cached]
        if idle:
            for slot in idle:
                self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, 0, -1)
                slot.cached.clear()
            return
        active = self._active()
        victim = max(active, key=lambda s: s.running.admitted if s.running else 0)
        run = victim.running
        assert run is not None
        if len(active) == 1:
            emit(run.job, Failed(ProviderError("the KV cache cannot hold this sequence")))
            self._release(victim)
            return
        if run.generated:
            run.replay = victim.cached[len(run.context) :] + run.replay
        run.next_prompt = 0
        victim.running = None
        self._fair.stop(victim.seq_id)
        self._lib.llama_memory_seq_rm(self._memory, victim.seq_id, 0, -1)
        victim.cached.clear()
        self._preempted.appendleft(run)
        self._kv_full = True
        self.stats.preemptions += 1
        log.info("KV cache full: preempted a job after %d tokens", run.generated)

    def _sample(self, slot: _Slot, index: int) -> None:
        run = slot.running
        assert run is not None
        job = run.job
        if job.cancelled.is_set():
            self._release(slot)
            return
        row = None
        if job.sampling.logprobs:
            row = self._samplers.logprob_row(self._ctx.get_logits_ith(index))
        token = run.sampler.sample(self._ctx.ctx, index)
        run.generated += 1
        run.last_token = token
        self.stats.generated_tokens += 1
        if self._lib.llama_vocab_is_eog(self.vocab, token):
            run.generated -= 1  # the end-of-turn token is not part of the completion
            self._finish(slot, "stop", flush=True)
            return
        text = run.decoder.decode(self.pieces[token])
        token_lp = None
        if row is not None:
            token_lp = self._samplers.token_logprob(token, row, job.sampling.top_logprobs)
        pieces, stopped = run.scanner.feed(Piece(text, token_lp))
        for piece in pieces:
            emit(job, piece)
        if stopped:
            self._finish(slot, "stop", flush=False)
        elif run.generated >= job.max_tokens:
            self._finish(slot, "length", flush=True)
        elif run.guard is not None and run.guard.feed(token):
            self._finish(slot, "length", flush=True, degenerate=True)

    def _finish(
        self,
        slot: _Slot,
        reason: Literal["stop", "length"],
        *,
        flush: bool,
        degenerate: bool = False,
    ) -> None:
        """End the slot's job; ``flush`` emits text held back for a possible stop string;
        ``degenerate``: ended by the repetition guard."""
        run = slot.running
        assert run is not None
        if flush:
            for piece in run.scanner.flush():
                emit(run.job, piece)
            tail = run.decoder.decode(b"", final=True)
            if tail:
                emit(run.job, Piece(tail))
        emit(run.job, Finished(reason, len(run.job.prompt), run.generated, degenerate))
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        if slot.running is not None:
            slot.running.sampler.close()
        slot.running = None
        self._fair.stop(slot.seq_id)
        self._kv_full = False  # a job left: a preempted one may fit now

    def _fail_all(self, error: OfframpError) -> None:
        for slot in self._active():
            assert slot.running is not None
            emit(slot.running.job, Failed(error))
            self._release(slot)
        for slot in self._slots:
            self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, 0, -1)
            slot.cached.clear()
        for run in self._preempted:
            emit(run.job, Failed(error))
            run.sampler.close()
        self._preempted.clear()

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
