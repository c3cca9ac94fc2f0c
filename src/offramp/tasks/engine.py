"""Running a task: input check, prepare, prompt, structured generation, finish, validate,
repair, fallback; the same steps whether the answer streams or comes whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from offramp.errors import OfframpError, OutputValidationFailed
from offramp.structured.repair import (
    Accepted,
    ChatBackend,
    Checked,
    Delta,
    Job,
    Rejected,
    RepairsExhausted,
    Reply,
    attempts,
    confidence,
    schema_problems,
)
from offramp.tasks.catalog import Task, TaskCatalog
from offramp.tasks.history import SessionStore
from offramp.tasks.hooks import RunInfo, TaskHooks
from offramp.tasks.inputs import validate_input
from offramp.tasks.prompts import PromptRenderer
from offramp.tasks.spec import TaskSpec, lookup, resolve_schema
from offramp.types import ChatRequest, Message, Sampling, Usage


class TaskBackend(ChatBackend, Protocol):
    """A chat backend bound to one run, which also knows what the run has cost so far
    (each call at the price of the deployment that made it)."""

    def spent_usd(self) -> float:
        """USD spent by this run's calls so far."""
        ...


@dataclass(frozen=True)
class TaskCall:
    """One request to run a task: its input, optional overrides of the task's route, and
    the end user it is for (sessions belong to the key and end user)."""

    input: dict[str, Any]
    model: str | None = None
    max_attempts: int | None = None
    user: str | None = None


@dataclass(frozen=True)
class TaskOutcome:
    """A task's validated result and how it was produced."""

    task: str
    version: str
    result: Any
    metadata: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "object": "task.result",
            "task": self.task,
            "version": self.version,
            "result": self.result,
            "metadata": self.metadata,
        }


TaskEvent = Delta | Rejected | TaskOutcome


@dataclass(frozen=True)
class _Prepared:
    task: Task
    values: dict[str, Any]
    context: dict[str, Any]
    model: str
    session: str | None
    job: Job
    owner: str
    backend: TaskBackend


