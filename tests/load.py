"""Concurrent clients of the official SDK against one route of a running offramp, what
each of their calls got, and the route's health as ``GET /admin/routes`` tells it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
import openai

HELLO = [{"role": "user", "content": "Say hello."}]


@dataclass(frozen=True)
class Call:
    """One request: when it ran (Unix seconds), who answered, or how it failed."""

    started: float
    ended: float
    deployment: str | None  # None: it failed
    status: int | None = None
    retry_after: str | None = None
    code: str | None = None


@dataclass
class Clients:
    """``count`` SDK clients in threads (every other one streaming) asking ``model`` in a
    loop, from ``with`` until its end. Any exception is a failed call, never a crash."""

    sdk: openai.OpenAI
    model: str
    count: int
    max_tokens: int = 2
    pause_s: float = 0.05  # between one client's calls
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Self:
        for index in range(self.count):
            thread = threading.Thread(target=self._loop, args=(index % 2 == 1,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, streaming: bool) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                deployment = self._ask(streaming)
            except openai.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                retry_after = exc.response.headers.get("retry-after")
                code = body.get("code")
                self.calls.append(
                    Call(started, time.time(), None, exc.status_code, retry_after, code)
                )
                time.sleep(0.2)  # as a client honouring Retry-After would, briefly
            except Exception as exc:  # a broken stream, a dropped connection, no content
                self.calls.append(Call(started, time.time(), None, code=repr(exc)))
            else:
                self.calls.append(Call(started, time.time(), deployment))
            time.sleep(self.pause_s)

    def _ask(self, streaming: bool) -> str:
        raw = self.sdk.chat.completions.with_raw_response.create(
            model=self.model,
            messages=HELLO,  # type: ignore[arg-type]
            max_tokens=self.max_tokens,
            temperature=0,
            stream=streaming,
        )
        parsed = raw.parse()
        if streaming:
            text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
        else:
            text = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
        if not text:
            raise AssertionError("an answer without content")
        return raw.headers["x-offramp-deployment"]


def route_health(base_url: str, route: str) -> dict[str, dict[str, Any]]:
    """The deployments of ``route`` by id, as ``GET /admin/routes`` lists them."""
    routes = httpx.get(base_url + "/admin/routes").json()["data"]
    [found] = [r for r in routes if r["name"] == route]
    return {d["id"]: d for d in found["deployments"]}


def settle(base_url: str, route: str, within_s: float = 30) -> None:
    """Wait until every circuit of ``route`` is closed and no deployment is ejected,
    asking the route meanwhile (a half-open circuit closes only on a probe's answer)."""
    deadline = time.monotonic() + within_s
    body = {"model": route, "messages": HELLO, "max_tokens": 1}
    while time.monotonic() < deadline:
        found = route_health(base_url, route).values()
        if all(d["breaker"]["state"] == "closed" and not d["outlier"]["ejected"] for d in found):
            return
        httpx.post(base_url + "/v1/chat/completions", json=body, timeout=60)
        time.sleep(0.2)
    raise AssertionError(f"route {route} did not settle: {route_health(base_url, route)}")


@dataclass
class Run:
    """The calls made across a fault, when it began and ended, and the route's health
    read after it."""

    calls: list[Call]
    fault_at: float
    recovered_at: float
    deployments: dict[str, dict[str, Any]]

    def failed(self) -> list[Call]:
        return [c for c in self.calls if c.deployment is None]

    def transitions(self, deployment: str) -> list[tuple[float, str]]:
        """The circuit's timeline from the fault on, led by the state it was in then."""
        breaker = self.deployments[deployment]["breaker"]
        timeline = [(t["at"], t["state"]) for t in breaker["timeline"]]
        before = [t for t in timeline if t[0] < self.fault_at][-1:]
        return before + [t for t in timeline if t[0] >= self.fault_at]
