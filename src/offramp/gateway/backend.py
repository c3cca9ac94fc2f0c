"""The structured-output loop's backend over one resolved route, and whole chat answers
whose JSON choices are validated and repaired.

A ``RoutedBackend`` is bound to one request: its route (resolved once, by the gateway)
and the record of every routed call it made, each with the usage and price of the
deployment that actually answered it. Streams count the tokens they pass, so a run the
client leaves can be billed for what was generated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from offramp.gateway import calls, tool_repair
from offramp.providers.base import Capabilities
from offramp.routing.outcome import Outcome
from offramp.routing.route import Route
from offramp.routing.router import Router
from offramp.structured.repair import (
    Adapt,
    ChatBackend,
    Generated,
    Job,
    Rejected,
    RepairsExhausted,
    Reply,
    Streamed,
    repair_request,
    run,
    validate_reply,
)
from offramp.types import (
    ChatRequest,
    Choice,
    ChoiceDelta,
    CompletionResult,
    StreamEnd,
    StreamItem,
    Usage,
)


class RoutedBackend:
    """Calls ``route`` through ``router`` and keeps each call's outcome (``outcomes``)."""

    def __init__(
        self,
        router: Router,
        route: Route,
        on_first_token: Any = None,
        rewrite: Callable[[ChatRequest], Awaitable[ChatRequest]] | None = None,
    ):
        self.model = route.name
        self.outcomes: list[Outcome] = []
        self.partial = Usage()  # tokens of a stream still running
        self.first: ChatRequest | None = None  # the first request asked (a task's prompt)
        self._router = router
        self._route = route
        self._on_first_token = on_first_token
        self._rewrite = rewrite  # applied to each request first (in-context examples)

    async def chat(self, request: ChatRequest, adapt: Adapt) -> Generated:
        self.first = self.first or request
        if self._rewrite is not None:
            request = await self._rewrite(request)
        used: list[Capabilities] = []
        routed = await calls.chat(
            self._router, self._route, request, _noting(adapt, used), validate=False
        )
        routed.outcome.usage = routed.value.usage
        self.outcomes.append(routed.outcome)
        return Generated(routed.value, used[-1].grammar)

    async def stream_chat(self, request: ChatRequest, adapt: Adapt) -> Streamed:
        self.first = self.first or request
        if self._rewrite is not None:
            request = await self._rewrite(request)
        used: list[Capabilities] = []
        routed = await calls.stream_chat(
            self._router, self._route, request, _noting(adapt, used), validate=False
        )
        return Streamed(self._counted(routed.value, routed.outcome, request), used[-1].grammar)

    def spent_usd(self) -> float:
        return sum(o.cost(o.usage or Usage()) for o in self.outcomes)

    async def _counted(
        self, items: AsyncIterator[StreamItem], outcome: Outcome, request: ChatRequest
    ) -> AsyncIterator[StreamItem]:
        self.partial = Usage(calls.prompt_estimate(request), 0)
        async for item in items:
            if isinstance(item, ChoiceDelta):
                if self._on_first_token is not None:
                    self._on_first_token()
                self.partial = add_delta(self.partial, item)
            elif isinstance(item, StreamEnd):
                outcome.usage = item.usage
                self.outcomes.append(outcome)
                self.partial = Usage()
            yield item


def _noting(adapt: Adapt, used: list[Capabilities]) -> Adapt:
    """``adapt``, remembering the capabilities of each deployment it was applied for
    (the last one is the deployment that answered)."""

    def noted(request: ChatRequest, caps: Capabilities) -> ChatRequest:
        used.append(caps)
        return adapt(request, caps)

    return noted


def add_delta(usage: Usage, delta: ChoiceDelta) -> Usage:
    """``usage`` plus the tokens ``delta`` carries (one per piece when it does not say)."""
    tokens = delta.tokens or (1 if delta.text or delta.tool_calls else 0)
    prompt = delta.prompt_tokens or usage.prompt_tokens
    return Usage(prompt, usage.completion_tokens + tokens)


@dataclass(frozen=True)
class RepairedCompletion:
    """A chat completion whose JSON choices all validate, the generations it took, and the
    routed calls behind it (with their usage, for the routing headers and the bill)."""

    result: CompletionResult
    attempts: int
    outcomes: tuple[Outcome, ...] = ()

    @property
    def usages(self) -> list[Usage]:
        return [o.usage or Usage() for o in self.outcomes]


async def repaired_chat(
    backend: RoutedBackend, request: ChatRequest, max_attempts: int
) -> RepairedCompletion:
    """A whole chat completion. With ``response_format`` JSON (and no tools), every
    finished choice validates or the request fails with OutputValidationFailed naming the
    problems; invalid choices are repaired one by one, up to ``max_attempts`` generations.
    Choices cut off by the client's ``max_tokens`` are returned as they are. Tool calls
    are checked against their functions' schemas and repaired by ``tool_repair``."""
    if request.tools and request.tool_choice.mode != "none":
        checked = await tool_repair.chat(backend._router, backend._route, request, max_attempts)
        backend.outcomes.extend(checked.outcomes)
        return RepairedCompletion(checked.result, checked.attempts, checked.outcomes)
    if request.output.kind == "text" or request.tools:
        routed = await calls.chat(backend._router, backend._route, request)
        routed.outcome.usage = routed.value.usage
        backend.outcomes.append(routed.outcome)
        return RepairedCompletion(routed.value, 1, (routed.outcome,))
    schema = request.output.schema if request.output.kind == "json_schema" else None
    if request.n == 1:
        job = Job(
            request, schema, max_attempts=max_attempts, accept_truncated=True, describe_schema=False
        )
        done = await run(backend, job)
        lps = done.logprobs if request.sampling.logprobs else None
        choice = Choice(0, done.text, done.finish_reason, logprobs=lps)
        result = CompletionResult(request.model, (choice,), done.usage)
        return RepairedCompletion(result, done.attempts, tuple(backend.outcomes))
    repaired = await _repair_choices(backend, request, schema, max_attempts)
    return replace(repaired, outcomes=tuple(backend.outcomes))


async def _repair_choices(
    backend: ChatBackend, request: ChatRequest, schema: dict[str, Any] | None, max_attempts: int
) -> RepairedCompletion:
    first = await backend.chat(request, lambda r, _: r)
    usage = Usage(first.result.usage.prompt_tokens, first.result.usage.completion_tokens)
    choices, most = list(first.result.choices), 1
    probe = Job(request, schema, accept_truncated=True)
    for i, choice in enumerate(choices):
        generated = Reply(choice.text or "", choice.finish_reason, constrained=first.constrained)
        checked = validate_reply(probe, generated)
        if not checked.problems:
            continue
        reject = Rejected(1, generated.text, checked.problems)
        if max_attempts == 1:
            raise RepairsExhausted(request.model, (reject,), usage)
        single = repair_request(request, replace(request, n=1), reject, choice.finish_reason)
        done = await run(
            backend,
            Job(
                single,
                schema,
                max_attempts=max_attempts - 1,
                accept_truncated=True,
                describe_schema=False,
            ),
        )
        usage.prompt_tokens += done.usage.prompt_tokens
        usage.completion_tokens += done.usage.completion_tokens
        lps = done.logprobs if request.sampling.logprobs else None
        choices[i] = Choice(i, done.text, done.finish_reason, logprobs=lps)
        most = max(most, done.attempts + 1)
    return RepairedCompletion(CompletionResult(request.model, tuple(choices), usage), most)
