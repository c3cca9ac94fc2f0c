"""Structured output: JSON that validates, or a clear report of why it could not.

Every structured generation goes through one bounded loop:

1. Ask for JSON. The backend adapts the request to the deployment that takes it
   (``Adapt``): where that deployment's Capabilities say ``grammar``, decoding is
   constrained by the JSON schema (the shape cannot be wrong); otherwise the schema is
   described in a system message and the reply is parsed leniently (code fences and
   prose around the object are dropped). The deployment actually chosen decides, not
   the route's first one.
2. Validate: parse, JSON schema (always, for every provider), then the caller's own
   ``check`` (domain rules that no schema can say).
3. On failure, feed the problems back (the rejected reply as the assistant's turn, the
   problems as the user's) and try again, up to ``max_attempts`` generations in all.

What the loop did is reported: every attempt's problems, the attempt count, the real
token usage summed over attempts. When no attempt passes, RepairsExhausted says why
(callers may run a fallback; nothing invalid is ever returned as valid).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from jsonschema.exceptions import best_match

from offramp.errors import OutputValidationFailed
from offramp.providers.base import Capabilities
from offramp.schemas import validator_for
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    FinishReason,
    Message,
    OutputFormat,
    StreamEnd,
    StreamItem,
    TokenLogprob,
    Usage,
)

MAX_PROBLEMS = 6  # problems fed back per attempt; more only crowd a small model's context
MAX_ECHO_CHARS = 3000  # of a rejected reply echoed back to the model
REPAIR_REPEAT_PENALTY = 1.2


@dataclass
class Reply:
    """One generation as the checks see it: its text, why it ended, its token logprobs."""

    text: str = ""
    finish: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    constrained: bool = False  # decoded under the JSON grammar

    @property
    def mean_logprob(self) -> float | None:
        """The mean log-probability of the reply's tokens (None without logprobs)."""
        if not self.logprobs:
            return None
        return sum(lp.logprob for lp in self.logprobs) / len(self.logprobs)


@dataclass(frozen=True)
class Checked:
    """The outcome of a domain check: the (possibly transformed) value, or problems."""

    value: Any
    problems: tuple[str, ...] = ()


Check = Callable[[Any, Reply], Checked]


def accept(value: Any, reply: Reply) -> Checked:
    """The check that accepts any schema-valid value unchanged."""
    return Checked(value)


@dataclass(frozen=True)
class Job:
    """One structured generation: the conversation, the schema and the rules.

    ``schema`` None asks for any JSON object. ``accept_truncated`` returns a reply cut off
    by ``max_tokens`` as it is (the client's own budget, as chat completions do) instead of
    treating it as a problem to repair with a larger budget. ``describe_schema`` adds the
    schema as a system message for providers without grammar decoding (off for a client's
    own chat request, whose messages are sent as they are).
    """

    request: ChatRequest
    schema: dict[str, Any] | None = None
    check: Check = accept
    max_attempts: int = 3
    logprobs: bool = False
    accept_truncated: bool = False
    describe_schema: bool = True


@dataclass(frozen=True)
class Delta:
    """Text of attempt ``attempt`` as it is generated."""

    attempt: int
    text: str


