"""Real servers for tests: an app (or any ASGI callable) on a free loopback port, served by
uvicorn in a thread, and real server processes started on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import httpx
import uvicorn

from offramp.app import create_app
from offramp.local.pool import ModelPool
from offramp.server import config as server_config
from offramp.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AsgiThread:
    """A real uvicorn server for one ASGI app, on a free loopback port, in a thread."""

    def __init__(self, app: Any, log_level: str = "warning", settings: Settings | None = None):
        # bound now and handed to uvicorn, so no other process can take the port meanwhile
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        options: dict[str, Any] = {"port": self.port, "log_level": log_level, "lifespan": "auto"}
        if settings is not None:  # offramp's own server settings (connection deadlines)
            config = server_config(
                app, settings.model_copy(update={"host": "127.0.0.1"}), **options
            )
        else:
            config = uvicorn.Config(app, host="127.0.0.1", **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("test server exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start within 60 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class ServerThread(AsgiThread):
    """An offramp app over a shared model pool."""

    def __init__(self, settings: Settings, pool: ModelPool):
        super().__init__(create_app(settings, pool=pool), settings=settings)


class ProcessServer:
    """A server process listening on a free port; ``argv(port)`` builds its command line.
    ``start`` returns at once (so several can start together); ``wait`` polls ``ready``."""

    def __init__(self, argv: Callable[[int], Sequence[str]], ready: str):
        self.port = free_port()
        self._argv = list(argv(self.port))
        self._ready = ready
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None) -> ProcessServer:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **(extra_env or {})}
        self._proc = subprocess.Popen(
            self._argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def wait(self, timeout: float = 120) -> ProcessServer:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self._argv[:3]} exited during start-up")
            try:
                if httpx.get(self.base_url + self._ready, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self._argv[:3]} did not become ready")

    def signal(self, sig: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        """The process's exit code once it has stopped by itself."""
        assert self._proc is not None
        return self._proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
