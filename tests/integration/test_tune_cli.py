"""``offramp tune`` as a user runs it: every mistake is one line on stderr, found before
any model is loaded; exit code 2 for a mistake in the command, 1 for weights not on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from offramp.models.registry import default_config_path

pytestmark = pytest.mark.slow

GOOD = json.dumps(
    {
        "messages": [
            {"role": "user", "content": "What is the capital of Zorblat?"},
            {"role": "assistant", "content": "Quenvar."},
        ]
    }
)


def _tune(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OFFRAMP_MODELS_DIR": str(tmp_path / "models"),
        "CUDA_VISIBLE_DEVICES": "",  # so no machine has CUDA for the --device cuda case
    }
    return subprocess.run(
        [sys.executable, "-m", "offramp", "tune", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _dataset(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _hub_config(tmp_path: Path) -> str:
    default = yaml.safe_load(default_config_path().read_text())
    default["models"].append(
        {
            "name": "tiny-hub",
            "backend": "llamacpp",
            "source": {"hub": "org/tiny-GGUF", "file": "tiny.Q4_0.gguf"},
            "context_length": 2048,
        }
    )
    config = tmp_path / "offramp.yaml"
    config.write_text(yaml.safe_dump(default))
    return str(config)


Case = tuple[Callable[[Path], list[str]], str]
CASES: dict[str, Case] = {
    "bad line": (
        lambda p: [_dataset(p, GOOD, "{nope"), "--base", "smollm2-135m-instruct"],
        "data.jsonl:2: not JSON",
    ),
    "no examples": (
        lambda p: [_dataset(p), "--base", "smollm2-135m-instruct"],
        "has no training examples",
    ),
    "unknown base": (
        lambda p: [_dataset(p, GOOD), "--base", "no-such-model", "--eval-share", "0"],
        "--base: The model `no-such-model` does not exist",
    ),
    "embedding base": (
        lambda p: [_dataset(p, GOOD), "--base", "all-minilm-l6-v2", "--eval-share", "0"],
        "tuning needs a llama.cpp (GGUF) chat model",
    ),
    "hub base not pulled": (
        lambda p: [
            *[_dataset(p, GOOD), "--base", "tiny-hub", "--eval-share", "0"],
            *["--config", _hub_config(p)],
        ],
        "run `offramp models pull org/tiny-GGUF/tiny.Q4_0.gguf` first",
    ),
    "cuda without one": (
        lambda p: [_dataset(p, GOOD), "--base", "smollm2-135m-instruct", "--device", "cuda"],
        "--device cuda: torch sees no CUDA device",
    ),
    "name taken": (
        lambda p: [_dataset(p, GOOD), "--base", "smollm2-135m-instruct", "--name", "gpt-4o"],
        "'gpt-4o' already names the configured model",
    ),
    "bad quant": (
        lambda p: [_dataset(p, GOOD), "--base", "smollm2-135m-instruct", "--quant", "q3"],
        "--quant must be one of",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_mistakes_are_one_line_with_an_exit_code(tmp_path: Path, case: str) -> None:
    args, message = CASES[case]
    argv = args(tmp_path)
    if "--name" not in argv:
        argv += ["--name", "zorblat"]
    done = _tune(tmp_path, *argv)
    assert done.returncode == (1 if case == "hub base not pulled" else 2), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("offramp: error: "), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "models" / "tuned").exists()  # nothing half-written