@dataclass(frozen=True)
class Rejected:
    """Attempt ``attempt`` produced ``text``, which failed for ``problems``."""

    attempt: int
    text: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    """The validated value and how it was reached."""

    value: Any
    text: str
    attempts: int
    model: str
    usage: Usage
    finish_reason: FinishReason
    rejected: tuple[Rejected, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()

    @property
    def mean_logprob(self) -> float | None:
        """The mean log-probability of the accepted reply's tokens (None without logprobs)."""
        if not self.logprobs:
            return None
        return sum(lp.logprob for lp in self.logprobs) / len(self.logprobs)


Event = Delta | Rejected | Accepted


class RepairsExhausted(OutputValidationFailed):
    """No attempt produced output that passed validation; carries what each one broke."""

    def __init__(self, model: str, rejected: tuple[Rejected, ...], usage: Usage):
        last = rejected[-1].problems if rejected else ()
        super().__init__(
            f"the model's output failed validation after {len(rejected)} attempt(s): "
            + "; ".join(last)
        )
        self.model = model
        self.rejected = rejected
        self.usage = usage


Adapt = Callable[[ChatRequest, Capabilities], ChatRequest]


@dataclass(frozen=True)
class Generated:
    """A whole answer and whether its deployment decoded it under the JSON grammar."""

    result: CompletionResult
    constrained: bool


@dataclass(frozen=True)
class Streamed:
    """A streamed answer and whether its deployment decodes it under the JSON grammar."""

    items: AsyncIterator[StreamItem]
    constrained: bool


class ChatBackend(Protocol):
    """What the loop needs from the layer above routing: one route, called per attempt.

    ``model`` is the public name the answers are reported under. ``adapt`` is applied to
    the request once the deployment that takes it is known (its capabilities decide
    grammar or prompt-only JSON, logprobs)."""

    model: str

    async def chat(self, request: ChatRequest, adapt: Adapt) -> Generated:
        """Generate the whole answer, unvalidated."""
        ...

    async def stream_chat(self, request: ChatRequest, adapt: Adapt) -> Streamed:
        """Stream the answer, unvalidated."""
        ...


async def run(backend: ChatBackend, job: Job) -> Accepted:
    """Generate until the output validates; RepairsExhausted when no attempt does."""
    async for event in attempts(backend, job, stream=False):
        if isinstance(event, Accepted):
            return event
    raise AssertionError("attempts() ends with Accepted or raises")  # pragma: no cover


async def attempts(backend: ChatBackend, job: Job, *, stream: bool) -> AsyncIterator[Event]:
    """Yield each attempt's text (as Deltas when ``stream``), each Rejected, then Accepted.

    Raises RepairsExhausted after ``job.max_attempts`` rejected attempts, and whatever the
    provider raises (a 4xx for a request it cannot take, 503 when overloaded).
    """
    model = backend.model
    first = request = _first_request(job)
    adapt = _adapter(job)
    usage = Usage()
    rejected: list[Rejected] = []
    for number in range(1, job.max_attempts + 1):
        generated = Reply()
        async for item in _generate(backend, request, adapt, stream, generated):
            yield Delta(number, item)
        usage.prompt_tokens += generated.usage.prompt_tokens
        usage.completion_tokens += generated.usage.completion_tokens
        checked = validate_reply(job, generated)
        if not checked.problems:
            yield Accepted(
                checked.value,
                generated.text,
                number,
                model,
                usage,
                generated.finish,
                tuple(rejected),
                tuple(generated.logprobs),
            )
            return
        reject = Rejected(number, generated.text, checked.problems[:MAX_PROBLEMS])
        rejected.append(reject)
        yield reject
        request = repair_request(first, request, reject, generated.finish)
    raise RepairsExhausted(model, tuple(rejected), usage)


def _first_request(job: Job) -> ChatRequest:
    request = job.request
    output = (
        OutputFormat("json_schema", job.schema, request.output.name or "output")
        if job.schema is not None
        else OutputFormat("json_object")
    )
    return replace(request, output=output, n=1)


def _adapter(job: Job) -> Adapt:
    """What changes once the deployment is known: the schema described in a system
    message where it cannot constrain decoding, logprobs where it can give them."""

    def adapt(request: ChatRequest, caps: Capabilities) -> ChatRequest:
        if not caps.grammar and job.describe_schema:
            instruction = Message("system", _schema_instruction(job.schema))
            request = replace(request, messages=(*request.messages, instruction))
        if job.logprobs and caps.logprobs:
            request = replace(request, sampling=replace(request.sampling, logprobs=True))
        return request

    return adapt


def _schema_instruction(schema: dict[str, Any] | None) -> str:
    if schema is None:
        return "Reply with only a JSON object, no other text."
    return (
        "Reply with only a JSON value, no other text, that matches this JSON schema:\n"
        + json.dumps(schema, ensure_ascii=False)
    )


async def _generate(
    backend: ChatBackend, request: ChatRequest, adapt: Adapt, stream: bool, out: Reply
) -> AsyncIterator[str]:
    """Fill ``out`` with one generation; yield its text pieces when streaming."""
    if not stream:
        generated = await backend.chat(request, adapt)
        result = generated.result
        choice: Choice = result.choices[0]
        out.text, out.finish, out.usage = choice.text or "", choice.finish_reason, result.usage
        out.logprobs = list(choice.logprobs or ())
        out.constrained = generated.constrained
        return
    streamed = await backend.stream_chat(request, adapt)
    out.constrained = streamed.constrained
    items = streamed.items
    parts: list[str] = []
    try:
        async for item in items:
            if isinstance(item, StreamEnd):
                out.usage = item.usage
                continue
            assert isinstance(item, ChoiceDelta)
            if item.logprobs:
                out.logprobs.extend(item.logprobs)
            if item.finish_reason is not None:
                out.finish = item.finish_reason
            if item.text:
                parts.append(item.text)
                yield item.text
    finally:
        closer = getattr(items, "aclose", None)
        if closer is not None:
            await closer()
    out.text = "".join(parts)


def validate_reply(job: Job, generated: Reply) -> Checked:
    """The problems of one generation under ``job``'s rules (none: it is accepted)."""
    constrained = generated.constrained
    if generated.finish == "length" and job.accept_truncated:
        return Checked(None)
    if generated.finish == "length":
        return Checked(
            None,
            ("the reply was cut off by the token limit before the JSON ended; be shorter",),
        )
    try:
        value = parse_json(generated.text, lenient=not constrained)
    except ValueError as exc:
        return Checked(None, (f"the reply is not valid JSON: {exc}",))
    if job.schema is None and not isinstance(value, dict):
        return Checked(None, ("the reply must be a JSON object",))
    if job.schema is not None:
        problems = schema_problems(value, job.schema)
        if problems:
            return Checked(None, problems)
    return job.check(value, generated)


def parse_json(text: str, *, lenient: bool) -> Any:
    """``json.loads``; when ``lenient``, the outermost object or array inside ``text``."""
    try:
        return json.loads(text)
    except ValueError:
        if not lenient:
            raise
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON object or array in the reply")
    start = min(starts)
    end = text.rfind("}" if text[start] == "{" else "]")
    return json.loads(text[start : end + 1])


def schema_problems(value: Any, schema: dict[str, Any]) -> tuple[str, ...]:
    """Every way ``value`` breaks ``schema``, each as ``at $.path: message`` (at most a few).

    For ``anyOf``/``oneOf`` the most relevant branch's error is given (not "is not valid
    under any of the given schemas"), and long messages are cut: they go back to a model.
    """
    found = [best_match([e]) or e for e in validator_for(schema).iter_errors(value)]
    found.sort(key=lambda e: list(map(str, e.absolute_path)))
    return tuple(_short(f"at {e.json_path}: {e.message}") for e in found[:MAX_PROBLEMS])


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def repair_request(
    first: ChatRequest, last: ChatRequest, reject: Rejected, finish: FinishReason
) -> ChatRequest:
    """The next attempt's conversation: the first attempt's turns, then only the latest
    rejected reply and its problems (older ones would crowd the context). Greedy decoding
    would likely repeat itself, so repairs sample (seeded, so runs are reproducible) and
    penalise repeated text."""
    problems = "\n".join(f"- {p}" for p in reject.problems)
    feedback = (
        f"Your reply was rejected:\n{problems}\n"
        "Write the whole JSON answer again with these problems fixed."
    )
    messages = (
        *first.messages,
        Message("assistant", reject.text[:MAX_ECHO_CHARS]),
        Message("user", feedback),
    )
    sampling = last.sampling
    temperature = sampling.temperature if sampling.temperature > 0 else 0.7
    seed = (sampling.seed or 0) + reject.attempt
    max_tokens = sampling.max_tokens
    if finish == "length" and max_tokens is not None:
        ceiling = (first.sampling.max_tokens or max_tokens) * 4
        max_tokens = min(max_tokens * 2, ceiling)
    sampling = replace(
        sampling,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        repeat_penalty=max(sampling.repeat_penalty, REPAIR_REPEAT_PENALTY),
    )
    return replace(last, messages=messages, sampling=sampling)


def confidence(mean_logprob: float | None) -> float | None:
    """The geometric-mean token probability of a reply, 0..1 (None without logprobs)."""
    if mean_logprob is None:
        return None
    return round(math.exp(mean_logprob), 3)