class TaskEngine:
    """Runs tasks from a catalog against the chat backend each run is given (the
    gateway's, bound to the route it resolved and the meter of the request).

    A result is returned only when it passed the task's schemas and validators, either
    from the model (within the task's bounded attempts) or from its declared fallback;
    otherwise OutputValidationFailed names the problems. Bad input is InvalidRequest
    naming the field; an unknown task is TaskNotFound.
    """

    def __init__(
        self,
        catalog: TaskCatalog,
        hooks: TaskHooks,
        history: SessionStore,
    ):
        self.catalog = catalog
        self._hooks = hooks
        self._history = history

    def model_of(self, name: str, call: TaskCall) -> str:
        """The model a run of ``name`` asks for (the override, else the task's own);
        TaskNotFound for an unknown task."""
        return call.model or self.catalog.get(name).spec.route.model

    async def run(
        self, name: str, call: TaskCall, backend: TaskBackend, owner: str = ""
    ) -> TaskOutcome:
        """Run the task to its validated result."""
        async for event in self.events(name, call, backend, owner=owner, stream=False):
            if isinstance(event, TaskOutcome):
                return event
        raise AssertionError("events() ends with a TaskOutcome or raises")  # pragma: no cover

    async def events(
        self, name: str, call: TaskCall, backend: TaskBackend, *, owner: str = "", stream: bool
    ) -> AsyncIterator[TaskEvent]:
        """Each attempt's text (Deltas, when ``stream``), each Rejected attempt, then the
        TaskOutcome. Input errors are raised before anything is generated; a session id
        that belongs to another ``owner`` is SessionNotFound."""
        started = time.monotonic()
        prepared = await self._prepare(name, call, backend, owner)
        spec = prepared.task.spec
        accepted: Accepted | None = None
        try:
            async for event in attempts(backend, prepared.job, stream=stream):
                if isinstance(event, Accepted):
                    accepted = event
                else:
                    yield event
        except RepairsExhausted as exc:
            yield await self._fall_back(prepared, exc, started)
            return
        assert accepted is not None
        await self._remember(prepared, accepted.value)
        meta = self._metadata(prepared, accepted.attempts, accepted.usage, accepted.rejected)
        meta.update(
            latency_ms=_ms(started),
            fallback=None,
            confidence=confidence(accepted.mean_logprob),
        )
        yield TaskOutcome(spec.name, spec.version, accepted.value, meta)

    async def _prepare(
        self, name: str, call: TaskCall, backend: TaskBackend, owner: str
    ) -> _Prepared:
        task = self.catalog.get(name)
        spec = task.spec
        values = validate_input(spec.input_schema, call.input)
        context: dict[str, Any] = {}
        if spec.hooks.prepare:
            context = await self._hooks.prepare.get(spec.hooks.prepare, spec.name)(values)
        requested = call.model or spec.route.model
        model = backend.model
        session = None
        if spec.history is not None:
            session = str(values.get(spec.history.session) or uuid.uuid4().hex)
        messages = await self._messages(task, values, context, session, owner)
        route = spec.route
        sampling = Sampling(
            temperature=route.temperature,
            max_tokens=route.max_tokens,
            seed=0,
            repeat_penalty=route.repeat_penalty,
        )
        job = Job(
            ChatRequest(model=requested, messages=messages, sampling=sampling),
            resolve_schema(spec.output_schema, values),
            self._checker(spec, values, context, model),
            max_attempts=call.max_attempts or spec.route.max_attempts,
            logprobs=spec.route.logprobs,
        )
        return _Prepared(task, values, context, model, session, job, owner, backend)

    async def _messages(
        self,
        task: Task,
        values: dict[str, Any],
        context: dict[str, Any],
        session: str | None,
        owner: str,
    ) -> tuple[Message, ...]:
        spec = task.spec
        where = f"task {spec.name!r}"
        ctx = {**context, "input": values, "task": {"name": spec.name, "version": spec.version}}
        messages: list[Message] = []
        if task.system is not None:
            messages.append(Message("system", PromptRenderer.render(task.system, ctx, where)))
        if spec.history is not None and session is not None:
            for user, assistant in await self._history.turns(
                f"{spec.name}:{session}", owner, spec.history.turns
            ):
                messages += [Message("user", user), Message("assistant", assistant)]
        messages.append(Message("user", PromptRenderer.render(task.user, ctx, where)))
        return tuple(messages)

    def _checker(
        self, spec: TaskSpec, values: dict[str, Any], context: dict[str, Any], model: str
    ) -> Callable[[Any, Reply], Checked]:
        finish = self._hooks.finish.get(spec.hooks.finish, spec.name) if spec.hooks.finish else None

        def check(value: Any, reply: Reply) -> Checked:
            result = value
            if finish is not None:
                result = finish(value, RunInfo(values, context, model, reply.mean_logprob))
            return Checked(result, self._problems(spec, values, result))

        return check

    def _problems(self, spec: TaskSpec, values: dict[str, Any], result: Any) -> tuple[str, ...]:
        problems: list[str] = []
        if spec.result_schema is not None:
            problems += schema_problems(result, resolve_schema(spec.result_schema, values))
            if problems:
                return tuple(problems)
        for ref in spec.validators:
            validator = self._hooks.validators.get(ref.name, spec.name)
            problems += validator(result, values, ref.args)
        return tuple(problems)

    async def _fall_back(
        self, prepared: _Prepared, exc: RepairsExhausted, started: float
    ) -> TaskOutcome:
        spec = prepared.task.spec
        tried = len(exc.rejected)
        if spec.fallback is None:
            raise OutputValidationFailed(
                f"task `{spec.name}`: no valid result after {tried} attempt(s) and the task "
                f"declares no fallback; last problems: {'; '.join(exc.rejected[-1].problems)}"
            ) from exc
        fallback = self._hooks.fallbacks.get(spec.fallback, spec.name)
        result = fallback(prepared.values, prepared.context)
        problems = self._problems(spec, prepared.values, result)
        if problems:
            raise OfframpError(
                f"task `{spec.name}`: the fallback `{spec.fallback}` produced an invalid "
                f"result: {'; '.join(problems)}"
            )
        await self._remember(prepared, result)
        meta = self._metadata(prepared, tried, exc.usage, exc.rejected)
        meta.update(latency_ms=_ms(started), fallback=spec.fallback, confidence=None)
        return TaskOutcome(spec.name, spec.version, result, meta)

    async def _remember(self, prepared: _Prepared, result: Any) -> None:
        history = prepared.task.spec.history
        if history is None or prepared.session is None:
            return
        key = f"{prepared.task.spec.name}:{prepared.session}"
        user = str(prepared.values.get(history.user, ""))
        try:
            reply = lookup(result, history.assistant)
        except KeyError:
            return
        await self._history.add(key, prepared.owner, user, str(reply))

    def _metadata(
        self, prepared: _Prepared, tried: int, usage: Usage, rejected: tuple[Rejected, ...]
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "model": prepared.model,
            "attempts": tried,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "cost_usd": prepared.backend.spent_usd(),
            "repairs": [{"attempt": r.attempt, "problems": list(r.problems)} for r in rejected],
        }
        if prepared.session is not None:
            meta["session_id"] = prepared.session
        return meta


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
