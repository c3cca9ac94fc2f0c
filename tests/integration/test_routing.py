"""Routing against real upstreams on loopback: llama-cpp-python's own server and a second
offramp process, each behind a fault-injecting proxy, driven with the official SDK."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from offramp.errors import UpstreamError
from offramp.local.pool import ModelPool
from offramp.models.registry import default_config_path, load_registry
from offramp.models.sources import resolve
from offramp.providers.base import Provider
from offramp.providers.openai_compat.provider import build_openai_compatible
from offramp.providers.upstream import UpstreamSpec
from offramp.settings import Settings, load_settings
from offramp.types import ChatRequest, Message
from tests.faults import FaultProxy, Gate
from tests.load import Clients, Run, route_health, settle
from tests.servers import AsgiThread, ProcessServer, ServerThread, free_port

pytestmark = pytest.mark.slow

HELLO = [{"role": "user", "content": "Say hello."}]
CHILD = "smollm2-135m-instruct"  # the model each child offramp serves


def model_path() -> str:
    spec = load_registry(None).resolve("smollm2-135m-instruct", kind="chat")
    return str(resolve(spec.source, load_settings().models_dir))


def _llama_server() -> ProcessServer:
    return ProcessServer(
        lambda port: [
            sys.executable, "-m", "llama_cpp.server", "--model", model_path(),
            "--model_alias", "smol", "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", "1024", "--n_threads", "1", "--verbose", "false",
            "--interrupt_requests", "false",
        ],
        "/v1/models",
    )  # fmt: skip


def _offramp_child(config: Path) -> ProcessServer:
    return ProcessServer(
        lambda port: [
            sys.executable, "-m", "offramp", "serve", "--port", str(port), "--config", str(config),
        ],
        "/ready",
    )  # fmt: skip


class Upstreams:
    """The real upstreams and the proxies in front of them, by name."""

    def __init__(self, llama: str, child: str, twin: str):
        self.llama, self.child = llama, child
        self.proxies = {
            "faulty": FaultProxy(llama),
            "healthy": FaultProxy(child),
            "flaky": FaultProxy(llama),
            "first": FaultProxy(child),
            "recorder": FaultProxy(llama),
        }
        # the two deployments of the `flapping` route, each a gate (refuse) before a proxy
        # before an offramp process of its own (answering from its response cache, so
        # the machine's load does not decide how fast the healthy one is)
        self.proxies["a"] = FaultProxy(child)
        self.proxies["b"] = FaultProxy(twin)
        self.threads = {
            name: AsgiThread(p, log_level="critical") for name, p in self.proxies.items()
        }
        self.gates = {name: Gate("127.0.0.1", self.threads[name].port) for name in ("a", "b")}

    def url(self, name: str) -> str:
        return self.threads[name].base_url + "/v1"

    def gated(self, name: str) -> str:
        return self.gates[name].base_url + "/v1"


def _warm(base_url: str, model: str) -> None:
    """One answer first: a cold server's first one (weights paged in) takes seconds."""
    body = {"model": model, "messages": HELLO, "max_tokens": 1}
    httpx.post(base_url + "/v1/chat/completions", json=body, timeout=120).raise_for_status()


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    default = yaml.safe_load(default_config_path().read_text())
    child_config = tmp_path_factory.mktemp("child") / "offramp.yaml"
    chat_model = {**default["models"][0], "options": {"parallel": 2, "kv_type": "q8_0"}}
    chat_model["context_length"] = 1024
    child_config.write_text(yaml.safe_dump({"settings": {"n_threads": 1}, "models": [chat_model]}))
    servers = [
        _llama_server().start(),
        _offramp_child(child_config).start(),
        _offramp_child(child_config).start(),
    ]
    try:
        llama, child, twin = (s.wait().base_url for s in servers)
        for base, model in ((llama, "smol"), (child, CHILD), (twin, CHILD)):
            _warm(base, model)
        found = Upstreams(llama, child, twin)
        for thread in found.threads.values():
            thread.__enter__()
        for gate in found.gates.values():
            gate.start()
        yield found
        for gate in found.gates.values():
            gate.stop()
        for thread in found.threads.values():
            thread.__exit__()
    finally:
        for server in servers:
            server.stop()


