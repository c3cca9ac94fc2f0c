"""What the gateway does for the learning loop around a served request: in-context
examples put into its prompt, its capture as a sample, the shadow teacher asked the same,
and a task run's validation recorded as feedback (see ``capture`` and ``in_context``).

Teachers and embeddings go back through the gateway's own doors (``Doors``), so they are
metered, cached and in the ledger like any request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from offramp.gateway.accounting import Accounting, Caller, Meter
from offramp.gateway.backend import RepairedCompletion, RoutedBackend
from offramp.gateway.capture import SHADOW, Teacher, answer_json, chat_json
from offramp.gateway.in_context import Vectors
from offramp.ledger.datasets import SampleFilter
from offramp.routing.config import InContextSpec
from offramp.routing.outcome import Routed
from offramp.routing.route import Route
from offramp.tasks.engine import TaskCall, TaskEngine, TaskOutcome
from offramp.types import ChatRequest, CompletionResult, EmbedRequest, EmbedResult

log = logging.getLogger(__name__)


class Doors(Protocol):
    """The gateway's own entry points, for the requests made on a request's behalf."""

    async def chat(
        self, caller: Caller, request: ChatRequest, endpoint: str = "chat"
    ) -> RepairedCompletion: ...

    async def run_task(
        self, caller: Caller, name: str, call: TaskCall, endpoint: str = "task"
    ) -> TaskOutcome: ...

    async def embed(self, caller: Caller, request: EmbedRequest) -> Routed[EmbedResult]: ...

    def task_engine(self) -> TaskEngine: ...


class Learning:
    """In-context examples, capture, shadow teachers and validator feedback of one
    gateway; every method that could fail a request logs instead."""

    def __init__(self, doors: Doors, accounting: Accounting):
        self._doors = doors
        self._acc = accounting

    async def prompted(self, caller: Caller, route: Route, request: ChatRequest) -> ChatRequest:
        """``request`` with the in-context examples its route asks for (if any)."""
        if route.spec.in_context is None or self._acc.in_context is None:
            return request
        rewrite = self.rewriter(caller, route.spec.in_context, route.name, None)
        return await rewrite(request)

    def rewriter(
        self, caller: Caller, spec: InContextSpec | None, route: str | None, task: str | None
    ) -> Callable[[ChatRequest], Awaitable[ChatRequest]]:
        """What puts ``spec``'s in-context examples (captured samples of ``route`` or
        ``task``) into a request; the request unchanged without a spec."""
        examples = self._acc.in_context

        async def unchanged(request: ChatRequest) -> ChatRequest:
            return request

        if spec is None or examples is None:
            return unchanged

        async def embed(model: str, texts: list[str]) -> Vectors:
            internal = Caller(f"{caller.request_id[:55]}:examples", None)
            routed = await self._doors.embed(internal, EmbedRequest(model, tuple(texts)))
            return routed.value.vectors

        async def rewrite(request: ChatRequest) -> ChatRequest:
            scope = (
                SampleFilter(route=spec.route)
                if spec.route is not None
                else SampleFilter(route=route, task=task)
            )
            return await examples.with_examples(request, spec, scope, embed)

        return rewrite

    def keep_chat(
        self,
        caller: Caller,
        meter: Meter,
        route: Route,
        request: ChatRequest,
        result: CompletionResult,
    ) -> None:
        """Capture a served chat-like request if its route or key says so (never raises:
        capture must not fail an answer)."""
        capture = self._acc.capture
        if capture is None:
            return
        try:
            plan = capture.plan(meter.record, route.spec.capture, route.spec.shadow)
            if plan is None or meter.record is None:
                return
            teacher = self._chat_teacher(caller, request)
            capture.keep(meter.record, plan, chat_json(request), answer_json(result), teacher)
        except Exception:
            log.exception("capturing request %s failed", caller.request_id)

    def keep_task(
        self,
        caller: Caller,
        meter: Meter,
        route: Route,
        name: str,
        call: TaskCall,
        backend: RoutedBackend,
        outcome: TaskOutcome,
    ) -> None:
        """Record the run's validation, and capture it if its task, route or key says so."""
        self.judge(caller, outcome.metadata.get("fallback") is None, None)
        capture = self._acc.capture
        if capture is None:
            return
        try:
            spec = self._doors.task_engine().catalog.get(name).spec
            shadow = spec.shadow or route.spec.shadow
            plan = capture.plan(meter.record, spec.capture or route.spec.capture, shadow)
            if plan is None or meter.record is None:
                return
            asked: dict[str, Any] = {"task": name, "input": call.input}
            if backend.first is not None:
                asked["messages"] = chat_json(backend.first)["messages"]
            teacher = self._task_teacher(caller, name, call)
            capture.keep(meter.record, plan, asked, {"result": outcome.result}, teacher)
        except Exception:
            log.exception("capturing task run %s failed", caller.request_id)

    def judge(self, caller: Caller, valid: bool, problems: str | None) -> None:
        capture = self._acc.capture
        if capture is not None:
            key = caller.key.id if caller.key is not None else None
            capture.judge(caller.request_id, key, valid, problems)

    def _chat_teacher(self, caller: Caller, request: ChatRequest) -> Teacher:
        """The same request asked of a teacher route, whole, through this gateway."""

        async def teach(route: str) -> Any:
            asked = replace(request, model=route, n=1)
            done = await self._doors.chat(_teacher_caller(caller), asked, SHADOW)
            return answer_json(done.result)

        return teach

    def _task_teacher(self, caller: Caller, name: str, call: TaskCall) -> Teacher:
        """The same task run on a teacher route, through this gateway."""

        async def teach(route: str) -> Any:
            done = await self._doors.run_task(
                _teacher_caller(caller), name, replace(call, model=route), SHADOW
            )
            return {"result": done.result}

        return teach


def _teacher_caller(caller: Caller) -> Caller:
    """The internal caller of a teacher's request: no key (the operator's own request,
    outside the client's limits and budget), a request id that names the client's."""
    return Caller(f"{caller.request_id[:57]}:{SHADOW}", None, use_cache=False)
