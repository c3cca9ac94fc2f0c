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


_TSC_PACKAGES = ("typescript@5.6", "openai@4", "@types/node@20")
_TSCONFIG = """{"compilerOptions": {"target": "es2022", "module": "esnext",
 "moduleResolution": "bundler", "strict": true, "noEmit": true, "skipLibCheck": true,
 "types": ["node"]}, "include": ["src/**/*.ts"]}"""


def _tsc_dir() -> Path:
    """TypeScript and the SDK's types, installed once from the npm registry and cached."""
    cache = Path.home() / ".cache" / "offramp-tests" / "tsc"
    if not (cache / "node_modules" / ".bin" / "tsc").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), *_TSC_PACKAGES],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return cache / "node_modules"


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm")
def test_typescript_app_type_checks_after_migrate(tmp_path: Path) -> None:
    apps = Path(shutil.copytree(APPS, tmp_path / "apps"))
    web = apps / "webapp"
    modules = _tsc_dir()
    (web / "node_modules").symlink_to(modules)
    (web / "tsconfig.json").write_text(_TSCONFIG)
    tsc = [str(modules / ".bin" / "tsc"), "-p", str(web)]
    assert _run(tsc, dict(os.environ), web).returncode == 0  # it type-checked before, too
    migrated = _run(
        [sys.executable, "-m", "offramp", "migrate", str(apps), "--apply"], dict(os.environ), apps
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "new OpenAI({" in (web / "src" / "assistant.ts").read_text()  # it did change
    checked = _run(tsc, dict(os.environ), web)
    assert checked.returncode == 0, checked.stdout