def _deployment(name: str, url: str, model: str, timeout: float = 30) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "openai-compatible",
        "base_url": url,
        "model": model,
        "timeout_s": timeout,
    }


def _routes(up: Upstreams, embed_url: str) -> list[dict[str, Any]]:
    healthy = _deployment("healthy", up.url("healthy"), "smollm2-135m-instruct")
    fast = {"base_delay_s": 0.05, "max_delay_s": 0.2}
    return [
        {
            "name": "resilient",
            "deployments": [_deployment("faulty", up.url("faulty"), "smol", 1.0), healthy],
            "breaker": {"failure_threshold": 1000},
            "retry": fast,
        },
        {
            "name": "refused",
            "deployments": [
                _deployment("dead", f"http://127.0.0.1:{free_port()}/v1", "smol"),
                healthy,
            ],
            "retry": fast,
        },
        {
            "name": "guarded",
            "deployments": [_deployment("flaky", up.url("flaky"), "smol"), healthy],
            "breaker": {"failure_threshold": 2, "cooldown_s": 1.0},
            "retry": fast,
        },
        {
            "name": "committed",
            "deployments": [
                _deployment("first", up.url("first"), "smollm2-135m-instruct"),
                healthy,
            ],
        },
        {
            "name": "flapping",
            "strategy": "weighted",
            "deadline_s": DEADLINE_S,
            "breaker": {"failure_threshold": 2, "cooldown_s": COOLDOWN_S},
            "retry": {"base_delay_s": 0.05, "max_delay_s": 0.5},
            "outlier_detection": {
                "latency_factor": 3,
                "min_latency_s": 2.0,
                "min_samples": 2,
                "window": 3,
                "base_ejection_s": 4,
            },
            "deployments": [
                # A first for three requests in four, so a fault meets it at once
                {
                    **_deployment("a", up.gated("a"), CHILD, ATTEMPT_S),
                    "weight": 3,
                },
                _deployment("b", up.gated("b"), CHILD, DEADLINE_S),
            ],
        },
        {
            "name": "flapping-strict",  # the same two, for requests with a 1 s deadline
            "deadline_s": 1.0,
            "breaker": {"failure_threshold": 2, "cooldown_s": COOLDOWN_S},
            "retry": {"base_delay_s": 0.05, "max_delay_s": 0.5},
            "deployments": [
                _deployment("a", up.gated("a"), CHILD, ATTEMPT_S),
                _deployment("b", up.gated("b"), CHILD, DEADLINE_S),
            ],
        },
        {"name": "plain-llama", "deployments": [_deployment("llama", up.url("recorder"), "smol")]},
        {"name": "nested", "deployments": [healthy]},
        {
            "name": "embed-up",
            "kind": "embedding",
            "deployments": [_deployment("offramp-embed", embed_url, "all-minilm-l6-v2")],
        },
    ]


@pytest.fixture(scope="module")
def routed(
    upstreams: Upstreams,
    server: ServerThread,
    settings: Settings,
    pool: ModelPool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    config = tmp_path_factory.mktemp("routes") / "offramp.yaml"
    default = yaml.safe_load(default_config_path().read_text())
    routes = _routes(upstreams, server.base_url + "/v1")
    config.write_text(yaml.safe_dump({"models": default["models"], "routes": routes}))
    with ServerThread(settings.model_copy(update={"config": config}), pool) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(routed: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=routed.base_url + "/v1", api_key="unused", max_retries=0, timeout=60
    )


def _chat(sdk: openai.OpenAI, model: str, **kwargs: Any) -> tuple[Any, Mapping[str, str]]:
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=HELLO, max_tokens=4, temperature=0, **kwargs
    )
    return raw.parse(), raw.headers


def _stream(sdk: openai.OpenAI, model: str) -> tuple[list[str], Mapping[str, str]]:
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=HELLO, max_tokens=4, temperature=0, stream=True
    )
    texts = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
    return texts, raw.headers


