"""Fixture apps with hard-coded API hosts run their own code paths against a live offramp
after ``offramp migrate --apply``, and did not before."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ServerThread

pytestmark = pytest.mark.slow
APPS = Path(__file__).parent.parent / "fixtures" / "migrate_apps"


def _app_env(server: ServerThread, root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OPENAI_BASE_URL": server.base_url + "/v1",
        "OPENAI_API_KEY": "unused",
        # The vendor's hosts are unreachable here; a refused proxy makes that immediate.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": "1",
    }


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_python_app_runs_on_offramp_after_migrate(server: ServerThread, tmp_path: Path) -> None:
    apps = Path(shutil.copytree(APPS, tmp_path / "apps"))
    root = apps / "pyapp"
    env = _app_env(server, root)
    before = _run([sys.executable, "-m", "tutor.main"], env, root)
    assert before.returncode != 0
    assert "Connect" in before.stderr  # it tried the vendor's host, not offramp

    migrated = _run([sys.executable, "-m", "offramp", "migrate", str(apps), "--apply"], env, apps)
    assert migrated.returncode == 0, migrated.stderr

    after = _run([sys.executable, "-m", "tutor.main"], env, root)
    assert after.returncode == 0, after.stderr
    printed = after.stdout
    for feature in ("explain", "quiz", "grade"):  # each answered with some text
        assert re.search(rf"^{feature}: \S", printed, re.MULTILINE), printed
    assert "\nvector: 384\n" in printed and printed.endswith("note: 384\n")  # bundled embedder

    # the same code, no variable set: the rewritten default is a local offramp, not the vendor
    assert "http://127.0.0.1:8000/v1" in (root / "tutor" / "config.py").read_text()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_script_app_runs_on_offramp_after_migrate(server: ServerThread, tmp_path: Path) -> None:
    apps = Path(shutil.copytree(APPS, tmp_path / "apps"))
    env = _app_env(server, apps)
    script = apps / "webapp" / "src" / "raw.mjs"
    before = _run(["node", str(script)], env, apps)
    assert before.returncode != 0
    migrated = _run([sys.executable, "-m", "offramp", "migrate", str(apps), "--apply"], env, apps)
    assert migrated.returncode == 0, migrated.stderr
    after = _run(["node", str(script)], env, apps)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("answer: ") and len(after.stdout.strip()) > len("answer:")
