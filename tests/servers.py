"""Real servers for tests: one app on a free loopback port, served by uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from offramp.app import create_app
from offramp.services.pool import ModelPool
from offramp.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A real uvicorn server for one app, on a free loopback port, in a thread."""

    def __init__(self, settings: Settings, pool: ModelPool):
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, pool=pool), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