@pytest.mark.parametrize("fault", ["refuse", "delay", "500", "429", "cut", "error-event"])
def test_one_healthy_deployment_left_means_no_request_fails(
    sdk: openai.OpenAI, upstreams: Upstreams, fault: str
) -> None:
    route = "refused" if fault == "refuse" else "resilient"
    upstreams.proxies["faulty"].fault = fault
    before = upstreams.proxies["faulty"].hits
    started = time.perf_counter()
    reply, headers = _chat(sdk, route)
    texts, stream_headers = _stream(sdk, route)
    assert reply.choices[0].message.content and "".join(texts)
    for h in (headers, stream_headers):
        assert h["x-offramp-deployment"] == "healthy" and h["x-offramp-attempts"] == "2"
    if fault != "refuse":
        assert upstreams.proxies["faulty"].hits == before + 2  # it really was tried first
    assert time.perf_counter() - started < 15  # a 30 s Retry-After is not waited out
    upstreams.proxies["faulty"].fault = "pass"


def _breaker(sdk_base: str, route: str, deployment: str) -> dict[str, Any]:
    routes = httpx.get(sdk_base + "/admin/routes").json()["data"]
    [found] = [r for r in routes if r["name"] == route]
    [dep] = [d for d in found["deployments"] if d["id"] == deployment]
    assert isinstance(dep, dict)
    return dep


def test_the_breaker_opens_after_its_threshold_and_closes_after_the_cooldown(
    sdk: openai.OpenAI, routed: ServerThread, upstreams: Upstreams
) -> None:
    flaky = upstreams.proxies["flaky"]
    flaky.fault = "500"
    for _ in range(2):
        _, headers = _chat(sdk, "guarded")
        assert headers["x-offramp-deployment"] == "healthy"
    state = _breaker(routed.base_url, "guarded", "flaky")
    assert state["breaker"]["state"] == "open" and state["error_rate"] == 1.0
    hits = flaky.hits
    _, headers = _chat(sdk, "guarded")
    assert headers["x-offramp-attempts"] == "1" and flaky.hits == hits  # skipped, no cost
    flaky.fault = "pass"
    time.sleep(1.1)
    assert _breaker(routed.base_url, "guarded", "flaky")["breaker"]["state"] == "half-open"
    _, headers = _chat(sdk, "guarded")
    assert headers["x-offramp-deployment"] == "flaky" and headers["x-offramp-attempts"] == "1"
    state = _breaker(routed.base_url, "guarded", "flaky")
    assert state["breaker"]["state"] == "closed" and state["latency_ms"]["ewma"] > 0


@pytest.mark.parametrize("fault", ["cut-late", "late-error-event"])
def test_after_the_first_streamed_byte_there_is_no_fallback(
    sdk: openai.OpenAI, upstreams: Upstreams, fault: str
) -> None:
    upstreams.proxies["first"].fault = fault
    healthy_hits = upstreams.proxies["healthy"].hits
    raw = sdk.chat.completions.with_raw_response.create(
        model="committed", messages=HELLO, max_tokens=16, temperature=0, stream=True
    )
    assert raw.headers["x-offramp-deployment"] == "first"
    texts: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in raw.parse():
            if chunk.choices:
                texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts), "content arrived before the failure"
    assert "first" in info.value.message
    assert upstreams.proxies["healthy"].hits == healthy_hits  # never switched
    upstreams.proxies["first"].fault = "pass"


def test_unknown_parameters_reach_the_upstream(sdk: openai.OpenAI, upstreams: Upstreams) -> None:
    reply, headers = _chat(sdk, "plain-llama", extra_body={"mirostat_mode": 0, "top_k": 5})
    sent = upstreams.proxies["recorder"].bodies[-1]
    assert sent["mirostat_mode"] == 0 and sent["top_k"] == 5 and sent["model"] == "smol"
    assert reply.choices[0].message.content and headers["x-offramp-cost-usd"] == "0.00000000"
    assert float(headers["x-offramp-openai-equivalent-usd"]) > 0
    # A second offramp serving a local model refuses what it cannot honour, by name.
    with pytest.raises(openai.BadRequestError) as info:
        _chat(sdk, "nested", extra_body={"mirostat_mode": 0})
    assert info.value.body["param"] == "mirostat_mode"  # type: ignore[index]


