"""Settings precedence: config file < environment < explicit arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from offramp.errors import InvalidRequest
from offramp.settings import load_settings


def test_file_then_env_then_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("settings:\n  port: 9001\n  max_queue: 3\n  log_level: debug\n")
    monkeypatch.setenv("OFFRAMP_MAX_QUEUE", "5")
    s = load_settings(config, log_level="warning")
    assert s.port == 9001  # from the file
    assert s.max_queue == 5  # env beats the file
    assert s.log_level == "warning"  # explicit beats both


def test_bad_config_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("settings: [1, 2\n")
    with pytest.raises(InvalidRequest) as info:
        load_settings(bad)
    assert str(bad) in info.value.message
    with pytest.raises(InvalidRequest):
        load_settings(tmp_path / "missing.yaml")
