"""The embedded llama.cpp provider: chat and text completions from a local GGUF file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from offramp.errors import InvalidRequest, UnsupportedParameter
from offramp.models.registry import ModelSpec
from offramp.providers.base import Capabilities, Provider
from offramp.providers.llamacpp import context_fit
from offramp.providers.llamacpp import tools as tool_calls
from offramp.providers.llamacpp.chat_format import ChatFormatter
from offramp.providers.llamacpp.engine import Engine
from offramp.providers.llamacpp.grammar import JSON_OBJECT_GBNF, schema_to_gbnf
from offramp.providers.llamacpp.jobs import Event, Failed, Finished, Job
from offramp.providers.llamacpp.mailbox import Mailbox
from offramp.providers.llamacpp.rope import RopeScaling
from offramp.providers.llamacpp.sampling import Grammar
from offramp.providers.llamacpp.stops import Piece
from offramp.settings import Settings
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionRequest,
    CompletionResult,
    FinishReason,
    Sampling,
    StreamEnd,
    StreamItem,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    Usage,
)

MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class _Plan:
    """A validated, tokenised request, ready to become engine jobs."""

    prompt: list[int]
    sampling: Sampling
    max_tokens: int
    n: int
    grammar: Grammar | None
    tool_choice: ToolChoice
    tools_active: bool
    echo: str = ""
    tool_names: tuple[str, ...] = ()
    notices: Mapping[str, str] = field(default_factory=dict)  # from fitting the context


class LlamaCppProvider(Provider):
    """Serves one GGUF model through the embedded engine."""

    def __init__(self, spec: ModelSpec, path: Path, settings: Settings):
        options = spec.options
        self._spec = spec
        self._default_max_tokens = _output_cap(options, settings.default_max_tokens)
        self._overflow = context_fit.overflow_option(options.get("context_overflow", "error"))
        self._stream_interval = settings.stream_interval_ms / 1000
        n_gpu_layers = int(options.get("n_gpu_layers", settings.n_gpu_layers))
        self.engine = Engine(
            str(path),
            n_ctx=spec.context_length,
            n_slots=int(options.get("parallel", _default_parallel(n_gpu_layers))),
            kv_size=int(options["kv_size"]) if options.get("kv_size") else None,
            n_threads=settings.n_threads or os.cpu_count() or 1,
            n_gpu_layers=n_gpu_layers,
            n_batch=int(options.get("n_batch", 512)),
            n_ubatch=int(options.get("n_ubatch", 512)),
            kv_type=self._kv_type(options.get("kv_type", "f16")),
            kv_unified=bool(options.get("kv_unified", True)),
            flash_attn=bool(options.get("flash_attn", False)),
            prefill_chunk=int(options.get("prefill_chunk", 128)),
            fair_slack_s=float(options.get("fair_slack_ms", 50)) / 1000,
            rope=RopeScaling.from_option(options.get("rope_scaling")),
        )
        meta = self.engine.metadata()
        self._formatter = ChatFormatter(
            meta.get("tokenizer.chat_template"),
            bos_token=self._token_text(meta, "bos"),
            eos_token=self._token_text(meta, "eos"),
        )
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self.capabilities = Capabilities(
            chat=True,
            completions=True,
            grammar=True,
            tools=True,
            logprobs=True,
            max_top_logprobs=MAX_TOP_LOGPROBS,
            context_length=spec.context_length,
            concurrency=self.engine.n_slots,
            tokenizer=_tokenizer_name(meta, self.engine.n_vocab),
        )

    @staticmethod
    def _kv_type(value: object) -> str:
        if value not in ("f16", "q8_0"):
            raise InvalidRequest(f"kv_type must be f16 or q8_0, got {value!r}", param="config")
        return str(value)

    def _token_text(self, meta: dict[str, str], which: str) -> str:
        token_id = meta.get(f"tokenizer.ggml.{which}_token_id")
        if token_id is None:
            return ""
        return self.engine.pieces[int(token_id)].decode("utf-8", errors="replace")

    # ----- Provider -------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> CompletionResult:
        plan = self._plan_chat(request)
        return await self._collect(plan, request.model)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        plan = self._plan_chat(request)
        async for item in self._stream(plan):
            yield item

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        plan = self._plan_completion(request)
        return await self._collect(plan, request.model)

    async def stream_complete(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        plan = self._plan_completion(request)
        async for item in self._stream(plan):
            yield item

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.close)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as a raw prompt."""
        return len(self.engine.tokenize(text, add_special=self._add_bos, parse_special=False))

    async def count_chat_tokens(self, request: ChatRequest) -> int:
        return len(self._chat_prompt(request))

    # ----- planning -------------------------------------------------------------------

    def _plan_chat(self, request: ChatRequest) -> _Plan:
        tools_active = bool(request.tools) and request.tool_choice.mode != "none"
        grammar = self._chat_grammar(request, tools_active)
        prompt = self._chat_prompt(request)
        notices: dict[str, str] = {}
        room = context_fit.answer_room(
            request.sampling.max_tokens, self._default_max_tokens, self._spec.context_length
        )
        if self._overflow != "error" and len(prompt) + room > self._spec.context_length:
            fitted = context_fit.fit(
                request.messages,
                self._overflow,
                lambda messages: self._fits(replace(request, messages=messages), room),
            )
            if fitted is not None:
                request = replace(request, messages=fitted.messages)
                prompt = self._chat_prompt(request)
                notices["context-overflow"] = fitted.notice(self._overflow)
        chars = sum(len(m.content or "") for m in request.messages)
        plan = self._plan(
            prompt,
            request.sampling,
            request.n,
            grammar,
            request.tool_choice,
            tools_active,
            "messages",
            openai_tokens=context_fit.openai_estimate(chars, len(request.messages)),
        )
        return replace(plan, tool_names=tuple(t.name for t in request.tools), notices=notices)

    def _chat_prompt(self, request: ChatRequest) -> list[int]:
        """The conversation (and the tools it may call) as the model reads it, tokenised."""
        prompt: list[int] = []
        for segment in self._formatter.render(request):
            prompt += self.engine.tokenize(
                segment.text,
                add_special=self._add_bos and not prompt,
                parse_special=segment.control,
            )
        return prompt

    def _fits(self, request: ChatRequest, room: int) -> bool:
        return len(self._chat_prompt(request)) + room <= self._spec.context_length

    def _plan_completion(self, request: CompletionRequest) -> _Plan:
        prompt = self.engine.tokenize(
            request.prompt, add_special=self._add_bos, parse_special=False
        )
        return self._plan(
            prompt,
            request.sampling,
            request.n,
            None,
            ToolChoice("none"),
            False,
            "prompt",
            echo=request.prompt if request.echo else "",
            openai_tokens=context_fit.openai_estimate(len(request.prompt), 0),
        )

    def _chat_grammar(self, request: ChatRequest, tools_active: bool) -> Grammar | None:
        out = request.output
        if tools_active:
            if out.kind != "text" and request.tool_choice.mode == "auto":
                raise UnsupportedParameter(
                    "response_format JSON cannot be combined with tool_choice `auto` on this "
                    "model; use tool_choice `none`, `required` or a named function",
                    param="response_format",
                )
            return tool_calls.grammar_for(request.tools, request.tool_choice)
        if out.kind == "json_object":
            return Grammar(JSON_OBJECT_GBNF)
        if out.kind == "json_schema" and out.schema is not None:
            return Grammar(schema_to_gbnf(out.schema))
        return None

    def _plan(
        self,
        prompt: list[int],
        sampling: Sampling,
        n: int,
        grammar: Grammar | None,
        choice: ToolChoice,
        tools_active: bool,
        param: str,
        echo: str = "",
        openai_tokens: int = 0,
    ) -> _Plan:
        n_ctx = self._spec.context_length
        asked = sampling.max_tokens
        if len(prompt) + (asked or 1) > n_ctx:
            raise context_fit.too_long(n_ctx, len(prompt), asked, param, openai_tokens)
        max_tokens = asked or min(n_ctx - len(prompt), self._default_max_tokens or n_ctx)
        if sampling.top_logprobs > MAX_TOP_LOGPROBS:
            raise UnsupportedParameter(
                f"top_logprobs can be at most {MAX_TOP_LOGPROBS}", param="top_logprobs"
            )
        return _Plan(prompt, sampling, max_tokens, n, grammar, choice, tools_active, echo)

    # ----- running --------------------------------------------------------------------

    async def _events(self, plan: _Plan) -> AsyncIterator[list[tuple[int, Event]]]:
        """Run the plan's n jobs; yield batches of (choice index, event) until all finish."""
        mailbox: Mailbox[tuple[int, Event]] = Mailbox(
            asyncio.get_running_loop(), self._stream_interval
        )
        jobs: list[Job] = []
        for i in range(plan.n):
            sampling = plan.sampling
            if sampling.seed is not None and i:
                sampling = replace(sampling, seed=sampling.seed + i)

            jobs.append(
                Job(plan.prompt, sampling, plan.max_tokens, _Sink(mailbox, i), plan.grammar)
            )
        self.engine.submit(*jobs)
        pending = plan.n
        try:
            while pending:
                batch = await mailbox.take()
                for _index, event in batch:
                    if isinstance(event, Failed):
                        raise event.error
                    if isinstance(event, Finished):
                        pending -= 1
                yield batch
        finally:
            if pending:
                for job in jobs:
                    job.cancelled.set()
                self.engine.wake()

    async def _collect(self, plan: _Plan, model: str) -> CompletionResult:
        texts = [[plan.echo] for _ in range(plan.n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(plan.n)]
        finished: dict[int, Finished] = {}
        async for batch in self._events(plan):
            for index, event in batch:
                if isinstance(event, Piece):
                    texts[index].append(event.text)
                    if event.logprob is not None:
                        logprobs[index].append(event.logprob)
                elif isinstance(event, Finished):
                    finished[index] = event
        choices = []
        for i in range(plan.n):
            text = "".join(texts[i])
            reason: FinishReason = finished[i].reason
            content: str | None = text
            calls: tuple[ToolCall, ...] = ()
            if plan.tools_active:
                content, calls, reason = _split_calls(text, plan, reason)
            lps = tuple(logprobs[i]) if plan.sampling.logprobs else None
            choices.append(Choice(i, content, reason, calls, lps))
        usage = Usage(len(plan.prompt), sum(f.completion_tokens for f in finished.values()))
        notices = _notices(plan, finished.values())
        return CompletionResult(model, tuple(choices), usage, notices)

    async def _stream(self, plan: _Plan) -> AsyncIterator[StreamItem]:
        gates = [tool_calls.ContentGate(plan.tool_choice, plan.tools_active) for _ in range(plan.n)]
        completion_tokens = 0
        pending = [0] * plan.n  # tokens generated but not yet carried by a delta
        prompt = len(plan.prompt)  # told once, with the first delta
        ends: list[Finished] = []
        if plan.echo:
            for i in range(plan.n):
                yield ChoiceDelta(i, plan.echo, prompt_tokens=prompt)
                prompt = 0
        async for batch in self._events(plan):
            for index, text, lps, count, finished in _merge(batch):
                gate = gates[index]
                released = gate.feed(text)
                pending[index] += count
                if released or lps:
                    yield ChoiceDelta(
                        index, released, logprobs=lps, tokens=pending[index], prompt_tokens=prompt
                    )
                    pending[index], prompt = 0, 0
                if finished is not None:
                    ends.append(finished)
                    completion_tokens += finished.completion_tokens
                    final = self._final_delta(index, gate, plan, finished)
                    yield replace(final, tokens=pending[index], prompt_tokens=prompt)
                    pending[index], prompt = 0, 0
        yield StreamEnd(Usage(len(plan.prompt), completion_tokens), _notices(plan, ends))

    def _final_delta(
        self, index: int, gate: tool_calls.ContentGate, plan: _Plan, event: Finished
    ) -> ChoiceDelta:
        reason: FinishReason = event.reason
        if not plan.tools_active:
            return ChoiceDelta(index, finish_reason=reason)
        content, calls, reason = _split_calls(gate.text, plan, reason)
        if calls:
            return ChoiceDelta(index, tool_calls=calls, finish_reason=reason)
        return ChoiceDelta(index, (content or "")[gate.released :], finish_reason=reason)


def _split_calls(
    text: str, plan: _Plan, reason: FinishReason
) -> tuple[str | None, tuple[ToolCall, ...], FinishReason]:
    """(content, tool calls, finish reason) of a generation that may call tools; a call cut
    off by the token limit comes back partial, with ``length`` (as OpenAI returns it)."""
    content, calls = tool_calls.parse(text, plan.tool_choice)
    if calls:
        return content, calls, "tool_calls"
    if reason == "length":
        content, calls = tool_calls.parse_cut(text, plan.tool_choice, plan.tool_names)
    return content, calls, reason


class _Sink:
    """Hands one choice's events to the mailbox; its first token and its end go at once."""

    def __init__(self, mailbox: Mailbox[tuple[int, Event]], index: int):
        self._mailbox = mailbox
        self._index = index
        self._started = False

    def __call__(self, event: Event) -> None:
        urgent = not self._started or not isinstance(event, Piece)
        self._started = True
        self._mailbox.put((self._index, event), urgent=urgent)


def _merge(
    batch: list[tuple[int, Event]],
) -> list[tuple[int, str, tuple[TokenLogprob, ...] | None, int, Finished | None]]:
    """Fold a batch of events into one (index, text, logprobs, tokens, finished) per
    choice run."""
    out: list[tuple[int, str, tuple[TokenLogprob, ...] | None, int, Finished | None]] = []
    texts: list[str] = []
    lps: list[TokenLogprob] = []
    current: int | None = None

    def flush(finished: Finished | None = None) -> None:
        if current is not None and (texts or lps or finished):
            out.append((current, "".join(texts), tuple(lps) or None, len(texts), finished))
        texts.clear()
        lps.clear()

    for index, event in batch:
        if index != current:
            flush()
            current = index
        if isinstance(event, Piece):
            texts.append(event.text)
            if event.logprob is not None:
                lps.append(event.logprob)
        elif isinstance(event, Finished):
            flush(event)
    flush()
    return out


def _tokenizer_name(meta: dict[str, str], n_vocab: int) -> str:
    """The GGUF's tokenizer, e.g. ``gpt2 BPE (smollm), 49152 tokens``."""
    kind = meta.get("tokenizer.ggml.model", "unknown")
    pre = meta.get("tokenizer.ggml.pre")
    label = {"gpt2": "gpt2 BPE", "llama": "SentencePiece"}.get(kind, kind)
    return f"{label}{f' ({pre})' if pre else ''}, {n_vocab} tokens"


def _output_cap(options: Mapping[str, object], setting: int | None) -> int | None:
    """Generated tokens when a request names none: the lower of the model's
    ``max_output_tokens`` option and the ``default_max_tokens`` setting, when set."""
    value = options.get("max_output_tokens")
    if value is None:
        return setting
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(
            f"max_output_tokens must be a positive integer, got {value!r}", param="config"
        )
    return min(value, setting) if setting else value


def _notices(plan: _Plan, ends: Iterable[Finished]) -> dict[str, str]:
    """What the caller is told about this answer beyond its text (see types.Notices)."""
    notices = dict(plan.notices)
    if any(f.degenerate for f in ends):
        notices["degenerate"] = "stopped"
    return notices


def _default_parallel(n_gpu_layers: int) -> int:
    """Sequences decoded together when the config names none: a GPU's batched throughput
    keeps growing far past a CPU's, whose gain flattens after a handful of sequences."""
    import llama_cpp

    on_gpu = n_gpu_layers != 0 and bool(llama_cpp.llama_supports_gpu_offload())
    return 16 if on_gpu else 4