def test_legacy_completions_and_embeddings_through_upstreams(
    sdk: openai.OpenAI, client: openai.OpenAI
) -> None:
    raw = sdk.completions.with_raw_response.create(
        model="plain-llama", prompt="Once upon a time", max_tokens=4, temperature=0
    )
    assert raw.parse().choices[0].text and raw.headers["x-offramp-deployment"] == "llama"
    texts = ["routing tests", "a second sentence"]
    routed = sdk.embeddings.create(model="embed-up", input=texts)
    local = client.embeddings.create(model="all-minilm-l6-v2", input=texts)
    for a, b in zip(routed.data, local.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)


def test_routes_are_listed_beside_the_models(sdk: openai.OpenAI) -> None:
    cards = {m.id: m for m in sdk.models.list()}
    assert {"resilient", "embed-up", "gpt-4o-mini"} <= cards.keys()
    assert cards["resilient"].model_dump()["deployments"] == ["faulty", "healthy"]


# The `flapping` route: A and B (two more offramp processes), each behind a gate and a
# fault proxy, weighted 3:1, under CLIENTS concurrent SDK clients.
ATTEMPT_S = 5.0  # A's attempt timeout: a hang costs this much, then B answers
DEADLINE_S = 10.0
COOLDOWN_S = 1.5
CLIENTS = 4
SLOW_S = 3.5  # A's delay when slow: under its timeout, far over B's latency
SETTLE_S = 1.5  # what a probe's answer and reading the admin route may take


def _run(
    sdk: openai.OpenAI,
    base: str,
    fault: Callable[[bool], None],
    fault_s: float,
    during: Callable[[], object] = lambda: None,
) -> Run:
    """Clients for a second, the fault for ``fault_s`` (``during`` runs meanwhile), then a
    cooldown and a settle more."""
    settle(base, "flapping")
    with Clients(sdk, "flapping", CLIENTS) as clients:
        time.sleep(1.0)
        fault_at = time.time()
        fault(True)
        during()
        time.sleep(max(0.0, fault_at + fault_s - time.time()))
        recovered_at = time.time()
        fault(False)
        time.sleep(COOLDOWN_S + SETTLE_S + 0.5)
    return Run(clients.calls, fault_at, recovered_at, route_health(base, "flapping"))


def _fault(up: Upstreams, mode: str) -> Callable[[bool], None]:
    a = up.proxies["a"]
    a.retry_after, a.delay_s = 1, SLOW_S

    def switch(on: bool) -> None:
        if mode in ("refuse", "both-down"):
            for name in ("a", "b") if mode == "both-down" else ("a",):
                gate = up.gates[name]
                gate.refuse() if on else gate.admit()
        else:
            a.fault = ({"slow": "delay"}.get(mode, mode)) if on else "pass"

    return switch


def _opened_once_and_closed_within_a_cooldown(run: Run, deployment: str) -> None:
    states = run.transitions(deployment)
    health = {k: v for k, v in run.deployments[deployment].items() if k != "breaker"}
    answered = Counter(c.deployment for c in run.calls if run.fault_at <= c.started)
    context = (states, health, answered)  # shown when an assertion fails
    assert states[0][1] == "closed", context
    trips = [t for (_, before), (t, s) in pairwise(states) if before == "closed" and s == "open"]
    assert len(trips) == 1 and run.fault_at <= trips[0] <= run.recovered_at, context
    closed_at, state = states[-1]
    assert state == "closed", context
    assert run.recovered_at <= closed_at <= run.recovered_at + COOLDOWN_S + SETTLE_S, context


