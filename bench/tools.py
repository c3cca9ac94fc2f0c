"""What a bench needs from outside Python, found or installed before it starts.

A missing Debian tool is installed with apt-get when the bench runs as root (as ``make
test`` does for Chromium); otherwise the bench stops with one line saying what to install.
A Python tool gets its own virtualenv under ``.bench-venvs/`` (pip, the package index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parents[1] / ".bench-venvs"


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``, installing Debian ``package`` first if it is missing;
    SystemExit with one line naming the package when it cannot be installed here."""
    found = shutil.which(command) or _in_sbin(command)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} (apt-get) for `{command}`", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)  # type: ignore[call-overload]
        done = subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, **quiet)  # type: ignore[call-overload]
        found = shutil.which(command) or _in_sbin(command)
        if done.returncode == 0 and found:
            return found
    raise SystemExit(f"this bench needs `{command}`: install it with `apt-get install {package}`")


def python_tool(name: str, requirement: str, command: str) -> Path:
    """``command`` from a virtualenv of its own holding ``requirement``, created on first
    use; SystemExit with one line when the virtualenv or the install fails."""
    venv = VENVS / name
    tool = venv / "bin" / command
    if tool.exists():
        return tool
    print(f"installing {requirement} into {venv} (first use)", flush=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
    if made.returncode != 0:
        raise SystemExit(
            f"this bench needs a virtualenv for {requirement}: install Debian's python3-venv"
        )
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", requirement]
    if subprocess.run(pip, capture_output=True).returncode != 0 or not tool.exists():
        raise SystemExit(
            f"this bench needs {requirement}: `{venv}/bin/pip install '{requirement}'` failed "
            "(is the package index reachable?)"
        )
    return tool


def _in_sbin(command: str) -> str | None:
    for folder in ("/usr/sbin", "/sbin"):
        path = Path(folder) / command
        if path.exists():
            return str(path)
    return None
