"""The ``offramp`` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OFFRAMP_MODELS_DIR": str(tmp_path / "models")}


def _offramp(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offramp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offramp", "serve", "--port", str(port)],
        env=_env(tmp_path_factory.mktemp("serve")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("offramp serve did not become ready")
    yield base, proc
    if proc.poll() is None:
        proc.kill()


def test_serve_answers_the_sdk_and_stops_cleanly(served: tuple[str, subprocess.Popen[str]]) -> None:
    base, proc = served
    client = openai.OpenAI(base_url=base + "/v1", api_key="anything", max_retries=0)
    chat = client.chat.completions.create(
        model="gpt-4o-mini",
        max_tokens=8,
        temperature=0,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert chat.choices[0].message.content
    emb = client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert len(emb.data[0].embedding) == 384
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    output = proc.stdout.read() if proc.stdout else ""
    assert "Application shutdown complete" in output


def test_chat_command_streams_an_answer(tmp_path: Path) -> None:
    done = _offramp(
        "chat", "Say hello.", "--max-tokens", "12", "--temperature", "0", env=_env(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_embed_command_prints_vectors(tmp_path: Path) -> None:
    done = _offramp("embed", "hello", "world", "--dimensions", "8", env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    vectors = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)


def test_models_list_shows_aliases_and_files(tmp_path: Path) -> None:
    done = _offramp("models", "list", env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m-instruct" in done.stdout and "gpt-4o-mini" in done.stdout
    assert "yes" in done.stdout


def test_pull_without_a_hub_fails_with_one_clear_line(tmp_path: Path) -> None:
    done = _offramp(
        "models", "pull", "some-org/some-model-GGUF/model.Q4_K_M.gguf", env=_env(tmp_path)
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("offramp: error: cannot pull"), done.stderr


def test_bad_config_fails_with_one_clear_line(tmp_path: Path) -> None:
    done = _offramp("serve", "--config", str(tmp_path / "missing.yaml"), env=_env(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "missing.yaml" in done.stderr


def test_serve_with_unpulled_model_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        "models:\n"
        "  - name: big\n"
        "    backend: llamacpp\n"
        "    source: {hub: some-org/big-GGUF, file: big.Q4_K_M.gguf}\n"
        "    context_length: 4096\n"
    )
    done = _offramp("serve", "--config", str(config), env=_env(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "offramp models pull some-org/big-GGUF/big.Q4_K_M.gguf" in done.stderr


def test_scan_holds_the_line_in_ci(tmp_path: Path) -> None:
    project = Path(__file__).parent.parent / "fixtures" / "scan_project"
    out = tmp_path / "scan.sarif"
    done = _offramp(
        "scan", str(project), "--format", "sarif", "--output", str(out), env=_env(tmp_path)
    )
    assert done.returncode == 1, done.stderr  # sites remain
    assert json.loads(out.read_text())["runs"][0]["results"]
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "app.py").write_text("print('no vendor SDK here')\n")
    done = _offramp("scan", str(clean), "--format", "json", env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sites"] == []
