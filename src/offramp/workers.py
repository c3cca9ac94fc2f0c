"""Serving with several worker processes on one port (``settings.workers``).

The supervisor binds the port once, applies the ledger's migrations once, then starts
``workers`` processes (spawned, not forked: each imports offramp afresh) that accept on
the same listening socket; the kernel hands each new connection to one of them. Each
worker is a whole offramp app served by ``server.serve``: its own event loop, upstream
connection pools and local models (llama.cpp and embedding weights are loaded once per
worker, so memory grows with the count; the typical use is a gateway-only config).

Signals: SIGTERM or SIGINT to the supervisor is passed to every worker as SIGTERM, so a
first signal drains them all (``server.DrainingServer``) and a second stops them at once.
Workers run in their own process group, so a terminal's Ctrl-C reaches the supervisor
only and is passed on once. A worker that exits while the supervisor is not stopping is
started again; a worker whose supervisor is gone stops itself.

Shared state: rate limits, budgets and caches are shared between workers through
``redis_url``. Without it each worker would keep its own counters (a key's RPM allowed
``workers`` times over), so the server refuses to start unless ``per_worker_state`` says
that is intended (``check_shared_state``).
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from offramp import server
from offramp.errors import InvalidRequest
from offramp.settings import Settings

log = logging.getLogger(__name__)
_RESTART_PAUSE_S = 1.0  # between a worker's unexpected exit and its replacement
_PARENT_CHECK_S = 1.0


def check_shared_state(settings: Settings) -> None:
    """InvalidRequest (param ``workers``) when several workers would each keep their own
    rate limits, budgets and caches without the user having said so."""
    if settings.workers > 1 and not settings.redis_url and not settings.per_worker_state:
        raise InvalidRequest(
            f"workers={settings.workers} needs redis_url (OFFRAMP_REDIS_URL) so the workers "
            "share rate limits, budgets and caches; set per_worker_state "
            "(OFFRAMP_PER_WORKER_STATE=true) to run with each worker keeping its own",
            param="workers",
        )


def bind(settings: Settings) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(settings: Settings, **overrides: Any) -> None:
    """Run ``settings.workers`` worker processes on one port until a signal stops them.
    ``overrides`` go to each worker's uvicorn configuration (they must pickle)."""
    check_shared_state(settings)
    if isinstance(overrides.get("log_config"), dict):
        logging.config.dictConfig(overrides["log_config"])
    _prepare_ledger(settings)
    sock = bind(settings)
    Supervisor(settings, sock, overrides).run()


def _prepare_ledger(settings: Settings) -> None:
    """Apply the ledger's migrations here, once, before several workers open it."""
    from offramp.ledger.store import open_engine

    open_engine(settings).dispose()


class Supervisor:
    """Starts the workers, passes signals on, and replaces a worker that dies."""

    def __init__(self, settings: Settings, sock: socket.socket, overrides: dict[str, Any]):
        self._settings = settings
        self._sock = sock
        self._overrides = overrides
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, BaseProcess] = {}
        self._signals = 0

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        host, port = self._sock.getsockname()[:2]
        log.info("offramp: %d workers on %s:%s", self._settings.workers, host, port)
        for index in range(1, self._settings.workers + 1):
            self._start(index)
        try:
            self._watch()
        finally:
            self._sock.close()

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_worker,
            args=(self._settings, self._sock, index, self._overrides, os.getpid()),
            name=f"offramp-worker-{index}",
        )
        process.start()
        self._workers[index] = process

    def _watch(self) -> None:
        while self._workers:
            wait([p.sentinel for p in self._workers.values()], timeout=0.5)
            for index, process in list(self._workers.items()):
                if process.is_alive():
                    continue
                del self._workers[index]
                if self._signals:
                    continue
                log.error(
                    "worker %d (pid %s) exited with %s; starting another",
                    index,
                    process.pid,
                    process.exitcode,
                )
                time.sleep(_RESTART_PAUSE_S)
                if not self._signals:
                    self._start(index)

    def _on_signal(self, sig: int, _: FrameType | None) -> None:
        self._signals += 1
        for process in self._workers.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)


def _worker(
    settings: Settings,
    sock: socket.socket,
    index: int,
    overrides: dict[str, Any],
    supervisor: int,
) -> None:
    """One worker process: the whole app, served on the supervisor's socket."""
    os.setpgrp()  # signals come from the supervisor, not the terminal
    threading.Thread(target=_stop_without, args=(supervisor,), daemon=True).start()
    from offramp.app import create_app

    server.serve(create_app(settings, worker=index), settings, sockets=[sock], **overrides)


def _stop_without(supervisor: int) -> None:
    """Drain and stop this worker once its supervisor is gone (killed without passing a
    signal on): nothing else would ever stop it."""
    while os.getppid() == supervisor:
        time.sleep(_PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)