@pytest.mark.parametrize(
    ("mode", "fault_s"),
    [("refuse", 3), ("500", 3), ("429", 3), ("hang", ATTEMPT_S + 2), ("cut", 3), ("slow", 6)],
)
def test_no_request_fails_while_one_deployment_stays_healthy(
    sdk: openai.OpenAI, routed: ServerThread, upstreams: Upstreams, mode: str, fault_s: float
) -> None:
    ejections = route_health(routed.base_url, "flapping")["a"]["outlier"]["ejections"]
    run = _run(sdk, routed.base_url, _fault(upstreams, mode), fault_s)
    assert run.failed() == []
    assert len(run.calls) >= 2 * CLIENTS and {c.deployment for c in run.calls} == {"a", "b"}
    assert run.transitions("b") == [run.transitions("b")[0]]  # B never changed state
    if mode != "slow":
        _opened_once_and_closed_within_a_cooldown(run, "a")
        return
    # Slow is not failing: A's circuit stays closed, but it is ejected after two slow
    # answers and, while ejected, every request goes to B.
    a = run.deployments["a"]
    assert run.transitions("a") == [run.transitions("a")[0]]
    assert a["outlier"]["ejections"] > ejections
    ejected_at = a["outlier"]["last_ejected_at"]
    assert run.fault_at < ejected_at < run.recovered_at
    during = [c for c in run.calls if ejected_at + 0.1 < c.started < run.recovered_at]
    assert during and {c.deployment for c in during} == {"b"}


def test_both_down_is_503_with_retry_after_and_recovers_within_a_cooldown(
    sdk: openai.OpenAI, routed: ServerThread, upstreams: Upstreams
) -> None:
    strict: list[tuple[float, Any]] = []  # (seconds taken, the error) of 1 s-deadline requests

    def ask_strict() -> None:
        time.sleep(0.5)
        for _ in range(4):
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as info:
                _chat(sdk, "flapping-strict")
            strict.append((time.monotonic() - started, info.value))
            time.sleep(0.3)

    run = _run(sdk, routed.base_url, _fault(upstreams, "both-down"), 5, during=ask_strict)
    # A request whose deadline the outage outlasts gets 503 with Retry-After, in time...
    for took, error in strict:
        assert (error.status_code, error.body["code"]) == (503, "no_deployment_available")
        assert int(error.response.headers["retry-after"]) >= 1 and took < 1.5, error
    # ...and so may one of the flapping route's (10 s deadline) whose attempts run out,
    # while the others wait the outage out.
    for call in run.failed():
        assert (call.status, call.code) == (503, "no_deployment_available"), call
        assert call.retry_after is not None and int(call.retry_after) >= 1, call
    back = run.recovered_at + COOLDOWN_S + SETTLE_S
    assert any(run.recovered_at < c.ended <= back and c.deployment for c in run.calls)
    assert all(c.deployment for c in run.calls if c.started > back)
    for deployment in ("a", "b"):
        _opened_once_and_closed_within_a_cooldown(run, deployment)
    _, headers = _chat(sdk, "flapping-strict")  # its circuits are half-open by now
    assert headers["x-offramp-deployment"] in ("a", "b")


def test_a_cut_answer_and_an_unreachable_upstream_say_which(
    upstreams: Upstreams, settings: Settings
) -> None:
    def provider(base_url: str) -> Provider:
        spec = UpstreamSpec(backend="openai-compatible", model="m", base_url=base_url)
        return build_openai_compatible(spec, settings)

    request = ChatRequest(model="m", messages=(Message("user", "Say hello."),))

    async def codes(base_url: str) -> tuple[str | None, str | None]:
        upstream = provider(base_url)
        try:
            with pytest.raises(UpstreamError) as whole:
                await upstream.chat(request)
            with pytest.raises(UpstreamError) as streamed:
                async for _ in upstream.stream_chat(request):
                    pass
        finally:
            await upstream.aclose()
        return whole.value.code, streamed.value.code

    upstreams.proxies["a"].fault = "cut"  # a 200 answer dropped mid-body
    try:
        cut = asyncio.run(codes(upstreams.url("a")))
    finally:
        upstreams.proxies["a"].fault = "pass"
    refused = asyncio.run(codes(f"http://127.0.0.1:{free_port()}/v1"))
    assert cut == ("upstream_stream_cut", "upstream_stream_cut")
    assert refused == ("upstream_unreachable", "upstream_unreachable")
